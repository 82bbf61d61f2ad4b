"""How the Orchestrator reaches components: one interface, two transports.

A :class:`Link` is one RunTrial stream to an environment or an actor. Remote components are
reached over gRPC (TCP or unix socket), with one channel per target shared by every trial in
flight; components registered in the same process (``local://name``) are connected directly
through :class:`~cogment_gym.protocol.LocalCall`. Both look the same to a trial: ``write``,
``read`` (``None`` at end of stream), ``close``; transport errors become typed errors.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import grpc

from cogment_gym._proto.cogment.api import agent_pb2_grpc, datalog_pb2_grpc, environment_pb2_grpc, hooks_pb2_grpc
from cogment_gym.errors import EndpointUnreachableError, PeerLostError
from cogment_gym.protocol import LocalCall, parse_endpoint
from cogment_gym.protocol.endpoints import EndpointError

__all__ = ["Connector", "Link", "ServerLink", "grpc_error", "within"]

logger = logging.getLogger(__name__)

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def grpc_error(err: grpc.aio.AioRpcError, description: str) -> Exception:
    """Translate a gRPC failure into the typed error a caller should see."""
    code = err.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return EndpointUnreachableError(f"{description} is unreachable: {err.details()}")
    return PeerLostError(f"{description} failed: {code.name}: {err.details()}")


class _Reader:
    """Reads a gRPC stream so that cancelling a reader loses nothing.

    grpc.aio does not survive a cancelled ``read()``: on a client call it cancels the whole RPC,
    on a server context the stream then only yields EOF. A trial must be able to stop waiting
    (a deadline, a hard TerminateTrial) and still send END on that stream, so the read runs in
    its own future, shielded from the reader's cancellation, and the next ``read()`` picks it
    up. Local streams (:class:`~cogment_gym.protocol.LocalCall`) are cancel-safe already and
    are read directly: no task per read on the in-process path.
    """

    __slots__ = ("_read", "_pending", "_safe")

    def __init__(self, read: Callable[[], Any], safe: bool) -> None:
        self._read = read
        self._pending: asyncio.Future[Any] | None = None
        self._safe = safe

    async def read(self) -> Any:
        if self._safe:
            return await self._read()
        pending = self._pending
        if pending is None:
            pending = self._pending = asyncio.ensure_future(self._read())
        try:
            message = await asyncio.shield(pending)
        except asyncio.CancelledError:
            if not pending.cancelled():
                raise  # this reader was cancelled; the read goes on for the next one
            self._pending = None
            raise PeerLostError("the stream was cancelled") from None
        except BaseException:
            self._pending = None
            raise
        self._pending = None
        return message

    def cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


class Link:
    """Client end of a RunTrial stream (gRPC call or local call)."""

    __slots__ = ("_call", "description", "_closed", "_reader", "_direct")

    def __init__(self, call: Any, description: str) -> None:
        self._call = call
        self.description = description
        self._closed = False
        self._direct = isinstance(call, LocalCall)  # cancel-safe: read it directly
        self._reader = _Reader(call.read, self._direct)

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

    async def read(self) -> Any:
        """The next message, ``None`` at the end of the stream. Cancelling a read loses nothing."""
        try:
            message = await (self._call.read() if self._direct else self._reader.read())
        except PeerLostError as err:
            raise PeerLostError(f"{self.description}: {err}") from None
        except grpc.aio.AioRpcError as err:
            raise grpc_error(err, self.description) from None
        return None if message is grpc.aio.EOF else message

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
                if remaining <= 0:
                    logger.debug("%s did not end its stream within %g s", self.description, timeout)
                    break
                if await within(self.read(), remaining) is None:
                    break
        except (Exception, asyncio.TimeoutError):  # broken or refused: nothing left to wait for
            pass
        finally:
            self._reader.cancel()
            call.cancel()


class ServerLink:
    """The Orchestrator's end of a stream a client actor opened (a servicer context)."""

    __slots__ = ("_context", "description", "_closed", "_reader", "_direct")

    def __init__(self, context: Any, description: str) -> None:
        self._context = context
        self.description = description
        self._closed = False
        # In-process contexts (LocalCall's, whose peer() is "local") are cancel-safe.
        peer = getattr(context, "peer", None)
        self._direct = bool(callable(peer) and peer() == "local")
        self._reader = _Reader(context.read, self._direct)

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

    async def read(self) -> Any:
        """The next message, ``None`` at the end of the stream. Cancelling a read loses nothing."""
        try:
            message = await (self._context.read() if self._direct else self._reader.read())
        except PeerLostError as err:
            raise PeerLostError(f"{self.description}: {err}") from None
        except grpc.aio.AioRpcError as err:
            raise grpc_error(err, self.description) from None
        except (asyncio.InvalidStateError, RuntimeError) as err:
            raise PeerLostError(f"{self.description}: {err}") from None
        return None if message is grpc.aio.EOF else message

    async def close(self, timeout: float = 5.0) -> None:
        """The RPC ends when the servicer returns (after the trial released it); nothing to wait for."""
        self._closed = True
        self._reader.cancel()


async def within(awaitable: Any, seconds: float) -> Any:
    """``asyncio.wait_for`` without its extra task where ``asyncio.timeout`` exists (3.11+)."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:
        return await asyncio.wait_for(awaitable, seconds)
    async with timeout(seconds):
        return await awaitable


Handler = Callable[[Any, Any], Any]


class Connector:
    """Opens links to endpoints; owns the gRPC channels (one per target)."""

    def __init__(self) -> None:
        self._local_envs: dict[str, Handler] = {}
        self._local_actors: dict[str, Handler] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}

    def add_local_environment(self, name: str, run_trial: Handler) -> str:
        """Register an in-process EnvironmentSP.RunTrial; returns its ``local://`` endpoint."""
        self._local_envs[name] = run_trial
        return f"local://{name}"

    def add_local_actor(self, name: str, run_trial: Handler) -> str:
        """Register an in-process ServiceActorSP.RunTrial; returns its ``local://`` endpoint."""
        self._local_actors[name] = run_trial
        return f"local://{name}"

    def channel(self, endpoint: str) -> grpc.aio.Channel:
        target = parse_endpoint(endpoint).grpc_target
        channel = self._channels.get(target)
        if channel is None:
            channel = grpc.aio.insecure_channel(target, options=GRPC_OPTIONS)
            self._channels[target] = channel
        return channel

    def _open(self, endpoint: str, local: dict[str, Handler], stub: Callable[[grpc.aio.Channel], Any], metadata: tuple[tuple[str, str], ...], description: str) -> Link:
        parsed = parse_endpoint(endpoint)
        if parsed.scheme == "local":
            handler = local.get(parsed.address)
            if handler is None:
                raise EndpointUnreachableError(f"{description}: nothing is registered at {endpoint}")
            return Link(LocalCall(handler, metadata, description), description)
        if parsed.scheme == "client":
            raise EndpointError(f"{description}: {endpoint} is not a service endpoint")
        return Link(stub(self.channel(endpoint)).RunTrial(metadata=metadata), description)

    def environment(self, endpoint: str, metadata: tuple[tuple[str, str], ...], description: str) -> Link:
        return self._open(endpoint, self._local_envs, environment_pb2_grpc.EnvironmentSPStub, metadata, description)

    def service_actor(self, endpoint: str, metadata: tuple[tuple[str, str], ...], description: str) -> Link:
        return self._open(endpoint, self._local_actors, agent_pb2_grpc.ServiceActorSPStub, metadata, description)

    def datalog(self, endpoint: str, metadata: tuple[tuple[str, str], ...]) -> Any:
        return datalog_pb2_grpc.DatalogSPStub(self.channel(endpoint)).RunTrialDatalog(metadata=metadata)

    def hooks(self, endpoint: str) -> hooks_pb2_grpc.TrialHooksSPStub:
        return hooks_pb2_grpc.TrialHooksSPStub(self.channel(endpoint))

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()
