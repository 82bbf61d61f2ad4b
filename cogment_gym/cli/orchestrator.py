"""``cogment-gym orchestrator``: the pure-Python Orchestrator as a process, a drop-in for
``cogment services orchestrator`` (also reachable as ``cogment-gym services orchestrator``).

It takes the Cogment CLI's flags as Cogment spells them (``--lifecycle_port``, ``--actor_port``,
``--params``, ``--pre_trial_hooks``, ``--status_file``, ``--directory_endpoint``, ...) and the
``COGMENT_*`` environment variables behind them (a flag wins over its variable), besides our own
dashed spellings (``--lifecycle-port``...). Differences: it binds 127.0.0.1 unless ``--host``
says otherwise; the actor port defaults to the lifecycle port (one server); ``--gc_frequency``
is accepted and has no effect (ended trials are forgotten by count); ``--prometheus_port`` and
``--actor_web_port`` are accepted only as 0 (disabled). The TLS flags (``--private_key``,
``--root_cert``, ``--trust_chain``, and ``COGMENT_PRIVATE_KEY_FILE``, ``COGMENT_ROOT_CERT_FILE``,
``COGMENT_TRUST_CHAIN_FILE``) are those of ``cli/common.py``'s security options.

The status file gets what Cogment's tooling waits for, one character each: ``I`` (initializing),
``R`` (ready: both ports serve), ``T`` (terminated), appended; a FIFO works too (it is written
from a thread of its own, so that a reader that never opens it cannot block the Orchestrator).
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import sys
import threading
from typing import Any, Mapping, Sequence

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

__all__ = ["StatusFile", "add_arguments", "add_parser", "main"]

logger = logging.getLogger(__name__)

# Seconds the last status character may take to reach the file (a FIFO nobody reads).
STATUS_WRITE_TIMEOUT = 5.0
# Cogment's log levels -> Python's ("off": nothing).
LOG_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "error": logging.ERROR, "off": logging.CRITICAL + 10}


def _env(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def _flag(text: str) -> bool:
    """Cogment's booleans: true/false, 1/0, yes/no."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r} (true or false)")


def _properties(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` (Cogment's string-to-string flags)."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected key=value pairs separated by commas, got {item!r}")
        out[key] = value
    return out


class _Endpoints(argparse.Action):
    """A list flag written either way: ``--pre-trial-hooks a b`` or ``--pre_trial_hooks=a,b``
    (repeatable, as Cogment's string slices)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest, None)
        items = [] if current is self.default else list(current or [])  # given values replace the environment's
        for value in values if isinstance(values, list) else [values]:
            items.extend(part.strip() for part in str(value).split(",") if part.strip())
        setattr(namespace, self.dest, items)


def add_parser(commands: Any) -> None:
    orch = commands.add_parser("orchestrator", help="run an Orchestrator (TrialLifecycleSP and ClientActorSP)",
                               description="Run the pure-Python Orchestrator until SIGINT/SIGTERM. Prints "
                               "'orchestrator: lifecycle at <ep>, client actors at <ep>' once ready. Takes the "
                               "flags and COGMENT_* variables of 'cogment services orchestrator' too.")
    add_arguments(orch)


def add_arguments(orch: argparse.ArgumentParser, environ: Mapping[str, str] | None = None) -> None:
    """The options of the command (defaults from ``environ``, the process environment by default)."""
    env = os.environ if environ is None else environ
    orch.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    # String defaults (from the environment) go through each option's type, as given values do.
    orch.add_argument("--lifecycle-port", "--lifecycle_port", dest="lifecycle_port", type=port,
                      default=_env(env, "COGMENT_LIFECYCLE_PORT", "TRIAL_LIFECYCLE_PORT") or DEFAULT_ORCHESTRATOR_PORT,
                      help="TrialLifecycleSP port, 0 lets the OS choose (default: %(default)s; COGMENT_LIFECYCLE_PORT)")
    orch.add_argument("--actor-port", "--actor_port", dest="actor_port", type=port,
                      default=_env(env, "COGMENT_ACTOR_PORT", "TRIAL_ACTOR_PORT"),
                      help="ClientActorSP port (default: the lifecycle port, one server for both; COGMENT_ACTOR_PORT)")
    orch.add_argument("--params", metavar="FILE", default=_env(env, "COGMENT_DEFAULT_PARAMS_FILE"),
                      help="default trial parameters (a Cogment params YAML file, e.g. examples/params.yaml; COGMENT_DEFAULT_PARAMS_FILE); "
                      "its max_steps also applies to trials that ask for none (`run` without --max-steps)")
    hooks = _env(env, "COGMENT_PRE_TRIAL_HOOKS")
    orch.add_argument("--pre-trial-hooks", "--pre_trial_hooks", dest="pre_trial_hooks", nargs="+", action=_Endpoints,
                      default=[h.strip() for h in hooks.split(",") if h.strip()] if hooks else [], metavar="ENDPOINT",
                      help="endpoints of TrialHooksSP services, called in order (grpc://, or cogment://discover with a "
                      "directory; COGMENT_PRE_TRIAL_HOOKS, comma-separated)")
    orch.add_argument("--allow-endpoint", dest="allowed_endpoints", action="append", default=None, metavar="PATTERN",
                      help="an endpoint trials started over gRPC may name (repeat the option for more): exact "
                      "(grpc://10.0.0.5:9001), a pattern (grpc://10.0.0.*:*, unix:///run/cogment/*) or a host "
                      "pattern (*.internal); default: any grpc:// or unix: endpoint. Those of --params always pass")
    add_security_arguments(orch, serves=True, dials=True)
    # Cogment's variables for the TLS files (flags win, as for every option here).
    orch.set_defaults(**{dest: env[name] for dest, name in (("private_key", "COGMENT_PRIVATE_KEY_FILE"), ("root_cert", "COGMENT_ROOT_CERT_FILE"),
                                                            ("cert_chain", "COGMENT_TRUST_CHAIN_FILE")) if env.get(name)})
    orch.add_argument("--status_file", "--status-file", dest="status_file", metavar="FILE", default=_env(env, "COGMENT_STATUS_FILE"),
                      help="file (or FIFO) to append I, R and T to: initializing, ready, terminated (COGMENT_STATUS_FILE)")
    directory = orch.add_argument_group("Cogment Directory")
    directory.add_argument("--directory_endpoint", "--directory-endpoint", dest="directory_endpoint", metavar="ENDPOINT",
                           default=_env(env, "COGMENT_DIRECTORY_ENDPOINT"),
                           help="grpc:// endpoint of a Directory: cogment://discover endpoints are resolved there and the "
                           "Orchestrator registers there (COGMENT_DIRECTORY_ENDPOINT)")
    directory.add_argument("--directory_authentication_token", dest="directory_token", metavar="TOKEN",
                           default=_env(env, "COGMENT_DIRECTORY_AUTHENTICATION_TOKEN") or "",
                           help="its authentication token (COGMENT_DIRECTORY_AUTHENTICATION_TOKEN)")
    directory.add_argument("--directory_registration_host", dest="registration_host", metavar="HOST",
                           default=_env(env, "COGMENT_ORCHESTRATOR_DIRECTORY_REGISTRATION_HOST") or "",
                           help="host registered (default: the one bound, 127.0.0.1 for all interfaces)")
    directory.add_argument("--directory_registration_properties", dest="registration_properties", type=_properties,
                           default=_env(env, "COGMENT_ORCHESTRATOR_DIRECTORY_REGISTRATION_PROPERTIES") or {}, metavar="K=V,...",
                           help="properties registered with the Orchestrator's services")
    directory.add_argument("--directory_auto_register", dest="auto_register", type=_flag, nargs="?", const=True,
                           default=_env(env, "COGMENT_ORCHESTRATOR_DIRECTORY_AUTO_REGISTER") or True, metavar="BOOL",
                           help="register in the directory (default: true)")
    compat = orch.add_argument_group("accepted for compatibility with cogment services orchestrator")
    compat.add_argument("--gc_frequency", type=int, default=_env(env, "COGMENT_GC_FREQUENCY"), help="no effect: ended trials are forgotten by count")
    compat.add_argument("--prometheus_port", type=port, default=_env(env, "COGMENT_ORCHESTRATOR_PROMETHEUS_PORT", "PROMETHEUS_PORT") or 0,
                        help="0 only (no metrics are served)")
    compat.add_argument("--actor_web_port", "--actor_http_port", dest="actor_web_port", type=port,
                        default=_env(env, "COGMENT_WEB_PROXY_PORT") or 0, help="0 only (no gRPC-Web proxy)")
    compat.add_argument("--log_level", choices=sorted(LOG_LEVELS), default=(_env(env, "COGMENT_LOG_LEVEL") or "").lower() or None,
                        help="log to stderr (or --log_file) from this level on (COGMENT_LOG_LEVEL)")
    compat.add_argument("--log_file", default=_env(env, "COGMENT_LOG_FILE"), help="log to this file (COGMENT_LOG_FILE)")
    compat.add_argument("--log_format", default="text", choices=["text", "json"], help="text only is written")
    orch.set_defaults(command=main)


class StatusFile:
    """Appends status characters to a file or FIFO from a thread of its own (opening a FIFO
    blocks until a reader opens it). ``close()`` waits at most ``timeout`` seconds for them."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.failure: str | None = None
        self._thread = threading.Thread(target=self._write, name="cogment-gym-status-file", daemon=True)
        self._thread.start()

    def put(self, status: str) -> None:
        self._queue.put(status)

    def _write(self) -> None:
        try:
            with open(self.path, "a", encoding="ascii") as out:
                while (status := self._queue.get()) is not None:
                    out.write(status)
                    out.flush()
        except OSError as err:
            self.failure = f"cannot write the status file {self.path!r}: {err.strerror or err}"
            logger.warning("%s", self.failure)

    def close(self, timeout: float = STATUS_WRITE_TIMEOUT) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("status file %s: nobody read it within %g s", self.path, timeout)


def _configure_logging(args: argparse.Namespace) -> None:
    if args.log_level is None and args.log_file is None:
        return
    level = LOG_LEVELS.get(args.log_level or "info", logging.INFO)
    handler: logging.Handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(level, root.level) if root.handlers[:-1] else level)


def _check(args: argparse.Namespace) -> None:
    from cogment_gym.orchestrator.admission import EndpointPolicy
    from cogment_gym.protocol import parse_endpoint
    from cogment_gym.protocol.directory import is_discovery, parse_discovery

    try:
        EndpointPolicy(allowed=tuple(args.allowed_endpoints) if args.allowed_endpoints is not None else None)
    except ValueError as err:
        raise UsageError(f"--allow-endpoint: {err}") from None
    if args.prometheus_port:
        raise UsageError(f"--prometheus_port {args.prometheus_port}: this Orchestrator serves no Prometheus metrics (give 0)")
    if args.actor_web_port:
        raise UsageError(f"--actor_web_port {args.actor_web_port}: this Orchestrator has no gRPC-Web proxy (give 0)")
    check_bindable(args.host, args.lifecycle_port)
    if args.actor_port is not None and args.actor_port != args.lifecycle_port:
        check_bindable(args.host, args.actor_port)
    if args.params is not None and not os.path.isfile(args.params):
        raise UsageError(f"params file {args.params!r} does not exist")
    for hook in args.pre_trial_hooks:  # not probed: a hook may start after the Orchestrator
        if is_discovery(hook):
            try:
                parse_discovery(hook)
            except ValueError as err:
                raise UsageError(f"cannot start the orchestrator: {err}") from None
            if not args.directory_endpoint:
                raise UsageError(f"pre-trial hook {hook!r} is found through a Cogment Directory: give --directory_endpoint")
            continue
        try:
            endpoint_arg("pre-trial hook", hook)
        except UsageError as err:
            raise UsageError(f"cannot start the orchestrator: {err}") from None
    if args.directory_endpoint:
        try:
            parse_endpoint(args.directory_endpoint)
        except ValueError as err:
            raise UsageError(f"--directory_endpoint: {err}") from None


def main(args: argparse.Namespace) -> int:
    _configure_logging(args)
    status = StatusFile(args.status_file) if args.status_file else None
    try:
        if status is not None:
            status.put("I")
        return _serve(args, status)
    finally:
        if status is not None:
            status.put("T")
            status.close()


def _serve(args: argparse.Namespace, status: StatusFile | None) -> int:
    security = security_from_args(args)
    _check(args)
    from cogment_gym.orchestrator.server import DirectorySettings, run_orchestrator

    directory = None
    if args.directory_endpoint:
        directory = DirectorySettings(args.directory_endpoint, token=args.directory_token, register=args.auto_register,
                                      registration_host=args.registration_host, properties=dict(args.registration_properties))
    ready = threading.Event()

    def on_ready(lifecycle_endpoint: str, actor_endpoint: str) -> None:
        print(f"orchestrator: lifecycle at {lifecycle_endpoint}, client actors at {actor_endpoint}", flush=True)
        if status is not None:
            status.put("R")
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
            directory=directory,
        )
    except input_errors() as err:
        if ready.is_set():
            error(f"orchestrator failed: {describe(err)}")
            return EXIT_FAILED
        raise UsageError(f"cannot start the orchestrator: {describe(err)}") from None
    return EXIT_OK


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace:
    """The options ``argv`` gives with ``environ`` as the environment (for tests)."""
    parser = argparse.ArgumentParser(prog="cogment-gym orchestrator")
    add_arguments(parser, environ)
    return parser.parse_args(argv)
