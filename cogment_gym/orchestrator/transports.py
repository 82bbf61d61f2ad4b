"""How the Orchestrator reaches components: one :class:`Connector`, two transports.

Remote components are reached over gRPC (TCP or unix socket), with one channel per target shared
by every trial in flight; components registered in the same process (``local://name``) are
connected directly through :class:`~cogment_gym.protocol.LocalCall`. Either way a trial gets a
:class:`~cogment_gym.protocol.links.Link` (one RunTrial stream, same interface for both).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import grpc

from cogment_gym._proto.cogment.api import agent_pb2_grpc, datalog_pb2_grpc, environment_pb2_grpc, hooks_pb2_grpc
from cogment_gym.errors import EndpointError, EndpointUnreachableError
from cogment_gym.protocol import LocalCall, parse_endpoint
from cogment_gym.protocol.failures import ACTOR, ENVIRONMENT, FailureKind, error_class
from cogment_gym.protocol.links import GRPC_OPTIONS, Link
from cogment_gym.protocol.security import NO_SECURITY, Security, new_channel

__all__ = ["Connector"]

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


class Connector:
    """Opens links to endpoints; owns the gRPC channels (one per target).

    Args:
        security: how components are dialed (TLS, client certificate, token sent with every call).
    """

    def __init__(self, security: Security = NO_SECURITY) -> None:
        self.security = security
        self._local_envs: dict[str, Handler] = {}
        self._local_actors: dict[str, Handler] = {}
        self._local_datalogs: dict[str, Handler] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._routes: dict[str, str] = {}

    def route(self, endpoint: str, via: str) -> None:
        """Reach ``endpoint`` through ``via``, another endpoint of the same service (its unix
        socket on this host). Trial params, descriptions and errors keep naming ``endpoint``."""
        parse_endpoint(via)  # validates
        self._routes[str(parse_endpoint(endpoint))] = via

    def unroute(self, endpoint: str) -> str | None:
        """Reach ``endpoint`` itself again; the route it had (None: it had none)."""
        return self._routes.pop(str(parse_endpoint(endpoint)), None)

    def add_local_environment(self, name: str, run_trial: Handler) -> str:
        """Register an in-process EnvironmentSP.RunTrial; returns its ``local://`` endpoint."""
        self._local_envs[name] = run_trial
        return f"local://{name}"

    def add_local_actor(self, name: str, run_trial: Handler) -> str:
        """Register an in-process ServiceActorSP.RunTrial; returns its ``local://`` endpoint."""
        self._local_actors[name] = run_trial
        return f"local://{name}"

    def add_local_datalog(self, name: str, run_trial_datalog: Handler) -> str:
        """Register an in-process DatalogSP.RunTrialDatalog; returns its ``local://`` endpoint."""
        self._local_datalogs[name] = run_trial_datalog
        return f"local://{name}"

    def channel(self, endpoint: str) -> grpc.aio.Channel:
        parsed = parse_endpoint(endpoint)
        via = self._routes.get(str(parsed))
        target = (parse_endpoint(via) if via is not None else parsed).grpc_target
        channel = self._channels.get(target)
        if channel is None:
            channel = new_channel(target, self.security, GRPC_OPTIONS)
            self._channels[target] = channel
        return channel

    def _open(
        self, endpoint: str, local: dict[str, Handler], stub: Callable[[grpc.aio.Channel], Any], metadata: tuple[tuple[str, str], ...], description: str,
        peer: str = "",
    ) -> Link:
        parsed = parse_endpoint(endpoint)
        if parsed.scheme == "local":
            handler = local.get(parsed.address)
            if handler is None:
                raise error_class(FailureKind.UNREACHABLE.value, peer)(f"{description}: nothing is registered at {endpoint}", peer=peer or None)
            return Link(LocalCall(handler, metadata, description), description)
        if parsed.scheme == "client":
            raise EndpointError(f"{description}: {endpoint} is not a service endpoint")
        return Link(stub(self.channel(endpoint)).RunTrial(metadata=metadata + self.security.call_metadata), description)

    def environment(self, endpoint: str, metadata: tuple[tuple[str, str], ...], description: str) -> Link:
        """A RunTrial stream to an environment; its failures are EnvironmentLostError / ...UnreachableError."""
        link = self._open(endpoint, self._local_envs, environment_pb2_grpc.EnvironmentSPStub, metadata, description, ENVIRONMENT)
        link.peer = ENVIRONMENT
        return link

    def service_actor(self, endpoint: str, metadata: tuple[tuple[str, str], ...], description: str) -> Link:
        link = self._open(endpoint, self._local_actors, agent_pb2_grpc.ServiceActorSPStub, metadata, description, ACTOR)
        link.peer = ACTOR
        return link

    def datalog(self, endpoint: str, metadata: tuple[tuple[str, str], ...]) -> Any:
        parsed = parse_endpoint(endpoint)
        if parsed.scheme == "local":
            handler = self._local_datalogs.get(parsed.address)
            if handler is None:
                raise EndpointUnreachableError(f"datalog: nothing is registered at {endpoint}")
            return LocalCall(handler, metadata, f"datalog at {endpoint}")
        return datalog_pb2_grpc.DatalogSPStub(self.channel(endpoint)).RunTrialDatalog(metadata=metadata + self.security.call_metadata)

    def hooks(self, endpoint: str) -> hooks_pb2_grpc.TrialHooksSPStub:
        """A TrialHooksSP stub; calls on it add :attr:`security`'s ``call_metadata`` themselves."""
        return hooks_pb2_grpc.TrialHooksSPStub(self.channel(endpoint))

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()
