"""Deadlines on waits for a peer: ``wait_for``, ``within`` and ``Watchdog`` (a cheap deadline for
a sequence of awaits in one task)."""

from __future__ import annotations

import asyncio

import pytest

from cogment_gym.errors import PeerTimeoutError
from cogment_gym.protocol.deadlines import DEFAULT_TIMEOUT, Watchdog, wait_for, within

WAIT = 10.0


def test_wait_for_returns_or_names_what_was_awaited() -> None:
    async def main() -> None:
        assert await wait_for(asyncio.sleep(0, "done"), 1.0, "a nap") == "done"
        with pytest.raises(PeerTimeoutError, match=r"no answer within 0.05 s while waiting for the env's step"):
            await wait_for(asyncio.sleep(WAIT), 0.05, "the env's step")

    asyncio.run(main())


def test_wait_for_none_or_non_positive_means_the_default() -> None:
    async def main() -> None:
        # Not a zero deadline: a ready awaitable still completes (DEFAULT_TIMEOUT applies).
        assert await wait_for(asyncio.sleep(0.01, 1), 0, "x") == 1
        assert await wait_for(asyncio.sleep(0.01, 2), None, "x") == 2
        assert DEFAULT_TIMEOUT > 1

    asyncio.run(main())


def test_within_raises_asyncio_timeout() -> None:
    async def main() -> None:
        assert await within(asyncio.sleep(0, "ok"), 1.0) == "ok"
        with pytest.raises(asyncio.TimeoutError):
            await within(asyncio.sleep(WAIT), 0.05)

    asyncio.run(main())


def test_watchdog_cancels_the_task_and_says_why() -> None:
    async def guarded() -> str:
        task = asyncio.current_task()
        assert task is not None
        watchdog = Watchdog(task)
        watchdog.arm(0.05, "the observation of tick 3")
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            assert watchdog.expired is not None
            raise watchdog.error() from None
        finally:
            watchdog.close()
        return "not reached"

    async def main() -> None:
        with pytest.raises(PeerTimeoutError, match=r"no answer within 0.05 s while waiting for the observation of tick 3"):
            await asyncio.wait_for(guarded(), WAIT)

    asyncio.run(main())


def test_watchdog_disarmed_in_time_does_nothing() -> None:
    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        watchdog = Watchdog(task)
        for _ in range(3):
            watchdog.arm(0.05, "a quick answer")
            await asyncio.sleep(0)
            watchdog.disarm()
        await asyncio.sleep(0.1)  # well past every deadline: nothing fires
        assert watchdog.expired is None
        watchdog.close()

    asyncio.run(main())


def test_watchdog_rearmed_later_fires_at_the_new_deadline() -> None:
    """The timer set for an earlier deadline re-arms itself instead of firing early."""

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        watchdog = Watchdog(task)
        watchdog.arm(0.02, "first")
        started = loop.time()
        watchdog.arm(0.2, "second")  # later: the first timer must not cancel us at 0.02 s
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(WAIT)
        assert loop.time() - started >= 0.15
        assert watchdog.expired is not None and "second" in watchdog.expired
        watchdog.close()

    async def outer() -> None:
        await asyncio.wait_for(asyncio.ensure_future(main()), WAIT)

    asyncio.run(outer())
