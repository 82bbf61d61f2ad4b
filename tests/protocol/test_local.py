"""``Inbox`` (one direction of a stream, with a deadline per read) and ``LocalCall`` (a RunTrial
stream between two coroutines of one process), tested without any other component."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, TypeVar

import grpc
import pytest

from cogment_gym.errors import PeerLostError
from cogment_gym.protocol import LocalCall
from cogment_gym.protocol.local import EMPTY, TIMED_OUT, Inbox

T = TypeVar("T")
WAIT = 10.0


def run(coro: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro(), WAIT)

    return asyncio.run(bounded())


# ---------------------------------------------------------------------------------------- Inbox


def test_inbox_hands_over_in_order_then_eof() -> None:
    async def main() -> None:
        inbox = Inbox()
        assert inbox.get_nowait() is EMPTY
        inbox.put("a")
        inbox.put("b")
        assert inbox.get_nowait() == "a"
        assert await inbox.get() == "b"
        inbox.close()
        assert inbox.get_nowait() is grpc.aio.EOF
        assert await inbox.get(1.0) is grpc.aio.EOF

    run(main)


def test_inbox_closed_with_an_error_gives_the_queued_messages_first() -> None:
    async def main() -> None:
        inbox = Inbox()
        inbox.put("last words")
        inbox.close(PeerLostError("gone"))
        assert inbox.get_nowait() == "last words"
        with pytest.raises(PeerLostError, match="gone"):
            await inbox.get()
        with pytest.raises(PeerLostError, match="gone"):  # again, for every later read
            inbox.get_nowait()

    run(main)


def test_inbox_wakes_a_waiting_reader() -> None:
    async def main() -> None:
        inbox = Inbox()
        reader = asyncio.ensure_future(inbox.get(WAIT))
        await asyncio.sleep(0)  # the reader is waiting now
        assert not reader.done()
        inbox.put("x")
        assert await reader == "x"

    run(main)


def test_inbox_deadline_times_out_and_loses_nothing() -> None:
    async def main() -> None:
        inbox = Inbox()
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await inbox.get(0.05) is TIMED_OUT
        assert loop.time() - started >= 0.04
        inbox.put("late")
        assert await inbox.get(0.05) == "late"
        # A message already there is returned even with a deadline already passed.
        inbox.put("there")
        assert await inbox.get(0) == "there"

    run(main)


def test_inbox_a_later_shorter_deadline_is_honoured() -> None:
    """One timer per inbox, re-armed lazily: a wait with an earlier deadline than the timer's
    must still time out at its own deadline."""

    async def main() -> None:
        inbox = Inbox()
        long_wait = asyncio.ensure_future(inbox.get(WAIT))
        await asyncio.sleep(0)
        long_wait.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long_wait
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await inbox.get(0.05) is TIMED_OUT
        assert loop.time() - started < WAIT / 2
        inbox.discard()

    run(main)


def test_inbox_cancelled_read_takes_nothing() -> None:
    async def main() -> None:
        inbox = Inbox()
        reader = asyncio.ensure_future(inbox.get())
        await asyncio.sleep(0)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        inbox.put("kept")
        assert inbox.get_nowait() == "kept"

    run(main)


def test_inbox_room_holds_the_writer_until_the_reader_takes() -> None:
    async def main() -> None:
        inbox = Inbox(limit=2)
        inbox.put(1)
        inbox.put(2)
        writer = asyncio.ensure_future(inbox.room())
        await asyncio.sleep(0)
        assert not writer.done()  # full: the writer waits
        assert inbox.get_nowait() == 1
        await writer  # room again
        inbox.put(3)
        assert [inbox.get_nowait(), inbox.get_nowait()] == [2, 3]
        full = Inbox(limit=1)
        full.put(1)
        waiting = asyncio.ensure_future(full.room())
        await asyncio.sleep(0)
        full.close()  # closing frees a waiting writer too
        await waiting

    run(main)


# ---------------------------------------------------------------------------------------- LocalCall


async def _echo(request_iterator: Any, context: Any) -> None:
    """A servicer written as for gRPC: echoes until the client is done writing."""
    while True:
        message = await context.read()
        if message is grpc.aio.EOF:
            return
        await context.write(("echo", message, context.invocation_metadata()))


def test_local_call_carries_messages_both_ways_and_ends() -> None:
    async def main() -> None:
        call = LocalCall(_echo, (("trial-id", "t1"),), "echo service")
        payload = object()  # handed over as is: nothing is serialised
        await call.write(payload)
        kind, echoed, metadata = await call.read()
        assert kind == "echo" and echoed is payload and metadata == (("trial-id", "t1"),)
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF  # the servicer returned
        assert call.done()
        with pytest.raises(PeerLostError, match="after done_writing"):
            await call.write("more")

    run(main)


def test_local_call_servicer_failure_reaches_the_client() -> None:
    async def broken(request_iterator: Any, context: Any) -> None:
        await context.read()
        raise RuntimeError("the servicer broke")

    async def main() -> None:
        call = LocalCall(broken, (), "broken service")
        await call.write("hello")
        with pytest.raises(PeerLostError, match=r"broken service failed: RuntimeError: the servicer broke"):
            await call.read()
        with pytest.raises(PeerLostError, match="broken service stopped"):
            await call.write("again")

    run(main)


def test_local_call_abort_names_the_status_code() -> None:
    async def refusing(request_iterator: Any, context: Any) -> None:
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such trial")

    async def main() -> None:
        call = LocalCall(refusing, (), "orchestrator")
        with pytest.raises(PeerLostError, match="NOT_FOUND: no such trial"):
            await call.read()

    run(main)


def test_local_call_cancel_stops_the_servicer() -> None:
    async def main() -> None:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def waiting(request_iterator: Any, context: Any) -> None:
            started.set()
            try:
                await asyncio.sleep(WAIT)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        call = LocalCall(waiting, (), "slow service")
        await started.wait()
        assert call.cancel() is True
        await cancelled.wait()
        assert await call.read() is grpc.aio.EOF
        assert call.cancel() is False  # already over

    run(main)

