"""``cogment-gym``: serve environments, run an Orchestrator, run a demo.

    cogment-gym serve CartPole-v1 --port 9001
    cogment-gym serve CartPole-v1 --port 9001 --workers 4     # 4 processes, ports 9001..9004
    cogment-gym orchestrator --lifecycle-port 9000
    cogment-gym run CartPole-v1 --episodes 20
    cogment-gym run CartPole-v1 --environment grpc://127.0.0.1:9001 --orchestrator grpc://127.0.0.1:9000

This is the only module that writes to stdout. Bad input (an unknown env id, a bad endpoint, a port
in use) ends with one line on stderr and exit code 2; a failure while running with exit code 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Sequence, TextIO

import gymnasium as gym

__all__ = ["main"]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Cogment's conventional ports: Orchestrator 9000 (lifecycle and client actors), environment 9001.
DEFAULT_ORCHESTRATOR_PORT = 9000
DEFAULT_ENV_PORT = 9001


class UsageError(Exception):
    """Bad input found by the CLI itself: reported in one line, exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cogment-gym`` command line; returns the process exit code."""
    parser = _parser()
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
        _error(str(err))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


# ---------------------------------------------------------------------------------------- parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cogment-gym",
        description="Gymnasium environments as Cogment 2.x services, and Cogment trials as Gymnasium environments.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="serve Gymnasium environments as a Cogment environment service",
                                description="Serve Gymnasium environments (cogmentAPI.EnvironmentSP) until SIGINT/SIGTERM. "
                                "Prints 'serving <ids> at <endpoint>' once ready (one line per worker with --workers).")
    serve.add_argument("env_ids", nargs="+", metavar="ENV_ID", help="Gymnasium id(s); each is an implementation name")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=_port, default=DEFAULT_ENV_PORT, help="TCP port, 0 lets the OS choose (default: %(default)s)")
    serve.add_argument("--unix-socket", metavar="PATH", help="bind this unix socket instead of TCP")
    serve.add_argument("--no-local-socket", dest="local_socket", action="store_false",
                       help="TCP only: do not also offer same-host clients a unix socket (see serve(local_socket=))")
    serve.add_argument("--workers", type=_positive_int, default=1, metavar="K",
                       help="serve in K processes, one endpoint each: worker i binds port+i (port 0: any free "
                       "port), or <socket stem>-<i><suffix> (default: %(default)s, this process)")
    serve.add_argument("--kwargs", type=_json_object, default=None, metavar="JSON",
                       help="keyword arguments for gym.make, as a JSON object, e.g. '{\"max_episode_steps\": 200}'")
    serve.set_defaults(command=_serve)

    orch = commands.add_parser("orchestrator", help="run an Orchestrator (TrialLifecycleSP and ClientActorSP)",
                               description="Run the pure-Python Orchestrator until SIGINT/SIGTERM. Prints "
                               "'orchestrator: lifecycle at <ep>, client actors at <ep>' once ready.")
    orch.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    orch.add_argument("--lifecycle-port", type=_port, default=DEFAULT_ORCHESTRATOR_PORT,
                      help="TrialLifecycleSP port, 0 lets the OS choose (default: %(default)s)")
    orch.add_argument("--actor-port", type=_port, default=None,
                      help="ClientActorSP port (default: the lifecycle port, one server for both)")
    orch.add_argument("--params", metavar="FILE", help="default trial parameters (Cogment params YAML)")
    orch.add_argument("--pre-trial-hooks", nargs="+", default=[], metavar="ENDPOINT",
                      help="grpc:// endpoints of TrialHooksSP services, called in order")
    orch.set_defaults(command=_orchestrator)

    run = commands.add_parser("run", help="run episodes of a random policy through CogmentEnv and report throughput",
                              description="Run episodes with a random policy through CogmentEnv (one episode = one "
                              "Cogment trial). Embedded by default; --environment / --orchestrator use running services.")
    run.add_argument("env_id", metavar="ENV_ID",
                     help="Gymnasium id (with --environment: the implementation served there)")
    run.add_argument("--episodes", type=_positive_int, default=20, help="episodes to run (default: %(default)s)")
    run.add_argument("--seed", type=_non_negative_int, default=None, help="seed of the first reset and of the policy")
    run.add_argument("--environment", metavar="ENDPOINT", help="environment service, e.g. grpc://127.0.0.1:9001")
    run.add_argument("--orchestrator", metavar="ENDPOINT", help="Orchestrator, e.g. grpc://127.0.0.1:9000 (needs --environment)")
    run.add_argument("--max-steps", type=_non_negative_int, default=0, help="Cogment max_steps of each trial: it ends after max_steps+1 actions, as in Cogment (0: no limit)")
    run.set_defaults(command=_run)
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {port}")
    return port


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"key\": 1}}', got {text!r}")
    return value


# ---------------------------------------------------------------------------------------- helpers


def _error(message: str) -> None:
    print(f"cogment-gym: error: {_one_line(message)}", file=sys.stderr, flush=True)


def _one_line(message: str) -> str:
    return " ".join(str(message).split()) or "unknown error"


def _describe(err: BaseException) -> str:
    text = str(err)
    if isinstance(err, KeyError) and err.args:  # str(KeyError) is the quoted key only
        text = str(err.args[0])
    return text or type(err).__name__


def _input_errors() -> tuple[type[BaseException], ...]:
    """What bad input raises while things are set up: reported as a usage error."""
    from cogment_gym.errors import CogmentGymError

    # RuntimeError: grpc reports "Failed to bind to address" with a bare RuntimeError.
    return (CogmentGymError, gym.error.Error, ValueError, TypeError, LookupError, OSError, RuntimeError)


def _check_bindable(host: str, port: int) -> None:
    """Fail early, in one line, when ``host:port`` cannot be bound (grpc would log C-core noise)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise UsageError(f"cannot bind {host}:{port}: {err.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(address)
        except OSError as err:
            raise UsageError(f"cannot bind {host}:{port}: {err.strerror or err}") from None


class _StopSignals:
    """Sets ``event`` on SIGINT/SIGTERM while active (main thread only); restores the old handlers."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.event.is_set():  # asked twice: stop now
            raise KeyboardInterrupt
        self.event.set()

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------- serve


def _serve(args: argparse.Namespace) -> int:
    import cogment_gym

    ids: list[str] = list(dict.fromkeys(args.env_ids))
    if args.unix_socket is None:
        for i in range(args.workers if args.port else 1):
            if args.port + i > 65535:
                raise UsageError(f"--workers {args.workers} --port {args.port}: worker {i} would bind port {args.port + i}, above 65535")
            _check_bindable(args.host, args.port + i)
    elif not os.path.isdir(os.path.dirname(os.path.abspath(args.unix_socket))):
        raise UsageError(f"cannot bind unix socket {args.unix_socket!r}: its directory does not exist")
    source: Any = ids[0] if len(ids) == 1 else {env_id: env_id for env_id in ids}
    if args.workers > 1:
        return _serve_workers(args, ids, source)
    try:
        server = cogment_gym.serve(source, host=args.host, port=args.port, unix_socket=args.unix_socket, env_kwargs=args.kwargs,
                                   local_socket=args.local_socket)
    except _input_errors() as err:
        raise UsageError(f"cannot serve {', '.join(ids)}: {_describe(err)}") from None
    try:
        with _StopSignals() as stop:
            print(f"serving {', '.join(ids)} at {server.endpoint}", flush=True)
            stop.event.wait()
    finally:
        server.stop()
    return EXIT_OK


# How often ``serve --workers`` checks that its workers still run.
_WORKER_CHECK_INTERVAL = 0.5


def _serve_workers(args: argparse.Namespace, ids: list[str], source: Any) -> int:
    from cogment_gym.adapters.workers import EnvWorkers, WorkerStartError

    try:
        workers = EnvWorkers(source, workers=args.workers, host=args.host, port=args.port, unix_socket=args.unix_socket,
                             env_kwargs=args.kwargs, local_socket=args.local_socket)
    except WorkerStartError as err:
        logger.debug("a worker failed to start: %s", err)
        raise UsageError(f"cannot serve {', '.join(ids)}: {err.summary}") from None
    except _input_errors() as err:
        raise UsageError(f"cannot serve {', '.join(ids)}: {_describe(err)}") from None
    try:
        with _StopSignals() as stop:
            for endpoint in workers.endpoints:
                print(f"serving {', '.join(ids)} at {endpoint}", flush=True)
            while not stop.event.wait(_WORKER_CHECK_INTERVAL):
                exited = workers.exited()
                if exited:
                    lost = ", ".join(f"worker {i} (pid {workers.pids[i]}, {workers.endpoints[i]}) exited with code {code}"
                                     for i, code in sorted(exited.items()))
                    _error(f"{lost}; stopping the others")
                    return EXIT_FAILED
    finally:
        workers.stop()
    return EXIT_OK


# ---------------------------------------------------------------------------------------- orchestrator


def _orchestrator(args: argparse.Namespace) -> int:
    from cogment_gym.protocol import parse_endpoint

    _check_bindable(args.host, args.lifecycle_port)
    if args.actor_port is not None and args.actor_port != args.lifecycle_port:
        _check_bindable(args.host, args.actor_port)
    if args.params is not None and not os.path.isfile(args.params):
        raise UsageError(f"params file {args.params!r} does not exist")
    for hook in args.pre_trial_hooks:
        try:
            parse_endpoint(hook)
        except ValueError as err:
            raise UsageError(str(err)) from None
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
        )
    except _input_errors() as err:
        if ready.is_set():
            _error(f"orchestrator failed: {_describe(err)}")
            return EXIT_FAILED
        raise UsageError(f"cannot start the orchestrator: {_describe(err)}") from None
    return EXIT_OK


# ---------------------------------------------------------------------------------------- run


def _run(args: argparse.Namespace) -> int:
    from cogment_gym import CogmentEnv

    if args.orchestrator is not None and args.environment is None:
        raise UsageError("--orchestrator needs --environment: a remote orchestrator cannot reach an environment in this process")
    started = time.perf_counter()
    try:
        if args.environment is not None:
            where = f"environment {args.environment}" + (f", orchestrator {args.orchestrator}" if args.orchestrator else "")
            env = CogmentEnv(environment=args.environment, implementation=args.env_id, orchestrator=args.orchestrator,
                             max_steps=args.max_steps)
        else:
            where = "embedded"
            env = CogmentEnv(args.env_id, max_steps=args.max_steps)
    except _input_errors() as err:
        raise UsageError(f"cannot run {args.env_id}: {_describe(err)}") from None
    setup = time.perf_counter() - started
    try:
        with _StopSignals() as stop:
            returns, steps, elapsed = _random_episodes(env, args.episodes, args.seed, _Progress(args.episodes, sys.stderr), stop.event)
    except Exception as err:  # a trial failed: report it in one line, details in the log
        logger.debug("run failed", exc_info=True)
        _error(f"{args.env_id}: {type(err).__name__}: {_describe(err)}")
        return EXIT_FAILED
    finally:
        env.close()
    _summary(sys.stdout, args.env_id, where, returns, steps, elapsed, setup)
    return EXIT_INTERRUPTED if len(returns) < args.episodes else EXIT_OK


def _random_episodes(env: gym.Env[Any, Any], episodes: int, seed: int | None, progress: _Progress,
                     stop: threading.Event) -> tuple[list[float], int, float]:
    """Run ``episodes`` episodes with uniformly random actions; returns (returns, steps, seconds)."""
    env.action_space.seed(seed)
    returns: list[float] = []
    steps = 0
    started = time.perf_counter()
    for episode in range(episodes):
        if stop.is_set():
            break
        env.reset(seed=seed if episode == 0 else None)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        progress.update(len(returns), steps, time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    progress.close()
    return returns, steps, elapsed


class _Progress:
    """A plain-text progress bar on a TTY (redrawn in place), a periodic line otherwise."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO, *, interval: float | None = None) -> None:
        self.total = total
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self._last = time.perf_counter()
        self._drawn = False

    def update(self, done: int, steps: int, elapsed: float) -> None:
        now = time.perf_counter()
        if now - self._last < self.interval and done < self.total:
            return
        if not self.tty and done == self.total:
            return  # the summary follows; no need for a last line
        self._last = now
        rate = steps / elapsed if elapsed > 0 else 0.0
        if self.tty:
            filled = self.WIDTH * done // self.total
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {done}/{self.total} episodes  {steps} steps  {rate:,.0f} steps/s")
            self._drawn = True
        else:
            self.stream.write(f"{done}/{self.total} episodes, {steps} steps, {rate:,.0f} steps/s\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def _summary(out: TextIO, env_id: str, where: str, returns: list[float], steps: int, elapsed: float, setup: float) -> None:
    n = len(returns)
    lines = [f"{env_id} ({where}), random policy: {n} episodes, {steps} steps in {elapsed:.2f} s (setup {setup:.2f} s)"]
    if n:
        mean = math.fsum(returns) / n
        lines.append(f"return: mean {mean:.2f}  min {min(returns):.2f}  max {max(returns):.2f}")
    per_second = 1 / elapsed if elapsed > 0 else float("nan")
    lines.append(f"throughput: {steps * per_second:,.1f} steps/s  {n * per_second:,.2f} episodes/s")
    out.write("\n".join(lines) + "\n")
    out.flush()


if __name__ == "__main__":
    sys.exit(main())
