"""What a served policy sees (:class:`ActorContext`) and how per-trial state is written
(:class:`TrialPolicy`)."""

from __future__ import annotations

import inspect
from typing import Any, Awaitable, Callable, Union

import gymnasium as gym

from cogment_gym.codec.payloads import ABSENT, ACTING, MISSING, AgentSpaces, AgentTick

__all__ = ["ActorContext", "Policy", "PolicyFunction", "TrialPolicy"]


class ActorContext:
    """The trial and agent a policy plays, and what arrived with the current observation.

    Attributes:
        trial_id, actor_name, actor_class, implementation, env_name: from the trial's init data.
        settings: ``ActorConfig.settings`` of the trial's actor params, decoded (None if absent).
        agent: the PettingZoo agent id played (the actor name for fixed agents; for agent slots
            whichever agent the slot plays now); the actor name for single-agent environments.
        tick: Cogment tick id of the current observation.
        reward: the agent's reward of the step that led here; ``cumulative_reward``: accumulated
            since the agent last acted (PettingZoo AEC ``last()``; equal to ``reward`` otherwise).
        terminated, truncated, info: the agent's, for that step.
        agents, agent_selection: the agents in the episode, and whose turn it is (AEC).
        cogment_rewards: values of the Cogment ``Reward`` messages received in this trial
            (from the environment, other actors, or users), in arrival order.
        final: True for the trial's last observation.
    """

    def __init__(self, *, trial_id: str, actor_name: str, actor_class: str, implementation: str, env_name: str,
                 settings: Any, spaces: AgentSpaces) -> None:
        self.trial_id = trial_id
        self.actor_name = actor_name
        self.actor_class = actor_class
        self.implementation = implementation
        self.env_name = env_name
        self.settings = settings
        self.spaces = spaces
        self.agent = actor_name
        self.tick = -1
        self.reward = 0.0
        self.cumulative_reward = 0.0
        self.terminated = False
        self.truncated = False
        self.info: dict[str, Any] = {}
        self.agents: list[str] = []
        self.agent_selection = ""
        self.observation: Any = None
        self.cogment_rewards: list[float] = []
        self.final = False

    def update(self, tick: AgentTick, tick_id: int) -> None:
        self.tick = tick_id
        if tick.status != ABSENT:
            self.agent = tick.agent
            self.reward = tick.reward
            self.cumulative_reward = tick.cumulative_reward
            self.terminated = tick.terminated
            self.truncated = tick.truncated
            self.info = tick.info
        if tick.observation is not MISSING:
            self.observation = tick.observation
        self.agents = tick.agents
        self.agent_selection = tick.agent_selection

    @property
    def observation_space(self) -> gym.Space[Any]:
        return self.spaces.observation_space(self.agent)

    @property
    def action_space(self) -> gym.Space[Any]:
        return self.spaces.action_space(self.agent)

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @property
    def action_mask(self) -> Any:
        """The legal actions, as PettingZoo gives them: ``observation["action_mask"]`` for a dict
        observation with one, else ``info["action_mask"]``; None if neither."""
        obs = self.observation
        if isinstance(obs, dict) and "action_mask" in obs:
            return obs["action_mask"]
        return self.info.get("action_mask") if isinstance(self.info, dict) else None

    def __repr__(self) -> str:
        return f"ActorContext(trial={self.trial_id!r}, actor={self.actor_name!r}, agent={self.agent!r}, tick={self.tick})"


class TrialPolicy:
    """Base of policies with per-trial state: :func:`~cogment_gym.actors.serve_actor` makes one
    instance per trial (``cls(context)``) when given the class.

    Override :meth:`act` (plain or ``async def``), and :meth:`end` to see how the episode ended.

    Example:
        >>> class Counter(TrialPolicy):
        ...     def __init__(self, context):
        ...         super().__init__(context)
        ...         self.moves = 0
        ...     def act(self, observation, context):
        ...         self.moves += 1
        ...         return context.action_space.sample(mask=context.action_mask)
    """

    def __init__(self, context: ActorContext) -> None:
        self.context = context

    def act(self, observation: Any, context: ActorContext) -> Any:
        raise NotImplementedError

    def end(self, context: ActorContext) -> None:
        """The agent's episode is over (``context`` has its final reward and flags)."""


PolicyFunction = Callable[[Any, ActorContext], Union[Any, Awaitable[Any]]]
Policy = Union[PolicyFunction, "type[TrialPolicy]"]


def is_trial_policy_class(policy: object) -> bool:
    return isinstance(policy, type) and issubclass(policy, TrialPolicy)


def is_async(function: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(getattr(function, "__call__", None))


def acts_now(tick: AgentTick) -> bool:
    """Whether the policy is asked for an action at this tick."""
    return tick.status == ACTING and not tick.done
