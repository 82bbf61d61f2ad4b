"""One RunTrial stream as a peer sees it, whatever carries it: gRPC or an in-process call.

A :class:`Link` is the calling end (the Orchestrator's stream to an environment or a service
actor, a client actor's stream to the Orchestrator); a :class:`ServerLink` the serving end of a
stream a client opened (a servicer context). Both look the same: ``write``, ``read`` (``None``
at end of stream), ``read_within`` (with a deadline), ``poll`` (no wait), ``close``; transport
errors become typed errors (:func:`grpc_error`), of the class of the peer the link reaches
(``peer``: an :class:`~cogment_gym.errors.EnvironmentLostError` for an environment whose process
died, ...).

Reading goes through an :class:`~cogment_gym.protocol.local.Inbox`: a
:class:`~cogment_gym.protocol.LocalCall`'s own, or one that a single reader task per gRPC stream
fills (the *pump*). A message that is there is taken without suspending or arming a timer;
waiting is cancel-safe (nothing is lost, the stream survives).

Every gRPC channel and server of the package takes its options from here
(:data:`GRPC_OPTIONS`; servers: ``protocol.serving.GRPC_SERVER_OPTIONS``), keepalive included
(:data:`KEEPALIVE_OPTIONS`): a peer that goes silent without closing its connection (a stopped
process, a network cut) is found within :data:`SILENT_PEER_BOUND` seconds (docs/protocol.md
§11).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Protocol

import grpc

from cogment_gym.errors import AuthenticationError, PeerLostError, PeerTimeoutError
from cogment_gym.protocol.failures import FailureKind, error_class
from cogment_gym.protocol.local import EMPTY, TIMED_OUT, Inbox, LocalCall

__all__ = [
    "GRPC_OPTIONS",
    "KEEPALIVE_OPTIONS",
    "KEEPALIVE_TIME",
    "KEEPALIVE_TIMEOUT",
    "READ_AHEAD",
    "SILENT_PEER_BOUND",
    "Link",
    "ServerLink",
    "ServerStream",
    "grpc_error",
]

logger = logging.getLogger(__name__)

EOF = grpc.aio.EOF

# Keepalive (seconds): an HTTP/2 ping after KEEPALIVE_TIME without news from the peer; no answer
# within KEEPALIVE_TIMEOUT closes the connection, and the streams on it fail at once (the trial
# reports the peer lost). A stopped process keeps its sockets open and its kernel acknowledges
# TCP, so only a ping that its gRPC must answer finds it; the facades' default timeout (30 s) is
# above the bound, so a silent peer is reported as lost, not as a timeout.
KEEPALIVE_TIME = 10.0
KEEPALIVE_TIMEOUT = 10.0
#: Seconds within which a silent peer is found (plus the scheduling delays of a loaded machine).
SILENT_PEER_BOUND = KEEPALIVE_TIME + KEEPALIVE_TIMEOUT

KEEPALIVE_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.keepalive_time_ms", int(KEEPALIVE_TIME * 1000)),
    ("grpc.keepalive_timeout_ms", int(KEEPALIVE_TIMEOUT * 1000)),
    ("grpc.http2.ping_timeout_ms", int(KEEPALIVE_TIMEOUT * 1000)),
    # Ping idle connections too (a channel between trials): a dead one is dropped before a trial
    # needs it. Servers: accept such pings (else the policy for idle connections wants 2 h).
    ("grpc.keepalive_permit_without_calls", 1),
    # Servers: accept a ping every KEEPALIVE_TIME (gRPC's default policy wants 5 min between pings
    # on a connection carrying no data, and answers faster ones with GOAWAY "too_many_pings",
    # which also makes the client double its keepalive time).
    ("grpc.http2.min_ping_interval_without_data_ms", int(KEEPALIVE_TIME * 1000) // 2),
    # Not set: grpc.http2.max_pings_without_data (clients: 2 pings, then data must be sent).
    # Unlimited pings would make default-configured servers (the Cogment Orchestrator's, the
    # official SDK's) answer GOAWAY on streams idle for long (a human thinking). A side waiting
    # for its peer has just sent to it in a lock-step trial, so its pings go out.
]

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    *KEEPALIVE_OPTIONS,
]

# Status codes of a broken connection or call (the peer's process died, the connection dropped
# or failed its keepalive, the peer's server cancelled the call while stopping), and the words of
# grpc.aio for an operation on a call that broke under it (an INTERNAL the peer did not send).
_BROKEN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
_CORE_ERROR = "Internal error from Core"


def grpc_error(
    err: grpc.aio.AioRpcError,
    description: str,
    *,
    peer: str = "",
    reached: bool = False,
    what: str = "",
    timeout: float | None = None,
) -> Exception:
    """Translate a gRPC failure into the typed error a caller should see.

    Args:
        err: what gRPC raised.
        description: names the peer, e.g. ``"environment 'CartPole-v1' at grpc://..."``.
        peer: which component that is (``"environment"``, ``"orchestrator"``, ``"actor"``;
            ``cogment_gym.protocol.failures``): it selects the class of lost / unreachable errors.
        reached: whether the peer answered on this call before (a stream that broke after its
            first message is a lost peer, even when gRPC says UNAVAILABLE).
        what: what was asked or awaited (for deadlines), e.g. ``"GetSpec"``.
        timeout: the call's deadline in seconds, if known.
    """
    return _status_error(err.code(), err.details() or "", description, peer=peer, reached=reached, what=what, timeout=timeout)


def _status_error(
    code: grpc.StatusCode | None,
    details: str,
    description: str,
    *,
    peer: str,
    reached: bool,
    what: str = "",
    timeout: float | None = None,
) -> Exception:
    name = code.name if code is not None else "UNKNOWN"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        within = f" within {timeout:g} s" if timeout else " before the call's deadline"
        return PeerTimeoutError(f"{description} did not answer{' ' + what if what else ''}{within}", peer=peer or None)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthenticationError(f"{description} refused the call: {details}", peer=peer or None)
    if code == grpc.StatusCode.UNAVAILABLE and not reached:
        return error_class(FailureKind.UNREACHABLE.value, peer)(f"{description} is unreachable: {details}", peer=peer or None)
    if code in _BROKEN or (code == grpc.StatusCode.INTERNAL and details == _CORE_ERROR):
        return error_class(FailureKind.PEER_LOST.value, peer)(f"{description} is gone: {_broken(details)} (gRPC {name}: {details})", peer=peer or None)
    return PeerLostError(f"{description} failed: {name}: {details}", peer=peer or None)


def _broken(details: str) -> str:
    """What a broken call's details say happened, in words."""
    lowered = details.lower()
    if "keepalive" in lowered or "ping" in lowered:
        return f"it stopped answering keepalive pings (none answered within {KEEPALIVE_TIMEOUT:g} s)"
    return "its connection broke (its process died, or the connection dropped)"


# Messages a gRPC reader task reads ahead of the trial before it waits for room (gRPC flow
# control then holds the peer back, as when nothing reads the stream).
READ_AHEAD = 64


async def _pump(read: Callable[[], Awaitable[Any]], inbox: Inbox, owner: Link | ServerLink) -> None:
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
            owner.reached = True
            inbox.put(message)
            if len(inbox.items) >= READ_AHEAD:
                await inbox.room()
    except asyncio.CancelledError:
        inbox.close(PeerLostError("the stream was cancelled"))
    except Exception as err:
        inbox.close(err)
    else:
        inbox.close()


def _start_pump(read: Callable[[], Awaitable[Any]], owner: Link | ServerLink) -> tuple[Inbox, asyncio.Task[None]]:
    inbox = Inbox(READ_AHEAD)
    return inbox, asyncio.get_running_loop().create_task(_pump(read, inbox, owner))


class _Reading:
    """Reading side shared by :class:`Link` and :class:`ServerLink`: an :class:`Inbox` (the
    local call's own, or one a reader task fills from gRPC)."""

    __slots__ = ()
    description: str
    inbox: Inbox
    peer: str
    reached: bool  # a message came from the peer on this stream

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
        if isinstance(err, PeerLostError):  # a local servicer failed, or the stream was dropped here
            return type(err)(f"{self.description}: {err}", peer=err.peer or None)
        if isinstance(err, grpc.aio.AioRpcError):
            return grpc_error(err, self.description, peer=self.peer, reached=self.reached)
        return err

    def lost(self, reason: str) -> PeerLostError:
        """The error of a peer that ended its stream unexpectedly (``reason``: how), e.g.
        ``link.lost("closed its stream")``: of the peer's class
        (:class:`~cogment_gym.errors.EnvironmentLostError`, ...)."""
        cls = error_class(FailureKind.PEER_LOST.value, self.peer)
        return cls(f"{self.description} is gone: it {reason}", peer=self.peer or None)  # type: ignore[return-value]


class Link(_Reading):
    """Client end of a RunTrial stream (gRPC call or local call).

    Args:
        call: the gRPC stream-stream call, or a :class:`~cogment_gym.protocol.LocalCall`.
        description: names the peer in errors, e.g. ``"environment 'CartPole-v1' at grpc://..."``.
        peer: which component it is (``"environment"``, ``"orchestrator"``, ``"actor"``): the
            class of the errors of a lost or unreachable peer.
    """

    __slots__ = ("_call", "description", "_closed", "inbox", "_pump", "peer", "reached")

    def __init__(self, call: grpc.aio.StreamStreamCall | LocalCall, description: str, peer: str = "") -> None:
        self._call = call
        self.description = description
        self.peer = peer
        self._closed = False
        self._pump: asyncio.Task[None] | None = None
        if isinstance(call, LocalCall):  # messages are handed over into an inbox already
            self.reached = True  # in this process: nothing to reach
            self.inbox = call.inbox
        else:
            self.reached = False
            self.inbox, self._pump = _start_pump(call.read, self)

    async def write(self, message: Any) -> None:
        try:
            await self._call.write(message)
        except PeerLostError:
            raise
        except grpc.aio.AioRpcError as err:
            raise grpc_error(err, self.description, peer=self.peer, reached=self.reached) from None
        except Exception as err:  # the call is over (asyncio.InvalidStateError), or gRPC core refused the write
            raise await self._write_failed(err) from None

    async def _write_failed(self, err: Exception) -> Exception:
        """Why a write failed: the call's final status when it has one (the peer's process
        died: UNAVAILABLE, ...), else the stream is just closed."""
        call = self._call
        try:
            if not isinstance(call, LocalCall) and call.done():
                code, details = await call.code(), await call.details()
                if code != grpc.StatusCode.OK:
                    return _status_error(code, details or "", self.description, peer=self.peer, reached=self.reached)
        except Exception:  # no status to read: say what we know
            logger.debug("%s: no status after a failed write", self.description, exc_info=True)
        reason = "the stream is closed" if isinstance(err, asyncio.InvalidStateError) else f"{type(err).__name__}: {err}"
        return self.lost(f"ended the call ({reason})")

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


class ServerStream(Protocol):
    """What a :class:`ServerLink` needs of a servicer's ``context``: a ``grpc.aio.ServicerContext``
    of a stream-stream method, or a :class:`~cogment_gym.protocol.LocalCall`'s ``context``."""

    async def read(self) -> Any: ...

    async def write(self, message: Any) -> None: ...

    def invocation_metadata(self) -> Any: ...


class ServerLink(_Reading):
    """The Orchestrator's end of a stream a client actor opened (a servicer context)."""

    __slots__ = ("_context", "description", "_closed", "inbox", "_pump", "peer", "reached")

    def __init__(self, context: ServerStream, description: str, peer: str = "actor") -> None:
        self._context = context
        self.description = description
        self.peer = peer
        self.reached = True  # the client opened the stream
        self._closed = False
        self._pump: asyncio.Task[None] | None = None
        inbox = getattr(context, "inbox", None)
        if isinstance(inbox, Inbox):  # an in-process context (LocalCall's)
            self.inbox = inbox
        else:
            self.inbox, self._pump = _start_pump(context.read, self)

    async def write(self, message: Any) -> None:
        if self._closed:
            raise PeerLostError(f"{self.description}: the stream is closed")
        try:
            await self._context.write(message)
        except PeerLostError:
            raise
        except grpc.aio.AioRpcError as err:
            raise grpc_error(err, self.description, peer=self.peer, reached=True) from None
        except Exception as err:  # gRPC core refusing the operation: the client is gone
            raise self.lost(f"ended the call ({type(err).__name__}: {err})") from None

    def _error(self, err: Exception) -> Exception:
        if isinstance(err, (asyncio.InvalidStateError, RuntimeError)):
            return self.lost(f"ended the call ({err})")
        return super()._error(err)

    async def close(self, timeout: float = 5.0) -> None:
        """The RPC ends when the servicer returns (after the trial released it); nothing to wait for."""
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()
        self.inbox.discard()
