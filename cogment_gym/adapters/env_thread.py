"""Where a served environment's code runs: on a thread of its own, off the server's event loop.

Every env instance a server makes lives on one :class:`EnvThread` for its whole life: it is
constructed there, reset, stepped, rendered and closed there, one call at a time, in the order
the calls were made (an env is not thread-safe, and some keep thread-bound resources such as GL
contexts). The event loop hands a call over and awaits its result, so a slow or hanging env only
holds up its own trial; other trials of the same server keep their pace. A call can have a
deadline: past it, :meth:`EnvThread.call` raises :class:`EnvCallTimeout` while the call goes on
running on its thread, which is then *abandoned*: it closes its envs once that call returns, and
exits. Env threads are daemon threads: a call that never returns does not keep the process alive.

The hand-over is a ``queue.SimpleQueue`` to the thread and ``loop.call_soon_threadsafe`` back:
about 32 µs of CPU per call here, against about 77 µs for ``loop.run_in_executor`` with a
one-thread ``ThreadPoolExecutor`` (``benchmarks/env_calls.py``; figures, and what it costs a
served, a batched and an embedded trial, in docs/performance.md).

:class:`InlineCalls` has the same interface and runs every call at once in the calling thread:
``serve(..., env_threads=False)``, for envs trusted never to block, without the hand-over cost
and without the isolation or the deadlines.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import sys
import threading
import time
import traceback
from typing import Any, Callable, TypeVar, Union

__all__ = ["CallRecord", "EnvCallTimeout", "EnvCalls", "EnvThread", "InlineCalls", "env_thread_name"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_numbers = itertools.count(1)


def env_thread_name(implementation: str) -> str:
    """Name of the threads of an implementation's instances (a number is added to each)."""
    return f"cogment-gym-env:{implementation}"


class EnvCallTimeout(Exception):
    """A call on an env thread did not return before its deadline (it still runs there).

    Attributes:
        what: the call, e.g. ``"step"``.
        timeout: the deadline, in seconds.
    """

    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(f"env.{what}() did not return within {timeout:g} s")
        self.what = what
        self.timeout = timeout


class CallRecord:
    """What an env thread runs now: ``what`` (``"step"``...), since ``started`` (monotonic s)."""

    __slots__ = ("what", "started")

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = time.monotonic()


class EnvThread:
    """A daemon thread that runs the calls of the env instances it owns, one at a time, in order.

    Args:
        name: the thread's name (warnings about abandoned calls use it).

    Attributes:
        running: the call in progress (None when idle); a caller may rename it while it runs
            (``running.what = "render"``) so that a timeout names the part that hung.
        abandoned: a call outlived its caller (a deadline, a cancelled trial): the envs of this
            thread are never used again; they are closed once that call returns.
    """

    def __init__(self, name: str) -> None:
        self.name = f"{name}-{next(_numbers)}"
        self.running: CallRecord | None = None
        self.abandoned = False
        # Calls handed over (under the lock: any thread may hand one over) and finished (written
        # by this thread only).
        self._submitted = 0
        self._finished = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the thread

    def _main(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                return
            what, fn, args, done = item
            self.running = CallRecord(what)
            try:
                result, error = fn(*args), None
            except BaseException as err:  # handed to the caller, never lost here
                result, error = None, err
            self.running = None
            self._finished += 1
            try:
                done(result, error)
            except Exception:  # a callback must not end the thread (a closed loop, ...)
                logger.debug("%s: result of env.%s() not delivered", self.name, what, exc_info=True)

    def _put(self, what: str, fn: Callable[..., Any], args: tuple[Any, ...], done: Callable[[Any, BaseException | None], None]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name} is closed: env.{what}() cannot run")
            self._submitted += 1
            self._queue.put((what, fn, args, done))

    # ------------------------------------------------------------------ callers

    @property
    def busy(self) -> bool:
        """Whether a call handed over has not finished yet."""
        return self._submitted != self._finished

    def note(self, what: str) -> None:
        """From the running call: what it does now (``"render"``), for a timeout's message."""
        running = self.running
        if running is not None:
            running.what = what

    async def call(self, what: str, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """``fn(*args)`` on this thread, awaited from an event loop; its result or its exception.

        Raises:
            EnvCallTimeout: not done within ``timeout`` seconds (None: no deadline); the thread
                is then :attr:`abandoned`.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def done(result: Any, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_resolve, future, result, error)

        self._put(what, fn, args, done)
        if timeout is None:
            return await future
        timer = loop.call_later(timeout, _expire, future, self, what, timeout)
        try:
            return await future
        finally:
            timer.cancel()

    def run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on this thread, waited for by a thread without an event loop (building an
        implementation in ``serve()``); no deadline."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        finished = threading.Event()
        outcome: list[Any] = []

        def done(result: Any, error: BaseException | None) -> None:
            outcome[:] = [result, error]
            finished.set()

        self._put(what, fn, args, done)
        finished.wait()
        result, error = outcome
        if error is not None:
            raise error
        return result  # type: ignore[no-any-return]

    def submit(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """``fn(*args)`` on this thread, not waited for; an exception is logged."""

        def done(result: Any, error: BaseException | None) -> None:
            if error is not None:
                logger.error("%s: env.%s() raised %s: %s", self.name, what, type(error).__name__, error, exc_info=error)

        self._put(what, fn, args, done)

    def close(self) -> None:
        """No more calls: the thread exits once the queued ones ran. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(None)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to exit (after :meth:`close`); whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (no call can be handed over any more)."""
        return self._closed

    def stack(self) -> str:
        """Where the running call is now, as a formatted stack ("" when idle): sent with a
        timeout, so that the client sees where the env hangs."""
        if self.running is None or self._thread.ident is None:
            return ""
        frame = sys._current_frames().get(self._thread.ident)
        if frame is None:
            return ""
        lines = traceback.format_stack(frame)
        # From the call on: the thread's own loop (_main) is of no interest.
        for index, line in enumerate(lines):
            if __file__ in line and "in _main" in line:
                lines = lines[index + 1:]
                break
        return f"Stack of {self.name} (env.{self.running.what}() still running):\n" + "".join(lines)

    def describe(self) -> str:
        """``"<name> (env.step() running for 12.3 s)"``, or just the name when idle."""
        running = self.running
        if running is None:
            return self.name
        return f"{self.name} (env.{running.what}() running for {time.monotonic() - running.started:.1f} s)"

    def __repr__(self) -> str:
        return f"EnvThread({self.describe()!r})"


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # timed out or cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _expire(future: asyncio.Future[Any], thread: EnvThread, what: str, timeout: float) -> None:
    if future.done():
        return
    running = thread.running
    thread.abandoned = True
    future.set_exception(EnvCallTimeout(running.what if running is not None else what, timeout))


class InlineCalls:
    """The :class:`EnvThread` interface without a thread: each call runs at once, in the calling
    thread (the server's event loop). No isolation, no deadline (``serve(env_threads=False)``)."""

    running: CallRecord | None = None
    abandoned = False
    busy = False
    alive = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def note(self, what: str) -> None:
        pass

    async def call(self, what: str, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        return fn(*args)

    def run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def submit(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        if self.closed:
            raise RuntimeError(f"{self.name} is closed: env.{what}() cannot run")
        try:
            fn(*args)
        except Exception as err:
            logger.error("%s: env.%s() raised %s: %s", self.name, what, type(err).__name__, err, exc_info=err)

    def close(self) -> None:
        self.closed = True

    def join(self, timeout: float | None = None) -> bool:
        return True

    def stack(self) -> str:
        return ""

    def describe(self) -> str:
        return self.name


EnvCalls = Union[EnvThread, InlineCalls]
