"""Where a facade's trials run: an embedded Orchestrator (default) or a remote one.

- Embedded environment and Orchestrator (``env_id`` given): everything in this process, connected
  directly; no port is opened.
- Remote environment service (``environment="grpc://..."``): embedded Orchestrator, the env
  reached over gRPC. A list of endpoints (services of the same environment) is accepted too:
  every one must serve the same spaces, and a facade chooses one per trial. A service on this
  host that announces a unix socket (``EnvSpec.local_endpoint``, ``serve(local_socket=True)``,
  the default) is reached over that socket once it proves to be the same service (its
  ``service_id``); ``COGMENT_GYM_LOCAL_SOCKET=0`` keeps TCP.
- Remote Orchestrator (``orchestrator="grpc://..."``): trials are started with
  ``TrialLifecycleSP.StartTrial`` and joined through ``ClientActorSP.RunTrial``, as any Cogment
  client would (works with the real Cogment Orchestrator).

``security`` (:class:`~cogment_gym.protocol.security.Security`) says how every channel of this
connection is dialed (the env services, the remote Orchestrator, and the embedded Orchestrator's
channels to the env services): TLS, a client certificate, a token sent with every call.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol, Sequence, runtime_checkable

import grpc
import gymnasium as gym
import numpy as np

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.adapters import EnvHost, EnvironmentServicer
from cogment_gym.codec import decode_object, space_from_proto, space_to_proto
from cogment_gym.datastore.server import TrialRecorder
from cogment_gym.envs.options import ConnectionOptions
from cogment_gym.envs.session import ClientSession
from cogment_gym.errors import AuthenticationError, CogmentGymError, NotOpenError, TrialStartError, UnknownImplementationError, WrongServiceError
from cogment_gym.orchestrator import Orchestrator
from cogment_gym.orchestrator.transports import Connector
from cogment_gym.protocol import LocalCall, parse_endpoint
from cogment_gym.protocol.directory import IMPLEMENTATION_PROPERTY, resolve_with_default_directory
from cogment_gym.protocol.deadlines import DEFAULT_TIMEOUT
from cogment_gym.protocol.failures import ENVIRONMENT, ORCHESTRATOR
from cogment_gym.protocol.links import GRPC_OPTIONS, Link, grpc_error
from cogment_gym.protocol.metadata import TRIAL_ID
from cogment_gym.protocol.probing import PROBE_TIMEOUT, check_service, rpc_failure
from cogment_gym.protocol.security import NO_SECURITY, Security, new_channel

__all__ = [
    "EmbeddedOrchestratorConnection",
    "RemoteOrchestratorConnection",
    "TrialConnection",
    "check_render_mode",
    "datalog_option",
    "make_connection",
    "spec_from_spaces",
    "spec_metadata",
]

logger = logging.getLogger(__name__)

# Seconds to wait for a service's answer on its announced unix socket before keeping TCP.
LOCAL_CHECK_TIMEOUT = 5.0
# Observation messages above this many bytes stay on TCP: measured here, a unix socket is 5-13%
# faster than loopback TCP for 1 kB messages, even for 21 kB, and 5-7% slower for 677 kB
# (32 uint8[84,84,3] observations in a batched trial).
LOCAL_SOCKET_MAX_BYTES = 64 * 1024


def _value_bytes(space_msg: Any) -> int:
    """Bytes of the numeric data of one value of a described space (0 when unknown)."""
    try:
        space = space_from_proto(space_msg)
    except CogmentGymError:
        return 0
    return _space_bytes(space)


def _space_bytes(space: gym.Space[Any]) -> int:
    if isinstance(space, gym.spaces.Dict):
        return sum(_space_bytes(s) for s in space.spaces.values())
    if isinstance(space, (gym.spaces.Tuple, gym.spaces.OneOf)):
        return sum(_space_bytes(s) for s in space.spaces)
    shape, dtype = getattr(space, "shape", None), getattr(space, "dtype", None)
    if shape is None or dtype is None:  # Text, Sequence, Graph: sizes vary
        return 0
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def spec_from_spaces(
    observation_space: gym.Space[Any] | None,
    action_space: gym.Space[Any] | None,
    *,
    environment: Any,
    implementation: str,
    actor_class: str,
) -> env_pb2.EnvSpec | None:
    """The spec of a remote single-agent environment that serves no EnvSpecSP, from the spaces
    the facade was given (None when it was given none)."""
    if (observation_space is None) != (action_space is None):
        raise TypeError("give both observation_space and action_space, or neither")
    if observation_space is None or action_space is None:
        return None
    if environment is None:
        raise TypeError("observation_space/action_space describe a remote environment: also pass environment='grpc://...'")
    return env_pb2.EnvSpec(
        implementation=implementation,
        actors=[
            env_pb2.ActorSpec(
                name=actor_class, actor_class=actor_class,
                observation_space=space_to_proto(observation_space), action_space=space_to_proto(action_space),
            )
        ],
    )


def spec_metadata(spec: env_pb2.EnvSpec) -> dict[str, Any]:
    """A facade's ``metadata``: the served env's own, with the spec's ``render_modes``."""
    metadata = decode_object(spec.metadata, "metadata") if spec.HasField("metadata") else {}
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    metadata["render_modes"] = list(spec.render_modes)
    return metadata


def check_render_mode(spec: env_pb2.EnvSpec, render_mode: str | None) -> None:
    """ValueError unless ``render_mode`` is None or one the served env supports."""
    if render_mode is not None and render_mode not in spec.render_modes:
        raise ValueError(f"render_mode={render_mode!r} is not supported by {spec.implementation!r}; it supports {list(spec.render_modes)}")


def datalog_option(datalog: Any) -> tuple[TrialRecorder | None, str]:
    """A facade's ``datalog=``: ``(recorder, endpoint)``.

    Takes a value :class:`~cogment_gym.envs.options.ConnectionOptions` checked.

    - None: no recording.
    - a string: the endpoint of a datalog service (``grpc://``, ``unix:``), e.g. a
      :func:`~cogment_gym.datastore.serve_datalog` or the real Cogment datastore; it goes into
      every trial's ``datalog.endpoint``, for any Orchestrator.
    - a :class:`~cogment_gym.datastore.TrialRecorder`, or a ``pathlib.Path`` / ``os.PathLike``
      (a directory, a recorder is made for it): recorded in-process, embedded Orchestrator only.
    """
    if datalog is None:
        return None, ""
    if isinstance(datalog, TrialRecorder):
        return datalog, ""
    if isinstance(datalog, os.PathLike):
        return TrialRecorder(datalog), ""
    if isinstance(datalog, str):  # its form was checked with the options (ConnectionOptions)
        return None, datalog
    raise TypeError(f"datalog must be an endpoint string, a pathlib.Path or a TrialRecorder, got {type(datalog).__name__}")


@runtime_checkable
class TrialConnection(Protocol):
    """Starts, joins and terminates trials for a facade; every method runs on the facade's loop.

    Two kinds, chosen once by :func:`make_connection` from the options:
    :class:`EmbeddedOrchestratorConnection` (the default: this process runs the Orchestrator, the
    env in it too or reached over gRPC) and :class:`RemoteOrchestratorConnection`
    (``orchestrator="grpc://..."``: trials of an Orchestrator elsewhere, e.g. the real Cogment one).
    """

    security: Security
    timeout: float
    implementation: str
    #: The first environment endpoint, every one, and every implementation name trials may use
    #: (several with replicas > 1); filled by :meth:`open`.
    env_endpoint: str
    env_endpoints: list[str]
    implementations: list[str]
    spec: env_pb2.EnvSpec | None
    datalog_endpoint: str

    @property
    def spec_fetched(self) -> bool:
        """The spec came from the env itself (made here, or a cogment_gym service's GetSpec),
        not from spaces the facade was given for a service that serves none."""

    async def open(self) -> None:
        """Create what this connection needs and fetch the environment spec."""

    async def start_trial(self, params: common_pb2.TrialParams) -> str:
        """Start a trial; its id."""

    async def join(self, trial_id: str, *, actor_name: str = "", actor_class: str = "") -> ClientSession:
        """Join ``trial_id`` as a client actor."""

    def add_local_actor(self, name: str, run_trial: Any) -> str:
        """Register an in-process ServiceActorSP.RunTrial; its ``local://`` endpoint."""

    async def terminate(self, trial_id: str) -> None:
        """Hard-terminate a trial this facade no longer follows."""

    async def close(self) -> None:
        """End what :meth:`open` created."""


def make_connection(
    options: ConnectionOptions,
    *,
    replicas: int = 1,
    api: str | None = None,
    max_agents: int | None = None,
    sub_envs: int = 1,
) -> TrialConnection:
    """The connection ``options`` ask for (not opened yet).

    ``replicas`` (embedded env): host the env under that many implementation names (``key``,
    ``key#1``, ...), each with its own pool, so that a vector facade's sub-env ``i`` always gets
    back the env instance it used before (``reset(seed=None)`` then continues that instance's
    generator, as with a local vector env). ``api`` / ``max_agents``: embedded PettingZoo envs,
    the API to serve ("aec"/"parallel") and the agent slots. ``sub_envs``: sub-environments per
    trial (batched trials), for the size of an observation message.
    """
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    if options.orchestrator is not None:
        return RemoteOrchestratorConnection(options, sub_envs=sub_envs)
    return EmbeddedOrchestratorConnection(options, replicas=replicas, api=api, max_agents=max_agents, sub_envs=sub_envs)


class _Connection:
    """What both connections share: options, the spec fetch, discovery, channels, datalog."""

    def __init__(self, options: ConnectionOptions, *, sub_envs: int = 1) -> None:
        self.options = options
        self.security = options.security or NO_SECURITY
        self._call_metadata = self.security.call_metadata
        self.timeout = options.timeout
        # Deadline of each RPC: None or <= 0 mean the default, as for the session's reads.
        self._rpc_timeout = DEFAULT_TIMEOUT if options.timeout is None or options.timeout <= 0 else options.timeout
        self._sub_envs = sub_envs
        # Every observation message carries an rgb_array frame (large, of a size the spec does not say).
        self._frames = options.render_mode == "rgb_array"
        self._spec_override = spec_from_spaces(
            options.observation_space, options.action_space, environment=options.environment,
            implementation=options.implementation, actor_class=options.actor_class,
        )
        self.implementation = options.implementation
        self._channels: list[grpc.aio.Channel] = []
        self._environments = options.endpoints
        self.env_endpoint = ""
        self.env_endpoints: list[str] = []
        self.implementations: list[str] = []
        self.spec: env_pb2.EnvSpec | None = None
        self._recorder, self.datalog_endpoint = datalog_option(options.datalog)

    @property
    def spec_fetched(self) -> bool:
        return self._spec_override is None

    async def _remote_specs(self, channels: Sequence[grpc.aio.Channel]) -> list[env_pb2.EnvSpec]:
        """The spec of every env service (the same for all, or an error); none with an override."""
        if self._spec_override is not None:
            self.spec = self._spec_override
            self.implementations = [self.implementation]
            return []
        specs = [await self._fetch_spec(channels[0], self.env_endpoint)]
        self.spec = specs[0]
        for channel, endpoint in zip(channels[1:], self.env_endpoints[1:]):
            other = await self._fetch_spec(channel, endpoint)
            if other.implementation != self.spec.implementation or list(other.actors) != list(self.spec.actors):
                raise CogmentGymError(
                    f"the environment services at {self.env_endpoint} and {endpoint} differ: implementation "
                    f"{self.spec.implementation!r} vs {other.implementation!r}, or their actors' spaces"
                )
            specs.append(other)
        self.implementation = self.spec.implementation
        self.implementations = [self.implementation]
        return specs

    async def _discover_environments(self) -> None:
        """``cogment://discover`` env endpoints, looked up in the directory of ``COGMENT_DIRECTORY_ENDPOINT``."""
        context = {IMPLEMENTATION_PROPERTY: self.implementation}
        self._environments = [await resolve_with_default_directory(e, "ENVIRONMENT_SERVICE", context) for e in self._environments]
        self.env_endpoint = self._environments[0]
        self.env_endpoints = list(self._environments)
        for endpoint in self.env_endpoints:
            parse_endpoint(endpoint)  # validates

    async def _fetch_spec(self, channel: grpc.aio.Channel, endpoint: str, timeout: float | None = None) -> env_pb2.EnvSpec:
        """``GetSpec`` of ``endpoint`` (within ``timeout`` s, default: the RPC deadline); typed errors."""
        try:
            spec: env_pb2.EnvSpec = await env_pb2_grpc.EnvSpecSPStub(channel).GetSpec(
                env_pb2.GetSpecRequest(implementation=self.implementation), timeout=timeout or self._rpc_timeout,
                metadata=self._call_metadata,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise WrongServiceError(
                    f"the environment service at {endpoint} does not describe its spaces (no "
                    "cogment_gym.v1.EnvSpecSP: not a cogment_gym server); pass observation_space= and "
                    "action_space= to describe them"
                ) from None
            if err.code() == grpc.StatusCode.NOT_FOUND:  # the service answered: it is no lost peer
                raise UnknownImplementationError(f"environment service at {endpoint}: {err.details()}") from None
            if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):  # EnvironmentUnreachableError, PeerTimeoutError
                raise rpc_failure(err, f"environment service at {endpoint}", "a cogment_gym environment service",
                                  timeout or self._rpc_timeout, peer=ENVIRONMENT) from None
            raise grpc_error(err, f"environment service at {endpoint}", peer=ENVIRONMENT) from None
        return spec

    def _new_channel(self, endpoint: str) -> grpc.aio.Channel:
        channel = new_channel(parse_endpoint(endpoint).grpc_target, self.security, GRPC_OPTIONS)
        self._channels.append(channel)
        return channel

    def _request(self, params: common_pb2.TrialParams) -> orchestrator_pb2.TrialStartRequest:
        if self.datalog_endpoint and not params.datalog.endpoint:
            params = self._recorded(params)
        return orchestrator_pb2.TrialStartRequest(params=params)

    def _recorded(self, params: common_pb2.TrialParams) -> common_pb2.TrialParams:
        """``params`` streamed to the datalog, each actor's spaces in its config (when it has
        none), so that the recorded trial describes itself."""
        recorded = common_pb2.TrialParams()
        recorded.CopyFrom(params)
        recorded.datalog.endpoint = self.datalog_endpoint
        spec_actors = {a.name: a for a in self.spec.actors} if self.spec is not None else {}
        by_class = {a.actor_class: a for a in self.spec.actors} if self.spec is not None else {}
        for actor in recorded.actors:
            if actor.HasField("config"):
                continue
            described = spec_actors.get(actor.name) or by_class.get(actor.actor_class)
            if described is not None and described.HasField("observation_space"):
                config = env_pb2.ActorConfig(observation_space=described.observation_space, action_space=described.action_space)
                actor.config.content = config.SerializeToString()
        return recorded

    async def _close_channels(self) -> None:
        for channel in self._channels:
            await channel.close()
        self._channels.clear()


class EmbeddedOrchestratorConnection(_Connection):
    """Trials run by an Orchestrator in this process.

    - ``env`` given: the env is hosted in this process too (an :class:`~cogment_gym.adapters.EnvHost`,
      its calls inline on the loop unless ``env_threads=True``), connected directly; no port is opened.
    - ``environment="grpc://..."``: the env service reached over gRPC (over its unix socket when it
      proves to be on this host).
    """

    def __init__(self, options: ConnectionOptions, *, replicas: int = 1, api: str | None = None,
                 max_agents: int | None = None, sub_envs: int = 1) -> None:
        super().__init__(options, sub_envs=sub_envs)
        self._replicas = replicas
        self._api = api if options.embedded_env else None
        self._max_agents = max_agents
        self._host: EnvHost | None = None
        self._orchestrator: Orchestrator | None = None

    async def open(self) -> None:
        try:
            self._orchestrator = Orchestrator(connector=Connector(self.security))
            if self.options.embedded_env:
                self._open_host(self._orchestrator)
                return
            await self._discover_environments()
            channels = [self._orchestrator.connector.channel(endpoint) for endpoint in self.env_endpoints]
            specs = await self._remote_specs(channels)
            for endpoint, spec in zip(self.env_endpoints, specs):  # the Orchestrator runs here: same host?
                local = await self._same_host(endpoint, spec)
                if local is not None:
                    self._orchestrator.connector.route(endpoint, local)
        except BaseException:
            await self.close()
            raise

    def _open_host(self, orchestrator: Orchestrator) -> None:
        env_id = self.options.env
        if env_id is None:
            raise TypeError("an embedded environment needs env= (a Gymnasium id or env factory)")
        key = env_id if isinstance(env_id, str) else getattr(env_id, "__name__", "env")
        names = [key] + [f"{key}#{i}" for i in range(1, self._replicas)]
        self._host = EnvHost({name: env_id for name in names}, self.options.make_kwargs, api=self._api,
                             max_agents=self._max_agents, env_threads=self.options.env_threads)
        servicer = EnvironmentServicer(self._host)
        self.env_endpoint = orchestrator.connector.add_local_environment(key, servicer.RunTrial)
        self.env_endpoints = [self.env_endpoint]
        self.implementation = key
        self.implementations = names
        self.spec = self._host.get(key).spec

    async def _same_host(self, endpoint: str, spec: env_pb2.EnvSpec) -> str | None:
        """The service's own unix socket (``EnvSpec.local_endpoint``), if this process can reach
        it and the service there has the same ``service_id``; else None. The embedded
        Orchestrator then reaches ``endpoint`` through it, skipping loopback TCP
        (docs/performance.md)."""
        local = spec.local_endpoint
        if not local or not spec.service_id or os.environ.get("COGMENT_GYM_LOCAL_SOCKET") == "0":
            return None
        if self.security.dials_tls:  # a service serving TLS offers no socket; keep what was asked for
            return None
        size = self._sub_envs * max((_value_bytes(a.observation_space) for a in spec.actors), default=0)
        if size > LOCAL_SOCKET_MAX_BYTES or self._frames:  # large messages move faster over loopback TCP
            logger.debug("environment service at %s: %d-byte observations stay on TCP", endpoint, size)
            return None
        orchestrator = self._orchestrator
        if orchestrator is None:
            return None
        try:
            parsed = parse_endpoint(local)
            if parsed.scheme != "unix" or not os.path.exists(parsed.address):  # another host's path
                return None
            channel = orchestrator.connector.channel(local)
            there = await self._fetch_spec(channel, local, min(self._rpc_timeout, LOCAL_CHECK_TIMEOUT))
        except (CogmentGymError, OSError) as err:  # EndpointError, unreachable, unknown implementation
            logger.debug("environment service at %s: not using %s: %s", endpoint, local, err)
            return None
        if there.service_id != spec.service_id:  # a stale path, now another service's
            return None
        logger.debug("environment service at %s: trials run over %s", endpoint, local)
        return local

    def _running(self) -> Orchestrator:
        if self._orchestrator is None:
            raise CogmentGymError("the connection is closed (or was never opened)")
        return self._orchestrator

    async def start_trial(self, params: common_pb2.TrialParams) -> str:
        orchestrator = self._running()
        if self._recorder is not None and not self.datalog_endpoint:
            recorder = self._recorder
            self.datalog_endpoint = orchestrator.connector.add_local_datalog(recorder.name, recorder.run_trial_datalog)
        trial_id = await orchestrator.start_trial(self._request(params))
        if not trial_id:
            raise TrialStartError("the orchestrator did not start the trial (requested id already in use)")
        return trial_id

    async def join(self, trial_id: str, *, actor_name: str = "", actor_class: str = "") -> ClientSession:
        orchestrator = self._running()
        call: Any = LocalCall(lambda _requests, context: orchestrator.join(context), ((TRIAL_ID, trial_id),), "orchestrator")
        session = ClientSession(Link(call, "orchestrator", ORCHESTRATOR), trial_id, self.timeout)
        await session.join(actor_name=actor_name, actor_class=actor_class)
        return session

    def add_local_actor(self, name: str, run_trial: Any) -> str:
        """Register an in-process ServiceActorSP.RunTrial with the embedded Orchestrator; returns
        its ``local://`` endpoint."""
        return self._running().connector.add_local_actor(name, run_trial)

    async def terminate(self, trial_id: str) -> None:
        if self._orchestrator is not None:
            self._orchestrator.terminate([trial_id], hard=True)

    async def close(self) -> None:
        if self._orchestrator is not None:
            await self._orchestrator.close()
            self._orchestrator = None
        await self._close_channels()
        if self._host is not None:
            self._host.close()
            self._host = None


class RemoteOrchestratorConnection(_Connection):
    """Trials of an Orchestrator elsewhere (``orchestrator="grpc://..."``): started with
    ``TrialLifecycleSP.StartTrial`` and joined through ``ClientActorSP.RunTrial``, as any Cogment
    client would (works with the real Cogment Orchestrator)."""

    def __init__(self, options: ConnectionOptions, *, sub_envs: int = 1) -> None:
        super().__init__(options, sub_envs=sub_envs)
        if options.orchestrator is None:
            raise TypeError("RemoteOrchestratorConnection needs orchestrator='grpc://...'")
        self._orchestrator_endpoint: str = options.orchestrator
        self._actor_endpoint: str = options.actor_endpoint or options.orchestrator
        self._lifecycle: orchestrator_pb2_grpc.TrialLifecycleSPStub | None = None
        self._actor_stub: orchestrator_pb2_grpc.ClientActorSPStub | None = None

    async def open(self) -> None:
        try:
            await self._discover_environments()
            self._actor_endpoint = await resolve_with_default_directory(self._actor_endpoint, "CLIENT_ACTOR_CONNECTION_SERVICE")
            self._orchestrator_endpoint = await resolve_with_default_directory(self._orchestrator_endpoint, "TRIAL_LIFE_CYCLE_SERVICE")
            channels = [self._new_channel(endpoint) for endpoint in self.env_endpoints]
            lifecycle_channel = self._new_channel(self._orchestrator_endpoint)
            self._lifecycle = orchestrator_pb2_grpc.TrialLifecycleSPStub(lifecycle_channel)
            actor_channel = lifecycle_channel if self._actor_endpoint == self._orchestrator_endpoint else self._new_channel(self._actor_endpoint)
            self._actor_stub = orchestrator_pb2_grpc.ClientActorSPStub(actor_channel)
            # Now rather than at the first trial: a wrong or dead endpoint is told as such.
            probe_timeout = min(self._rpc_timeout, PROBE_TIMEOUT)
            await check_service(lifecycle_channel, "TrialLifecycleSP", f"orchestrator at {self._orchestrator_endpoint}",
                                "a Cogment Orchestrator", probe_timeout, self._call_metadata, peer=ORCHESTRATOR)
            if actor_channel is not lifecycle_channel:
                await check_service(actor_channel, "ClientActorSP", f"orchestrator's client actor endpoint {self._actor_endpoint}",
                                    "a Cogment Orchestrator", probe_timeout, self._call_metadata, peer=ORCHESTRATOR)
            await self._remote_specs(channels)
        except BaseException:
            await self.close()
            raise

    async def start_trial(self, params: common_pb2.TrialParams) -> str:
        if self._lifecycle is None:
            raise CogmentGymError("the connection is closed (or was never opened)")
        try:
            reply = await self._lifecycle.StartTrial(self._request(params), timeout=self._rpc_timeout, metadata=self._call_metadata)
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise rpc_failure(err, f"orchestrator at {self._orchestrator_endpoint}", "a Cogment Orchestrator",
                                  self._rpc_timeout, peer=ORCHESTRATOR) from None
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise AuthenticationError(f"orchestrator at {self._orchestrator_endpoint} refused the call: {err.details()}") from None
            raise TrialStartError(f"orchestrator at {self._orchestrator_endpoint} refused the trial: {err.code().name}: {err.details()}") from None
        if not reply.trial_id:
            raise TrialStartError("the orchestrator did not start the trial (requested id already in use)")
        return str(reply.trial_id)

    async def join(self, trial_id: str, *, actor_name: str = "", actor_class: str = "") -> ClientSession:
        if self._actor_stub is None:
            raise CogmentGymError("the connection is closed (or was never opened)")
        call = self._actor_stub.RunTrial(metadata=((TRIAL_ID, trial_id),) + self._call_metadata)
        session = ClientSession(Link(call, f"orchestrator at {self._actor_endpoint}", ORCHESTRATOR), trial_id, self.timeout)
        await session.join(actor_name=actor_name, actor_class=actor_class)
        return session

    def add_local_actor(self, name: str, run_trial: Any) -> str:
        """Raises TypeError: a remote Orchestrator cannot reach into this process."""
        raise TypeError(
            "a policy living in this process can only play with the embedded orchestrator; serve it "
            "(cogment_gym.actors.serve_actor) and give its grpc:// endpoint instead"
        )

    async def terminate(self, trial_id: str) -> None:
        if self._lifecycle is None:
            return
        try:
            await self._lifecycle.TerminateTrial(
                orchestrator_pb2.TerminateTrialRequest(hard_termination=True), metadata=((TRIAL_ID, trial_id),) + self._call_metadata,
                timeout=self._rpc_timeout,
            )
        except grpc.aio.AioRpcError as err:
            logger.warning("could not terminate trial %s: %s", trial_id, err.details())

    async def close(self) -> None:
        await self._close_channels()
        # The stubs hold the channels: grpc.aio keeps its poller thread and descriptors while a
        # channel object lives, closed or not (a closed facade kept in a list would hold them).
        self._lifecycle = self._actor_stub = None
