"""A step's reward and flags through an ObservationPayload (``codec/payloads/returns.py``): the env's own
types come back; the plain fields hold the float / bool summaries Cogment tools read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.payloads.returns import (
    decode_cumulative_reward,
    decode_flags,
    decode_reward,
    encode_returns,
    flag_summary,
    reward_summary,
    vector_returns,
)
from cogment_gym.errors import UnsupportedValueError

from ..space_zoo import assert_value_equal


def _round_trip(reward: Any, terminated: Any, truncated: Any, cumulative: Any = None) -> tuple[env_pb2.ObservationPayload, tuple[Any, ...]]:
    msg = env_pb2.ObservationPayload()
    summaries = encode_returns(msg, reward, terminated, truncated, cumulative)
    back = env_pb2.ObservationPayload.FromString(msg.SerializeToString())
    return back, summaries


@pytest.mark.parametrize(
    "reward",
    [1.5, -0.0, float("nan"), 1, True, np.float32(0.25), np.float64(-1.0), np.int64(3), (np.float64(0.5), np.float64(-1.0)), [1, 2.5], np.array([0.5, 0.25], np.float32), np.array(2.0)],
    ids=repr,
)
def test_rewards_come_back_in_their_own_types(reward: Any) -> None:
    msg, (summary, terminated, truncated) = _round_trip(reward, False, False)
    assert_value_equal(decode_reward(msg), reward)
    expected = float(np.sum(reward)) if isinstance(reward, (tuple, list, np.ndarray)) else float(reward)
    assert type(summary) is float and (summary == expected or (np.isnan(summary) and np.isnan(expected)))
    assert msg.reward == summary or np.isnan(msg.reward)
    assert (terminated, truncated) == (False, False)
    # A Python float needs nothing more than the double field: no extra bytes.
    assert msg.HasField("exact") is (type(reward) is not float)


@pytest.mark.parametrize(
    "flag, summary",
    [(True, True), (False, False), (np.True_, True), (np.False_, False), ((True, False), False), ((True, True), True), ((), False),
     (np.array([True, True]), True), ([False], False)],
    ids=repr,
)
def test_flags_come_back_in_their_own_types(flag: Any, summary: bool) -> None:
    msg, (_, terminated, truncated) = _round_trip(0.0, flag, flag)
    assert (terminated, truncated) == (summary, summary) == (msg.terminated, msg.truncated)
    assert_value_equal(decode_flags(msg)[0], flag)
    assert_value_equal(decode_flags(msg)[1], flag)
    assert flag_summary(flag) is summary


def test_cumulative_rewards_of_multi_agent_payloads() -> None:
    msg, _ = _round_trip(1, False, False, cumulative=np.float64(2.5))
    assert_value_equal(decode_reward(msg), 1)
    assert_value_equal(decode_cumulative_reward(msg), np.float64(2.5))
    assert msg.cumulative_reward == 2.5
    plain, _ = _round_trip(0.5, False, False, cumulative=1.5)
    assert_value_equal(decode_cumulative_reward(plain), 1.5)
    assert not plain.HasField("exact")


def test_a_payload_without_exact_fields_reads_as_before() -> None:
    msg = env_pb2.ObservationPayload(reward=2.0, terminated=True)
    assert_value_equal(decode_reward(msg), 2.0)
    assert decode_flags(msg) == (True, False) and type(decode_flags(msg)[0]) is bool


@pytest.mark.parametrize("reward", [{"a": 1.0}, "1.0", None, 1 + 2j, [1, "a"], np.array(["x"]), object()], ids=repr)
def test_rewards_that_are_not_numbers_are_a_typed_error_naming_them(reward: Any) -> None:
    with pytest.raises(UnsupportedValueError, match=r"^agent 'a': reward: expected a real number, or a tuple / list / array of real numbers, got"):
        encode_returns(env_pb2.ObservationPayload(), reward, False, False, path="agent 'a': ")
    with pytest.raises(UnsupportedValueError):
        reward_summary(reward)


def test_flags_whose_truth_cannot_be_told_are_a_typed_error() -> None:
    with pytest.raises(UnsupportedValueError, match="terminated: expected a bool, or a tuple / array of bools"):
        encode_returns(env_pb2.ObservationPayload(), 0.0, np.array([[1], [2, 3]], dtype=object), False)


def test_vector_envs_take_scalars_only() -> None:
    assert vector_returns(np.float32(0.5), np.True_, False, "sub-environment 0") == (0.5, True, False)
    assert vector_returns(np.array(1.0), False, np.array(True), "sub-environment 0") == (1.0, False, True)
    with pytest.raises(UnsupportedValueError, match=r"sub-environment 3: a vector env keeps one float64 reward .* got tuple"):
        vector_returns((1.0, 2.0), False, False, "sub-environment 3")
    with pytest.raises(UnsupportedValueError, match=r"sub-environment 1: a vector env keeps one terminated flag .* got tuple"):
        vector_returns(1.0, (False, True), False, "sub-environment 1")
