"""``cogment-gym serve``: Gymnasium environments as a Cogment environment service."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

from cogment_gym.cli import seats
from cogment_gym.cli.common import (
    DEFAULT_ENV_PORT,
    EXIT_FAILED,
    EXIT_OK,
    StopSignals,
    UsageError,
    add_security_arguments,
    check_bindable,
    describe,
    error,
    input_errors,
    json_object,
    port,
    positive_float,
    positive_int,
    security_from_args,
)

if TYPE_CHECKING:
    from cogment_gym.protocol.security import Security

__all__ = ["add_parser", "main"]

logger = logging.getLogger(__name__)


def add_parser(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve Gymnasium environments as a Cogment environment service",
                                description="Serve Gymnasium environments (cogmentAPI.EnvironmentSP) until SIGINT/SIGTERM. "
                                "Prints 'serving <ids> at <endpoint>' once ready (one line per worker with --workers).")
    serve.add_argument("env_ids", nargs="+", metavar="ENV_ID", help="Gymnasium id(s); each is an implementation name")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=port, default=DEFAULT_ENV_PORT, help="TCP port, 0 lets the OS choose (default: %(default)s)")
    serve.add_argument("--unix-socket", metavar="PATH", help="bind this unix socket instead of TCP")
    serve.add_argument("--no-local-socket", dest="local_socket", action="store_false",
                       help="TCP only: do not also offer same-host clients a unix socket (see serve(local_socket=))")
    serve.add_argument("--workers", type=positive_int, default=1, metavar="K",
                       help="serve in K processes, one endpoint each: worker i binds port+i (port 0: any free "
                       "port), or <socket stem>-<i><suffix> (default: %(default)s, this process)")
    serve.add_argument("--step-timeout", type=positive_float, default=None, metavar="SECONDS",
                       help="fail a trial whose env reset/step (render included) takes longer than this; that env "
                       "instance is abandoned, other trials go on (default: no deadline, as Cogment)")
    serve.add_argument("--kwargs", type=json_object, default=None, metavar="JSON",
                       help="keyword arguments for gym.make, as a JSON object, e.g. '{\"max_episode_steps\": 200}'")
    seats.add_serve_arguments(serve)
    add_security_arguments(serve, serves=True, dials=False)
    serve.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    import cogment_gym

    ids: list[str] = list(dict.fromkeys(args.env_ids))
    security = security_from_args(args)
    if args.unix_socket is None:
        for i in range(args.workers if args.port else 1):
            if args.port + i > 65535:
                raise UsageError(f"--workers {args.workers} --port {args.port}: worker {i} would bind port {args.port + i}, above 65535")
            check_bindable(args.host, args.port + i)
    elif not os.path.isdir(os.path.dirname(os.path.abspath(args.unix_socket))):
        raise UsageError(f"cannot bind unix socket {args.unix_socket!r}: its directory does not exist")
    if args.actor is not None:
        check_bindable(args.host, args.actor_port)
    source: Any = ids[0] if len(ids) == 1 else {env_id: env_id for env_id in ids}
    if args.workers > 1:
        return _serve_workers(args, ids, source, security)
    try:
        server = cogment_gym.serve(source, host=args.host, port=args.port, unix_socket=args.unix_socket, env_kwargs=args.kwargs,
                                   local_socket=args.local_socket, security=security, step_timeout=args.step_timeout,
                                   **_multi_agent(args))
    except input_errors() as err:
        raise UsageError(f"cannot serve {', '.join(ids)}: {describe(err)}") from None
    try:
        with StopSignals() as stop:
            print(f"serving {', '.join(ids)} at {server.endpoint}", flush=True)
            with seats.serve_actor_beside(args, server.endpoint, security):
                stop.event.wait()
    finally:
        server.stop()
    return EXIT_OK


def _multi_agent(args: argparse.Namespace) -> dict[str, Any]:
    """serve()'s PettingZoo options the command line gave."""
    return {key: value for key, value in (("api", args.api), ("max_agents", args.max_agents)) if value is not None}


# How often ``serve --workers`` checks that its workers still run.
_WORKER_CHECK_INTERVAL = 0.5


def _serve_workers(args: argparse.Namespace, ids: list[str], source: Any, security: Security | None) -> int:
    from cogment_gym.adapters.workers import EnvWorkers
    from cogment_gym.errors import WorkerStartError

    try:
        workers = EnvWorkers(source, workers=args.workers, host=args.host, port=args.port, unix_socket=args.unix_socket,
                             env_kwargs=args.kwargs, local_socket=args.local_socket, security=security,
                             step_timeout=args.step_timeout, **_multi_agent(args))
    except WorkerStartError as err:
        logger.debug("a worker failed to start: %s", err)
        raise UsageError(f"cannot serve {', '.join(ids)}: {err.summary}") from None
    except input_errors() as err:
        raise UsageError(f"cannot serve {', '.join(ids)}: {describe(err)}") from None
    try:
        with StopSignals() as stop, contextlib.ExitStack() as actor:
            for endpoint in workers.endpoints:
                print(f"serving {', '.join(ids)} at {endpoint}", flush=True)
            actor.enter_context(seats.serve_actor_beside(args, workers.endpoint, security))
            while not stop.event.wait(_WORKER_CHECK_INTERVAL):
                exited = workers.exited()
                if exited:
                    lost = ", ".join(f"worker {i} (pid {workers.pids[i]}, {workers.endpoints[i]}) exited with code {code}"
                                     for i, code in sorted(exited.items()))
                    error(f"{lost}; stopping the others")
                    return EXIT_FAILED
    finally:
        workers.stop()
    return EXIT_OK
