"""Every wait on a peer has a deadline; this is the one way to impose it."""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

from cogment_gym.errors import PeerTimeoutError

__all__ = ["DEFAULT_TIMEOUT", "Watchdog", "wait_for"]

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


class Watchdog:
    """A cheap deadline for a sequence of awaits inside one task.

    ``arm(seconds, what)`` starts the clock; if it runs out before ``disarm()``, the task is
    cancelled and :attr:`expired` names what was awaited, so the task can turn the
    ``CancelledError`` into a :class:`PeerTimeoutError`. One timer handle per wait, no extra task.
    """

    __slots__ = ("_task", "_handle", "expired", "_what", "_seconds")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self._task = task
        self._handle: asyncio.TimerHandle | None = None
        self.expired: str | None = None
        self._what = ""
        self._seconds = 0.0

    def arm(self, seconds: float, what: str) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._what, self._seconds = what, seconds
        self._handle = asyncio.get_running_loop().call_later(seconds, self._fire)

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        self.expired = f"no answer within {self._seconds:g} s while waiting for {self._what}"
        self._task.cancel()

    def error(self) -> PeerTimeoutError:
        return PeerTimeoutError(self.expired or "deadline expired")
