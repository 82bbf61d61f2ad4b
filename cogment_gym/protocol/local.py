"""A RunTrial stream between two coroutines of one process, without gRPC.

The serving side is the very servicer method gRPC would call (``RunTrial(request_iterator,
context)``, written with ``context.read()`` / ``context.write()``); :class:`LocalCall` plays both
the gRPC client call (``write``/``read``/``done_writing``/``cancel``) and the server context
(``read``/``write``/``invocation_metadata``/``abort``). Messages are handed over as objects:
nothing is serialised, nothing crosses HTTP/2, and the state machine is the one of the remote
case.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Awaitable, Callable

import grpc

from cogment_gym.errors import PeerLostError

__all__ = ["LocalCall"]

EOF_ = grpc.aio.EOF


class _Channel:
    """One direction of the stream: a deque and one waiter, cheaper than asyncio.Queue."""

    __slots__ = ("items", "waiter", "closed")

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False

    def put(self, item: Any) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self.items:
            if self.closed:
                return EOF_
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.popleft()

    def close(self) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _ServerContext:
    """The ``context`` the servicer sees."""

    def __init__(self, call: LocalCall) -> None:
        self._call = call

    async def read(self) -> Any:
        return await self._call._to_server.get()

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
        self._to_server = _Channel()
        self._to_client = _Channel()
        self._finished = False
        self._error: str | None = None
        self.context = _ServerContext(self)
        self._task = asyncio.get_running_loop().create_task(self._serve(handler))

    async def _serve(self, handler: Callable[[Any, Any], Awaitable[None]]) -> None:
        try:
            await handler(None, self.context)
        except asyncio.CancelledError:
            pass
        except Exception as err:  # the servicer failed: the client sees a broken stream
            self._error = f"{type(err).__name__}: {err}"
        finally:
            self._finished = True
            self._to_client.close()

    def _abort(self, details: str) -> None:
        self._error = details

    async def write(self, message: Any) -> None:
        if self._to_server.closed:
            raise PeerLostError(f"{self.description}: cannot send after done_writing()")
        if self._finished:
            raise PeerLostError(f"{self.description} stopped{': ' + self._error if self._error else ''}")
        self._to_server.put(message)

    async def read(self) -> Any:
        item = await self._to_client.get()
        if item is EOF_ and self._error is not None:
            raise PeerLostError(f"{self.description} failed: {self._error}")
        return item

    async def done_writing(self) -> None:
        self._to_server.close()

    def cancel(self) -> bool:
        self._to_server.close()
        if not self._task.done():
            self._task.cancel()
            return True
        return False

    def done(self) -> bool:
        return self._finished
