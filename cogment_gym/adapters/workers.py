"""Environment services in worker processes: ``serve(env, workers=K)`` runs K of them, one endpoint each.

One environment service is one Python process, so it uses at most one core for its envs, codec
and gRPC. :class:`EnvWorkers` starts K child processes (``python -c``, a fresh interpreter with
this process's ``sys.path``), each an :class:`~cogment_gym.adapters.server.EnvServer` of the same
environments on its own endpoint; clients spread their trials over ``endpoints``, e.g.
``CogmentVectorEnv(environment=workers.endpoints, num_envs=16)`` (sub-env ``i`` uses
``endpoints[i % K]``).

How it works (POSIX):

- Addresses: ``port=0``: every worker lets the OS choose; ``port=P``: worker ``i`` binds ``P + i``;
  ``unix_socket="/run/env.sock"``: worker ``i`` binds ``/run/env-<i>.sock``.
- Each worker gets one end of a socket pair (a ``multiprocessing.connection.Connection`` on
  both sides; stdin, stdout and stderr stay free for the env). The parent sends the pickled
  env source; the worker answers ``("ready", endpoint, implementations, local_endpoint)`` once it serves, or
  ``("failed", type, message, traceback)``; the parent waits for every worker with one deadline
  (``start_timeout``).
- A worker serves until it reads ``("stop", grace)`` or end-of-file on its connection, or sees
  that its parent process changed (checked every second): a worker never outlives this
  process, even when this process is killed. Workers ignore SIGINT (a Ctrl-C in a terminal
  reaches the whole process group); the parent stops them.
- :meth:`EnvWorkers.stop`: ``stop`` to every worker, then SIGTERM, then SIGKILL, each after a
  deadline, only to this object's own children, by PID.

The env source travels by pickle: a Gymnasium id, a PettingZoo module path, a factory (function
or class) defined in an importable module, or a mapping of those. Gymnasium ids registered in
this process (``gym.register``) are registered in the workers too. A script is never re-run in
the workers, so a factory defined in the script itself (``__main__``) is refused with
:class:`~cogment_gym.errors.EnvSourceNotPicklableError`: move it to a module, or register it as a Gymnasium id.
"""

from __future__ import annotations

import io
import logging
import multiprocessing.connection
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import gymnasium as gym

from cogment_gym.adapters.service import check_step_timeout
from cogment_gym.adapters.sockets import remove_socket_directory
from cogment_gym.errors import EnvSourceNotPicklableError, WorkerStartError
from cogment_gym.protocol.security import NO_SECURITY, Security

if TYPE_CHECKING:
    from cogment_gym.adapters.hosting import EnvSource

__all__ = ["EnvWorkers", "worker_addresses"]

logger = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT = 60.0
# After ``stop`` was sent and the grace period is over: how long a worker gets to exit, then
# how long after SIGTERM, then after SIGKILL.
STOP_DEADLINE = 10.0
TERMINATE_DEADLINE = 5.0
KILL_DEADLINE = 5.0
# How often a serving worker checks that its parent process is still the same.
PARENT_CHECK_INTERVAL = 1.0


@dataclass
class WorkerSpec:
    """What every worker serves (pickled once in the parent)."""

    env: Any
    env_kwargs: dict[str, Any] | None
    api: str | None
    max_agents: int | None
    servicer_options: dict[str, Any]
    gym_specs: list[Any] = field(default_factory=list)  # EnvSpecs of the ids registered in the parent
    local_socket: bool = True
    security: Security = NO_SECURITY
    env_threads: bool = True


class _Worker:
    """The parent's handle on one worker process."""

    def __init__(self, index: int, process: subprocess.Popen[bytes], conn: Connection, address: str) -> None:
        self.index = index
        self.process = process
        self.conn = conn
        self.address = address
        self.pid = process.pid
        self.endpoint = ""
        self.local_endpoint = ""  # its same-host unix socket, "" when none
        self.implementations: list[str] = []


def worker_addresses(workers: int, *, host: str = "127.0.0.1", port: int = 0, unix_socket: str | None = None) -> list[str]:
    """The address each worker binds (``host:port`` or ``unix:/path``), per the rule above.

    Example:
        >>> worker_addresses(2, port=9001)
        ['127.0.0.1:9001', '127.0.0.1:9002']
        >>> worker_addresses(2, unix_socket="/tmp/env.sock")
        ['unix:/tmp/env-0.sock', 'unix:/tmp/env-1.sock']
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if unix_socket is not None:
        path = Path(os.path.abspath(unix_socket))
        return [f"unix:{path.with_name(f'{path.stem}-{i}{path.suffix}')}" for i in range(workers)]
    if port and port + workers - 1 > 65535:
        raise ValueError(f"worker i binds port + i: ports {port}..{port + workers - 1} do not all fit below 65536")
    return [f"{host}:{port + i if port else 0}" for i in range(workers)]


def _source_names(env: Any) -> list[str]:
    if isinstance(env, Mapping):
        return [str(name) for name in env]
    if isinstance(env, str):
        return [env]
    return [getattr(env, "__name__", type(env).__name__)]


def _registered_gym_specs(env: Any) -> list[Any]:
    """The registry entries of the Gymnasium ids in ``env`` that pickle (sent to the workers)."""
    ids = [s for s in (env.values() if isinstance(env, Mapping) else [env]) if isinstance(s, str)]
    specs = []
    for env_id in ids:
        spec = gym.registry.get(env_id)
        if spec is None:
            continue
        try:
            _pickle(spec)
        except Exception as err:  # e.g. a lambda entry point: the worker must register it itself
            logger.debug("registry entry %r not sent to the workers: %s", env_id, err)
            continue
        specs.append(spec)
    return specs


class _MainReferenceError(pickle.PicklingError):
    pass


class _Pickler(pickle.Pickler):
    """Refuses what only this process's ``__main__`` defines (a worker does not run the script)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type) or callable(obj):
            if getattr(obj, "__module__", None) == "__main__":
                raise _MainReferenceError(
                    f"{getattr(obj, '__qualname__', obj)!r} is defined in __main__ (the script or session being run), "
                    "which worker processes do not run"
                )
        return NotImplemented


def _pickle(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def _pickle_spec(spec: WorkerSpec) -> bytes:
    try:
        return _pickle(spec)
    except Exception as err:
        raise EnvSourceNotPicklableError(
            "serve(..., workers=K) sends the env source, env_kwargs, servicer options and security settings to worker processes by "
            "pickle: expected a Gymnasium id, a PettingZoo module path, a factory (function or class) defined in "
            f"an importable module, or a mapping of those; got {spec.env!r}, which does not pickle "
            f"({type(err).__name__}: {err})"
        ) from err


# What a worker process runs (cogment_gym/adapters/worker.py) (stdlib only until sys.path is this process's, so that the same
# modules import): argv: connection fd, worker index, address, parent pid.
_BOOTSTRAP = """\
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
from multiprocessing.connection import Connection
conn = Connection(int(sys.argv[1]))
try:
    sys.path[:] = conn.recv() if conn.poll(60) else sys.exit(1)
except (EOFError, OSError):
    sys.exit(1)
from cogment_gym.adapters.worker import worker_entry
worker_entry(conn, sys.argv[2:])
"""


class EnvWorkers:
    """K environment services in K worker processes, one endpoint each. Use as a context manager,
    or call :meth:`stop`.

    ``cogment_gym.serve(env, workers=K)`` with K > 1 returns one; build one directly for K = 1 to
    get a single service in another process. Every argument is as for :func:`cogment_gym.serve`.

    Args:
        env: what to serve; it must pickle (see the module docstring).
        workers: how many processes (K >= 1).
        host, port, unix_socket: addresses, per :func:`worker_addresses`: ``port=0`` lets the OS
            choose each port; ``port=P`` binds ``P + i`` for worker ``i``; a unix socket
            ``/d/x.sock`` becomes ``/d/x-<i>.sock``.
        start_timeout: seconds to wait for every worker to report its endpoint.
        env_kwargs, api, max_agents, local_socket, security, env_threads, servicer_options (``step_timeout``
            among them): passed to every worker's server (``security`` pickled: PEM paths, token, a
            module-level ``authorize``).

    Attributes:
        endpoints: the K endpoints, in worker order.
        endpoint: ``endpoints[0]`` (what code written for one :class:`EnvServer` reads); pass
            ``endpoints`` to clients to use every worker.
        pids: the K process ids, in worker order.
        implementations: the implementation names every worker serves.

    Raises:
        WorkerStartError: a worker failed, died or did not answer within ``start_timeout``
            (every worker is stopped first).
        EnvSourceNotPicklableError: ``env`` (or ``env_kwargs``, ``servicer_options``) does not pickle.

    Example:
        >>> from cogment_gym.envs import CogmentVectorEnv
        >>> with EnvWorkers("CartPole-v1", workers=2) as workers:   # doctest: +SKIP
        ...     envs = CogmentVectorEnv(environment=workers.endpoints, num_envs=8)
        ...     obs, infos = envs.reset(seed=0)
        ...     envs.close()
    """

    def __init__(
        self,
        env: EnvSource | Mapping[str, EnvSource],
        *,
        workers: int,
        host: str = "127.0.0.1",
        port: int = 0,
        unix_socket: str | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        api: str | None = None,
        max_agents: int | None = None,
        local_socket: bool = True,
        security: Security | None = None,
        env_threads: bool = True,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        **servicer_options: Any,
    ) -> None:
        addresses = worker_addresses(workers, host=host, port=port, unix_socket=unix_socket)
        if security is not None:
            security.check_files()  # one clear error here rather than one per worker
        check_step_timeout(servicer_options.get("step_timeout"), env_threads=env_threads)
        spec = WorkerSpec(
            env=env,
            env_kwargs=dict(env_kwargs) if env_kwargs is not None else None,
            api=api,
            max_agents=max_agents,
            servicer_options=dict(servicer_options),
            gym_specs=_registered_gym_specs(env),
            local_socket=local_socket,
            security=security or NO_SECURITY,
            env_threads=env_threads,
        )
        payload = _pickle_spec(spec)
        self._names = _source_names(env)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._workers: list[_Worker] = []
        try:
            for index, address in enumerate(addresses):
                self._workers.append(self._start_worker(index, address))
            for worker in self._workers:
                self._send_spec(worker, payload)
            self._wait_ready(start_timeout)
        except BaseException:
            self._shutdown(grace=0.0)
            raise
        self.implementations: list[str] = self._workers[0].implementations
        logger.info("serving %s in %d worker processes at %s", self.implementations, workers, self.endpoints)

    # ------------------------------------------------------------------ start

    @staticmethod
    def _start_worker(index: int, address: str) -> _Worker:
        parent_end, child_end = socket.socketpair()
        try:
            command = [sys.executable, "-c", _BOOTSTRAP, str(child_end.fileno()), str(index), address, str(os.getpid())]
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, pass_fds=[child_end.fileno()])
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()  # the worker holds its own copy now
        return _Worker(index, process, Connection(parent_end.detach()), address)

    def _send_spec(self, worker: _Worker, payload: bytes) -> None:
        try:
            worker.conn.send(list(sys.path))
            worker.conn.send_bytes(payload)
        except OSError as err:
            self._reap(worker)
            raise self._start_error(worker, f"closed its connection before reading the env source ({err})") from None

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = {worker.index: worker for worker in self._workers}
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                worker = next(iter(pending.values()))
                raise self._start_error(
                    worker, f"did not report its endpoint within {timeout:g} s (expected a 'ready' message, got nothing)"
                )
            # A worker that dies closes its end of the connection: its connection becomes readable.
            by_conn: dict[object, _Worker] = {worker.conn: worker for worker in pending.values()}
            for conn in multiprocessing.connection.wait([worker.conn for worker in pending.values()], timeout=remaining):
                worker = by_conn[conn]
                self._read_ready(worker)
                del pending[worker.index]

    def _read_ready(self, worker: _Worker) -> None:
        """Read the worker's first message (it is there, or the worker died): ready, or raise."""
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            message = None
        if message is None:
            self._reap(worker)
            raise self._start_error(worker, "exited before reporting its endpoint (expected a 'ready' message); "
                                    "its stderr, shared with this process, may say why")
        if message[0] == "ready":
            worker.endpoint, worker.implementations, worker.local_endpoint = message[1], list(message[2]), message[3]
            return
        if message[0] == "failed":
            _, remote_type, text, remote_traceback = message
            self._reap(worker)
            raise self._start_error(worker, f"failed to start: {remote_type}: {text}",
                                    remote_type=remote_type, remote_traceback=remote_traceback)
        raise self._start_error(worker, f"sent {message!r} (expected a 'ready' or 'failed' message)")

    @staticmethod
    def _reap(worker: _Worker) -> None:
        """Wait a little for a worker that is ending, so that its exit code is known."""
        try:
            worker.process.wait(KILL_DEADLINE)
        except subprocess.TimeoutExpired:
            pass

    def _start_error(self, worker: _Worker, what: str, *, remote_type: str = "", remote_traceback: str = "") -> WorkerStartError:
        exitcode = worker.process.poll()
        status = "still running" if exitcode is None else f"exit code {_exit_status(exitcode)}"
        message = (f"env worker {worker.index} of {len(self._workers)} (pid {worker.pid}, serving {self._names} at "
                   f"{worker.address}) {what} ({status})")
        return WorkerStartError(message, worker=worker.index, pid=worker.pid, exitcode=exitcode,
                                remote_type=remote_type, remote_traceback=remote_traceback)

    # ------------------------------------------------------------------ public

    @property
    def endpoints(self) -> list[str]:
        return [worker.endpoint for worker in self._workers]

    @property
    def endpoint(self) -> str:
        return self._workers[0].endpoint

    @property
    def pids(self) -> list[int]:
        return [worker.pid for worker in self._workers]

    @property
    def workers(self) -> int:
        """How many worker processes were started."""
        return len(self._workers)

    def exited(self) -> dict[int, int]:
        """Workers that ended although :meth:`stop` was not called: index -> exit code (negative:
        killed by that signal). Empty while every worker runs, and after :meth:`stop`."""
        if self._stopped.is_set():
            return {}
        codes = {worker.index: worker.process.poll() for worker in self._workers}
        return {index: code for index, code in codes.items() if code is not None}

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop every worker: running trials get ``grace`` seconds; a worker still running
        ``STOP_DEADLINE`` s later is sent SIGTERM, then SIGKILL. Idempotent."""
        self._shutdown(grace)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` is called (from another thread); False on timeout."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> EnvWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped.is_set() else "running"
        return f"EnvWorkers({self._names}, workers={len(self._workers)}, endpoints={self.endpoints!r}, pids={self.pids}, {state})"

    # ------------------------------------------------------------------ stop

    def _shutdown(self, grace: float | None) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        for worker in self._workers:
            if not worker.endpoint:  # still starting (or failed): no trial to finish, no need to wait
                _signal(worker, "SIGTERM")
                continue
            try:
                worker.conn.send(("stop", grace))
            except (OSError, ValueError):  # the worker is gone already
                pass
        self._wait_exit((grace or 0.0) + STOP_DEADLINE)
        for signal_name, deadline in (("SIGTERM", TERMINATE_DEADLINE), ("SIGKILL", KILL_DEADLINE)):
            alive = [worker for worker in self._workers if worker.process.poll() is None]
            if not alive:
                break
            for worker in alive:
                logger.warning("env worker %d (pid %d) still running: sending %s", worker.index, worker.pid, signal_name)
                _signal(worker, signal_name)
            self._wait_exit(deadline)
        for worker in self._workers:
            worker.conn.close()
            if worker.process.poll() is None:
                logger.error("env worker %d (pid %d) did not exit after SIGKILL", worker.index, worker.pid)
            else:  # a killed worker could not remove its socket's directory
                remove_socket_directory(worker.local_endpoint)

    def _wait_exit(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass


def _signal(worker: _Worker, signal_name: str) -> None:
    # Popen.terminate/kill signal this child by its PID, and only while it is not reaped.
    if signal_name == "SIGTERM":
        worker.process.terminate()
    else:
        worker.process.kill()


def _exit_status(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"{exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            pass
    return str(exitcode)
