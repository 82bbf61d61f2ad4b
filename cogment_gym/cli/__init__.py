"""``cogment-gym``: serve environments, run an Orchestrator, run a demo.

    cogment-gym serve CartPole-v1 --port 9001
    cogment-gym serve CartPole-v1 --port 9001 --workers 4     # 4 processes, ports 9001..9004
    cogment-gym orchestrator --lifecycle-port 9000
    cogment-gym run CartPole-v1 --episodes 20
    cogment-gym run CartPole-v1 --environment grpc://127.0.0.1:9001 --orchestrator grpc://127.0.0.1:9000
    cogment-gym datalog --out recorded --port 9003
    cogment-gym export-minari recorded --dataset-id cogment/cartpole-random-v0

One module per command (``add_parser`` and ``main``); ``common`` holds what they share. This
package is the only code that writes to stdout. Bad input (an unknown env id, a bad endpoint, a
port in use) ends with one line on stderr and exit code 2; a failure while running with exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from cogment_gym.cli import datalog, export_minari, orchestrator, run, serve
from cogment_gym.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, UsageError, error

__all__ = ["main"]

# The commands, in the order ``--help`` lists them.
COMMANDS = (serve, orchestrator, run, datalog, export_minari)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cogment-gym`` command line; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed its message
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.command(args)
        return code
    except UsageError as err:
        error(str(err))
        return EXIT_USAGE
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cogment-gym",
        description="Gymnasium environments as Cogment 2.x services, and Cogment trials as Gymnasium environments.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser
