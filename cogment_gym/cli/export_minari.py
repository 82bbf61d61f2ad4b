"""``cogment-gym export-minari``: recorded trials as Minari dataset(s)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

from cogment_gym.cli.common import EXIT_FAILED, EXIT_OK, UsageError, describe, error
from cogment_gym.cli.progress import Progress
from cogment_gym.extras import missing_extra

__all__ = ["add_parser", "main"]


def add_parser(commands: Any) -> None:
    export = commands.add_parser(
        "export-minari", help="build Minari dataset(s) from recorded trials (needs the [minari] extra)",
        description="Build a Minari dataset from the trial files in DIR (cogment-gym datalog --out DIR, or a facade's "
        "datalog=Path). Multi-agent trials give one dataset per agent, <name>-<agent>. Datasets go where Minari keeps "
        "them (MINARI_DATASETS_PATH, default ~/.minari/datasets); load them with minari.load_dataset(ID).")
    export.add_argument("directory", metavar="DIR", help="directory of trial files")
    export.add_argument("--dataset-id", required=True, metavar="ID", help="Minari dataset id, (namespace/)name-v<version>")
    export.add_argument("--agent", metavar="NAME", help="export only this actor's episodes")
    export.add_argument("--env", metavar="ENV_ID", help="Gymnasium id recorded as the dataset's env (default: the trials' "
                        "implementation if it is one)")
    export.add_argument("--no-infos", dest="infos", action="store_false", help="leave infos out")
    export.add_argument("--data-format", default="arrow", choices=("arrow", "hdf5", "parquet"), help="Minari storage (default: %(default)s)")
    export.add_argument("--author", help="dataset author")
    export.add_argument("--description", help="dataset description")
    export.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    import os

    if not os.path.isdir(args.directory):
        raise UsageError(f"{args.directory!r} is not a directory of trial files")
    try:
        from minari.dataset.minari_dataset import parse_dataset_id

        from cogment_gym.integrations.minari import export_minari
    except ImportError as err:
        raise UsageError(str(missing_extra("minari", "export-minari", err))) from None
    try:
        parse_dataset_id(args.dataset_id)
    except ValueError as err:
        raise UsageError(str(err)) from None
    metadata = {key: getattr(args, key) for key in ("author", "description") if getattr(args, key)}
    progress = Progress(None, sys.stderr, description="exporting")
    started = time.perf_counter()

    def report(episodes: int, steps: int) -> None:
        progress.update(episodes, steps, time.perf_counter() - started)

    from cogment_gym.errors import CogmentGymError

    try:
        with warnings.catch_warnings():
            # Minari warns of every metadata field left empty; the CLI asks for the ones that matter.
            warnings.filterwarnings("ignore", message=r".*is set to None.*", category=UserWarning)
            datasets = export_minari(args.directory, args.dataset_id, agent=args.agent, env=args.env, infos=args.infos,
                                     data_format=args.data_format, progress=report, **metadata)
    except (CogmentGymError, ValueError) as err:
        progress.close()
        error(f"export failed: {describe(err)}")
        return EXIT_FAILED
    progress.close()
    elapsed = time.perf_counter() - started
    for dataset_id, dataset in datasets.items():
        print(f"{dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps} steps", flush=True)
    print(f"exported in {elapsed:.2f} s", flush=True)
    return EXIT_OK
