"""``cogment-gym orchestrator``: the pure-Python Orchestrator as a process."""

from __future__ import annotations

import argparse
import os
import threading
from typing import Any

from cogment_gym.cli.common import (
    DEFAULT_ORCHESTRATOR_PORT,
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_security_arguments,
    check_bindable,
    describe,
    endpoint_arg,
    error,
    input_errors,
    port,
    security_from_args,
)

__all__ = ["add_parser", "main"]


def add_parser(commands: Any) -> None:
    orch = commands.add_parser("orchestrator", help="run an Orchestrator (TrialLifecycleSP and ClientActorSP)",
                               description="Run the pure-Python Orchestrator until SIGINT/SIGTERM. Prints "
                               "'orchestrator: lifecycle at <ep>, client actors at <ep>' once ready.")
    orch.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    orch.add_argument("--lifecycle-port", type=port, default=DEFAULT_ORCHESTRATOR_PORT,
                      help="TrialLifecycleSP port, 0 lets the OS choose (default: %(default)s)")
    orch.add_argument("--actor-port", type=port, default=None,
                      help="ClientActorSP port (default: the lifecycle port, one server for both)")
    orch.add_argument("--params", metavar="FILE", help="default trial parameters (a Cogment params YAML file, e.g. "
                      "examples/params.yaml); its max_steps also applies to trials that ask for none (`run` without --max-steps)")
    orch.add_argument("--pre-trial-hooks", nargs="+", default=[], metavar="ENDPOINT",
                      help="grpc:// endpoints of TrialHooksSP services, called in order")
    orch.add_argument("--allow-endpoint", dest="allowed_endpoints", action="append", default=None, metavar="PATTERN",
                      help="an endpoint trials started over gRPC may name (repeat the option for more): exact "
                      "(grpc://10.0.0.5:9001), a pattern (grpc://10.0.0.*:*, unix:///run/cogment/*) or a host "
                      "pattern (*.internal); default: any grpc:// or unix: endpoint. Those of --params always pass")
    add_security_arguments(orch, serves=True, dials=True)
    orch.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    from cogment_gym.orchestrator.admission import EndpointPolicy

    security = security_from_args(args)
    try:
        EndpointPolicy(allowed=tuple(args.allowed_endpoints) if args.allowed_endpoints is not None else None)
    except ValueError as err:
        raise UsageError(f"--allow-endpoint: {err}") from None
    check_bindable(args.host, args.lifecycle_port)
    if args.actor_port is not None and args.actor_port != args.lifecycle_port:
        check_bindable(args.host, args.actor_port)
    if args.params is not None and not os.path.isfile(args.params):
        raise UsageError(f"params file {args.params!r} does not exist")
    for hook in args.pre_trial_hooks:  # not probed: a hook may start after the Orchestrator
        try:
            endpoint_arg("pre-trial hook", hook)
        except UsageError as err:
            raise UsageError(f"cannot start the orchestrator: {err}") from None
    from cogment_gym.orchestrator.server import run_orchestrator

    ready = threading.Event()

    def on_ready(lifecycle_endpoint: str, actor_endpoint: str) -> None:
        print(f"orchestrator: lifecycle at {lifecycle_endpoint}, client actors at {actor_endpoint}", flush=True)
        ready.set()

    try:
        run_orchestrator(  # blocks until SIGINT/SIGTERM
            host=args.host,
            lifecycle_port=args.lifecycle_port,
            actor_port=args.actor_port,
            params_file=args.params,
            pre_trial_hooks=list(args.pre_trial_hooks),
            on_ready=on_ready,
            security=security,
            allowed_endpoints=args.allowed_endpoints,
        )
    except input_errors() as err:
        if ready.is_set():
            error(f"orchestrator failed: {describe(err)}")
            return EXIT_FAILED
        raise UsageError(f"cannot start the orchestrator: {describe(err)}") from None
    return EXIT_OK
