"""The shipped checkers themselves (``cogment_gym.testing``): they must catch every difference.

A checker that passes everything proves nothing, so each rule of the strict comparison and of
``check_bridge_matches`` is shown failing on a "bridge" that is subtly wrong.
"""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict
from typing import Any, Callable, SupportsFloat

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from cogment_gym.testing import (
    COMPOSITE_ENV_ID,
    CompositeSpacesEnv,
    assert_data_equal,
    canonical_value,
    check_bridge_matches,
    register_envs,
)

from tests.conftest import REPO_ROOT

# ---------------------------------------------------------------------------------------------
# assert_data_equal


@pytest.mark.parametrize(
    ("expected", "actual", "phrase"),
    [
        (1, np.int64(1), "value: type differs"),
        (1.0, 1, "type differs"),
        (True, 1, "type differs"),
        ((1, 2), [1, 2], "type differs"),
        (np.zeros(2, np.float32), np.zeros(2, np.float64), "dtype differs (float32 != float64)"),
        (np.zeros((2, 1)), np.zeros((1, 2)), "shape differs"),
        (np.array([1.0, 2.0]), np.array([1.0, 2.0000001]), "values differ"),
        (np.array(0.0), np.array(-0.0), "values differ"),
        (0.0, -0.0, "values differ"),
        (float("nan"), 1.0, "values differ"),
        (np.float32(1), np.float64(1), "type differs"),
        (np.int8(3), np.int8(4), "values differ"),
        ({"a": 1}, {"a": 1, "b": 2}, "keys differ: missing [], unexpected ['b']"),
        ((1, 2), (1, 2, 3), "length differs"),
        ("abc", "abd", "values differ"),
        (b"\x00", b"\x01", "values differ"),
        (None, 0, "type differs"),
        (2**70, 2**70 + 1, "values differ"),
    ],
)
def test_strict_comparison_finds_differences(expected: Any, actual: Any, phrase: str) -> None:
    with pytest.raises(AssertionError) as err:
        assert_data_equal(expected, actual)
    assert phrase in str(err.value)


def test_strict_comparison_names_the_path_and_accepts_equal_data() -> None:
    value = {"a": (np.int64(1), {"b": [np.array([np.nan, -0.0, np.inf], np.float32), None]}), "c": float("nan")}
    assert_data_equal(value, {"a": (np.int64(1), {"b": [np.array([np.nan, -0.0, np.inf], np.float32), None]}), "c": float("nan")})
    with pytest.raises(AssertionError, match=r"^obs: key order differs: expected \['a', 'c'\], got \['c', 'a'\]"):
        assert_data_equal(value, {"c": float("nan"), "a": value["a"]}, "obs")
    other = {"a": (np.int64(1), {"b": [np.array([np.nan, 0.0, np.inf], np.float32), None]}), "c": float("nan")}
    with pytest.raises(AssertionError, match=r"^obs\['a'\]\[1\]\['b'\]\[0\]: values differ"):
        assert_data_equal(value, other, "obs")
    graph = spaces.GraphInstance(np.zeros((2, 1)), np.ones((1, 1)), np.array([[0, 1]]))
    assert_data_equal(graph, spaces.GraphInstance(np.zeros((2, 1)), np.ones((1, 1)), np.array([[0, 1]])))
    with pytest.raises(AssertionError, match=r"g\.edge_links: values differ"):
        assert_data_equal(graph, spaces.GraphInstance(np.zeros((2, 1)), np.ones((1, 1)), np.array([[1, 0]])), "g")


def test_canonical_value_converts_only_losslessly() -> None:
    assert_data_equal(np.int64(3), canonical_value(spaces.Discrete(5), 3))
    assert_data_equal(np.array([1.0, 2.0], np.float32), canonical_value(spaces.Box(0, 3, (2,), np.float32), [1.0, 2.0]))
    assert_data_equal(np.array([1, 2]), canonical_value(spaces.MultiDiscrete([3, 3]), np.array([1, 2], np.int32)))
    # Not lossless: left as they are, so that the comparison reports them.
    kept = np.array([0.1, 0.2])
    assert canonical_value(spaces.Box(0, 1, (2,), np.float32), kept) is kept
    assert canonical_value(spaces.Box(0, 1, (2,), np.float32), [0.1, 0.2]) == [0.1, 0.2]
    assert canonical_value(spaces.Discrete(2), 1.0) == 1.0 and isinstance(canonical_value(spaces.Discrete(2), 1.0), float)
    nested = spaces.Dict({"t": spaces.Tuple((spaces.Discrete(2), spaces.Text(3)))})
    assert_data_equal({"t": (np.int64(1), "ab")}, canonical_value(nested, {"t": [1, "ab"]}))


# ---------------------------------------------------------------------------------------------
# check_bridge_matches on deliberately wrong bridges


class Perturb(gym.Wrapper[Any, Any, Any, Any]):
    """A "bridge" that changes one field of one step's result."""

    def __init__(self, env: gym.Env[Any, Any], at_step: int, change: Callable[[list[Any]], None]) -> None:
        super().__init__(env)
        self.at_step, self.change, self.t = at_step, change, 0

    def reset(self, **kwargs: Any) -> Any:
        self.t = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        self.t += 1
        result = list(self.env.step(action))
        if self.t == self.at_step:
            self.change(result)
        return tuple(result)  # type: ignore[return-value]


def _with_action_space(env: gym.Env[Any, Any], space: spaces.Space[Any]) -> gym.Env[Any, Any]:
    class Other(gym.Wrapper[Any, Any, Any, Any]):
        pass

    wrapped = Other(env)
    wrapped.action_space = space
    return wrapped


def _set(index: int, value: Any) -> Callable[[list[Any]], None]:
    def change(result: list[Any]) -> None:
        result[index] = value(result[index]) if callable(value) else value

    return change


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        (_set(1, lambda r: r + 1e-12), "reward: values differ"),
        (_set(2, True), "terminated: values differ"),
        (_set(3, True), "truncated: values differ"),
        (_set(0, lambda o: o.astype(np.float64)), "obs: dtype differs"),
        (_set(0, lambda o: o + np.float32(1e-6)), "obs: values differ"),
        (_set(4, {"extra": 1}), "info: keys differ"),
    ],
)
def test_bridge_check_reports_the_first_difference(change: Callable[[list[Any]], None], phrase: str) -> None:
    bridge = Perturb(gym.make("CartPole-v1"), at_step=3, change=change)
    with pytest.raises(AssertionError) as err:
        check_bridge_matches("CartPole-v1", bridge, seeds=[0, 1])
    message = str(err.value)
    assert message.startswith("episode 0 (seed 0), step 3 (action ")
    assert phrase in message and "(direct vs bridge)" in message


def test_bridge_check_compares_resets_spaces_and_later_episodes() -> None:
    class WrongReset(gym.Wrapper[Any, Any, Any, Any]):
        def reset(self, **kwargs: Any) -> Any:
            obs, info = self.env.reset(**kwargs)
            return obs, {**info, "seed": kwargs.get("seed")}

    with pytest.raises(AssertionError, match=r"^episode 0 \(seed 3\), reset: info: keys differ"):
        check_bridge_matches("CartPole-v1", WrongReset(gym.make("CartPole-v1")), seeds=[3])

    with pytest.raises(AssertionError, match="observation spaces differ"):
        check_bridge_matches("Acrobot-v1", gym.make("CartPole-v1"), seeds=[0])
    with pytest.raises(AssertionError, match="action spaces differ"):
        check_bridge_matches("FrozenLake-v1", _with_action_space(gym.make("FrozenLake-v1"), spaces.Discrete(5)), seeds=[0])

    # A bridge that seeds with 0 when no seed was asked differs at the first unseeded episode.
    class SeedsZero(gym.Wrapper[Any, Any, Any, Any]):
        def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
            return self.env.reset(seed=0 if seed is None else seed, options=options)

    with pytest.raises(AssertionError, match=r"^episode 1 \(seed None\), reset: obs: values differ"):
        check_bridge_matches("CartPole-v1", SeedsZero(gym.make("CartPole-v1")), seeds=[5], episodes=2)


def test_canonical_mode_is_what_lets_python_ints_match() -> None:
    class AsNumpy(gym.Wrapper[Any, Any, Any, Any]):
        """What a space-encoding bridge returns: np.int64 observations, float rewards."""

        def reset(self, **kwargs: Any) -> Any:
            obs, info = self.env.reset(**kwargs)
            return np.int64(obs), info

        def step(self, action: Any) -> Any:
            obs, reward, terminated, truncated, info = self.env.step(action)
            return np.int64(obs), float(reward), bool(terminated), bool(truncated), info

    def bridge() -> gym.Env[Any, Any]:
        return AsNumpy(gym.make("FrozenLake-v1"))

    report = check_bridge_matches("FrozenLake-v1", bridge(), seeds=[0, 1, 2], canonical=True)
    assert report.episodes == 3 and report.steps > 0
    # The default is strict: the env's Python int is not np.int64.
    with pytest.raises(AssertionError, match=r"reset: obs: type differs: expected int 0, got int64"):
        check_bridge_matches("FrozenLake-v1", bridge(), seeds=[0])


def test_the_default_comparison_is_strict_about_types_and_key_order() -> None:
    """The bridge keeps the env's own types: a bridge that changes any of them fails the check."""

    class Changes(gym.Wrapper[Any, Any, Any, Any]):
        def __init__(self, env: gym.Env[Any, Any], change: Callable[[Any, Any], tuple[Any, Any]]) -> None:
            super().__init__(env)
            self.change = change

        def reset(self, **kwargs: Any) -> Any:
            obs, info = self.env.reset(**kwargs)
            return self.change(obs, 0)[0], info

        def step(self, action: Any) -> Any:
            obs, reward, terminated, truncated, info = self.env.step(action)
            obs, reward = self.change(obs, reward)
            return obs, reward, terminated, truncated, info

    cases = [
        ("FrozenLake-v1", lambda o, r: (o, float(r)), "reward: type differs: expected int 0, got float"),
        ("Pendulum-v1", lambda o, r: (o, float(r)), "reward: type differs: expected float64"),
        (COMPOSITE_ENV_ID, lambda o, r: (dict(reversed(list(o.items()))), r), "obs: key order differs"),
        (COMPOSITE_ENV_ID, lambda o, r: (OrderedDict(o), r), "obs: type differs: expected dict"),
    ]
    for env_id, change, phrase in cases:
        with pytest.raises(AssertionError) as err:
            check_bridge_matches(env_id, Changes(gym.make(env_id), change), seeds=[0], max_steps=3)
        assert phrase in str(err.value), (env_id, str(err.value))
        check_bridge_matches(env_id, Changes(gym.make(env_id), lambda o, r: (o, r)), seeds=[0], max_steps=3)


def test_policy_and_options_reach_both_sides() -> None:
    seen: list[Any] = []

    def policy(obs: Any) -> Any:
        seen.append(obs)
        return {"move": np.zeros(2, np.float32), "choice": np.int64(1), "extra": (np.array([1, 0, 1], np.int8), np.array([1, 2]))}

    report = check_bridge_matches(
        COMPOSITE_ENV_ID, gym.make(COMPOSITE_ENV_ID), seeds=[1, 2], policy=policy,
        options=[{"episode_length": 2, "truncate": False}, {"episode_length": 3, "truncate": True}], canonical=False,
    )
    assert report.episode_lengths == [2, 3] and (report.terminated, report.truncated) == (1, 1)
    assert len(seen) == 5


# ---------------------------------------------------------------------------------------------
# the test environments


def test_registration_happens_on_import_of_testing_only() -> None:
    code = (
        "import gymnasium, cogment_gym;"
        "assert 'cogment_gym/CompositeSpaces-v0' not in gymnasium.registry, 'registered by import cogment_gym';"
        "import cogment_gym.testing;"
        "assert 'cogment_gym/CompositeSpaces-v0' in gymnasium.registry"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    register_envs()  # idempotent
    assert gym.spec(COMPOSITE_ENV_ID).entry_point == "cogment_gym.testing.envs:CompositeSpacesEnv"


def test_composite_env_is_deterministic_and_stays_in_its_spaces() -> None:
    def episode(seed: int, action_seed: int) -> list[Any]:
        env = gym.make(COMPOSITE_ENV_ID, nan_info=True)
        env.action_space.seed(action_seed)
        out: list[Any] = [env.reset(seed=seed)]
        assert env.observation_space.contains(out[0][0])
        while True:
            step = env.step(env.action_space.sample())
            assert env.observation_space.contains(step[0])
            assert type(step[1]) is float and type(step[2]) is bool and type(step[3]) is bool
            out.append(step)
            if step[2] or step[3]:
                return out

    first = episode(8, 1)
    assert_data_equal(first, episode(8, 1), "episode")
    assert 4 <= len(first) <= 13
    with pytest.raises(AssertionError):
        assert_data_equal(first, episode(9, 1), "episode")
    with pytest.raises(AssertionError):
        assert_data_equal(first, episode(8, 2), "episode")


def test_composite_env_validates_its_inputs() -> None:
    env = CompositeSpacesEnv()
    with pytest.raises(ValueError, match="episode_length"):
        env.reset(options={"episode_length": 0})
    with pytest.raises(ValueError, match="label"):
        env.reset(options={"label": "xyz"})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="is not in"):
        env.step({"move": np.zeros(2, np.float32), "choice": 7, "extra": (np.zeros(3, np.int8), np.zeros(2, np.int64))})
    with pytest.raises(ValueError, match="render_mode"):
        CompositeSpacesEnv(render_mode="rgb_array")
