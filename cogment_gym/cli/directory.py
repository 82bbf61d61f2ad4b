"""``cogment-gym directory``: a Cogment Directory as a process, a drop-in for
``cogment services directory`` (also reachable as ``cogment-gym services directory``).

Takes ``--port`` (``COGMENT_DIRECTORY_PORT``, default 9005) and binds 127.0.0.1 unless ``--host``
says otherwise. Cogment's other directory flags (``--grpc_reflection``, ``--registration_lag``,
``--persistence_file``, ``--load_balancing``, ``--check_on_inquire``, ``--force_permanent``) are
accepted and change nothing: registrations live in memory until deregistered, there are no health
checks, and inquiries answer the most recent registration first.
"""

from __future__ import annotations

import argparse
import os
import threading
from typing import Any, Mapping

from cogment_gym.cli.common import EXIT_FAILED, EXIT_OK, UsageError, check_bindable, describe, error, input_errors, port

__all__ = ["add_arguments", "add_parser", "main"]


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("directory", help="run a Cogment Directory (DirectorySP)",
                                 description="Run a Cogment Directory until SIGINT/SIGTERM. Prints 'directory at <ep>' once ready.")
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    from cogment_gym.directory.server import DEFAULT_DIRECTORY_PORT

    env = os.environ if environ is None else environ
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=port, default=env.get("COGMENT_DIRECTORY_PORT") or DEFAULT_DIRECTORY_PORT,
                        help="port, 0 lets the OS choose (default: %(default)s; COGMENT_DIRECTORY_PORT)")
    compat = parser.add_argument_group("accepted for compatibility with cogment services directory (no effect)")
    for flag in ("--grpc_reflection", "--load_balancing", "--check_on_inquire", "--force_permanent"):
        compat.add_argument(flag, nargs="?", const="true", default=None, metavar="BOOL")
    compat.add_argument("--registration_lag", type=int, default=None, metavar="SECONDS")
    compat.add_argument("--persistence_file", default=None, metavar="FILE")
    parser.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    check_bindable(args.host, args.port)
    from cogment_gym.directory.server import run_directory

    ready = threading.Event()

    def on_ready(endpoint: str) -> None:
        print(f"directory at {endpoint}", flush=True)
        ready.set()

    try:
        run_directory(host=args.host, port=args.port, on_ready=on_ready)
    except input_errors() as err:
        if ready.is_set():
            error(f"directory failed: {describe(err)}")
            return EXIT_FAILED
        raise UsageError(f"cannot start the directory: {describe(err)}") from None
    return EXIT_OK
