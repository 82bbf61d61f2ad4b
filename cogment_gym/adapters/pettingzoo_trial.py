"""PettingZoo environments served as Cogment environments: one Cogment actor per agent.

- :class:`PettingZooImplementation`: how to make instances of one PettingZoo environment (an
  importable module path such as ``"pettingzoo.classic.connect_four_v3"``, or a factory of
  ``AECEnv`` / ``ParallelEnv`` instances) with the API it is served with, and its spec: one actor
  per agent of ``possible_agents``, named by the agent id, with that agent's own spaces. An
  environment without ``possible_agents`` (agents generated during the episode) is served with
  *agent slots* instead: actors ``slot_<i>``, each playing whichever agent its payloads name.
- :class:`PettingZooTrial`: one trial of it. Each tick is one ``env.step``: the selected agent's
  (AEC), or every live agent's (parallel). Each actor gets its own agent's data only (see the
  wire contract in ``protos/cogment_gym/v1/env.proto``, ``ObservationPayload``).

Knows nothing of streams; :class:`~cogment_gym.adapters.service.EnvironmentServicer` drives it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import time
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym

from cogment_gym._proto.cogment.api import common_pb2, environment_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.adapters.pool import EnvPool, Instance, PooledTrial, factory_accepts_render_mode, metadata_message
from cogment_gym.codec import decode_object, encode, space_to_proto
from cogment_gym.codec.payloads import (
    ABSENT,
    ACTING,
    LEAVING,
    MISSING,
    WAITING,
    flag_summary,
    read_agent_action,
    write_frame,
    write_observation,
    write_spaces,
)
from cogment_gym.errors import CogmentGymError, MalformedMessageError, NoActionError, TrialSetupError

__all__ = [
    "DEFAULT_MAX_AGENTS",
    "PettingZooImplementation",
    "PettingZooTrial",
    "TickOutput",
    "agent_class",
    "find_module",
    "is_pettingzoo_env",
    "slot_name",
]

logger = logging.getLogger(__name__)

AEC = "aec"
PARALLEL = "parallel"
_API_PROTO = {AEC: env_pb2.MULTI_AGENT_API_AEC, PARALLEL: env_pb2.MULTI_AGENT_API_PARALLEL}

# Agent slots offered by default for environments whose agents are generated during the episode.
DEFAULT_MAX_AGENTS = 32
SLOT_CLASS = "agent"
_NUMBER_SUFFIX = re.compile(r"_\d+$")


def slot_name(index: int) -> str:
    """Name of agent slot ``index`` (actors of environments with generated agents)."""
    return f"slot_{index}"


def agent_class(agent: str) -> str:
    """Cogment actor class of a PettingZoo agent: its id without the ``_<number>`` suffix."""
    return _NUMBER_SUFFIX.sub("", agent) or agent


def find_module(path: str) -> ModuleType | None:
    """The PettingZoo environment module at ``path`` (has ``env`` or ``parallel_env``), or None."""
    if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", path):
        return None
    try:
        if importlib.util.find_spec(path) is None:
            return None
        module = importlib.import_module(path)
    except (ImportError, ValueError):
        return None
    if callable(getattr(module, "env", None)) or callable(getattr(module, "parallel_env", None)):
        return module
    return None


def is_pettingzoo_env(obj: object) -> bool:
    try:
        from pettingzoo import AECEnv, ParallelEnv
    except ImportError:  # PettingZoo not installed: nothing can be one
        return False
    return isinstance(obj, (AECEnv, ParallelEnv))


def _native_api(env: Any) -> str:
    from pettingzoo import AECEnv

    return AEC if isinstance(env, AECEnv) else PARALLEL


def _convert(env: Any, api: str) -> Any:
    """``env`` with the ``api`` it is served with, through PettingZoo's own conversions."""
    from pettingzoo.utils import conversions

    native = _native_api(env)
    if native == api:
        return env
    if api == AEC:
        return conversions.parallel_to_aec(env)
    if env.metadata.get("is_parallelizable", False):
        return conversions.aec_to_parallel(env)
    return conversions.turn_based_aec_to_parallel(env)


class PettingZooImplementation(EnvPool):
    """One hosted PettingZoo environment.

    Args:
        name: implementation name.
        source: a module path (its ``env()``, or ``parallel_env()`` when served as parallel), or a
            factory of AEC / parallel environments.
        env_kwargs: keyword arguments of every construction.
        api: ``"aec"`` / ``"parallel"``: the API to serve (converting if needed); None: the
            module's ``env()`` (AEC) or the factory's own API.
        max_agents: agent slots offered when the environment has no ``possible_agents``.
        probe: an instance the factory already made, with its thread.
        env_threads: each instance on a thread of its own (see :class:`EnvPool`).
    """

    multi_agent = True

    def __init__(
        self,
        name: str,
        source: str | Callable[..., Any],
        env_kwargs: Mapping[str, Any] | None = None,
        *,
        api: str | None = None,
        max_agents: int | None = None,
        probe: Instance | None = None,
        env_threads: bool = True,
    ) -> None:
        super().__init__(env_threads=env_threads)
        self.name = name
        self._kwargs = dict(env_kwargs or {})
        if isinstance(source, str):
            module = find_module(source)
            if module is None:
                raise ValueError(f"implementation {name!r}: {source!r} is no importable PettingZoo environment module")
            self.api = api or (AEC if callable(getattr(module, "env", None)) else PARALLEL)
            if self.api == PARALLEL and callable(getattr(module, "parallel_env", None)):
                self._factory: Callable[..., Any] = module.parallel_env
            else:
                self._factory = module.env if callable(getattr(module, "env", None)) else module.parallel_env
            self.gym_id = source
        elif callable(source):
            self._factory = source
            self.api = api or (_native_api(probe.env) if probe is not None else "")
            self.gym_id = ""
        else:
            raise TypeError(f"implementation {name!r}: expected a PettingZoo module path or an env factory, got {source!r}")
        if probe is None:
            calls = self.new_calls()
            made: list[Any] = []
            try:
                made.append(calls.run("__init__", self._construct, None))
            except BaseException:
                calls.close()
                raise
            probe = Instance(made, calls)
        try:
            # On the probe's thread: describing may reset it (spaces known only once reset).
            probe.envs[0] = probe.calls.run("describe", self._convert_and_describe, probe.env, max_agents)
        except BaseException:
            self.discard(probe)
            raise
        self.release(probe, None)

    def _convert_and_describe(self, probe: Any, max_agents: int | None) -> Any:
        if not self.api:
            self.api = _native_api(probe)
        probe = _convert(probe, self.api)
        self._describe(probe, max_agents)
        return probe

    def _construct(self, render_mode: str | None) -> Any:
        if render_mode is None:
            env = self._factory(**self._kwargs)
        else:
            if not factory_accepts_render_mode(self._factory):
                raise ValueError(
                    f"implementation {self.name!r}: render_mode={render_mode!r} was asked for, but its factory "
                    "takes no render_mode argument"
                )
            env = self._factory(render_mode=render_mode, **self._kwargs)
        if not is_pettingzoo_env(env):
            raise TypeError(f"implementation {self.name!r}: the factory returned {type(env).__name__}, not a PettingZoo AECEnv / ParallelEnv")
        return env

    def _make(self, render_mode: str | None) -> Any:
        return _convert(self._construct(render_mode), self.api)

    def _describe(self, probe: Any, max_agents: int | None) -> None:
        try:
            possible = list(probe.possible_agents)
        except AttributeError:
            possible = None
        self.metadata = dict(getattr(probe, "metadata", {}) or {})
        self.render_modes = [str(m) for m in self.metadata.get("render_modes", [])]
        state_space = getattr(probe, "state_space", None)
        self.state_space = state_space if isinstance(state_space, gym.spaces.Space) else None
        self.slots = 0
        self.agents: list[str] = []
        actors: list[env_pb2.ActorSpec] = []
        if possible is None:
            self.slots = max_agents or DEFAULT_MAX_AGENTS
            if self.slots < 1:
                raise ValueError(f"implementation {self.name!r}: max_agents must be >= 1, got {self.slots}")
            actors = [env_pb2.ActorSpec(name=slot_name(i), actor_class=SLOT_CLASS) for i in range(self.slots)]
        else:
            bad = [a for a in possible if not isinstance(a, str)]
            if bad:
                raise TypeError(f"implementation {self.name!r}: agent ids must be strings to name Cogment actors, got {bad[:3]}")
            if not possible:
                raise ValueError(f"implementation {self.name!r}: possible_agents is empty")
            self.agents = possible
            spaces = self._spaces_of(probe, possible)
            for agent in possible:
                obs_space, act_space = spaces[agent]
                actors.append(
                    env_pb2.ActorSpec(
                        name=agent, actor_class=agent_class(agent),
                        observation_space=space_to_proto(obs_space), action_space=space_to_proto(act_space),
                    )
                )
        self.spec = env_pb2.EnvSpec(
            implementation=self.name,
            actors=actors,
            render_modes=self.render_modes,
            metadata=metadata_message(self.metadata),
            gym_id=self.gym_id,
            multi_agent=True,
            api=_API_PROTO[self.api],  # type: ignore[arg-type]
            agent_slots=bool(self.slots),
        )
        if self.state_space is not None:
            self.spec.state_space.CopyFrom(space_to_proto(self.state_space))

    @staticmethod
    def _spaces_of(probe: Any, agents: Sequence[str]) -> dict[str, tuple[gym.Space[Any], gym.Space[Any]]]:
        try:
            return {a: (probe.observation_space(a), probe.action_space(a)) for a in agents}
        except Exception:  # some environments know their spaces only once reset
            probe.reset()
            return {a: (probe.observation_space(a), probe.action_space(a)) for a in agents}


def _truncated(flag: Any, forced: bool) -> Any:
    """An agent's truncation flag as the env gave it, or True when the trial ends it (a Cogment end)."""
    return True if forced and not flag_summary(flag, "truncated") else flag


class TickOutput:
    """What the environment sends for one tick: distinct payloads, the actor -> payload map,
    the rewards to send as Cogment Rewards, and whether the episode is over."""

    __slots__ = ("payloads", "actors_map", "rewards", "done")

    def __init__(self, payloads: list[bytes], actors_map: list[int], rewards: list[tuple[str, float]], done: bool) -> None:
        self.payloads, self.actors_map, self.rewards, self.done = payloads, actors_map, rewards, done


class PettingZooTrial(PooledTrial):
    """A PettingZoo environment playing one trial; one actor per agent (or per agent slot)."""

    impl: PettingZooImplementation

    def __init__(self, impl: PettingZooImplementation, actors: Sequence[common_pb2.TrialActor], config: env_pb2.EnvConfig) -> None:
        super().__init__()
        self.impl = impl
        names = [a.name for a in actors]
        if len(set(names)) != len(names):
            raise TrialSetupError(f"implementation {impl.name!r}: actor names must be unique, got {names}")
        if impl.slots:
            if not names:
                raise TrialSetupError(f"implementation {impl.name!r} needs at least one actor (agent slot)")
        elif sorted(names) != sorted(impl.agents):
            raise TrialSetupError(
                f"implementation {impl.name!r} plays one actor per agent, named by the agent ids {impl.agents}; "
                f"the trial has actors {names}"
            )
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}
        self.api = impl.api
        self.render_mode = config.render_mode or None
        self.send_reward_messages = not config.omit_reward_messages
        self.seed = config.seed if config.HasField("seed") else None
        self.options = decode_object(config.options, "options") if config.HasField("options") else None
        if self.options is not None and not isinstance(self.options, dict):
            raise TrialSetupError(f"reset options must be a dict, got {type(self.options).__name__}")
        unknown = [n for n in config.state_actors if n not in self.index]
        if unknown:
            raise TrialSetupError(f"state_actors {unknown} are not actors of the trial {names}")
        self.state_actors = set(config.state_actors)
        self._frame_actors = self.state_actors or set(names)
        self._send_state = bool(self.state_actors) and impl.state_space is not None
        # Agent slots: which agent each slot plays (None: idle), and each agent's slot.
        self._slot_agent: list[str | None] = [None] * len(names)
        self._agent_slot: dict[str, int] = {}
        self._new_in_slot: set[int] = set()  # slots whose payload must carry their agent's spaces
        self._obs_spaces: dict[str, gym.Space[Any]] = {}
        self._act_spaces: dict[str, gym.Space[Any]] = {}
        self.instance_key = config.instance_key
        self.env: Any = None  # set by open()

    def _opened(self, instance: Instance) -> None:
        self.env = instance.env

    # ------------------------------------------------------------------ spaces and slots

    def _obs_space(self, agent: str) -> gym.Space[Any]:
        space = self._obs_spaces.get(agent)
        if space is None:
            space = self._obs_spaces[agent] = self.env.observation_space(agent)
        return space

    def _act_space(self, agent: str) -> gym.Space[Any]:
        space = self._act_spaces.get(agent)
        if space is None:
            space = self._act_spaces[agent] = self.env.action_space(agent)
        return space

    def _actor_of(self, agent: str) -> int:
        """Index of the actor playing ``agent``."""
        if self.impl.slots:
            return self._agent_slot[agent]
        return self.index[agent]

    def _assign_slots(self, present: Sequence[str]) -> None:
        """Slots follow the agents present at this tick: a slot whose agent is gone is freed,
        a new agent takes the lowest free slot (and its payload carries the agent's spaces)."""
        present_set = set(present)
        for agent, slot in list(self._agent_slot.items()):
            if agent not in present_set:
                del self._agent_slot[agent]
                self._slot_agent[slot] = None
        for agent in present:
            if agent in self._agent_slot:
                continue
            if not isinstance(agent, str):
                raise TypeError(f"agent ids must be strings to name Cogment actors, got {agent!r}")
            try:
                slot = self._slot_agent.index(None)
            except ValueError:
                raise CogmentGymError(
                    f"{len(present)} agents are in the episode at once, but the trial has only {len(self.names)} agent "
                    f"slots: serve the environment with a larger max_agents, or start trials with more slot actors"
                ) from None
            self._slot_agent[slot] = agent
            self._agent_slot[agent] = slot
            self._new_in_slot.add(slot)

    def _agent_at(self, index: int) -> str | None:
        return self._slot_agent[index] if self.impl.slots else self.names[index]

    # ------------------------------------------------------------------ episode

    def reset(self) -> TickOutput:
        env = self.env
        self._obs_spaces.clear()
        self._act_spaces.clear()
        if self.impl.slots:
            self._slot_agent = [None] * len(self.names)
            self._agent_slot.clear()
        if self.api == AEC:
            env.reset(seed=self.seed, options=self.options)
            return self._aec_tick(force_end=False, first=True)
        observations, infos = env.reset(seed=self.seed, options=self.options)
        return self._parallel_tick(observations, {}, {}, {}, infos, force_end=False, first=True)

    def decode_actions(self, action_set: Any, tick: int) -> Any:
        """The action(s) the environment steps with; raises NoActionError, SpaceMismatchError,
        MalformedMessageError (nothing is stepped then)."""
        contents = action_set.actions
        if len(contents) != len(self.names):
            raise MalformedMessageError(f"the action set of tick {tick} has {len(contents)} actions for {len(self.names)} actors")
        unavailable = set(action_set.unavailable_actors)
        env = self.env
        if self.api == AEC:
            agent = env.agent_selection
            if env.terminations.get(agent, False) or env.truncations.get(agent, False):
                return None  # the dead step: None, whatever the actor sent
            index = self._actor_of(agent)
            if index in unavailable:
                raise NoActionError(
                    f"no action from actor {self.names[index]!r} for agent {agent!r} at its turn (tick {tick}): the actor is unavailable"
                )
            value = read_agent_action(contents[index], agent, self._act_space)
            return None if value is MISSING else value
        actions: dict[str, Any] = {}
        missing = []
        for agent in env.agents:
            index = self._actor_of(agent)
            if index in unavailable:
                missing.append(f"{self.names[index]!r} (agent {agent!r})")
                continue
            value = read_agent_action(contents[index], agent, self._act_space)
            if value is not MISSING:
                actions[agent] = value
        if missing:
            raise NoActionError(f"no action at tick {tick} from the unavailable actors {', '.join(missing)}")
        return actions

    def step(self, action: Any, force_end: bool = False) -> TickOutput:
        """Step with what :meth:`decode_actions` returned; ``force_end``: the trial ends with this
        tick (the Orchestrator sent LAST), so every agent still in the episode is truncated."""
        if self.api == AEC:
            self.env.step(action)
            return self._aec_tick(force_end=force_end, first=False)
        observations, rewards, terminations, truncations, infos = self.env.step(action)
        return self._parallel_tick(observations, rewards, terminations, truncations, infos, force_end=force_end, first=False)

    # ------------------------------------------------------------------ payloads

    def _aec_tick(self, *, force_end: bool, first: bool) -> TickOutput:
        env = self.env
        agents = list(env.agents)
        selection = env.agent_selection if agents else ""
        if self.impl.slots:
            self._assign_slots(agents)
        rewards, cumulative = env.rewards, env._cumulative_rewards
        terminations, truncations, infos = env.terminations, env.truncations, env.infos
        observation: Any = MISSING
        if selection:
            # Once per tick, for the selected agent only, as a direct loop calling last() does
            # (some environments' observe() draws random numbers, or records the observation).
            observation = env.observe(selection)
        entries: dict[str, tuple[int, Any, Any, Any, Any, Any, Any]] = {}
        for agent in agents:
            status = ACTING if agent == selection else WAITING
            entries[agent] = (
                status, observation if agent == selection else MISSING, rewards.get(agent, 0), cumulative.get(agent, 0),
                terminations.get(agent, False), _truncated(truncations.get(agent, False), force_end), infos.get(agent),
            )
        return self._output(entries, agents, selection, done=not agents)

    def _parallel_tick(
        self, observations: Mapping[str, Any], rewards: Mapping[str, Any], terminations: Mapping[str, Any],
        truncations: Mapping[str, Any], infos: Mapping[str, Any], *, force_end: bool, first: bool,
    ) -> TickOutput:
        env = self.env
        agents = list(env.agents)
        live = set(agents)
        reported: dict[str, None] = dict.fromkeys(observations)
        for mapping in (rewards, terminations, truncations, infos):
            reported.update(dict.fromkeys(mapping))
        reported.update(dict.fromkeys(agents))
        if self.impl.slots:
            self._assign_slots(list(reported))
        entries: dict[str, tuple[int, Any, Any, Any, Any, Any, Any]] = {}
        for agent in reported:
            reward = rewards.get(agent, 0)
            entries[agent] = (
                ACTING if agent in live else LEAVING, observations[agent] if agent in observations else MISSING,
                reward, reward, terminations.get(agent, False),
                _truncated(truncations.get(agent, False), force_end and agent in live), infos.get(agent),
            )
        # The dicts' order travels when the actors' order does not give it (agent slots).
        played = [a for a in (self._agent_at(i) for i in range(len(self.names))) if a in reported]
        order = list(reported) if played != list(reported) else []
        return self._output(entries, agents, "", done=not agents, order=order)

    def _output(
        self, entries: Mapping[str, tuple[int, Any, Any, Any, Any, Any, Any]], agents: list[str], selection: str, *,
        done: bool, order: Sequence[str] = (),
    ) -> TickOutput:
        state: Any = None
        if self._send_state and not done:  # once no agent is left, some envs have no state
            state = encode(self.impl.state_space, self.env.state(), "state", bounds=False)  # type: ignore[arg-type]
        frame: Any = None
        if self.render_mode in ("rgb_array", "ansi"):
            self.note("render")
            frame = self.env.render()
        payloads: list[bytes] = []
        actors_map: list[int] = []
        reward_messages: list[tuple[str, float]] = []
        absent_index = -1
        for index, name in enumerate(self.names):
            agent = self._agent_at(index)
            entry = entries.get(agent) if agent is not None else None
            special = name in self.state_actors or (frame is not None and name in self._frame_actors)
            if entry is None or agent is None:
                if not special and absent_index >= 0:
                    actors_map.append(absent_index)
                    continue
                msg = env_pb2.ObservationPayload(status=ABSENT, agent_selection=selection, agents=agents, step_agents=order)
                if special:
                    self._add_global(msg, name, state, frame)
                elif absent_index < 0:
                    absent_index = len(payloads)
                actors_map.append(len(payloads))
                payloads.append(msg.SerializeToString())
                continue
            status, observation, reward, cumulative, terminated, truncated, info = entry
            msg = env_pb2.ObservationPayload(
                status=status,  # type: ignore[arg-type]
                agent=agent, agent_selection=selection, agents=agents, step_agents=order,
            )
            # The agent's entries in the env's own types; the float is for Cogment's Reward.
            reward, _, _ = write_observation(
                msg, self._obs_space(agent) if observation is not MISSING else None, observation, reward, terminated, truncated, info,
                cumulative_reward=cumulative, path=f"observation of agent {agent!r}", returns_path=f"agent {agent!r}: ",
            )
            if index in self._new_in_slot:
                write_spaces(msg, self._obs_space(agent), self._act_space(agent))
            if special:
                self._add_global(msg, name, state, frame)
            if reward != 0.0 and self.send_reward_messages:
                reward_messages.append((name, reward))
            actors_map.append(len(payloads))
            payloads.append(msg.SerializeToString())
        self._new_in_slot.clear()
        return TickOutput(payloads, actors_map, reward_messages, done)

    def _add_global(self, msg: env_pb2.ObservationPayload, name: str, state: Any, frame: Any) -> None:
        if state is not None and name in self.state_actors:
            msg.state.CopyFrom(state)
        if frame is not None and name in self._frame_actors:
            write_frame(msg, frame)


def observation_set(tick: int, output: TickOutput) -> Any:
    """The ``ObservationSet`` of one tick."""
    return environment_pb2.ObservationSet(
        tick_id=tick, timestamp=time.time_ns(), observations=output.payloads, actors_map=output.actors_map
    )
