"""A RunTrial stream between two coroutines of one process, without gRPC.

The serving side is the very servicer method gRPC would call (``RunTrial(request_iterator,
context)``, written with ``context.read()`` / ``context.write()``); :class:`LocalCall` plays both
the gRPC client call (``write``/``read``/``done_writing``/``cancel``) and the server context
(``read``/``write``/``invocation_metadata``/``abort``). Messages are handed over as objects:
nothing is serialised, nothing crosses HTTP/2, and the state machine is the one of the remote
case.

Each direction is an :class:`Inbox`, which the Orchestrator's gRPC links use too (one reader task
per gRPC stream fills one): reading takes what is there without suspending, waits on one future
otherwise, with a deadline that costs no timer when the message is already there.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Awaitable, Callable

import grpc

from cogment_gym.errors import PeerLostError
from cogment_gym.protocol.deadlines import CLOCK_RESOLUTION

__all__ = ["EMPTY", "TIMED_OUT", "Inbox", "LocalCall", "is_local_context"]

EOF_ = grpc.aio.EOF


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: :meth:`Inbox.get`'s answer when its deadline passed first (nothing was taken).
TIMED_OUT: Any = _Sentinel("TIMED_OUT")
#: :meth:`Inbox.get_nowait`'s answer when nothing is there yet.
EMPTY: Any = _Sentinel("EMPTY")


class Inbox:
    """Messages of one direction of a stream, for one reader at a time.

    ``put`` never blocks; the writer may wait for room with :meth:`room` (bounded read-ahead of
    a gRPC reader task). ``close(error)`` ends the stream: once the queued messages are taken,
    reads return EOF, or raise ``error``. Waiting is cancel-safe: nothing is taken from the
    queue by a read that did not return.

    Deadlines of :meth:`get` share one lazily re-armed timer per inbox: a read that finds its
    message costs no timer at all, one that waits moves a deadline and rarely touches the loop's
    timer heap.
    """

    __slots__ = ("items", "waiter", "closed", "error", "limit", "_room", "_deadline", "_timer", "_timer_when")

    def __init__(self, limit: int = 0) -> None:
        self.items: deque[Any] = deque()
        # The future a reader sleeps on; a caller watching several inboxes may put one shared
        # future in several of them (see Trial's action gathering).
        self.waiter: asyncio.Future[Any] | None = None
        self.closed = False
        self.error: BaseException | None = None
        self.limit = limit  # 0: unbounded
        self._room: asyncio.Future[None] | None = None
        self._deadline: float | None = None  # loop time the current reader gives up at
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0

    def put(self, item: Any) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self, error: BaseException | None = None) -> None:
        """No more messages; readers get the queued ones, then EOF (or ``error`` raised)."""
        if self.closed:
            return
        self.closed = True
        self.error = error
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)

    def discard(self) -> None:
        """Drop the deadline timer (the inbox is no longer read)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def room(self) -> None:
        """Until the reader took enough for the queue to be under its limit (or it closed)."""
        while self.limit and len(self.items) >= self.limit and not self.closed:
            self._room = asyncio.get_running_loop().create_future()
            try:
                await self._room
            finally:
                self._room = None

    def _taken(self) -> Any:
        item = self.items.popleft()
        room = self._room
        if room is not None and not room.done() and len(self.items) < self.limit:
            room.set_result(None)
        return item

    def _end(self) -> Any:
        if self.error is not None:
            raise self.error.with_traceback(None)  # raised again by later reads: no growing traceback
        return EOF_

    def get_nowait(self) -> Any:
        """The next message, EOF at the end, or :data:`EMPTY`; raises the stream's error."""
        if self.items:
            return self._taken()
        if self.closed:
            return self._end()
        return EMPTY

    async def get(self, timeout: float | None = None) -> Any:
        """The next message (EOF at the end; raises the stream's error), or :data:`TIMED_OUT`
        after ``timeout`` seconds (None: no deadline). A queued message is returned at once,
        even with a deadline already passed."""
        if self.items:
            return self._taken()
        if self.closed:
            return self._end()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(timeout, 0.0)
        while True:
            waiter = self.waiter = loop.create_future()
            if deadline is not None:
                self._deadline = deadline
                if self._timer is None or self._timer_when > deadline:
                    if self._timer is not None:
                        self._timer.cancel()
                    self._timer_when = deadline
                    self._timer = loop.call_at(deadline, self._expire)
            try:
                await waiter
            finally:
                self.waiter = None
                self._deadline = None
            if self.items:
                return self._taken()
            if self.closed:
                return self._end()
            if deadline is not None and deadline - loop.time() <= CLOCK_RESOLUTION:
                return TIMED_OUT

    def _expire(self) -> None:
        """The deadline timer: wake an overdue reader, or re-arm for the current deadline."""
        self._timer = None
        deadline = self._deadline
        waiter = self.waiter
        if deadline is None or waiter is None or waiter.done():
            return
        loop = waiter.get_loop()
        if deadline - loop.time() > CLOCK_RESOLUTION:  # the timer of an earlier, shorter wait: re-arm
            self._timer_when = deadline
            self._timer = loop.call_at(deadline, self._expire)
            return
        waiter.set_result(None)


class _ServerContext:
    """The ``context`` the servicer sees."""

    def __init__(self, call: LocalCall) -> None:
        self._call = call
        self.inbox = call._to_server

    async def read(self) -> Any:
        return await self.inbox.get()

    async def write(self, message: Any) -> None:
        if self._call._to_client.closed:
            raise PeerLostError(f"{self._call.description}: the client side is gone")
        self._call._to_client.put(message)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._call.metadata

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        self._call._abort(f"{code.name}: {details}")
        raise asyncio.CancelledError(details)

    def peer(self) -> str:
        return "local"

    def done(self) -> bool:
        return self._call._finished


def is_local_context(context: Any) -> bool:
    """Whether a servicer's ``context`` is a :class:`LocalCall`'s: messages handed over as
    objects, never serialised (a gRPC context's stream serialises what is written)."""
    return type(context) is _ServerContext


class LocalCall:
    """Client end of a local stream; starts the servicer coroutine on creation.

    Args:
        handler: the servicer's streaming method, ``handler(request_iterator, context)``.
        metadata: what gRPC metadata would carry, e.g. ``(("trial-id", "t1"),)``.
        description: names the peer in errors, e.g. ``"environment 'CartPole-v1'"``.
    """

    def __init__(
        self,
        handler: Callable[[Any, Any], Awaitable[None]],
        metadata: tuple[tuple[str, str], ...],
        description: str,
    ) -> None:
        self.metadata = metadata
        self.description = description
        self._to_server = Inbox()
        self._to_client = Inbox()
        self._finished = False
        self._error: str | None = None
        self.context = _ServerContext(self)
        self._task = asyncio.get_running_loop().create_task(self._serve(handler))

    @property
    def inbox(self) -> Inbox:
        """What the servicer sends (EOF when it returned; a PeerLostError when it failed)."""
        return self._to_client

    async def _serve(self, handler: Callable[[Any, Any], Awaitable[None]]) -> None:
        try:
            await handler(None, self.context)
        except asyncio.CancelledError:
            pass
        except Exception as err:  # the servicer failed: the client sees a broken stream
            self._error = f"{type(err).__name__}: {err}"
        finally:
            self._finished = True
            error = self._error
            self._to_client.close(PeerLostError(f"{self.description} failed: {error}") if error is not None else None)

    def _abort(self, details: str) -> None:
        self._error = details

    async def write(self, message: Any) -> None:
        if self._to_server.closed:
            raise PeerLostError(f"{self.description}: cannot send after done_writing()")
        if self._finished:
            raise PeerLostError(f"{self.description} stopped{': ' + self._error if self._error else ''}")
        self._to_server.put(message)

    async def read(self) -> Any:
        return await self._to_client.get()

    async def done_writing(self) -> None:
        self._to_server.close()

    def cancel(self) -> bool:
        self._to_server.close()
        self._to_client.discard()
        if not self._task.done():
            self._task.cancel()
            return True
        return False

    def done(self) -> bool:
        return self._finished
