"""Where a facade's trials run: an embedded Orchestrator (default) or a remote one.

- Embedded environment and Orchestrator (``env_id`` given): everything in this process, connected
  directly; no port is opened.
- Remote environment service (``environment="grpc://..."``): embedded Orchestrator, the env
  reached over gRPC.
- Remote Orchestrator (``orchestrator="grpc://..."``): trials are started with
  ``TrialLifecycleSP.StartTrial`` and joined through ``ClientActorSP.RunTrial``, as any Cogment
  client would (works with the real Cogment Orchestrator).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import grpc

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.adapters import EnvHost, EnvironmentServicer, UnknownImplementationError
from cogment_gym.envs.session import ClientSession
from cogment_gym.errors import EndpointUnreachableError, TrialStartError
from cogment_gym.orchestrator import Orchestrator
from cogment_gym.orchestrator.transports import GRPC_OPTIONS, Link, grpc_error
from cogment_gym.protocol import LocalCall, parse_endpoint
from cogment_gym.protocol.metadata import TRIAL_ID

__all__ = ["TrialConnection"]

logger = logging.getLogger(__name__)


class TrialConnection:
    """Starts, joins and terminates trials for a facade. Every method runs on the facade's loop."""

    def __init__(
        self,
        *,
        env_id: Any = None,
        make_kwargs: Mapping[str, Any] | None = None,
        environment: str | None = None,
        implementation: str = "",
        orchestrator: str | None = None,
        actor_endpoint: str | None = None,
        timeout: float = 30.0,
        spec: env_pb2.EnvSpec | None = None,
    ) -> None:
        self.timeout = timeout
        self._spec_override = spec
        self.implementation = implementation
        self._host: EnvHost | None = None
        self._orchestrator: Orchestrator | None = None
        self._channels: list[grpc.aio.Channel] = []
        self._lifecycle: orchestrator_pb2_grpc.TrialLifecycleSPStub | None = None
        self._actor_stub: orchestrator_pb2_grpc.ClientActorSPStub | None = None
        self._env_id = env_id
        self._make_kwargs = dict(make_kwargs or {})
        self._environment = environment
        self._orchestrator_endpoint = orchestrator
        self._actor_endpoint = actor_endpoint or orchestrator
        if env_id is None and environment is None:
            raise TypeError("give an environment to run: an env id / factory, or environment='grpc://host:port'")
        if env_id is not None and environment is not None:
            raise TypeError("give either an env id / factory (embedded) or environment='grpc://...', not both")
        if env_id is not None and orchestrator is not None:
            raise TypeError(
                "a remote orchestrator cannot reach an environment living in this process; "
                "serve it (cogment_gym.serve) and pass environment='grpc://...'"
            )
        self.env_endpoint = ""
        self.spec: env_pb2.EnvSpec | None = None

    async def open(self) -> None:
        """Create what this mode needs and fetch the environment spec."""
        try:
            if self._env_id is not None:
                key = self._env_id if isinstance(self._env_id, str) else getattr(self._env_id, "__name__", "env")
                self._host = EnvHost({key: self._env_id}, self._make_kwargs)
                self._orchestrator = Orchestrator()
                servicer = EnvironmentServicer(self._host)
                self.env_endpoint = self._orchestrator.connector.add_local_environment(key, servicer.RunTrial)
                self.implementation = key
                self.spec = self._host.get(key).spec
                return
            assert self._environment is not None
            self.env_endpoint = self._environment
            parse_endpoint(self.env_endpoint)  # validates
            if self._orchestrator_endpoint is None:
                self._orchestrator = Orchestrator()
                channel = self._orchestrator.connector.channel(self.env_endpoint)
            else:
                channel = self._new_channel(self.env_endpoint)
                lifecycle_channel = self._new_channel(self._orchestrator_endpoint)
                self._lifecycle = orchestrator_pb2_grpc.TrialLifecycleSPStub(lifecycle_channel)
                actor_channel = lifecycle_channel if self._actor_endpoint == self._orchestrator_endpoint else self._new_channel(self._actor_endpoint or "")
                self._actor_stub = orchestrator_pb2_grpc.ClientActorSPStub(actor_channel)
            if self._spec_override is not None:
                self.spec = self._spec_override
                return
            try:
                self.spec = await env_pb2_grpc.EnvSpecSPStub(channel).GetSpec(
                    env_pb2.GetSpecRequest(implementation=self.implementation), timeout=self.timeout
                )
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                    raise EndpointUnreachableError(
                        f"the environment service at {self.env_endpoint} does not describe its spaces (no "
                        "cogment_gym.v1.EnvSpecSP: not a cogment_gym server); pass observation_space= and "
                        "action_space= to describe them"
                    ) from None
                if err.code() == grpc.StatusCode.NOT_FOUND:  # the service answered: it is no lost peer
                    raise UnknownImplementationError(f"environment service at {self.env_endpoint}: {err.details()}") from None
                raise grpc_error(err, f"environment service at {self.env_endpoint}") from None
            self.implementation = self.spec.implementation
        except BaseException:
            await self.close()
            raise

    def _new_channel(self, endpoint: str) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(parse_endpoint(endpoint).grpc_target, options=GRPC_OPTIONS)
        self._channels.append(channel)
        return channel

    async def start_trial(self, params: common_pb2.TrialParams) -> str:
        request = orchestrator_pb2.TrialStartRequest(params=params)
        if self._orchestrator is not None:
            trial_id = await self._orchestrator.start_trial(request)
        else:
            assert self._lifecycle is not None
            try:
                reply = await self._lifecycle.StartTrial(request, timeout=self.timeout)
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.UNAVAILABLE:
                    raise EndpointUnreachableError(f"orchestrator at {self._orchestrator_endpoint} is unreachable: {err.details()}") from None
                raise TrialStartError(f"orchestrator at {self._orchestrator_endpoint} refused the trial: {err.code().name}: {err.details()}") from None
            trial_id = reply.trial_id
        if not trial_id:
            raise TrialStartError("the orchestrator did not start the trial (requested id already in use)")
        return trial_id

    async def join(self, trial_id: str, *, actor_name: str = "", actor_class: str = "") -> ClientSession:
        metadata = ((TRIAL_ID, trial_id),)
        if self._orchestrator is not None:
            orchestrator = self._orchestrator
            call: Any = LocalCall(lambda _requests, context: orchestrator.join(context), metadata, "orchestrator")
        else:
            assert self._actor_stub is not None
            call = self._actor_stub.RunTrial(metadata=metadata)
        session = ClientSession(Link(call, "orchestrator"), trial_id, self.timeout)
        await session.join(actor_name=actor_name, actor_class=actor_class)
        return session

    async def terminate(self, trial_id: str) -> None:
        """Hard-terminate a trial this facade no longer follows."""
        if self._orchestrator is not None:
            self._orchestrator.terminate([trial_id], hard=True)
            return
        if self._lifecycle is not None:
            try:
                await self._lifecycle.TerminateTrial(
                    orchestrator_pb2.TerminateTrialRequest(hard_termination=True), metadata=((TRIAL_ID, trial_id),), timeout=self.timeout
                )
            except grpc.aio.AioRpcError as err:
                logger.warning("could not terminate trial %s: %s", trial_id, err.details())

    async def close(self) -> None:
        if self._orchestrator is not None:
            await self._orchestrator.close()
            self._orchestrator = None
        for channel in self._channels:
            await channel.close()
        self._channels.clear()
        if self._host is not None:
            self._host.close()
            self._host = None
