"""What every hosted implementation (Gymnasium or PettingZoo) shares: a pool of env instances,
each on a thread of its own (:mod:`cogment_gym.adapters.env_thread`), how its factory is called,
the metadata its spec carries; and what every trial shares: :class:`PooledTrial`, the pooled
instance it plays on, taken at :meth:`~PooledTrial.open`, given back at :meth:`~PooledTrial.close`,
whose env calls :meth:`~PooledTrial.run` runs on that instance's thread."""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Mapping, TypeVar

from cogment_gym.adapters.env_thread import EnvCalls, EnvThread, InlineCalls, env_thread_name
from cogment_gym.codec import encode_object
from cogment_gym.errors import UnsupportedValueError

__all__ = [
    "CLOSE_TIMEOUT",
    "MAX_KEYED_INSTANCES",
    "EnvPool",
    "Instance",
    "PooledTrial",
    "close_envs",
    "factory_accepts_render_mode",
    "join_threads",
    "metadata_message",
]

T = TypeVar("T")

logger = logging.getLogger(__name__)


def metadata_message(metadata: Mapping[str, Any]) -> Any:
    """The encodable part of an env's metadata dict (others are left out, with a debug log)."""
    kept = {}
    for key, value in metadata.items():
        try:
            encode_object(value, f"metadata[{key!r}]")
        except UnsupportedValueError as err:
            logger.debug("metadata entry left out of the spec: %s", err)
            continue
        kept[key] = value
    return encode_object(kept, "metadata")


# Idle instances kept for their key (EnvConfig.instance_key) at most; beyond, the longest idle
# goes back to the shared pool (a client that vanished does not hold instances forever).
MAX_KEYED_INSTANCES = 1024
# Seconds EnvHost.close() waits, in all, for idle instances to close on their threads.
CLOSE_TIMEOUT = 2.0


class Instance:
    """What a trial plays on: ``count`` env instances of one implementation (one, or the
    sub-environments of a batched trial) and the thread they live on (:mod:`env_thread`)."""

    __slots__ = ("envs", "calls")

    def __init__(self, envs: list[Any], calls: EnvCalls) -> None:
        self.envs = envs
        self.calls = calls

    @property
    def env(self) -> Any:
        return self.envs[0]

    def __repr__(self) -> str:
        return f"Instance({len(self.envs)} env(s) on {self.calls.describe()})"


def close_envs(envs: list[Any], name: str) -> None:
    for env in envs:
        try:
            env.close()
        except Exception:  # closing a broken env must not hide the original failure
            logger.exception("closing an env of %r", name)


class EnvPool:
    """Idle env instances of one implementation, per render mode (every trial starts with a reset).

    Each :class:`Instance` lives on its own :class:`~cogment_gym.adapters.env_thread.EnvThread`
    (``env_threads``, the default), where it is made, used and closed; else every call runs in
    the calling thread. A batched trial's sub-environments are one instance of ``count`` envs
    on one thread, pooled as a group.

    An instance released with a key (``EnvConfig.instance_key``: a client's name for one of its
    environments) is kept for that key: the next trial with the same key gets it back, so an
    unseeded ``reset`` continues its random generator as a local env's would.

    Subclasses set ``name``, ``render_modes`` and ``_make(render_mode)``.
    """

    name: str
    render_modes: list[str]

    def __init__(self, *, env_threads: bool = True) -> None:
        self.env_threads = env_threads
        self._pool: dict[tuple[str | None, int], list[Instance]] = {}
        self._keyed: OrderedDict[tuple[str | None, str, int], Instance] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    def _make(self, render_mode: str | None) -> Any:
        raise NotImplementedError

    def new_calls(self) -> EnvCalls:
        """A thread for a new instance (or the inline stand-in without ``env_threads``)."""
        name = env_thread_name(self.name)
        return EnvThread(name) if self.env_threads else InlineCalls(name)

    def check_render_mode(self, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.render_modes:
            raise ValueError(
                f"implementation {self.name!r} does not support render_mode={render_mode!r}; "
                f"it supports {self.render_modes}"
            )

    def _make_envs(self, render_mode: str | None, count: int, made: list[Any]) -> None:
        """On the new instance's thread: make its envs into ``made`` (partly filled on failure)."""
        for _ in range(count):
            made.append(self._make(render_mode))

    def take(self, render_mode: str | None, key: str = "", count: int = 1) -> Instance | None:
        """An idle instance for one trial (the one kept for ``key``, else any), or None."""
        self.check_render_mode(render_mode)
        with self._lock:
            if key:
                kept = self._keyed.pop((render_mode, key, count), None)
                if kept is not None:
                    return kept
            idle = self._pool.get((render_mode, count))
            if idle:
                return idle.pop()
        return None

    def create(self, render_mode: str | None, count: int = 1) -> Instance:
        """A new instance, made on its new thread; this thread waits (no event loop here)."""
        self.check_render_mode(render_mode)
        calls = self.new_calls()
        made: list[Any] = []
        try:
            calls.run("__init__", self._make_envs, render_mode, count, made)
        except BaseException:
            calls.submit("close", close_envs, made, self.name)
            calls.close()
            raise
        return Instance(made, calls)

    async def acquire(self, render_mode: str | None, key: str = "", count: int = 1) -> Instance:
        """An instance for one trial: an idle one (see :meth:`take`), else a new one, made on its
        new thread while the event loop serves other trials (no deadline: making an env may
        legitimately take long)."""
        instance = self.take(render_mode, key, count)
        if instance is not None:
            return instance
        calls = self.new_calls()
        made: list[Any] = []
        try:
            await calls.call("__init__", self._make_envs, render_mode, count, made)
        except BaseException:  # failed, or the trial was cancelled meanwhile
            # Queued after the construction: it closes whatever was made, once it is made.
            calls.submit("close", close_envs, made, self.name)
            calls.close()
            raise
        return Instance(made, calls)

    def release(self, instance: Instance, render_mode: str | None, key: str = "") -> None:
        """Give an instance back after a trial (kept for ``key`` when given); closed instead if
        the host is closing."""
        count = len(instance.envs)
        with self._lock:
            if not self._closed:
                if not key:
                    self._pool.setdefault((render_mode, count), []).append(instance)
                    return
                displaced = self._keyed.pop((render_mode, key, count), None)
                self._keyed[(render_mode, key, count)] = instance
                if displaced is not None:
                    self._pool.setdefault((render_mode, count), []).append(displaced)
                while len(self._keyed) > MAX_KEYED_INSTANCES:
                    (mode, _, size), oldest = self._keyed.popitem(last=False)
                    self._pool.setdefault((mode, size), []).append(oldest)
                return
        self.discard(instance)

    def give_back(self, instance: Instance, render_mode: str | None, key: str, *, failed: bool) -> None:
        """After a trial: :meth:`release` the instance, or :meth:`discard` it if the trial failed
        or a call outlived it (its thread is busy or abandoned)."""
        if failed or instance.calls.busy or instance.calls.abandoned:
            self.discard(instance)
        else:
            self.release(instance, render_mode, key)

    def discard(self, instance: Instance) -> None:
        """Close an instance that is not reused, on its thread, after any call still running
        there; its thread then exits. Not waited for."""
        calls = instance.calls
        try:
            calls.submit("close", close_envs, instance.envs, self.name)
        except RuntimeError:  # its thread is closed already
            pass
        calls.close()

    def shut(self) -> list[EnvCalls]:
        """Stop pooling; discard every idle instance; their threads (to wait for)."""
        with self._lock:
            self._closed = True
            instances = [i for idle in self._pool.values() for i in idle] + list(self._keyed.values())
            self._pool.clear()
            self._keyed.clear()
        for instance in instances:
            self.discard(instance)
        return [instance.calls for instance in instances]

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close every idle instance, waiting at most ``timeout`` s for them in all (an env whose
        ``close`` hangs is left to its daemon thread, with a warning)."""
        join_threads(self.shut(), timeout)


def join_threads(threads: list[EnvCalls], timeout: float) -> None:
    """Wait for closing env threads with one deadline; warn about those still running."""
    deadline = time.monotonic() + timeout
    for calls in threads:
        if not calls.join(max(0.0, deadline - time.monotonic())):
            logger.warning("env thread %s did not finish within %g s: abandoned (a daemon thread)", calls.describe(), timeout)


def factory_accepts_render_mode(factory: Callable[..., Any]) -> bool:
    """Whether ``factory(render_mode=...)`` is a valid call (True when it cannot be told)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return True
    return "render_mode" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


class PooledTrial:
    """A trial playing on one pooled instance: ``count`` envs of ``impl`` on one thread.

    Subclasses set ``impl``, ``render_mode``, ``instance_key`` (and ``count``) before
    :meth:`open`, and read their env(s) in :meth:`_opened`.
    """

    impl: EnvPool
    render_mode: str | None
    instance_key: str
    count = 1

    def __init__(self) -> None:
        self.instance: Instance | None = None
        self.failed = False
        self._closed = False

    async def open(self) -> None:
        """Take an idle instance, or make one on a new thread (the loop serves others meanwhile)."""
        self.instance = await self.impl.acquire(self.render_mode, self.instance_key, self.count)
        self._opened(self.instance)

    def _opened(self, instance: Instance) -> None:
        raise NotImplementedError

    async def run(self, what: str, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """``fn(*args)`` on the instance's thread (``what``: the env call, for errors), within
        ``timeout`` seconds (None: no deadline; past it, EnvCallTimeout)."""
        if self.instance is None:
            raise RuntimeError("the trial is not open")
        return await self.instance.calls.call(what, fn, *args, timeout=timeout)

    def note(self, what: str) -> None:
        """From a running call: it now calls ``env.<what>()`` (named if it times out there)."""
        if self.instance is not None:
            self.instance.calls.note(what)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` gave the instance back (it may be another trial's since)."""
        return self._closed

    def close(self) -> None:
        """Return the instance to the pool; discard it if the trial failed or a call on it is
        still running (a deadline passed, the trial was cancelled). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.instance is not None:
            self.impl.give_back(self.instance, self.render_mode, self.instance_key, failed=self.failed)
