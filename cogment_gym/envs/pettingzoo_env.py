"""``CogmentAECEnv`` and ``CogmentParallelEnv``: a multi-agent Cogment trial as a PettingZoo env.

One episode is one trial; every agent the facade controls is a client actor of it (all agents
by default, for a training loop that controls every agent). Agents given in ``service_actors``
are played by service actors instead (policies served elsewhere, or Python policies run in
this process); the facade then is a PettingZoo environment of the agents it controls, whose
turns come back to it while the others play on their own.

The PettingZoo semantics are kept as the served environment has them: ``possible_agents``
fixed, spaces cached per agent (``observation_space(a) is observation_space(a)``), agents that
terminate or truncate leave and never come back, AEC dead steps with ``step(None)``, rewards of
every agent at every step, action masks (in a dict observation or in ``info``) unchanged.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import gymnasium as gym

from cogment_gym.extras import missing_extra

try:
    from pettingzoo import AECEnv, ParallelEnv
except ImportError as err:
    raise missing_extra("pettingzoo", "CogmentAECEnv and CogmentParallelEnv (the PettingZoo facades)", err) from err

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.payloads import ACTING, ABSENT, LEAVING, MISSING, AgentTick, action_content
from cogment_gym.envs.connection import check_render_mode, make_connection, spec_metadata
from cogment_gym.envs.options import ConnectionOptions, connection_options, ended_by_orchestrator
from cogment_gym.envs.multi_agent import MultiAgentDriver, ServiceActors, TickData, check_api
from cogment_gym.errors import CogmentGymError, NotOpenError
from cogment_gym.protocol.runtime import make_runner
from cogment_gym.protocol.security import Security

__all__ = ["CogmentAECEnv", "CogmentParallelEnv"]

logger = logging.getLogger(__name__)


class _Facade:
    """What both facades share: the connection, the driver, spaces, metadata, close."""

    _api = 0
    _api_name = ""

    def _open(
        self,
        options: ConnectionOptions,
        *,
        service_actors: ServiceActors | None,
        state: bool,
        max_agents: int | None,
    ) -> None:
        self._closed = False
        self.options = options
        self._runner = make_runner()
        self._connection = make_connection(options, api=self._api_name, max_agents=max_agents)
        try:
            self._runner.run(self._connection.open())
            spec = self._connection.spec
            if spec is None:
                raise NotOpenError("the trial connection is not open (no environment spec yet): open() it first")
            check_api(spec, self._api, type(self).__name__)
            services = dict(service_actors or {})
            controlled = [a.name for a in spec.actors if a.name not in services]
            self._driver = MultiAgentDriver(self._connection, controlled, services, state=state)
            check_render_mode(spec, options.render_mode)
        except BaseException:
            try:
                self._runner.run(self._connection.close())
            finally:
                self._runner.close()
            raise
        self._spec = spec
        self._slots = spec.agent_slots
        self._controlled = controlled
        self.metadata = spec_metadata(spec)
        self.render_mode = options.render_mode
        self._max_steps = options.max_steps
        self._frame: Any = None
        self._state: Any = None
        self._trial_over = True

    # ------------------------------------------------------------------ PettingZoo API

    @property
    def possible_agents(self) -> list[str]:  # type: ignore[override]
        if self._slots:
            # As the served environment: its agents are generated during the episode.
            raise AttributeError(f"{self._spec.implementation!r} generates its agents during the episode: it has no possible_agents")
        return list(self._controlled)

    def observation_space(self, agent: str) -> gym.Space[Any]:
        return self._driver.spaces.observation_space(agent)

    def action_space(self, agent: str) -> gym.Space[Any]:
        return self._driver.spaces.action_space(agent)

    def render(self) -> Any:
        if self.render_mode is None:
            gym.logger.warn("You are calling render method without specifying any render mode.")
            return None
        return self._frame

    def state(self) -> Any:
        if self._driver.state_space is None:
            raise NotImplementedError(f"{self._spec.implementation!r} has no state_space, hence no state()")
        if not self._driver.want_state:
            raise CogmentGymError(f"make the {type(self).__name__} with state=True to have the environment send its state")
        return self._state

    @property
    def trial_id(self) -> str:
        """The id of the trial of the current (or last) episode."""
        return self._driver.trial_id

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        try:
            self._runner.run(self._close())
        finally:
            self._runner.close()

    async def _close(self) -> None:
        try:
            await self._driver.drop()
        finally:
            await self._connection.close()

    # ------------------------------------------------------------------ internals

    def _check_open(self) -> None:
        if self._closed:
            raise CogmentGymError(f"this {type(self).__name__} is closed")

    def _params(self, seed: int | None, options: dict[str, Any] | None) -> Any:
        if seed is not None and (not isinstance(seed, int) or seed < 0):
            import numpy as np

            if not (isinstance(seed, np.integer) and seed >= 0):
                raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        return self._driver.params(seed=seed, options=options, render_mode=self.render_mode, max_steps=self._max_steps)

    def _take_globals(self, data: TickData) -> None:
        if data.frame is not None:
            self._frame = data.frame
        if data.state is not None:
            self._state = data.state

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            logger.debug("%s garbage-collected without close()", type(self).__name__)


class CogmentAECEnv(_Facade, AECEnv):  # type: ignore[misc]
    """A PettingZoo ``AECEnv`` whose episodes are Cogment trials.

    Runs like :class:`~cogment_gym.CogmentEnv`: everything in this process by default, or an
    environment served elsewhere (``environment="grpc://..."``), or trials of a remote
    Orchestrator (``orchestrator="grpc://..."``). The served environment must have the AEC API
    (``cogment_gym.serve(..., api="aec")``; a module path is served so by default).

    Args:
        env: a PettingZoo module path (``"pettingzoo.classic.connect_four_v3"``) or a factory
            of AEC / parallel envs, run in this process.
        environment, implementation, orchestrator, actor_endpoint, render_mode, max_steps,
            timeout, security: as for ``CogmentEnv``.
        service_actors: agent id -> who plays it instead of this facade: a
            :class:`~cogment_gym.envs.ServiceActor`, an endpoint string, or a Python policy.
        state: have the environment send ``env.state()`` each tick, for :meth:`state` (it costs
            a ``state()`` call per tick on the server, and some environments have no state once
            the episode is over).
        max_agents: embedded environments whose agents are generated during the episode: how
            many agent slots.
        datalog: record every trial, as :class:`~cogment_gym.envs.CogmentEnv`'s ``datalog``.
        env_threads, options: as for :class:`~cogment_gym.envs.CogmentEnv`.
        **make_kwargs: keyword arguments of the environment's constructor (embedded only).

    Example:
        >>> env = CogmentAECEnv("pettingzoo.classic.tictactoe_v3")
        >>> env.reset(seed=1)
        >>> for agent in env.agent_iter():
        ...     obs, reward, terminated, truncated, info = env.last()
        ...     mask = obs["action_mask"]
        ...     env.step(None if terminated or truncated else env.action_space(agent).sample(mask))
        >>> env.close()
    """

    _api = env_pb2.MULTI_AGENT_API_AEC
    _api_name = "aec"

    def __init__(
        self,
        env: str | Callable[..., Any] | None = None,
        *,
        environment: str | None = None,
        implementation: str = "",
        orchestrator: str | None = None,
        actor_endpoint: str | None = None,
        render_mode: str | None = None,
        max_steps: int = 0,
        timeout: float = 30.0,
        service_actors: ServiceActors | None = None,
        state: bool = False,
        max_agents: int | None = None,
        datalog: Any = None,
        security: Security | None = None,
        env_threads: bool = False,
        options: ConnectionOptions | None = None,
        **make_kwargs: Any,
    ) -> None:
        AECEnv.__init__(self)
        opts = connection_options(
            options, env=env, environment=environment, implementation=implementation, orchestrator=orchestrator,
            actor_endpoint=actor_endpoint, render_mode=render_mode, max_steps=max_steps, timeout=timeout, datalog=datalog,
            security=security, env_threads=env_threads, make_kwargs=make_kwargs,
        )
        self._open(opts, service_actors=service_actors, state=state, max_agents=max_agents)
        self.agents: list[str] = []
        self.rewards: dict[str, float] = {}
        self._cumulative_rewards: dict[str, float] = {}
        self.terminations: dict[str, bool] = {}
        self.truncations: dict[str, bool] = {}
        self.infos: dict[str, dict[str, Any]] = {}
        self.agent_selection = ""
        self._observations: dict[str, Any] = {}
        self._actor_of: dict[str, str] = {}  # agent -> controlled actor name (slots differ)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        self._check_open()
        params = self._params(seed, options)
        self._observations.clear()
        data, rewards = self._runner.run(self._start(params))
        self._apply(data, rewards)

    async def _start(self, params: Any) -> tuple[TickData, dict[str, float]]:
        return await self._skip(await self._driver.start(params))

    async def _skip(self, data: TickData) -> tuple[TickData, dict[str, float]]:
        """Answer the ticks where an agent of a service actor acts (theirs to play); the rewards
        of those ticks add up, as if their turns happened inside this facade's step."""
        rewards = {t.agent: t.reward for t in data.ticks.values() if t.status != ABSENT}
        while not data.final and data.agent_selection and not self._ours(data, data.agent_selection):
            data = await self._driver.step({})
            for tick in data.ticks.values():
                if tick.status != ABSENT:
                    rewards[tick.agent] = rewards[tick.agent] + tick.reward if tick.agent in rewards else tick.reward
        return data, rewards

    @staticmethod
    def _ours(data: TickData, agent: str) -> bool:
        return any(t.agent == agent and t.status != ABSENT for t in data.ticks.values())

    def _apply(self, data: TickData, rewards: dict[str, float]) -> None:
        self._take_globals(data)
        present: dict[str, AgentTick] = {}
        for actor, tick in data.ticks.items():
            if tick.status != ABSENT:
                present[tick.agent] = tick
                self._actor_of[tick.agent] = actor
                if tick.observation is not MISSING:
                    self._observations[tick.agent] = tick.observation
        agents = [a for a in data.agents if a in present]
        self.agents = agents
        self.rewards = {a: rewards.get(a, present[a].reward) for a in agents}
        self._cumulative_rewards = {a: present[a].cumulative_reward for a in agents}
        self.terminations = {a: present[a].terminated for a in agents}
        self.truncations = {a: present[a].truncated for a in agents}
        self.infos = {a: present[a].info for a in agents}
        if data.agent_selection in present:
            self.agent_selection = data.agent_selection
        elif agents:
            self.agent_selection = agents[0]
        self._trial_over = data.final
        if data.final and agents:
            # The Orchestrator ended the trial (max_steps, TerminateTrial) with agents still in:
            # for PettingZoo they are truncated; their dead steps are played here.
            for agent in agents:
                self.truncations[agent] = ended_by_orchestrator(True, self.terminations[agent], self.truncations[agent])

    def observe(self, agent: str) -> Any:
        """The agent's observation as of its last turn (the served environment observes an
        agent when it is selected, as ``last()`` does on a direct environment)."""
        return self._observations.get(agent)

    def step(self, action: Any) -> None:
        self._check_open()
        agent = self.agent_selection
        if agent not in self.terminations:
            raise CogmentGymError(f"agent {agent!r} is not in the episode; call reset()" if self.agents else "the episode is over; call reset()")
        dead = self.terminations[agent] or self.truncations[agent]
        if dead and action is not None:
            raise ValueError("when an agent is dead, the only valid action is None")
        if self._trial_over:
            if not dead:
                raise CogmentGymError("the trial is over; call reset()")
            self._local_dead_step(agent)
            return
        content = b"" if dead else action_content(self.action_space(agent), action, f"action of agent {agent!r}")
        data, rewards = self._runner.run(self._step(self._actor_of[agent], content))
        self._apply(data, rewards)

    async def _step(self, actor: str, content: bytes) -> tuple[TickData, dict[str, float]]:
        return await self._skip(await self._driver.step({actor: content}))

    def _local_dead_step(self, agent: str) -> None:
        """A dead step after the trial ended: the agent leaves, the next one is selected."""
        self.agents.remove(agent)
        for table in (self.rewards, self._cumulative_rewards, self.terminations, self.truncations, self.infos):
            table.pop(agent, None)
        if self.agents:
            self.agent_selection = self.agents[0]


class CogmentParallelEnv(_Facade, ParallelEnv):  # type: ignore[misc]
    """A PettingZoo ``ParallelEnv`` whose episodes are Cogment trials.

    The served environment must have the parallel API: ``cogment_gym.serve(...,
    api="parallel")`` (a turn-based AEC game is then served through PettingZoo's
    ``turn_based_aec_to_parallel``). Arguments as for :class:`CogmentAECEnv`.

    Example:
        >>> env = CogmentParallelEnv("pettingzoo.classic.rps_v2")
        >>> observations, infos = env.reset(seed=1)
        >>> while env.agents:
        ...     actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        ...     observations, rewards, terminations, truncations, infos = env.step(actions)
        >>> env.close()
    """

    _api = env_pb2.MULTI_AGENT_API_PARALLEL
    _api_name = "parallel"

    def __init__(
        self,
        env: str | Callable[..., Any] | None = None,
        *,
        environment: str | None = None,
        implementation: str = "",
        orchestrator: str | None = None,
        actor_endpoint: str | None = None,
        render_mode: str | None = None,
        max_steps: int = 0,
        timeout: float = 30.0,
        service_actors: ServiceActors | None = None,
        state: bool = False,
        max_agents: int | None = None,
        datalog: Any = None,
        security: Security | None = None,
        env_threads: bool = False,
        options: ConnectionOptions | None = None,
        **make_kwargs: Any,
    ) -> None:
        opts = connection_options(
            options, env=env, environment=environment, implementation=implementation, orchestrator=orchestrator,
            actor_endpoint=actor_endpoint, render_mode=render_mode, max_steps=max_steps, timeout=timeout, datalog=datalog,
            security=security, env_threads=env_threads, make_kwargs=make_kwargs,
        )
        self._open(opts, service_actors=service_actors, state=state, max_agents=max_agents)
        self.agents: list[str] = []
        self._actor_of: dict[str, str] = {}

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        self._check_open()
        params = self._params(seed, options)
        data = self._runner.run(self._driver.start(params))
        observations, _, _, _, infos = self._apply(data)
        return observations, infos

    def step(self, actions: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        self._check_open()
        if self._trial_over:
            raise CogmentGymError("the episode is over; call reset()")
        contents = {}
        for agent in self.agents:
            action = actions.get(agent)
            if action is not None:
                contents[self._actor_of[agent]] = action_content(self.action_space(agent), action, f"action of agent {agent!r}")
        data = self._runner.run(self._driver.step(contents))
        return self._apply(data)

    def _apply(self, data: TickData) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        self._take_globals(data)
        reported: dict[str, AgentTick] = {}
        for actor, tick in data.ticks.items():
            if tick.status in (ACTING, LEAVING):
                reported[tick.agent] = tick
                self._actor_of[tick.agent] = actor
        if data.step_agents:  # the env's dict order, where the actors' order is not it
            reported = {**{a: reported[a] for a in data.step_agents if a in reported}, **reported}
        observations = {a: t.observation for a, t in reported.items() if t.observation is not MISSING}
        rewards = {a: t.reward for a, t in reported.items()}
        terminations = {a: t.terminated for a, t in reported.items()}
        truncations = {a: t.truncated for a, t in reported.items()}
        infos = {a: t.info for a, t in reported.items()}
        self.agents = [a for a in data.agents if a in reported and reported[a].status == ACTING]
        self._trial_over = data.final
        if data.final and self.agents:
            for agent in self.agents:  # ended by the Orchestrator: a time limit for PettingZoo
                truncations[agent] = ended_by_orchestrator(True, terminations[agent], truncations[agent])
            self.agents = []
        return observations, rewards, terminations, truncations, infos
