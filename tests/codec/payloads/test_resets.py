"""The reset arguments of a batched trial's sub-environments: ``EnvConfig.resets`` at trial
start, a reset tick (``ActionPayload.reset``) and its observation (``BatchedStep.reset_indices``),
written by one side and read by the other."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.payloads import (
    ResetRequest,
    action_payload,
    config_resets,
    read_batched_action,
    reset_action_payload,
    unpack_batched,
    write_batched,
    write_config_resets,
)
from cogment_gym.errors import MalformedMessageError

ACTIONS = batch_space(spaces.Discrete(3), 4)


def test_a_reset_tick_round_trips_seeds_and_options() -> None:
    content = reset_action_payload({3: (None, {"extra": 2, "name": "x"}), 1: (7, None), 0: (0, {})})
    request = read_batched_action(content, ACTIONS, "actions", 4)
    assert isinstance(request, ResetRequest)
    assert list(request.resets) == [0, 1, 3], "ascending, as written"
    assert request.resets == {0: (0, {}), 1: (7, None), 3: (None, {"extra": 2, "name": "x"})}
    assert not env_pb2.ActionPayload.FromString(content).HasField("value")
    action = read_batched_action(action_payload(ACTIONS, np.array([0, 1, 2, 0])), ACTIONS, "actions", 4)
    assert not isinstance(action, ResetRequest) and action.tolist() == [0, 1, 2, 0]


@pytest.mark.parametrize(
    ("indices", "match"),
    [([], "at least one"), ([4], r"< 4; got \[4\]"), ([2, 1], r"ascending.*got \[2, 1\]"), ([1, 1], r"each once.*got \[1, 1\]")],
)
def test_a_malformed_reset_tick_is_refused(indices: list[int], match: str) -> None:
    payload = env_pb2.ActionPayload()
    payload.reset.SetInParent()
    for i in indices:
        payload.reset.resets.add(index=i)
    with pytest.raises(MalformedMessageError, match=match):
        read_batched_action(payload.SerializeToString(), ACTIONS, "actions", 4)


def test_config_resets_per_sub_env_or_seed_plus_i() -> None:
    config = env_pb2.EnvConfig(num_envs=3)
    assert config_resets(config, 3, 5, {"a": 1}) == [(5, {"a": 1}), (6, {"a": 1}), (7, {"a": 1})]
    assert config_resets(config, 2, None, None) == [(None, None), (None, None)]
    write_config_resets(config, [(9, None), (None, {"b": [1, 2]}), (0, {})])
    assert config_resets(env_pb2.EnvConfig.FromString(config.SerializeToString()), 3, 5, None) == [
        (9, None), (None, {"b": [1, 2]}), (0, {}),
    ]
    deferred = env_pb2.EnvConfig(num_envs=2)
    write_config_resets(deferred, [None, (4, None)])
    assert [r.deferred for r in deferred.resets] == [True, False]
    assert config_resets(env_pb2.EnvConfig.FromString(deferred.SerializeToString()), 2, None, None) == [None, (4, None)]
    with pytest.raises(MalformedMessageError, match="resets must hold num_envs=4 entries, got 3"):
        config_resets(config, 4, None, None)


def test_a_reset_ticks_observation_names_the_reset_sub_envs() -> None:
    single = spaces.Box(0, 9, (2,), np.int64)
    batched = batch_space(single, 3)
    obs = np.arange(6, dtype=np.int64).reshape(3, 2)
    zeros = np.zeros(3, np.bool_)
    content = write_batched(batched, single, obs, np.zeros(3), zeros, zeros, [{}, {"seed": 1}, {}], [], [1])
    step = unpack_batched(content, batched, single, 3)
    assert step.reset_indices == [1] and step.infos == [{}, {"seed": 1}, {}]
    assert unpack_batched(write_batched(batched, single, obs, np.zeros(3), zeros, zeros, [], []), batched, single, 3).reset_indices == []
    bad = env_pb2.ObservationPayload.FromString(content)
    bad.batch.reset_indices.append(3)
    with pytest.raises(MalformedMessageError, match=r"reset_indices must be < 3, got \[1, 3\]"):
        unpack_batched(bad.SerializeToString(), batched, single, 3)
