"""``CogmentEnv``: a Cogment trial as a ``gymnasium.Env`` (one episode = one trial)."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any, Callable, Protocol, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import encode_object, space_from_proto
from cogment_gym.codec.payloads import ABSENT, MISSING, WAITING, AgentTick, action_content, action_payload, unpack_observation
from cogment_gym.envs.connection import TrialConnection, check_render_mode, make_connection, spec_metadata
from cogment_gym.envs.options import ConnectionOptions, connection_options, ended_by_orchestrator
from cogment_gym.envs.multi_agent import MultiAgentDriver, ServiceActor, ServiceActors, TickData
from cogment_gym.envs.session import ClientSession
from cogment_gym.errors import CogmentGymError, NotOpenError, ResetNeededError
from cogment_gym.protocol import CLIENT_ENDPOINT
from cogment_gym.protocol.runtime import make_runner
from cogment_gym.protocol.security import Security

__all__ = ["CogmentEnv"]

logger = logging.getLogger(__name__)


class CogmentEnv(gym.Env[Any, Any]):
    """A Gymnasium environment whose episodes are Cogment trials.

    Three ways to run (see :func:`~cogment_gym.envs.connection.make_connection`)::

        CogmentEnv("CartPole-v1")                           # everything in this process
        CogmentEnv(environment="grpc://127.0.0.1:9001")      # env served elsewhere (cogment_gym.serve)
        CogmentEnv(orchestrator="grpc://127.0.0.1:9000",     # an existing Orchestrator,
                   environment="grpc://127.0.0.1:9001")      # e.g. the real Cogment one

    Args:
        env: a Gymnasium id or env factory, run in this process (embedded default).
        environment: endpoint of an environment service instead.
        implementation: which implementation of that service (default: its first).
        orchestrator: endpoint of an Orchestrator's TrialLifecycleSP; ``actor_endpoint`` its
            ClientActorSP when on another port.
        render_mode: passed to the served env; ``render()`` returns the frames it sends back.
        max_steps: Cogment ``max_steps`` of each trial (0: none; the env's own TimeLimit still applies).
        timeout: seconds to wait for any answer from the trial.
        observation_space, action_space: the spaces of a remote environment that does not serve
            cogment_gym's EnvSpecSP (e.g. one written with the official Cogment SDK whose payloads
            are cogment_gym.v1 messages); its single actor is of class ``actor_class``.
        agent: multi-agent (PettingZoo) environments: the agent this env plays (default: the one
            agent not in ``service_actors``). Each ``step`` returns at the agent's next turn, with
            the reward accumulated since its last action; the other agents' turns are played
            meanwhile by their service actors (off-turn ticks are answered here).
        service_actors: multi-agent environments: agent id -> who plays it: a
            :class:`~cogment_gym.envs.ServiceActor`, a ``grpc://`` endpoint, or a Python policy
            (run in this process; embedded Orchestrator only). Every agent but ``agent`` needs one,
            unless ``others`` is given.
        others: multi-agent environments: who plays every agent that is neither ``agent`` nor in
            ``service_actors`` (any value ``service_actors`` takes); with ``agent=None`` this env
            then plays the first agent not in ``service_actors``. Ignored by single-agent
            environments (there is no other agent). E.g.
            ``CogmentEnv("pettingzoo.classic.connect_four_v3", others=RandomPolicy)`` plays
            player_0 against a random player_1.
        datalog: record every trial: a datalog endpoint (``grpc://...``, e.g.
            :func:`cogment_gym.datastore.serve_datalog`'s or Cogment's datastore), or a
            ``pathlib.Path`` / :class:`~cogment_gym.datastore.TrialRecorder` to record into a
            directory in-process (embedded Orchestrator only). See docs/datasets.md.
        security: how the environment service, the Orchestrator and service actors are dialed:
            TLS, a client certificate (mTLS), a token sent with every call
            (:class:`~cogment_gym.protocol.security.Security`; default: plaintext, no token;
            see ``docs/security.md``). Nothing to secure in the embedded default.
        env_threads: embedded default only: each env instance on a thread of its own (True), or
            its calls inline on the event loop (False, the default: faster, docs/performance.md).
        options: all the connection arguments above in one
            :class:`~cogment_gym.envs.options.ConnectionOptions` (then give none of them).
        **make_kwargs: passed to ``gym.make`` (embedded default only).

    Example:
        >>> env = CogmentEnv("CartPole-v1")
        >>> obs, info = env.reset(seed=42)
        >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        >>> env.close()
    """

    # An instance property: ``gymnasium.make`` reads a class's ``metadata`` to vet a render_mode
    # before the env exists, but a CogmentEnv only learns its render modes from the served spec.
    @property  # type: ignore[override]
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = value

    def __init__(
        self,
        env: str | Callable[..., gym.Env[Any, Any]] | None = None,
        *,
        environment: str | None = None,
        implementation: str = "",
        orchestrator: str | None = None,
        actor_endpoint: str | None = None,
        render_mode: str | None = None,
        max_steps: int = 0,
        timeout: float = 30.0,
        observation_space: gym.Space[Any] | None = None,
        action_space: gym.Space[Any] | None = None,
        actor_class: str = "player",
        agent: str | None = None,
        service_actors: ServiceActors | None = None,
        datalog: Any = None,
        security: Security | None = None,
        others: ServiceActor | str | Callable[..., Any] | None = None,
        env_threads: bool = False,
        options: ConnectionOptions | None = None,
        **make_kwargs: Any,
    ) -> None:
        opts = connection_options(
            options, env=env, environment=environment, implementation=implementation, orchestrator=orchestrator,
            actor_endpoint=actor_endpoint, render_mode=render_mode, max_steps=max_steps, timeout=timeout,
            observation_space=observation_space, action_space=action_space, actor_class=actor_class, datalog=datalog,
            security=security, env_threads=env_threads, make_kwargs=make_kwargs,
        )
        self.options = opts
        self._runner = make_runner()
        self._connection = make_connection(opts)
        self._metadata = {"render_modes": []}
        self._closed = False
        try:
            self._runner.run(self._connection.open())
        except BaseException:
            self._closed = True  # open() cleaned up after itself: nothing to close
            self._runner.close()
            raise
        try:
            self._seat = self._take_seat(agent, service_actors, others)
        except BaseException:
            self.close()
            raise
        spec = self._seat.spec
        self.observation_space = self._seat.observation_space
        self.action_space = self._seat.action_space
        self.metadata = spec_metadata(spec)
        self.render_mode = opts.render_mode
        self.spec = _gym_spec(spec, opts)

    def _take_seat(self, agent: str | None, service_actors: ServiceActors | None, others: Any) -> _Seat:
        """Who this env is in its trials, decided once: the single actor of a single-agent env,
        or one agent of a multi-agent env whose other agents are service actors."""
        spec = self._connection.spec
        if spec is None:
            raise NotOpenError("the trial connection is not open (no environment spec yet): open() it first")
        if spec.multi_agent:
            seat: _Seat = _AgentSeat(self._connection, self._runner, self.options, agent, service_actors, others)
        elif agent is not None or service_actors:  # (others= has no agent to play: nothing to do)
            raise TypeError(f"agent= and service_actors= are for multi-agent environments; {spec.implementation!r} has one agent")
        else:
            seat = _ActorSeat(self._connection, self._runner, self.options)
        check_render_mode(seat.spec, self.options.render_mode)
        return seat

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self._check_open()
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        return self._seat.reset(None if seed is None else int(seed), options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        return self._seat.step(action)

    @property
    def agent(self) -> str | None:
        """The agent this env plays in a multi-agent environment; None in a single-agent one."""
        return self._seat.agent

    @property
    def other_agents(self) -> list[str]:
        """The other agents of a multi-agent environment, in its order (played by service
        actors); empty in a single-agent one."""
        return self._seat.other_agents

    @property
    def trial_id(self) -> str:
        """The id of the trial of the current (or last) episode; "" before the first reset."""
        return self._seat.trial_id

    def render(self) -> Any:
        return self._seat.frame

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._runner.run(self._close())
        finally:
            self._runner.close()

    async def _close(self) -> None:
        try:
            seat = getattr(self, "_seat", None)
            if seat is not None:
                await seat.drop()
        finally:
            await self._connection.close()

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise CogmentGymError("this CogmentEnv is closed")

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            logger.debug("CogmentEnv garbage-collected without close()")


class _Seat(Protocol):
    """Who a CogmentEnv is in its trials (chosen once, in ``__init__``)."""

    spec: env_pb2.EnvSpec  # as this seat sees it: its one actor
    observation_space: gym.Space[Any]
    action_space: gym.Space[Any]
    agent: str | None
    other_agents: list[str]

    @property
    def trial_id(self) -> str: ...

    @property
    def frame(self) -> Any: ...

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]: ...

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]: ...

    async def drop(self) -> None: ...


class _ActorSeat:
    """The single actor of a single-agent env: one client actor, one trial per episode."""

    agent: str | None = None

    def __init__(self, connection: TrialConnection, runner: Any, options: ConnectionOptions) -> None:
        spec = connection.spec
        if spec is None:
            raise NotOpenError("the trial connection is not open (no environment spec yet): open() it first")
        if len(spec.actors) != 1:
            raise CogmentGymError(
                f"environment {spec.implementation!r} has {len(spec.actors)} agents; CogmentEnv drives one "
                "(use CogmentParallelEnv / CogmentAECEnv for multi-agent environments)"
            )
        self.spec = spec
        self._connection = connection
        self._runner = runner
        actor = spec.actors[0]
        self._actor_name, self._actor_class = actor.name, actor.actor_class
        self.observation_space = space_from_proto(actor.observation_space)
        self.action_space = space_from_proto(actor.action_space)
        self.other_agents: list[str] = []
        self._render_mode = options.render_mode
        self._max_steps = options.max_steps
        # Our name for our env instance on the service (EnvConfig.instance_key): each new episode
        # gets the same instance back, so reset(seed=None) continues its generator.
        self._instance_key = uuid.uuid4().hex
        self._frame: Any = None
        self._session: ClientSession | None = None
        self._last_trial_id = ""
        # Sessions a failed step() left behind: ended (links to close) or not (to terminate).
        self._abandoned: list[ClientSession] = []

    @property
    def trial_id(self) -> str:
        return self._session.trial_id if self._session is not None else self._last_trial_id

    @property
    def frame(self) -> Any:
        return self._frame

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        # Rewards are read from the observation payload: no separate Reward message per step.
        config = env_pb2.EnvConfig(render_mode=self._render_mode or "", omit_reward_messages=True, instance_key=self._instance_key)
        if seed is not None:
            config.seed = seed
        if options is not None:
            config.options.CopyFrom(encode_object(options, "options"))
        params = common_pb2.TrialParams(
            environment=common_pb2.EnvironmentParams(
                name="env",
                endpoint=self._connection.env_endpoint,
                implementation=self._connection.implementation,
                config=common_pb2.SerializedMessage(content=config.SerializeToString()),
            ),
            actors=[common_pb2.ActorParams(name=self._actor_name, actor_class=self._actor_class, endpoint=CLIENT_ENDPOINT)],
            max_steps=self._max_steps,
        )
        result: tuple[Any, dict[str, Any]] = self._runner.run(self._reset(params))
        return result

    async def _reset(self, params: common_pb2.TrialParams) -> tuple[Any, dict[str, Any]]:
        await self.drop()
        trial_id = await self._connection.start_trial(params)
        session: ClientSession | None = None
        try:
            session = await self._connection.join(trial_id, actor_name=self._actor_name)
            event = await session.next_event()
            if event.final:
                await session.finish()
        except BaseException:
            if session is None or not session.ended:
                await self._connection.terminate(trial_id)
            if session is not None:
                await session.finish()
            raise
        self._session = None if event.final else session
        self._last_trial_id = trial_id
        obs, _, _, _, info = self._unpack(event.observation.content)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        session = self._session
        if session is None:
            raise ResetNeededError("call reset() before step(): no episode is running")
        content = action_payload(self.action_space, action)
        try:
            event = self._runner.run(self._step(session, content))
        except BaseException:
            # The episode is over for the caller; the next reset() or close() ends the trial
            # (if it still runs, e.g. after a timeout or an interrupt) and closes its stream.
            self._session = None
            self._abandoned.append(session)
            raise
        obs, reward, terminated, truncated, info = self._unpack(event.observation.content)
        if event.final:
            self._session = None
            truncated = ended_by_orchestrator(True, terminated, truncated)
        return obs, reward, terminated, truncated, info

    @staticmethod
    async def _step(session: ClientSession, content: bytes) -> Any:
        await session.act(content)
        event = await session.next_event()
        if event.final:
            # Wait for END now: with an embedded Orchestrator the trial only progresses while this
            # loop runs, and the environment must see its trial end without another call from us.
            await session.finish()
        return event

    async def drop(self) -> None:
        """End the trial of this seat (and those a failed step left behind)."""
        abandoned, self._abandoned = self._abandoned, []
        for stale in abandoned:
            if not stale.ended:
                await self._connection.terminate(stale.trial_id)
            await stale.finish()
        session, self._session = self._session, None
        if session is not None and not session.ended:
            await self._connection.terminate(session.trial_id)
            await session.finish()

    def _unpack(self, content: bytes) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        obs, reward, terminated, truncated, info, frame = unpack_observation(content, self.observation_space)
        if frame is not None:
            self._frame = frame
        return obs, reward, terminated, truncated, info


class _AgentSeat:
    """One agent of a multi-agent environment whose other agents are service actors.

    ``step`` sends the agent's action, then answers every tick where it does not act (another
    agent's turn) with an empty action, until the agent acts again or its episode is over. Once it
    is over (terminated, truncated, or ended by the Orchestrator) the rest of the trial is played
    out (the agent's dead step, the others' last turns) before ``step`` returns, so that the
    service actors see the game end normally.
    """

    def __init__(self, connection: TrialConnection, runner: Any, options: ConnectionOptions, agent: str | None,
                 service_actors: ServiceActors | None, others: ServiceActor | str | Callable[..., Any] | None = None) -> None:
        spec = connection.spec
        if spec is None:
            raise NotOpenError("the trial connection is not open (no environment spec yet): open() it first")
        if spec.agent_slots:
            raise CogmentGymError(
                f"environment {spec.implementation!r} generates its agents during the episode; CogmentEnv plays a "
                "fixed agent (use CogmentAECEnv / CogmentParallelEnv)"
            )
        services = dict(service_actors or {})
        names = [a.name for a in spec.actors]
        if agent is None:
            free = [n for n in names if n not in services]
            if not free or (len(free) > 1 and others is None):
                raise CogmentGymError(
                    f"environment {spec.implementation!r} has agents {names}: pass agent= (the one this env plays) and "
                    "service_actors= for every other one, or others= for the rest"
                )
            agent = free[0]
        if others is not None:
            services.update({n: others for n in names if n != agent and n not in services})
        self.agent: str | None = agent
        self._me = agent
        self.driver = MultiAgentDriver(connection, [agent], services)
        self.spec = _one_actor_view(spec, agent)
        if len(self.spec.actors) != 1:
            raise CogmentGymError(
                f"environment {spec.implementation!r} has {len(self.spec.actors)} agents named {agent!r}; CogmentEnv drives one"
            )
        actor = self.spec.actors[0]
        self.observation_space = space_from_proto(actor.observation_space)
        self.action_space = space_from_proto(actor.action_space)
        self.other_agents = [name for name in self.driver.names if name != agent]
        self._runner = runner
        self._render_mode = options.render_mode
        self._max_steps = options.max_steps
        self._frame: Any = None
        self._observation: Any = None
        self._info: dict[str, Any] = {}
        self._last: AgentTick | None = None  # the agent's latest data (it is absent once gone)

    @property
    def trial_id(self) -> str:
        return self.driver.trial_id

    @property
    def frame(self) -> Any:
        return self._frame

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        result: tuple[Any, dict[str, Any]] = self._runner.run(self._reset(seed, options))
        return result

    async def _reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        self._observation, self._info, self._last = None, {}, None
        params = self.driver.params(seed=seed, options=options, render_mode=self._render_mode, max_steps=self._max_steps)
        obs, _, _, _, info = await self._until_turn(await self.driver.start(params))
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self.driver.running:
            raise ResetNeededError("call reset() before step(): no episode is running")
        content = action_content(self.action_space, action)
        result: tuple[Any, SupportsFloat, bool, bool, dict[str, Any]] = self._runner.run(self._step(content))
        return result

    async def _step(self, content: bytes) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return await self._until_turn(await self.driver.step({self._me: content}))

    async def drop(self) -> None:
        await self.driver.drop()

    async def _until_turn(self, data: TickData) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        me = self._me
        while True:
            tick = data.ticks[me]
            if data.frame is not None:
                self._frame = data.frame
            if tick.observation is not MISSING:
                self._observation = tick.observation
            if tick.status != ABSENT:
                self._info = tick.info
                self._last = tick
            if tick.must_act and not data.final:
                return self._observation, tick.cumulative_reward, False, False, self._info
            over = data.final or tick.status != WAITING  # ACTING done (dead step), LEAVING, ABSENT
            if over:
                last = self._last or tick
                terminated = last.terminated
                truncated = ended_by_orchestrator(data.final, terminated, last.truncated)
                result = (self._observation, last.cumulative_reward, terminated, truncated, self._info)
                while not data.final:  # play the trial out
                    data = await self.driver.step({})
                    if data.frame is not None:
                        self._frame = data.frame
                return result
            data = await self.driver.step({})


def _one_actor_view(spec: env_pb2.EnvSpec, agent: str) -> env_pb2.EnvSpec:
    """The spec as CogmentEnv sees it: the one agent it plays."""
    view = env_pb2.EnvSpec()
    view.CopyFrom(spec)
    del view.actors[:]
    view.actors.extend(a for a in spec.actors if a.name == agent)
    return view


def _gym_spec(spec: env_pb2.EnvSpec, options: ConnectionOptions) -> EnvSpec | None:
    kwargs: dict[str, Any] = dict(options.make_kwargs)
    kwargs.update(
        {k: v for k, v in dict(
            env=options.env, environment=options.environment, implementation=options.implementation or None,
            orchestrator=options.orchestrator, actor_endpoint=options.actor_endpoint, max_steps=options.max_steps or None,
            render_mode=options.render_mode,
        ).items() if v is not None}
    )
    # Gymnasium ids allow one namespace and [\w:.-] in names: "cogment_gym/<name>" with the
    # served id's own namespace folded in ("ns/Env-v0" -> "cogment_gym/ns.Env-v0").
    name = re.sub(r"[^\w:.-]", "_", (spec.gym_id or spec.implementation).replace("/", "."))
    try:
        return EnvSpec(id=f"cogment_gym/{name}", entry_point="cogment_gym.envs:CogmentEnv", kwargs=kwargs)
    except Exception:  # ids Gymnasium cannot parse
        return None
