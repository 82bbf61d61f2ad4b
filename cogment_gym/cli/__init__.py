"""``cogment-gym``: serve environments, run an Orchestrator, run a demo, record trials, check a served env.

    cogment-gym serve CartPole-v1 --port 9001
    cogment-gym serve CartPole-v1 --port 9001 --workers 4     # 4 processes, ports 9001..9004
    cogment-gym orchestrator --lifecycle-port 9000
    cogment-gym services orchestrator --lifecycle_port=9000 --status_file=status   # Cogment's spelling
    cogment-gym directory --port 9005
    cogment-gym run CartPole-v1 --episodes 20
    cogment-gym run CartPole-v1 --environment grpc://127.0.0.1:9001 --orchestrator grpc://127.0.0.1:9000
    cogment-gym datalog --out recorded --port 9003
    cogment-gym export-minari recorded --dataset-id cogment/cartpole-random-v0
    cogment-gym run pettingzoo.classic.connect_four_v3 --agent player_0 --others first-legal
    cogment-gym check grpc://127.0.0.1:9001                     # compliance of a served env

One module per command (``add_parser`` and ``main``); ``common`` holds what they share. This
package is the only code that writes to stdout. Bad input (an unknown env id, a bad endpoint, a
port in use) ends with one line on stderr and exit code 2; a failure while running with exit code 1.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from typing import Any, Sequence

from cogment_gym._version import __version__
from cogment_gym.protocol.versions import COGMENT_API_VERSION

from cogment_gym.cli import check, datalog, directory, export_minari, orchestrator, run, serve, services
from cogment_gym.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, UsageError, error

__all__ = ["main"]

# The commands, in the order ``--help`` lists them.
COMMANDS = (serve, orchestrator, run, datalog, export_minari, directory, services, check)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cogment-gym`` command line; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed its message
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if getattr(args, "command", None) is None:
        # No command: the whole help, on stderr with exit code 2 (argparse's way for a missing
        # argument), so that a script calling `cogment-gym` alone fails visibly.
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.verbose and args.quiet:
        error("-v and -q contradict each other: give one")
        return EXIT_USAGE
    _configure_logging(args.verbose, args.quiet)
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
        epilog="Without a command: this help on stderr, exit code 2. 'cogment-gym COMMAND --help' describes a command.",
    )
    parser.add_argument("--version", action="version",
                        version=f"cogment-gym {__version__} (Cogment API {COGMENT_API_VERSION}, Python {platform.python_version()})")
    _add_logging_options(parser, default=0)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    for subparser in commands.choices.values():
        # Also after the command (`cogment-gym run ... -v`); SUPPRESS keeps what came before it.
        _add_logging_options(subparser, default=argparse.SUPPRESS)
    return parser


def _add_logging_options(parser: argparse.ArgumentParser, default: Any) -> None:
    group = parser.add_argument_group("logging (to stderr)").add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=default,
                       help="log what happens: -v progress (INFO), -vv everything (DEBUG)")
    group.add_argument("-q", "--quiet", action="count", default=default,
                       help="log errors only (default: warnings and errors)")


def _configure_logging(verbose: int, quiet: int) -> None:
    """Default: Python's own (warnings and errors, as bare lines); -v/-vv/-q: a handler on the root
    logger at INFO/DEBUG/ERROR, lines stamped with time, level and logger."""
    if not verbose and not quiet:
        return
    level = logging.ERROR if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
