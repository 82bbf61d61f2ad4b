"""Every wait on a peer has a deadline; this is the one way to impose it."""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

from cogment_gym.errors import PeerTimeoutError

__all__ = ["DEFAULT_TIMEOUT", "wait_for"]

T = TypeVar("T")

# Seconds to wait for a peer that should answer promptly (an env step, an init handshake).
DEFAULT_TIMEOUT = 30.0


async def wait_for(awaitable: Awaitable[T], timeout: float | None, what: str) -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds (None or <= 0: DEFAULT_TIMEOUT).

    Raises:
        PeerTimeoutError: naming ``what`` was being waited for and for how long.
    """
    seconds = DEFAULT_TIMEOUT if timeout is None or timeout <= 0 else timeout
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise PeerTimeoutError(f"no answer within {seconds:g} s while waiting for {what}") from None
