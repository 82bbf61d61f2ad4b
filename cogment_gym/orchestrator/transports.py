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

__all__ = ["Connector", "Link", "ServerLink", "grpc_error"]

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


class Link:
    """Client end of a RunTrial stream (gRPC call or local call)."""

    __slots__ = ("_call", "description", "_closed")

    def __init__(self, call: Any, description: str) -> None:
        self._call = call
        self.description = description
        self._closed = False

    async def write(self, message: Any) -> None:
        try:
            await self._call.write(message)
        except grpc.aio.AioRpcError as err:
            raise grpc_error(err, self.description) from None
        except asyncio.InvalidStateError:
            raise PeerLostError(f"{self.description}: the stream is closed") from None

    async def read(self) -> Any:
        try:
            message = await self._call.read()
        except grpc.aio.AioRpcError as err:
            raise grpc_error(err, self.description) from None
        return None if message is grpc.aio.EOF else message

    async def close(self) -> None:
        """Half-close, then drop the stream."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._call.done_writing()
        except Exception:
            pass
        self._call.cancel()


class ServerLink:
    """The Orchestrator's end of a stream a client actor opened (a servicer context)."""

    __slots__ = ("_context", "description", "_closed")

    def __init__(self, context: Any, description: str) -> None:
        self._context = context
        self.description = description
        self._closed = False

    async def write(self, message: Any) -> None:
        if self._closed:
            raise PeerLostError(f"{self.description}: the stream is closed")
        try:
            await self._context.write(message)
        except grpc.aio.AioRpcError as err:
            raise grpc_error(err, self.description) from None
        except (asyncio.InvalidStateError, RuntimeError) as err:
            raise PeerLostError(f"{self.description}: {err}") from None

    async def read(self) -> Any:
        try:
            message = await self._context.read()
        except grpc.aio.AioRpcError as err:
            raise grpc_error(err, self.description) from None
        except (asyncio.InvalidStateError, RuntimeError) as err:
            raise PeerLostError(f"{self.description}: {err}") from None
        return None if message is grpc.aio.EOF else message

    async def close(self) -> None:
        self._closed = True


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
