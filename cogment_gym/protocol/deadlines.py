"""Every wait on a peer has a deadline; this is the one way to impose it."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, TypeVar

from cogment_gym.errors import PeerTimeoutError

__all__ = ["CLOCK_RESOLUTION", "DEFAULT_TIMEOUT", "Watchdog", "wait_for", "within"]

T = TypeVar("T")

# Seconds to wait for a peer that should answer promptly (an env step, an init handshake).
DEFAULT_TIMEOUT = 30.0


async def wait_for(awaitable: Awaitable[T], timeout: float | None, what: str) -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds (None or <= 0: DEFAULT_TIMEOUT).

    On Python 3.11+ this uses ``asyncio.timeout`` (a timer, no extra task per wait: it is on the
    per-step path of every stream).

    Raises:
        PeerTimeoutError: naming ``what`` was being waited for and for how long.
    """
    seconds = DEFAULT_TIMEOUT if timeout is None or timeout <= 0 else timeout
    try:
        if _timeout is not None:
            async with _timeout(seconds):
                return await awaitable
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise PeerTimeoutError(f"no answer within {seconds:g} s while waiting for {what}") from None


_timeout = getattr(asyncio, "timeout", None)
# What asyncio's loops take as their clock's resolution (a timer within it of its time is due).
CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


class Watchdog:
    """A cheap deadline for a sequence of awaits inside one task.

    ``arm(seconds, what)`` starts the clock; if it runs out before ``disarm()``, the task is
    cancelled and :attr:`expired` names what was awaited, so the task can turn the
    ``CancelledError`` into a :class:`PeerTimeoutError`.

    No extra task, and usually no timer work either: arming moves a deadline, and the one timer
    of the watchdog is re-scheduled only when the new deadline comes before it; a timer that
    fires early re-arms itself for the current deadline. A trial arming it a few times per tick
    thus touches the loop's timer heap about once per deadline length. ``close()`` drops the
    timer when the task is done with the watchdog.
    """

    __slots__ = ("_task", "_loop", "_handle", "_when", "_deadline", "expired", "_what", "_seconds")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self._task = task
        self._loop = task.get_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0  # when the timer fires (valid while _handle is set)
        self._deadline: float | None = None  # None: disarmed
        self.expired: str | None = None
        self._what = ""
        self._seconds = 0.0

    def arm(self, seconds: float, what: str) -> None:
        deadline = self._loop.time() + seconds
        self._deadline = deadline
        self._what, self._seconds = what, seconds
        handle = self._handle
        if handle is None or self._when > deadline:
            if handle is not None:
                handle.cancel()
            self._when = deadline
            self._handle = self._loop.call_at(deadline, self._fire)

    def disarm(self) -> None:
        self._deadline = None

    @property
    def waiting_for(self) -> str:
        """What the armed deadline waits for ("" when disarmed)."""
        return self._what if self._deadline is not None else ""

    def close(self) -> None:
        """Disarm and drop the timer."""
        self._deadline = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        deadline = self._deadline
        if deadline is None:
            return
        if deadline - self._loop.time() > CLOCK_RESOLUTION:  # armed again since: wait for that deadline
            self._when = deadline
            self._handle = self._loop.call_at(deadline, self._fire)
            return
        self._deadline = None
        self.expired = f"no answer within {self._seconds:g} s while waiting for {self._what}"
        self._task.cancel()

    def error(self) -> PeerTimeoutError:
        return PeerTimeoutError(self.expired or "deadline expired")


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``asyncio.wait_for`` without its extra task where ``asyncio.timeout`` exists (3.11+)."""
    if _timeout is None:
        return await asyncio.wait_for(awaitable, seconds)
    async with _timeout(seconds):
        return await awaitable
