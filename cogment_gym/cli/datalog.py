"""``cogment-gym datalog``: record the trials Orchestrators stream here, and serve them back."""

from __future__ import annotations

import argparse
import os
from typing import Any

from cogment_gym.cli.common import (
    EXIT_OK,
    StopSignals,
    UsageError,
    add_security_arguments,
    check_bindable,
    describe,
    input_errors,
    port,
    security_from_args,
)

__all__ = ["add_parser", "main"]

# Cogment's conventional datastore port.
DEFAULT_DATALOG_PORT = 9003


def add_parser(commands: Any) -> None:
    datalog = commands.add_parser(
        "datalog", help="record trials (cogmentAPI.DatalogSP) into a directory and serve them (TrialDatastoreSP)",
        description="Record every trial an Orchestrator streams here (trial params 'datalog.endpoint') into DIR, one "
        "file per trial, and serve the recorded trials back on the same port (cogmentAPI.TrialDatastoreSP, the "
        "official SDK's get_datastore()). Prints 'datalog: recording into <dir> at <endpoint>' once ready; runs "
        "until SIGINT/SIGTERM.")
    datalog.add_argument("--out", required=True, metavar="DIR", help="directory of the trial files (created if missing)")
    datalog.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    datalog.add_argument("--port", type=port, default=DEFAULT_DATALOG_PORT, help="TCP port, 0 lets the OS choose (default: %(default)s)")
    datalog.add_argument("--unix-socket", metavar="PATH", help="bind this unix socket instead of TCP")
    add_security_arguments(datalog, serves=True, dials=False)
    datalog.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    from cogment_gym.datastore import serve_datalog

    security = security_from_args(args)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out!r} is not a directory")
    if args.unix_socket is None:
        check_bindable(args.host, args.port)
    try:
        server = serve_datalog(args.out, host=args.host, port=args.port, unix_socket=args.unix_socket, security=security)
    except input_errors() as err:
        raise UsageError(f"cannot serve a datalog into {args.out}: {describe(err)}") from None
    try:
        with StopSignals() as stop:
            print(f"datalog: recording into {server.store.directory} at {server.endpoint}", flush=True)
            stop.event.wait()
    finally:
        server.stop()
    return EXIT_OK
