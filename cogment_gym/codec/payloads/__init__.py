"""Writing and reading every ``cogment_gym.v1`` payload of ``env.proto``, for both sides.

- :mod:`~cogment_gym.codec.payloads.actions`: ``ActionPayload`` (actors and facades write it,
  the environment side reads and checks it).
- :mod:`~cogment_gym.codec.payloads.observations`: a step's ``ObservationPayload`` (the env side
  writes it; ``CogmentEnv`` / ``CogmentVectorEnv`` read it).
- :mod:`~cogment_gym.codec.payloads.agents`: an actor's view of its payload in a multi-agent
  trial (statuses, spaces per agent, :class:`AgentTick`).
- :mod:`~cogment_gym.codec.payloads.batched`: the payload of a batched trial (``BatchedStep``).
- :mod:`~cogment_gym.codec.payloads.resets`: per-sub-environment reset arguments of a batched
  trial (``EnvConfig.resets``, a reset tick's ``ActionPayload.reset``).
- :mod:`~cogment_gym.codec.payloads.returns`: rewards and flags in the env's own types.

``read_payload`` (an actor's payload decoded) is imported from its module.
Below ``protocol``: these modules know messages and spaces, never streams.
"""

from cogment_gym.codec.payloads.actions import (
    NO_ACTION,
    action_content,
    action_payload,
    read_action,
    read_agent_action,
    read_batched_action,
)
from cogment_gym.codec.payloads.agents import ABSENT, ACTING, LEAVING, WAITING, AgentSpaces, AgentTick
from cogment_gym.codec.payloads.batched import BatchedObservation, batched_pieces, unpack_batched, write_batched
from cogment_gym.codec.payloads.observations import MISSING, unpack_observation, write_frame, write_observation, write_spaces
from cogment_gym.codec.payloads.resets import (
    ResetRequest,
    SubEnvResetArgs,
    config_resets,
    read_reset_request,
    reset_action_payload,
    write_config_resets,
)
from cogment_gym.codec.payloads.returns import (
    decode_cumulative_reward,
    decode_flags,
    decode_returns,
    decode_reward,
    encode_returns,
    flag_summary,
    reward_summary,
    vector_returns,
)

__all__ = [
    "ABSENT",
    "ACTING",
    "LEAVING",
    "MISSING",
    "NO_ACTION",
    "WAITING",
    "AgentSpaces",
    "AgentTick",
    "BatchedObservation",
    "ResetRequest",
    "SubEnvResetArgs",
    "action_content",
    "action_payload",
    "batched_pieces",
    "config_resets",
    "decode_cumulative_reward",
    "decode_flags",
    "decode_returns",
    "decode_reward",
    "encode_returns",
    "flag_summary",
    "read_action",
    "read_agent_action",
    "read_batched_action",
    "read_reset_request",
    "reset_action_payload",
    "reward_summary",
    "unpack_batched",
    "unpack_observation",
    "vector_returns",
    "write_batched",
    "write_config_resets",
    "write_frame",
    "write_observation",
    "write_spaces",
]
