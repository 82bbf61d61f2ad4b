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
from typing import Any, Mapping, Sequence

import grpc
import gymnasium as gym
import numpy as np

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.adapters import EnvHost, EnvironmentServicer
from cogment_gym.codec import decode_object, space_from_proto, space_to_proto
from cogment_gym.datastore.server import TrialRecorder
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

__all__ = ["TrialConnection", "check_render_mode", "datalog_option", "spec_from_spaces", "spec_metadata"]

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
    if isinstance(datalog, str):
        try:
            parsed = parse_endpoint(datalog)
        except ValueError as err:
            raise ValueError(
                f"datalog={datalog!r}: {err}; a string is a datalog endpoint (grpc://host:port), "
                "give a pathlib.Path to record into a directory"
            ) from None
        if parsed.scheme not in ("grpc", "unix"):
            raise ValueError(f"datalog={datalog!r}: a datalog service is reached at grpc:// or unix: endpoints")
        return None, datalog
    raise TypeError(f"datalog must be an endpoint string, a pathlib.Path or a TrialRecorder, got {type(datalog).__name__}")


class TrialConnection:
    """Starts, joins and terminates trials for a facade. Every method runs on the facade's loop."""

    def __init__(
        self,
        *,
        env_id: Any = None,
        make_kwargs: Mapping[str, Any] | None = None,
        environment: str | Sequence[str] | None = None,
        implementation: str = "",
        orchestrator: str | None = None,
        actor_endpoint: str | None = None,
        timeout: float = 30.0,
        spec: env_pb2.EnvSpec | None = None,
        replicas: int = 1,
        api: str | None = None,
        max_agents: int | None = None,
        sub_envs: int = 1,
        frames: bool = False,
        datalog: Any = None,
        security: Security | None = None,
    ) -> None:
        """``replicas`` (embedded mode): host the env under that many implementation names
        (``key``, ``key#1``, ...), each with its own pool, so that a vector facade's sub-env ``i``
        always gets back the env instance it used before (``reset(seed=None)`` then continues
        that instance's generator, as with a local vector env). ``sub_envs``: sub-environments
        per trial (batched trials), for the size of an observation message; ``frames``: every
        observation message carries an rgb_array frame (large, of a size the spec does not say).
        ``datalog``: record every trial (see :func:`datalog_option`).
        ``security``: how channels are dialed (see the module docstring)."""
        self.security = security or NO_SECURITY
        self._call_metadata = self.security.call_metadata
        self.timeout = timeout
        # Deadline of each RPC: None or <= 0 mean the default, as for the session's reads.
        self._rpc_timeout = DEFAULT_TIMEOUT if timeout is None or timeout <= 0 else timeout
        self._sub_envs = sub_envs
        self._frames = frames
        self._spec_override = spec
        self.implementation = implementation
        self._host: EnvHost | None = None
        self._orchestrator: Orchestrator | None = None
        self._channels: list[grpc.aio.Channel] = []
        self._lifecycle: orchestrator_pb2_grpc.TrialLifecycleSPStub | None = None
        self._actor_stub: orchestrator_pb2_grpc.ClientActorSPStub | None = None
        self._env_id = env_id
        self._make_kwargs = dict(make_kwargs or {})
        environments = [environment] if isinstance(environment, str) else list(environment or [])
        if environment is not None and not environments:
            raise TypeError("environment= is an empty list of endpoints")
        if replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {replicas}")
        self._environments = environments
        self._environment = environments[0] if environments else None
        self._replicas = replicas
        # Embedded PettingZoo environments: the API to serve ("aec"/"parallel"), agent slots.
        self._api = api
        self._max_agents = max_agents
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
        # Every environment endpoint (the first is env_endpoint) and every implementation name
        # trials may use (several with replicas > 1); filled by open().
        self.env_endpoints: list[str] = []
        self.implementations: list[str] = []
        self.spec: env_pb2.EnvSpec | None = None
        self._recorder, self.datalog_endpoint = datalog_option(datalog)
        if self._recorder is not None and orchestrator is not None:
            raise TypeError(
                "a remote orchestrator cannot reach a recorder living in this process; serve it "
                "(cogment_gym.datastore.serve_datalog) and pass datalog='grpc://...'"
            )

    async def open(self) -> None:
        """Create what this mode needs and fetch the environment spec."""
        try:
            if self._env_id is not None:
                key = self._env_id if isinstance(self._env_id, str) else getattr(self._env_id, "__name__", "env")
                names = [key] + [f"{key}#{i}" for i in range(1, self._replicas)]
                self._host = EnvHost({name: self._env_id for name in names}, self._make_kwargs, api=self._api, max_agents=self._max_agents)
                self._orchestrator = Orchestrator(connector=Connector(self.security))
                servicer = EnvironmentServicer(self._host)
                self.env_endpoint = self._orchestrator.connector.add_local_environment(key, servicer.RunTrial)
                self.env_endpoints = [self.env_endpoint]
                self.implementation = key
                self.implementations = names
                self.spec = self._host.get(key).spec
                return
            if self._environment is None:  # the constructor refuses this
                raise TypeError("give an environment to run: an env id / factory, or environment='grpc://host:port'")
            await self._discover()
            self.env_endpoint = self._environment
            self.env_endpoints = list(self._environments)
            for endpoint in self.env_endpoints:
                parse_endpoint(endpoint)  # validates
            if self._orchestrator_endpoint is None:
                self._orchestrator = Orchestrator(connector=Connector(self.security))
                channels = [self._orchestrator.connector.channel(endpoint) for endpoint in self.env_endpoints]
            else:
                channels = [self._new_channel(endpoint) for endpoint in self.env_endpoints]
                lifecycle_channel = self._new_channel(self._orchestrator_endpoint)
                self._lifecycle = orchestrator_pb2_grpc.TrialLifecycleSPStub(lifecycle_channel)
                actor_channel = lifecycle_channel if self._actor_endpoint == self._orchestrator_endpoint else self._new_channel(self._actor_endpoint or "")
                self._actor_stub = orchestrator_pb2_grpc.ClientActorSPStub(actor_channel)
                # Now rather than at the first trial: a wrong or dead endpoint is told as such.
                probe_timeout = min(self._rpc_timeout, PROBE_TIMEOUT)
                await check_service(lifecycle_channel, "TrialLifecycleSP", f"orchestrator at {self._orchestrator_endpoint}",
                                    "a Cogment Orchestrator", probe_timeout, self._call_metadata, peer=ORCHESTRATOR)
                if actor_channel is not lifecycle_channel:
                    await check_service(actor_channel, "ClientActorSP", f"orchestrator's client actor endpoint {self._actor_endpoint}",
                                        "a Cogment Orchestrator", probe_timeout, self._call_metadata, peer=ORCHESTRATOR)
            if self._spec_override is not None:
                self.spec = self._spec_override
                self.implementations = [self.implementation]
                return
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
            if self._orchestrator is not None:  # the embedded Orchestrator runs the trials: same host
                for endpoint, spec in zip(self.env_endpoints, specs):
                    local = await self._same_host(endpoint, spec)
                    if local is not None:
                        self._orchestrator.connector.route(endpoint, local)
        except BaseException:
            await self.close()
            raise

    async def _discover(self) -> None:
        """``cogment://discover`` endpoints, looked up in the directory of ``COGMENT_DIRECTORY_ENDPOINT``."""
        context = {IMPLEMENTATION_PROPERTY: self.implementation}
        self._environments = [await resolve_with_default_directory(e, "ENVIRONMENT_SERVICE", context) for e in self._environments]
        self._environment = self._environments[0]
        if self._orchestrator_endpoint is not None:
            self._actor_endpoint = await resolve_with_default_directory(self._actor_endpoint or "", "CLIENT_ACTOR_CONNECTION_SERVICE")
            self._orchestrator_endpoint = await resolve_with_default_directory(self._orchestrator_endpoint, "TRIAL_LIFE_CYCLE_SERVICE")

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
        try:
            parsed = parse_endpoint(local)
            if parsed.scheme != "unix" or not os.path.exists(parsed.address):  # another host's path
                return None
            if self._orchestrator is None:  # a remote Orchestrator: it reaches the service itself
                return None
            channel = self._orchestrator.connector.channel(local)
            there = await self._fetch_spec(channel, local, min(self._rpc_timeout, LOCAL_CHECK_TIMEOUT))
        except (CogmentGymError, OSError) as err:  # EndpointError, unreachable, unknown implementation
            logger.debug("environment service at %s: not using %s: %s", endpoint, local, err)
            return None
        if there.service_id != spec.service_id:  # a stale path, now another service's
            return None
        logger.debug("environment service at %s: trials run over %s", endpoint, local)
        return local

    def _new_channel(self, endpoint: str) -> grpc.aio.Channel:
        channel = new_channel(parse_endpoint(endpoint).grpc_target, self.security, GRPC_OPTIONS)
        self._channels.append(channel)
        return channel

    async def start_trial(self, params: common_pb2.TrialParams) -> str:
        if self._recorder is not None and not self.datalog_endpoint and self._orchestrator is not None:
            recorder = self._recorder
            self.datalog_endpoint = self._orchestrator.connector.add_local_datalog(recorder.name, recorder.run_trial_datalog)
        if self.datalog_endpoint and not params.datalog.endpoint:
            params = self._recorded(params)
        request = orchestrator_pb2.TrialStartRequest(params=params)
        if self._orchestrator is not None:
            trial_id = await self._orchestrator.start_trial(request)
        else:
            if self._lifecycle is None:
                raise NotOpenError("the trial connection is not open (no orchestrator stub yet): open() it first")
            try:
                reply = await self._lifecycle.StartTrial(request, timeout=self._rpc_timeout, metadata=self._call_metadata)
            except grpc.aio.AioRpcError as err:
                if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise rpc_failure(err, f"orchestrator at {self._orchestrator_endpoint}", "a Cogment Orchestrator",
                                      self._rpc_timeout, peer=ORCHESTRATOR) from None
                if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                    raise AuthenticationError(f"orchestrator at {self._orchestrator_endpoint} refused the call: {err.details()}") from None
                raise TrialStartError(f"orchestrator at {self._orchestrator_endpoint} refused the trial: {err.code().name}: {err.details()}") from None
            trial_id = reply.trial_id
        if not trial_id:
            raise TrialStartError("the orchestrator did not start the trial (requested id already in use)")
        return trial_id

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

    async def join(self, trial_id: str, *, actor_name: str = "", actor_class: str = "") -> ClientSession:
        metadata = ((TRIAL_ID, trial_id),)
        if self._orchestrator is not None:
            orchestrator = self._orchestrator
            call: Any = LocalCall(lambda _requests, context: orchestrator.join(context), metadata, "orchestrator")
        else:
            if self._actor_stub is None:
                raise NotOpenError("the trial connection is not open (no orchestrator stub yet): open() it first")
            call = self._actor_stub.RunTrial(metadata=metadata + self._call_metadata)
        where = "orchestrator" if self._orchestrator is not None else f"orchestrator at {self._actor_endpoint}"
        session = ClientSession(Link(call, where, ORCHESTRATOR), trial_id, self.timeout)
        await session.join(actor_name=actor_name, actor_class=actor_class)
        return session

    def add_local_actor(self, name: str, run_trial: Any) -> str:
        """Register an in-process ServiceActorSP.RunTrial with the embedded Orchestrator; returns
        its ``local://`` endpoint. Raises TypeError with a remote Orchestrator (it cannot reach
        into this process)."""
        if self._orchestrator is None:
            raise TypeError(
                "a policy living in this process can only play with the embedded orchestrator; serve it "
                "(cogment_gym.actors.serve_actor) and give its grpc:// endpoint instead"
            )
        return self._orchestrator.connector.add_local_actor(name, run_trial)

    async def terminate(self, trial_id: str) -> None:
        """Hard-terminate a trial this facade no longer follows."""
        if self._orchestrator is not None:
            self._orchestrator.terminate([trial_id], hard=True)
            return
        if self._lifecycle is not None:
            try:
                await self._lifecycle.TerminateTrial(
                    orchestrator_pb2.TerminateTrialRequest(hard_termination=True), metadata=((TRIAL_ID, trial_id),) + self._call_metadata,
                    timeout=self._rpc_timeout,
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
        # The stubs hold the channels: grpc.aio keeps its poller thread and descriptors while a
        # channel object lives, closed or not (a closed facade kept in a list would hold them).
        self._lifecycle = self._actor_stub = None
        if self._host is not None:
            self._host.close()
            self._host = None
