"""One RunTrial stream as a peer sees it, whatever carries it: gRPC or an in-process call.

A :class:`Link` is the calling end (the Orchestrator's stream to an environment or a service
actor, a client actor's stream to the Orchestrator); a :class:`ServerLink` the serving end of a
stream a client opened (a servicer context). Both look the same: ``write``, ``read`` (``None``
at end of stream), ``read_within`` (with a deadline), ``poll`` (no wait), ``close``; transport
errors become typed errors (:func:`grpc_error`).

Reading goes through an :class:`~cogment_gym.protocol.local.Inbox`: a
:class:`~cogment_gym.protocol.LocalCall`'s own, or one that a single reader task per gRPC stream
fills (the *pump*). A message that is there is taken without suspending or arming a timer;
waiting is cancel-safe (nothing is lost, the stream survives).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

import grpc

from cogment_gym.errors import AuthenticationError, EndpointUnreachableError, PeerLostError
from cogment_gym.protocol.local import EMPTY, TIMED_OUT, Inbox, LocalCall

__all__ = ["GRPC_OPTIONS", "READ_AHEAD", "Link", "ServerLink", "grpc_error"]

logger = logging.getLogger(__name__)

EOF = grpc.aio.EOF

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def grpc_error(err: grpc.aio.AioRpcError, description: str) -> Exception:
    """Translate a gRPC failure into the typed error a caller should see."""
    code = err.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return EndpointUnreachableError(f"{description} is unreachable: {err.details()}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthenticationError(f"{description} refused the call: {err.details()}")
    return PeerLostError(f"{description} failed: {code.name}: {err.details()}")


# Messages a gRPC reader task reads ahead of the trial before it waits for room (gRPC flow
# control then holds the peer back, as when nothing reads the stream).
READ_AHEAD = 64


async def _pump(read: Callable[[], Awaitable[Any]], inbox: Inbox) -> None:
    """Read a gRPC stream into ``inbox`` until its end (its error is kept for the reader).

    grpc.aio does not survive a cancelled ``read()``: on a client call it cancels the whole RPC,
    on a server context the stream then only yields EOF. A trial must be able to stop waiting
    (a deadline, a hard TerminateTrial) and still send END on that stream, so one long-lived task
    per stream does the reading and is cancelled only when the stream is dropped.
    """
    try:
        while True:
            message = await read()
            if message is EOF:
                break
            inbox.put(message)
            if len(inbox.items) >= READ_AHEAD:
                await inbox.room()
    except asyncio.CancelledError:
        inbox.close(PeerLostError("the stream was cancelled"))
    except Exception as err:
        inbox.close(err)
    else:
        inbox.close()


def _start_pump(read: Callable[[], Awaitable[Any]]) -> tuple[Inbox, asyncio.Task[None]]:
    inbox = Inbox(READ_AHEAD)
    return inbox, asyncio.get_running_loop().create_task(_pump(read, inbox))


class _Reading:
    """Reading side shared by :class:`Link` and :class:`ServerLink`: an :class:`Inbox` (the
    local call's own, or one a reader task fills from gRPC)."""

    __slots__ = ()
    description: str
    inbox: Inbox

    async def read(self) -> Any:
        """The next message, ``None`` at the end of the stream. Cancelling a read loses nothing;
        the caller bounds the wait (e.g. with a :class:`~cogment_gym.protocol.deadlines.Watchdog`)."""
        inbox = self.inbox
        try:
            message = inbox.get_nowait()
            if message is EMPTY:
                message = await inbox.get()
        except Exception as err:
            raise self._error(err) from None
        return None if message is EOF else message

    async def read_within(self, timeout: float | None) -> Any:
        """The next message, ``None`` at the end of the stream, or :data:`TIMED_OUT` once
        ``timeout`` seconds (None: no limit) passed first. A message already there is returned
        at once, without a timer. Cancelling a read loses nothing."""
        inbox = self.inbox
        try:
            message = inbox.get_nowait()
            if message is EMPTY:
                message = await inbox.get(timeout)
        except Exception as err:
            raise self._error(err) from None
        return None if message is EOF else message

    def poll(self) -> Any:
        """The next message if one is there (``None`` at the end of the stream), else :data:`EMPTY`."""
        try:
            message = self.inbox.get_nowait()
        except Exception as err:
            raise self._error(err) from None
        return None if message is EOF else message

    def _error(self, err: Exception) -> Exception:
        if isinstance(err, PeerLostError):
            return PeerLostError(f"{self.description}: {err}")
        if isinstance(err, grpc.aio.AioRpcError):
            return grpc_error(err, self.description)
        return err


class Link(_Reading):
    """Client end of a RunTrial stream (gRPC call or local call)."""

    __slots__ = ("_call", "description", "_closed", "inbox", "_pump")

    def __init__(self, call: Any, description: str) -> None:
        self._call = call
        self.description = description
        self._closed = False
        self._pump: asyncio.Task[None] | None = None
        if isinstance(call, LocalCall):  # messages are handed over into an inbox already
            self.inbox = call.inbox
        else:
            self.inbox, self._pump = _start_pump(call.read)

    async def write(self, message: Any) -> None:
        try:
            await self._call.write(message)
        except PeerLostError:
            raise
        except grpc.aio.AioRpcError as err:
            raise grpc_error(err, self.description) from None
        except asyncio.InvalidStateError:
            raise PeerLostError(f"{self.description}: the stream is closed") from None
        except Exception as err:  # gRPC core refusing the operation (the call is over)
            raise PeerLostError(f"{self.description}: {type(err).__name__}: {err}") from None

    async def close(self, timeout: float = 5.0) -> None:
        """Half-close, let the peer finish (reading what it still sends, at most ``timeout`` s),
        then drop the stream.

        Cancelling right after the last write could discard it before the peer read it (an END
        would be lost), so the peer gets to end the call itself first, as Cogment's
        ``WritesDone`` + ``Finish`` does.
        """
        if self._closed:
            return
        self._closed = True
        call = self._call
        try:
            await call.done_writing()
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                message = await self.read_within(remaining) if remaining > 0 else TIMED_OUT
                if message is TIMED_OUT:
                    logger.debug("%s did not end its stream within %g s", self.description, timeout)
                    break
                if message is None:
                    break
        except Exception:  # broken or refused: nothing left to wait for
            pass
        finally:
            if self._pump is not None:
                self._pump.cancel()
            self.inbox.discard()
            call.cancel()


class ServerLink(_Reading):
    """The Orchestrator's end of a stream a client actor opened (a servicer context)."""

    __slots__ = ("_context", "description", "_closed", "inbox", "_pump")

    def __init__(self, context: Any, description: str) -> None:
        self._context = context
        self.description = description
        self._closed = False
        self._pump: asyncio.Task[None] | None = None
        inbox = getattr(context, "inbox", None)
        if isinstance(inbox, Inbox):  # an in-process context (LocalCall's)
            self.inbox = inbox
        else:
            self.inbox, self._pump = _start_pump(context.read)

    async def write(self, message: Any) -> None:
        if self._closed:
            raise PeerLostError(f"{self.description}: the stream is closed")
        try:
            await self._context.write(message)
        except PeerLostError:
            raise
        except grpc.aio.AioRpcError as err:
            raise grpc_error(err, self.description) from None
        except Exception as err:  # gRPC core refusing the operation: the client is gone
            raise PeerLostError(f"{self.description}: {type(err).__name__}: {err}") from None

    def _error(self, err: Exception) -> Exception:
        if isinstance(err, (asyncio.InvalidStateError, RuntimeError)):
            return PeerLostError(f"{self.description}: {err}")
        return super()._error(err)

    async def close(self, timeout: float = 5.0) -> None:
        """The RPC ends when the servicer returns (after the trial released it); nothing to wait for."""
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()
        self.inbox.discard()
