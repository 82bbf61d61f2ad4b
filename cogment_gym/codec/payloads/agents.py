"""An actor's view of ``cogment_gym.v1.ObservationPayload``: the agent statuses, each agent's
spaces, and one actor's payload of one tick decoded (:class:`AgentTick`).

Read by the service actors (``cogment_gym.actors``) and by the client facades
(``cogment_gym.envs``): both see the same decoded numpy values, built with the same spaces.
"""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.info import decode_info
from cogment_gym.codec.payloads.observations import MISSING
from cogment_gym.codec.payloads.returns import decode_cumulative_reward, decode_flags, decode_reward, flag_summary
from cogment_gym.codec.spaces import space_from_proto
from cogment_gym.codec.tensor import tensor_to_array
from cogment_gym.codec.values import decode, parse_message
from cogment_gym.errors import CogmentGymError

__all__ = [
    "ABSENT",
    "ACTING",
    "LEAVING",
    "WAITING",
    "AgentSpaces",
    "AgentTick",
    "read_payload",
]

ACTING = env_pb2.AGENT_STATUS_ACTING
WAITING = env_pb2.AGENT_STATUS_WAITING
LEAVING = env_pb2.AGENT_STATUS_LEAVING
ABSENT = env_pb2.AGENT_STATUS_ABSENT


class AgentSpaces:
    """The spaces of each agent, each kept as one object (PettingZoo checks identity).

    Fixed agents get theirs from the spec (or an ActorConfig); agent slots learn them from their
    payloads, new objects per episode (a generated environment may change them at each reset).
    """

    def __init__(self, spaces: Mapping[str, tuple[gym.Space[Any] | None, gym.Space[Any] | None]] | None = None) -> None:
        self._spaces: dict[str, tuple[gym.Space[Any] | None, gym.Space[Any] | None]] = dict(spaces or {})
        self._episode: dict[bytes, gym.Space[Any]] = {}

    def new_episode(self) -> None:
        """Spaces announced from now on are new objects (agent slots)."""
        self._episode.clear()

    def set_from_payload(self, agent: str, observation_space: Any, action_space: Any) -> None:
        """Spaces announced in a payload (agent slots). Agents announced with equal spaces in one
        episode share one object, as environments with per-type spaces (PettingZoo's generated
        agents) share theirs: seeding an agent's space then seeds its type's, as it would there."""
        self._spaces[agent] = (self._shared(observation_space), self._shared(action_space))

    def _shared(self, message: Any) -> gym.Space[Any] | None:
        if message is None:
            return None
        key = message.SerializeToString(deterministic=True)
        space = self._episode.get(key)
        if space is None:
            space = self._episode[key] = space_from_proto(message)
        return space

    def set(self, agent: str, observation_space: gym.Space[Any] | None, action_space: gym.Space[Any] | None) -> None:
        self._spaces[agent] = (observation_space, action_space)

    def observation_space(self, agent: str) -> gym.Space[Any]:
        space = self._spaces.get(agent, (None, None))[0]
        if space is None:
            raise KeyError(f"the observation space of agent {agent!r} is not known (yet)")
        return space

    def action_space(self, agent: str) -> gym.Space[Any]:
        space = self._spaces.get(agent, (None, None))[1]
        if space is None:
            raise KeyError(f"the action space of agent {agent!r} is not known (yet)")
        return space

    def __contains__(self, agent: object) -> bool:
        return agent in self._spaces


class AgentTick:
    """One actor's payload of one tick, decoded."""

    __slots__ = (
        "status", "agent", "observation", "reward", "cumulative_reward", "terminated", "truncated", "info",
        "agent_selection", "agents", "step_agents", "state", "frame", "new_spaces",
    )

    def __init__(self) -> None:
        self.status = ACTING
        self.agent = ""
        self.observation: Any = MISSING
        self.reward: Any = 0.0
        self.cumulative_reward: Any = 0.0
        self.terminated: Any = False
        self.truncated: Any = False
        self.info: dict[str, Any] = {}
        self.agent_selection = ""
        self.agents: list[str] = []
        self.step_agents: list[str] = []
        self.state: Any = MISSING
        self.frame: Any = None
        self.new_spaces = False

    @property
    def done(self) -> bool:
        return flag_summary(self.terminated) or flag_summary(self.truncated, "truncated")

    @property
    def present(self) -> bool:
        """The agent is in this tick's data (not ABSENT)."""
        return self.status != ABSENT

    @property
    def must_act(self) -> bool:
        """The agent's action at this tick is used and is not the forced None of a dead step."""
        return self.status == ACTING and not self.done

    def __repr__(self) -> str:
        status = env_pb2.AgentStatus.Name(self.status)
        return f"AgentTick({self.agent!r}, {status}, reward={self.reward}, terminated={self.terminated}, truncated={self.truncated})"


def read_payload(
    content: bytes,
    spaces: AgentSpaces,
    default_agent: str = "",
    state_space: gym.Space[Any] | None = None,
) -> AgentTick:
    """Decode one actor's ObservationPayload.

    Args:
        content: the ``Observation.content`` bytes.
        spaces: the agents' spaces; updated from the payload when it carries them (agent slots).
        default_agent: the agent of a single-agent environment's payload (which names none).
        state_space: decodes ``state`` when the payload has one.
    """
    payload = parse_message(env_pb2.ObservationPayload, content, "observation")
    tick = AgentTick()
    tick.status = payload.status
    agent = tick.agent = payload.agent or (default_agent if payload.status != ABSENT else "")
    tick.agent_selection = payload.agent_selection
    tick.agents = list(payload.agents)
    tick.step_agents = list(payload.step_agents)
    if payload.HasField("observation_space") or payload.HasField("action_space"):
        spaces.set_from_payload(
            agent,
            payload.observation_space if payload.HasField("observation_space") else None,
            payload.action_space if payload.HasField("action_space") else None,
        )
        tick.new_spaces = True
    if payload.HasField("value"):
        try:
            space = spaces.observation_space(agent)
        except KeyError as err:
            raise CogmentGymError(f"an observation for agent {agent!r} arrived, but its observation space is unknown") from err
        tick.observation = decode(space, payload.value, f"observation of agent {agent!r}", bounds=False)
    # In the env's own types (codec.payloads.returns): np.float32, int, a tuple per agent, np.bool_ ...
    tick.reward = decode_reward(payload)
    tick.cumulative_reward = decode_cumulative_reward(payload) if payload.agent else tick.reward
    tick.terminated, tick.truncated = decode_flags(payload)
    if payload.HasField("info"):
        tick.info = decode_info(payload.info)
    if payload.HasField("state") and state_space is not None:
        tick.state = decode(state_space, payload.state, "state", bounds=False)
    if payload.HasField("frame"):
        tick.frame = tensor_to_array(payload.frame)
    elif payload.text_frame:
        tick.frame = payload.text_frame
    return tick

