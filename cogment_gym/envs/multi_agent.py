"""The client side of multi-agent trials, shared by the PettingZoo facades and ``CogmentEnv``.

A facade plays some agents of a served multi-agent environment as client actors of one trial
(all of them for a training loop that controls every agent); the other agents are played by
service actors (:class:`ServiceActor`: policies served elsewhere, or Python policies run in this
process by the embedded Orchestrator). Each tick, every client actor of the facade sends one
action (an empty one when its agent does not act: Cogment ticks are lock-step) and receives its
agent's payload (:class:`~cogment_gym.codec.payloads.AgentTick`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

import gymnasium as gym

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.actors.policy import is_trial_policy_class
from cogment_gym.actors.service import ServiceActorServicer
from cogment_gym.codec import encode_object, space_from_proto
from cogment_gym.codec.payloads import MISSING, AgentSpaces, AgentTick, action_content
from cogment_gym.codec.payloads.agents import read_payload
from cogment_gym.envs.connection import TrialConnection
from cogment_gym.envs.session import ClientSession
from cogment_gym.errors import CogmentGymError, NotOpenError
from cogment_gym.protocol import CLIENT_ENDPOINT

__all__ = ["MultiAgentDriver", "ServiceActor", "TickData"]

logger = logging.getLogger(__name__)


@dataclass
class ServiceActor:
    """An agent played by a service actor rather than by the facade.

    Args:
        endpoint: the actor service (``grpc://host:port``, e.g. a
            :func:`cogment_gym.actors.serve_actor` server), or a Python policy
            (``policy(observation, context) -> action`` or a ``TrialPolicy`` subclass) that the
            embedded Orchestrator runs in this process.
        implementation: which policy of that service (Cogment ``implementation``).
        settings: ``ActorConfig.settings`` for the policy (e.g. ``{"seed": 3}``).
        optional: the trial goes on without it when it is missing (crashed, too slow).
        response_timeout: seconds it has to answer each tick (0: no limit).
        default_action: an action of the agent's space, used when an optional actor is missing.
        initial_connection_timeout: seconds it has to answer its init (0: no limit).
    """

    endpoint: Any
    implementation: str = ""
    settings: Any = None
    optional: bool = False
    response_timeout: float = 0.0
    default_action: Any = None
    initial_connection_timeout: float = 0.0


# Seconds a facade waits for END after a trial's final observation.
END_WAIT = 2.0

ServiceActors = Mapping[str, Union[ServiceActor, str, Callable[..., Any]]]


class TickData:
    """One tick as the facade's actors saw it: each controlled actor's decoded payload."""

    __slots__ = ("ticks", "final", "agents", "step_agents", "agent_selection", "state", "frame")

    def __init__(self, ticks: dict[str, AgentTick], final: bool) -> None:
        self.ticks = ticks
        self.final = final
        first = next(iter(ticks.values()))
        self.agents = first.agents
        self.step_agents = first.step_agents
        self.agent_selection = first.agent_selection
        self.state: Any = None
        self.frame: Any = None
        for tick in ticks.values():
            if tick.frame is not None:
                self.frame = tick.frame
            if tick.state is not MISSING:
                self.state = tick.state


class MultiAgentDriver:
    """Starts, steps and ends the trials of one facade. Every coroutine runs on its loop.

    Args:
        connection: where trials run (opened).
        controlled: the actors (agent ids, or slot names) the facade plays, in spec order.
        service_actors: actor name -> who plays it.
        state: ask for ``env.state()`` each tick (in the first controlled actor's payload).
    """

    def __init__(
        self,
        connection: TrialConnection,
        controlled: Sequence[str],
        service_actors: ServiceActors,
        *,
        state: bool = False,
    ) -> None:
        spec = connection.spec
        if spec is None:
            raise NotOpenError("the trial connection is not open (no environment spec yet): open() it first")
        self.connection = connection
        self.spec = spec
        # This facade's name for its env instance on the service (EnvConfig.instance_key).
        self.instance_key = uuid.uuid4().hex
        self.names = [a.name for a in spec.actors]
        self.classes = {a.name: a.actor_class for a in spec.actors}
        self.controlled = list(controlled)
        self.services: dict[str, ServiceActor] = {
            name: who if isinstance(who, ServiceActor) else ServiceActor(endpoint=who) for name, who in service_actors.items()
        }
        unknown = [n for n in [*self.controlled, *self.services] if n not in self.classes]
        if unknown:
            raise ValueError(f"{unknown} are not agents of {spec.implementation!r}; its actors are {self.names}")
        both = set(self.controlled) & set(self.services)
        if both:
            raise ValueError(f"{sorted(both)} are both played by the facade and by service actors")
        missing = [n for n in self.names if n not in self.controlled and n not in self.services]
        if missing:
            raise ValueError(f"nobody plays {missing}: give them service actors")
        if not self.controlled:
            raise ValueError("the facade plays no agent: every agent has a service actor")
        self.spaces = AgentSpaces()
        for actor in spec.actors:
            if actor.HasField("observation_space"):
                self.spaces.set(actor.name, space_from_proto(actor.observation_space), space_from_proto(actor.action_space))
        self.state_space: gym.Space[Any] | None = space_from_proto(spec.state_space) if spec.HasField("state_space") else None
        self.want_state = state and self.state_space is not None
        self.sessions: dict[str, ClientSession] = {}
        self.trial_id = ""
        self._endpoints = {name: self._endpoint_of(name, who) for name, who in self.services.items()}

    def _endpoint_of(self, name: str, who: ServiceActor) -> str:
        endpoint = who.endpoint
        if isinstance(endpoint, str):
            return endpoint
        if callable(endpoint) or is_trial_policy_class(endpoint):
            servicer = ServiceActorServicer({f"policy-{name}": endpoint})
            return self.connection.add_local_actor(f"actor-{name}", servicer.RunTrial)
        raise TypeError(f"service actor of {name!r}: expected an endpoint or a policy, got {endpoint!r}")

    # ------------------------------------------------------------------ params

    def params(self, *, seed: int | None, options: dict[str, Any] | None, render_mode: str | None, max_steps: int) -> common_pb2.TrialParams:
        config = env_pb2.EnvConfig(render_mode=render_mode or "", instance_key=self.instance_key)
        # Rewards are read from the payloads; service actors may want Reward messages (datalog, SDK).
        config.omit_reward_messages = not self.services
        if seed is not None:
            config.seed = int(seed)
        if options is not None:
            config.options.CopyFrom(encode_object(options, "options"))
        if self.want_state or render_mode in ("rgb_array", "ansi"):
            config.state_actors.append(self.controlled[0])
        actors = []
        for name in self.names:
            actor_class = self.classes[name]
            who = self.services.get(name)
            if who is None:
                actors.append(common_pb2.ActorParams(name=name, actor_class=actor_class, endpoint=CLIENT_ENDPOINT))
                continue
            actor_config = env_pb2.ActorConfig()
            if who.settings is not None:
                actor_config.settings.CopyFrom(encode_object(who.settings, "settings"))
            action_space = None
            if name in self.spaces:
                actor_config.observation_space.CopyFrom(space_to_proto_of(self.spec, name, "observation_space"))
                actor_config.action_space.CopyFrom(space_to_proto_of(self.spec, name, "action_space"))
                action_space = self.spaces.action_space(name)
            params = common_pb2.ActorParams(
                name=name, actor_class=actor_class, endpoint=self._endpoints[name], implementation=who.implementation,
                config=common_pb2.SerializedMessage(content=actor_config.SerializeToString()),
                optional=who.optional, response_timeout=who.response_timeout,
                initial_connection_timeout=who.initial_connection_timeout,
            )
            if who.default_action is not None:
                params.default_action.content = action_content(action_space, who.default_action, f"default action of {name!r}")
            actors.append(params)
        return common_pb2.TrialParams(
            environment=common_pb2.EnvironmentParams(
                name="env", endpoint=self.connection.env_endpoint, implementation=self.connection.implementation,
                config=common_pb2.SerializedMessage(content=config.SerializeToString()),
            ),
            actors=actors,
            max_steps=max_steps,
        )

    # ------------------------------------------------------------------ trial

    async def start(self, params: common_pb2.TrialParams) -> TickData:
        """Start a trial, join it with every controlled actor, return the first tick."""
        await self.drop()
        self.spaces.new_episode()
        connection = self.connection
        trial_id = self.trial_id = await connection.start_trial(params)
        joins = [asyncio.ensure_future(connection.join(trial_id, actor_name=name)) for name in self.controlled]
        try:
            await asyncio.wait(joins)
            for name, join in zip(self.controlled, joins):
                if not join.cancelled() and join.exception() is None:
                    self.sessions[name] = join.result()
            for join in joins:
                if join.exception() is not None:
                    raise join.exception()  # type: ignore[misc]
            return await self._receive()
        except BaseException:
            for join in joins:
                join.cancel()
            await self._abandon()
            raise

    async def step(self, contents: Mapping[str, bytes]) -> TickData:
        """Send each controlled actor's action (empty where none is given), return the next tick."""
        try:
            for name, session in self.sessions.items():
                await session.act(contents.get(name, b""))
            return await self._receive()
        except BaseException:
            await self._abandon()
            raise

    async def _receive(self) -> TickData:
        ticks: dict[str, AgentTick] = {}
        final = False
        state_space = self.state_space if self.want_state else None
        for name, session in self.sessions.items():
            event = await session.next_event()
            final = final or event.final
            ticks[name] = read_payload(event.observation.content, self.spaces, default_agent=name, state_space=state_space)
        if final:
            await self._finish_all()
        return TickData(ticks, final)

    async def _finish_all(self) -> None:
        """After the final observation (LAST_ACK sent): wait for END, briefly. The Orchestrator
        sends it once every actor acknowledged the end; an actor that stopped answering (a
        service actor past its response timeout) would hold it for Cogment's 30 s: the trial is
        over for this facade, so it is ended hard then."""
        sessions, self.sessions = list(self.sessions.values()), {}
        deadline = asyncio.get_running_loop().time() + END_WAIT
        for session in sessions:
            if not await session.await_end(max(deadline - asyncio.get_running_loop().time(), 0.001)):
                logger.debug("trial %s: no END within %g s of its final observation: terminating it", self.trial_id, END_WAIT)
                await self.connection.terminate(self.trial_id)
                break
        for session in sessions:
            await session.finish(timeout=END_WAIT)

    async def _abandon(self) -> None:
        """The trial is of no more use: end it (if it runs) and close every stream."""
        sessions, self.sessions = list(self.sessions.values()), {}
        if self.trial_id and (not sessions or any(not s.ended for s in sessions)):
            await self.connection.terminate(self.trial_id)
        for session in sessions:
            await session.finish(timeout=2.0)

    async def drop(self) -> None:
        """End the current trial if it still runs (a reset or close mid-episode)."""
        if self.sessions:
            await self._abandon()
        self.trial_id = ""

    @property
    def running(self) -> bool:
        return bool(self.sessions)


def space_to_proto_of(spec: env_pb2.EnvSpec, name: str, field: str) -> Any:
    for actor in spec.actors:
        if actor.name == name:
            return getattr(actor, field)
    raise KeyError(name)


def check_api(spec: env_pb2.EnvSpec, want: int, facade: str) -> None:
    """The served environment must have the facade's API (serve it with ``api=`` otherwise)."""
    if not spec.multi_agent:
        raise CogmentGymError(f"environment {spec.implementation!r} is a single-agent (Gymnasium) environment: use CogmentEnv, not {facade}")
    if spec.api != want:
        served = env_pb2.MultiAgentApi.Name(spec.api).removeprefix("MULTI_AGENT_API_").lower()
        wanted = env_pb2.MultiAgentApi.Name(want).removeprefix("MULTI_AGENT_API_").lower()
        raise CogmentGymError(
            f"environment {spec.implementation!r} is served with the {served} API; {facade} needs it served with "
            f"api={wanted!r} (cogment_gym.serve(..., api={wanted!r}))"
        )
