"""The bridge gives back what the env returned, in its own types: observations (Python ints,
0-d arrays, lists, dicts in the env's key order, OrderedDicts), rewards (int, np.float32, a tuple
per agent) and flags (np.bool_, a tuple per agent). Embedded and over gRPC; vector envs, which
keep scalars in arrays as Gymnasium's do, refuse tuples with a typed error."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import cogment_gym
from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.errors import EnvironmentFailedError
from cogment_gym.testing import assert_data_equal, check_bridge_matches

# What the env returns at each step: (observation, reward, terminated, truncated).
OBSERVATION_SPACE = spaces.Dict(
    {"zeta": spaces.Discrete(5), "alpha": spaces.Box(-9, 9, (), np.int64), "mid": spaces.Box(0, 1, (2,), np.float32), "pair": spaces.Tuple((spaces.Discrete(3), spaces.Discrete(3)))}
)
assert list(OBSERVATION_SPACE.spaces) == ["alpha", "mid", "pair", "zeta"]  # Gymnasium sorts the keys


def _obs(t: int) -> Any:
    kinds = [
        {"zeta": t, "alpha": np.array(t), "mid": [0.5, 0.25], "pair": [1, 2]},  # int, 0-d array, lists
        OrderedDict([("mid", np.array([0.0, 1.0], np.float32)), ("zeta", np.int32(t)), ("pair", (np.int64(0), 1)), ("alpha", np.int64(-t))]),
        {"pair": (2, 2), "alpha": -3, "zeta": np.array(1, np.uint8), "mid": np.array([1, 0], np.int8)},  # int8 array: safely castable
    ]
    return kinds[t % len(kinds)]


REWARDS = [1, np.float32(0.5), 0.25, np.float64(-1.0), np.int64(2), True]
FLAGS = [np.False_, False, np.False_, False, np.False_, np.True_]


class TypesEnv(gym.Env[Any, Any]):
    """Six steps returning every type above; seeded so both sides match."""

    observation_space = OBSERVATION_SPACE
    action_space = spaces.Discrete(2)
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, per_agent: bool = False) -> None:
        self.per_agent = per_agent
        self.t = self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.t, self.steps = int(self.np_random.integers(3)), 0
        return _obs(self.t), {"od": OrderedDict(b=1, a=np.float32(2))}

    def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        self.t += 1
        i = self.steps % len(REWARDS)
        self.steps += 1
        reward: Any = REWARDS[i]
        terminated: Any = FLAGS[i]
        if self.per_agent:  # like highway-env's intersection-multi-agent-v1
            reward, terminated = (np.float64(reward), np.float64(-1)), (bool(terminated), bool(terminated))
        return _obs(self.t), reward, terminated, np.False_, {"action": action}


def test_every_type_comes_back_as_the_env_returned_it(served: Callable[..., Any], closing: Callable[[Any], Any]) -> None:
    server = served(TypesEnv)
    for bridged in (closing(cogment_gym.CogmentEnv(TypesEnv)), closing(cogment_gym.CogmentEnv(environment=server.endpoint))):
        report = check_bridge_matches(TypesEnv, bridged, seeds=[0, 1, 2], max_steps=10, policy=lambda obs: 1)
        assert report.episode_lengths == [6, 6, 6] and report.terminated == 3
    bridged = closing(cogment_gym.CogmentEnv(TypesEnv))
    obs, info = bridged.reset(seed=0)
    assert type(info["od"]) is OrderedDict
    for t in range(6):
        obs, reward, terminated, truncated, info = bridged.step(0 if t % 2 else np.int8(1))
        assert_data_equal(REWARDS[t], reward, "reward")
        assert_data_equal(FLAGS[t], terminated, "terminated")
        assert type(truncated) is np.bool_
        assert type(info["action"]) is (np.int8 if t % 2 == 0 else int)  # the action as the caller gave it


def test_tuple_rewards_and_flags_per_agent(closing: Callable[[Any], Any]) -> None:
    bridged = closing(cogment_gym.CogmentEnv(lambda: TypesEnv(per_agent=True)))
    report = check_bridge_matches(lambda: TypesEnv(per_agent=True), bridged, seeds=[0, 4], max_steps=10, policy=lambda obs: 0)
    # The trial ends when every agent is done: (True, True) at step 6, not at the first tuple.
    assert report.episode_lengths == [6, 6] and report.terminated == 2
    bridged.reset(seed=0)
    _, reward, terminated, _, _ = bridged.step(0)
    assert reward == (np.float64(1), np.float64(-1)) and type(reward[0]) is np.float64 and terminated == (False, False)


def test_vector_envs_refuse_tuple_rewards_with_a_typed_error(closing: Callable[[Any], Any]) -> None:
    def per_agent() -> TypesEnv:
        return TypesEnv(per_agent=True)

    for batched in (False, True):
        envs = closing(CogmentVectorEnv(per_agent, num_envs=2, envs_per_trial=2 if batched else 1))
        envs.reset(seed=0)
        error = EnvironmentFailedError if batched else cogment_gym.errors.UnsupportedValueError
        with pytest.raises(error, match=r"sub-environment 0.*one float64 reward per sub-environment.*got tuple"):
            envs.step(np.array([0, 0]))


def test_a_reward_that_is_not_a_number_is_a_typed_error_naming_it(closing: Callable[[Any], Any]) -> None:
    class DictReward(TypesEnv):
        def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
            obs, _, terminated, truncated, info = super().step(action)
            return obs, {"a": 1.0}, terminated, truncated, info

    bridged = closing(cogment_gym.CogmentEnv(DictReward))
    bridged.reset(seed=0)
    with pytest.raises(EnvironmentFailedError, match=r"reward: expected a real number, or a tuple / list / array of real numbers, got dict"):
        bridged.step(0)
