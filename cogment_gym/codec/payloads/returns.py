"""A step's reward and flags <-> an ``ObservationPayload``, in the types the environment returned.

Gymnasium types a reward as ``SupportsFloat`` and the flags as ``bool``, and environments return
what they like: ``np.float32`` / ``np.float64`` / ``int`` rewards (Box2D, MuJoCo, toy-text,
PettingZoo's games), ``np.bool_`` flags, and highway-env's multi-agent intersection a tuple of
rewards and a tuple of ``terminated`` flags, one per vehicle. A Gymnasium user gets those values
back from the bridge as the environment gave them:

- ``reward`` / ``cumulative_reward`` / ``terminated`` / ``truncated`` (a double and two bools)
  carry Python floats and bools exactly, as before;
- anything else also travels in ``ObservationPayload.exact`` (``ExactReturns``), as plain data
  (:mod:`cogment_gym.codec.info`), and is what the reading side returns;
- the plain fields then hold a summary for Cogment's ``Reward`` messages, datalogs and peers that
  do not read ``exact``: a reward's elements summed (a float), a flag true when every element is
  true. That is also when the environment side ends the trial: a tuple of per-agent flags ends the
  episode once every agent is done (a non-empty tuple is always truthy, so ``bool()`` would end it
  at the first step).

A reward that is not a real number, nor a tuple / list / array of real numbers (a dict, a str,
None, a complex) raises :class:`~cogment_gym.errors.UnsupportedValueError` naming it; so does a
flag whose truth cannot be told.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from cogment_gym._proto.cogment_gym.v1 import env_pb2, values_pb2
from cogment_gym.codec.info import decode_object, encode_object
from cogment_gym.codec.values import describe_value
from cogment_gym.errors import UnsupportedValueError

__all__ = [
    "decode_cumulative_reward",
    "decode_flags",
    "decode_returns",
    "decode_reward",
    "encode_returns",
    "flag_summary",
    "reward_summary",
    "vector_returns",
]


def reward_summary(reward: Any, path: str = "reward") -> float:
    """The float a reward stands for where one number is needed: itself, or its elements' sum.

    Raises:
        UnsupportedValueError: not a real number nor a tuple / list / array of real numbers.
    """
    if type(reward) is float:
        return reward
    if isinstance(reward, (Real, np.bool_)) and not isinstance(reward, np.ndarray):
        return float(reward)
    if isinstance(reward, (tuple, list, np.ndarray)):
        try:
            array = np.asarray(reward)
        except (ValueError, TypeError) as err:
            raise _not_a_reward(reward, path) from err
        if array.dtype.kind in "biuf":
            return float(array.sum())
    raise _not_a_reward(reward, path)


def _not_a_reward(reward: Any, path: str) -> UnsupportedValueError:
    return UnsupportedValueError(
        f"{path}: expected a real number, or a tuple / list / array of real numbers, got {describe_value(reward)}"
    )


def flag_summary(flag: Any, path: str = "terminated") -> bool:
    """The bool a flag stands for: itself, or True when all its elements are (every agent done).

    Raises:
        UnsupportedValueError: its truth value cannot be told.
    """
    if type(flag) is bool:
        return flag
    try:
        if isinstance(flag, (tuple, list, np.ndarray)):
            array = np.asarray(flag)
            if array.dtype.kind not in "biuf":
                raise TypeError(f"elements of dtype {array.dtype}")
            return bool(array.size) and bool(np.all(array))
        return bool(flag)
    except (ValueError, TypeError) as err:
        raise UnsupportedValueError(f"{path}: expected a bool, or a tuple / array of bools, got {describe_value(flag)}") from err


def vector_returns(reward: Any, terminated: Any, truncated: Any, path: str) -> tuple[float, bool, bool]:
    """A sub-environment's reward and flags for a vector env's arrays (float64 rewards, bool
    flags), as ``gymnasium.vector.SyncVectorEnv`` stores them: scalars only.

    Raises:
        UnsupportedValueError: a reward that is not one real number, or a flag that is not one
            bool (a tuple per agent has no place in those arrays); the message names ``path``.
    """
    if type(terminated) is bool and type(truncated) is bool and (type(reward) is float or type(reward) is int):
        return float(reward), terminated, truncated  # the usual case, first: once per sub-env and step
    if not isinstance(reward, (Real, np.bool_)) and not (isinstance(reward, np.ndarray) and reward.shape == () and reward.dtype.kind in "biuf"):
        raise UnsupportedValueError(
            f"{path}: a vector env keeps one float64 reward per sub-environment (as gymnasium.vector.SyncVectorEnv "
            f"does): expected a real number, got {describe_value(reward)}"
        )
    flags = []
    for name, flag in (("terminated", terminated), ("truncated", truncated)):
        if isinstance(flag, (tuple, list)) or (isinstance(flag, np.ndarray) and flag.shape != ()):
            raise UnsupportedValueError(
                f"{path}: a vector env keeps one {name} flag per sub-environment: expected a bool, got {describe_value(flag)}"
            )
        flags.append(flag_summary(flag, f"{path} {name}"))
    return float(reward), flags[0], flags[1]


def _exact(value: Any, path: str) -> values_pb2.Value:
    return encode_object(value, path)


def encode_returns(
    out: env_pb2.ObservationPayload,
    reward: Any,
    terminated: Any,
    truncated: Any,
    cumulative_reward: Any = None,
    *,
    path: str = "",
) -> tuple[float, bool, bool]:
    """Fill ``out``'s reward, flags (and, when given, cumulative reward), exact types kept.

    Returns:
        ``(reward, terminated, truncated)`` as a float and two bools: the summaries that the
        plain fields hold (for Cogment's Reward message and for ending the trial).

    Raises:
        UnsupportedValueError: a reward or a flag that cannot travel (see the module docstring).
    """
    if type(reward) is float and type(terminated) is bool and type(truncated) is bool and cumulative_reward is None:
        out.reward, out.terminated, out.truncated = reward, terminated, truncated  # the usual case, first
        return reward, terminated, truncated
    reward_f = reward_summary(reward, f"{path}reward")
    out.reward = reward_f
    if type(reward) is not float:
        out.exact.reward.CopyFrom(_exact(reward, f"{path}reward"))
    if cumulative_reward is not None:
        out.cumulative_reward = reward_summary(cumulative_reward, f"{path}cumulative reward")
        if type(cumulative_reward) is not float:
            out.exact.cumulative_reward.CopyFrom(_exact(cumulative_reward, f"{path}cumulative reward"))
    flags = []
    for name, flag in (("terminated", terminated), ("truncated", truncated)):
        summary = flag_summary(flag, f"{path}{name}")
        setattr(out, name, summary)
        if type(flag) is not bool:
            getattr(out.exact, name).CopyFrom(_exact(flag, f"{path}{name}"))
        flags.append(summary)
    return reward_f, flags[0], flags[1]


def _read(payload: env_pb2.ObservationPayload, name: str, plain: Any) -> Any:
    if payload.HasField("exact") and payload.exact.HasField(name):
        return decode_object(getattr(payload.exact, name), name.replace("_", " "))
    return plain


def decode_returns(payload: env_pb2.ObservationPayload) -> tuple[Any, Any, Any]:
    """``(reward, terminated, truncated)`` as the environment returned them."""
    if not payload.HasField("exact"):
        return payload.reward, payload.terminated, payload.truncated
    return decode_reward(payload), *decode_flags(payload)


def decode_reward(payload: env_pb2.ObservationPayload) -> Any:
    """The step's reward as the environment returned it."""
    return _read(payload, "reward", payload.reward)


def decode_cumulative_reward(payload: env_pb2.ObservationPayload) -> Any:
    """The agent's accumulated reward (multi-agent payloads) as the environment holds it."""
    return _read(payload, "cumulative_reward", payload.cumulative_reward)


def decode_flags(payload: env_pb2.ObservationPayload) -> tuple[Any, Any]:
    """``(terminated, truncated)`` as the environment returned them."""
    return _read(payload, "terminated", payload.terminated), _read(payload, "truncated", payload.truncated)
