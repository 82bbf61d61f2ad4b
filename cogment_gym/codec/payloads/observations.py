"""A single step's ``cogment_gym.v1.ObservationPayload``: written by the environment side
(Gymnasium trials, each agent of a PettingZoo trial), read by the single-agent client facades
(``CogmentEnv``, ``CogmentVectorEnv``)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.info import decode_info, encode_info
from cogment_gym.codec.payloads.returns import decode_returns, encode_returns
from cogment_gym.codec.spaces import space_to_proto
from cogment_gym.codec.tensor import array_to_tensor, tensor_to_array
from cogment_gym.codec.values import decode, encode, parse_message
from cogment_gym.errors import CogmentGymError

__all__ = ["MISSING", "unpack_observation", "write_frame", "write_observation", "write_spaces"]


class _Missing:
    """Marker: no value (the payload carries no observation, or the action payload no action)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def write_observation(
    out: env_pb2.ObservationPayload,
    space: gym.Space[Any] | None,
    observation: Any,
    reward: Any,
    terminated: Any,
    truncated: Any,
    info: dict[str, Any] | None,
    *,
    cumulative_reward: Any = None,
    path: str = "observation",
    returns_path: str = "",
) -> tuple[float, bool, bool]:
    """Fill ``out`` with one step: reward and flags in the env's own types
    (:func:`~cogment_gym.codec.payloads.returns.encode_returns`), the observation encoded by
    ``space`` (none when it is :data:`MISSING`, and ``space`` may be None then; not held to its bounds, as Gymnasium does not hold
    envs to them), and ``info`` when it is not empty.

    Returns:
        ``(reward, terminated, truncated)`` as a float and two bools (for Cogment's ``Reward``
        message and for ending the trial).

    Raises:
        SpaceMismatchError: the observation does not fit ``space`` (the message names ``path``).
        UnsupportedValueError: a reward, a flag or an info value that cannot travel.
    """
    summaries = encode_returns(out, reward, terminated, truncated, cumulative_reward, path=returns_path)
    if observation is not MISSING:
        if space is None:
            raise CogmentGymError(f"{path}: the observation space is not known")
        out.value.CopyFrom(encode(space, observation, path, bounds=False))  # in place: see codec.building
    if info:
        out.info.CopyFrom(encode_info(info))
    return summaries


def write_frame(out: env_pb2.ObservationPayload, frame: Any) -> None:
    """A rendered frame: text (``render_mode="ansi"``) as ``text_frame``, anything else as an
    array in ``frame``."""
    if isinstance(frame, str):
        out.text_frame = frame
    else:
        array_to_tensor(np.asarray(frame), out.frame)


def write_spaces(out: env_pb2.ObservationPayload, observation_space: gym.Space[Any], action_space: gym.Space[Any]) -> None:
    """The agent's spaces, in the first payload of an agent slot's new agent."""
    out.observation_space.CopyFrom(space_to_proto(observation_space))
    out.action_space.CopyFrom(space_to_proto(action_space))


def unpack_observation(
    content: bytes, space: gym.Space[Any], path: str = "observation", where: str = ""
) -> tuple[Any, Any, Any, Any, dict[str, Any], Any]:
    """``(obs, reward, terminated, truncated, info, frame)`` of one ObservationPayload; ``frame``
    is None when the payload carries none. ``where`` prefixes the error of a malformed payload."""
    payload = parse_message(env_pb2.ObservationPayload, content, f"{where}observation")
    obs = decode(space, payload.value, path, bounds=False)  # as Gymnasium: observations may leave their bounds
    info = decode_info(payload.info) if payload.HasField("info") else {}
    frame: Any = None
    if payload.HasField("frame"):
        frame = tensor_to_array(payload.frame)
    elif payload.text_frame:
        frame = payload.text_frame
    reward, terminated, truncated = decode_returns(payload)  # the env's own types (codec.payloads.returns)
    return obs, reward, terminated, truncated, info, frame
