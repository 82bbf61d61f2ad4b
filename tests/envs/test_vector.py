"""CogmentVectorEnv: Gymnasium vector semantics, and the same results as SyncVectorEnv.

Differential tests step a CogmentVectorEnv and a gymnasium SyncVectorEnv of the same env with the
same seeds and actions in both autoreset modes, and compare everything they return (observations,
rewards, terminations, truncations, merged infos with their ``_key`` masks, final observations
and infos) exactly.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import batch_space

import cogment_gym
from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.envs.vector import BatchedVectorEnv, PerTrialVectorEnv
from cogment_gym.orchestrator.server import OrchestratorServer, start_orchestrator
from cogment_gym.testing import CountingEnv, StepCounter, assert_data_equal

MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP]


class TickEnv(gym.Env[np.ndarray, np.int64]):
    """Deterministic whatever its generator: episodes end after a number of steps set by the
    actions (terminated), or by the TimeLimit around it (truncated); its info varies in keys,
    types and nesting from step to step (so the ``_key`` masks of merged infos are exercised)."""

    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 100, (2,), np.int64)
        self.action_space = spaces.Discrete(3)
        self._t = 0
        self._budget = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        self._budget = 4 + (options or {}).get("extra", 0)
        return np.array([0, self._budget], np.int64), {"start": True, "budget": self._budget}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        self._budget -= int(action)
        info: dict[str, Any] = {"t": self._t, "half": self._t / 2}
        if self._t % 2:
            info["odd"] = np.array([self._t, -self._t], np.int32)
        if self._t % 3 == 0:
            info["nested"] = {"label": f"t{self._t}", "flag": bool(self._budget % 2)}
        return np.array([self._t, max(self._budget, 0)], np.int64), float(action) - 0.5, self._budget <= 0, False, info


gym.register("cogment_gym_tests/Tick-v0", entry_point=TickEnv, max_episode_steps=6)
TICK_ID = "cogment_gym_tests/Tick-v0"


def sync_of(env_id: str, n: int, mode: AutoresetMode, **kwargs: Any) -> SyncVectorEnv:
    return SyncVectorEnv([functools.partial(gym.make, env_id, **kwargs) for _ in range(n)], autoreset_mode=mode)


def assert_vector_match(
    bridged: CogmentVectorEnv, direct: gym.vector.VectorEnv, *, steps: int, seeds: list[Any], action_seed: int = 0, options: Any = None
) -> int:
    """Reset both with each seed in turn and step them with the same random actions; returns
    the number of sub-episodes that ended."""
    assert bridged.observation_space == direct.observation_space
    assert bridged.action_space == direct.action_space
    assert bridged.single_observation_space == direct.single_observation_space
    assert bridged.metadata["autoreset_mode"] == direct.metadata["autoreset_mode"]
    direct.action_space.seed(action_seed)
    ended = 0
    for seed in seeds:
        expected, got = direct.reset(seed=seed, options=options), bridged.reset(seed=seed, options=options)
        assert_data_equal(expected[0], got[0], f"reset(seed={seed}) obs")
        assert_data_equal(expected[1], got[1], f"reset(seed={seed}) info")
        for t in range(steps):
            actions = direct.action_space.sample()
            expected, got = direct.step(actions), bridged.step(actions)
            for name, e, g in zip(("obs", "rewards", "terminations", "truncations", "infos"), expected, got):
                assert_data_equal(e, g, f"seed {seed}, step {t}: {name}")
            ended += int(np.sum(got[2] | got[3]))
    return ended


# ---------------------------------------------------------------------------------------------
# differential: embedded default


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_cartpole_matches_sync_vector_env(mode: AutoresetMode, closing: Callable[[Any], Any]) -> None:
    bridged = closing(CogmentVectorEnv("CartPole-v1", num_envs=4, autoreset_mode=mode, envs_per_trial=1))
    direct = closing(sync_of("CartPole-v1", 4, mode))
    # seed=None after a seeded reset continues each sub-env's own generator on both sides.
    ended = assert_vector_match(bridged, direct, steps=150, seeds=[3, None, [5, None, 7, 8]])
    assert ended >= 20, "random CartPole episodes should have ended (and autoreset) many times"


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_the_default_is_batched_and_matches_sync_vector_env(mode: AutoresetMode, closing: Callable[[Any], Any]) -> None:
    """The embedded default runs one batched trial of every sub-env, with SyncVectorEnv's results:
    int seeds, unseeded resets continuing the generators, seed lists (consecutive or None)."""
    bridged = closing(CogmentVectorEnv("CartPole-v1", num_envs=4, autoreset_mode=mode))
    assert isinstance(bridged, BatchedVectorEnv) and bridged.envs_per_trial == 4
    assert isinstance(bridged, CogmentVectorEnv) and isinstance(bridged, gym.vector.VectorEnv)
    direct = closing(sync_of("CartPole-v1", 4, mode))
    ended = assert_vector_match(bridged, direct, steps=150, seeds=[3, None, [5, 6, 7, 8], [None] * 4])
    assert ended >= 20, "random CartPole episodes should have ended (and autoreset) many times"


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_varying_infos_and_time_limits_match(mode: AutoresetMode, closing: Callable[[Any], Any]) -> None:
    bridged = closing(CogmentVectorEnv(TICK_ID, num_envs=3, autoreset_mode=mode))
    direct = closing(sync_of(TICK_ID, 3, mode))
    ended = assert_vector_match(bridged, direct, steps=40, seeds=[0, None], options={"extra": 3})
    assert ended >= 10


@pytest.mark.parametrize("env_id", ["Taxi-v4", "Pendulum-v1", "FrozenLake-v1"])
def test_other_spaces_match(env_id: str, closing: Callable[[Any], Any]) -> None:
    """Discrete observations, Box actions, ndarray infos (Taxi's action_mask)."""
    bridged = closing(CogmentVectorEnv(env_id, num_envs=3, max_episode_steps=25))
    direct = closing(sync_of(env_id, 3, AutoresetMode.NEXT_STEP, max_episode_steps=25))
    assert_vector_match(bridged, direct, steps=60, seeds=[1, None])


def test_max_steps_ends_trials_as_truncations(closing: Callable[[Any], Any]) -> None:
    """Cogment max_steps ends the trial at the Orchestrator: a truncation, then an autoreset."""
    envs = closing(CogmentVectorEnv(TICK_ID, num_envs=2, max_steps=1))
    envs.reset(seed=0)
    zeros = np.zeros(2, np.int64)
    _, _, terminated, truncated, _ = envs.step(zeros)
    assert not terminated.any() and not truncated.any()
    obs, rewards, terminated, truncated, _ = envs.step(zeros)
    assert truncated.all() and not terminated.any()
    obs, rewards, terminated, truncated, infos = envs.step(zeros)  # NEXT_STEP: the reset
    assert_data_equal(np.array([[0, 4], [0, 4]], np.int64), obs, "obs after autoreset")
    assert_data_equal(np.zeros(2), rewards, "rewards")
    assert infos["start"].all()


# ---------------------------------------------------------------------------------------------
# checks in the spirit of gymnasium.utils.env_checker, for a vector env


def check_vector_env(envs: gym.vector.VectorEnv, seed: int = 11) -> None:
    n = envs.num_envs
    assert envs.observation_space == batch_space(envs.single_observation_space, n)
    assert envs.action_space == batch_space(envs.single_action_space, n)
    assert isinstance(envs.metadata.get("autoreset_mode"), AutoresetMode)
    obs, infos = envs.reset(seed=seed)
    assert obs in envs.observation_space and isinstance(infos, dict)
    again, _ = envs.reset(seed=seed)
    assert_data_equal(obs, again, "reset with the same seed")  # seed determinism
    unseeded, _ = envs.reset()
    assert not np.array_equal(unseeded, obs), "reset(seed=None) must not reuse the last seed"
    envs.action_space.seed(seed)
    previous = None
    for _ in range(30):
        obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())
        assert obs in envs.observation_space
        for name, array in (("rewards", rewards), ("terminations", terminations), ("truncations", truncations)):
            assert isinstance(array, np.ndarray) and array.shape == (n,), name
        assert rewards.dtype == np.float64 and terminations.dtype == np.bool_ and truncations.dtype == np.bool_
        assert isinstance(infos, dict)
        for key in infos:
            if not key.startswith("_"):
                assert f"_{key}" in infos, f"info {key!r} has no mask"
        if previous is not None:
            assert obs is not previous and not np.shares_memory(obs, previous), "observations reuse one buffer"
        previous = obs


def test_vector_env_checks(closing: Callable[[Any], Any]) -> None:
    check_vector_env(closing(CogmentVectorEnv("CartPole-v1", num_envs=3)))
    check_vector_env(closing(CogmentVectorEnv("CartPole-v1", num_envs=2, autoreset_mode=AutoresetMode.SAME_STEP)))
    check_vector_env(closing(sync_of("CartPole-v1", 3, AutoresetMode.NEXT_STEP)))  # the check itself is fair


def test_spaces_metadata_and_attributes(closing: Callable[[Any], Any]) -> None:
    envs = closing(CogmentVectorEnv("CartPole-v1", num_envs=5, render_mode="rgb_array"))
    assert envs.num_envs == 5
    assert envs.single_action_space == spaces.Discrete(2)
    assert envs.action_space == spaces.MultiDiscrete([2] * 5)
    assert envs.observation_space.shape == (5, 4)
    assert envs.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert "rgb_array" in envs.metadata["render_modes"]
    assert envs.get_attr("render_mode") == ("rgb_array",) * 5
    assert len(set(envs.get_attr("implementation"))) == 5, "each embedded sub-env has its own implementation"
    with pytest.raises(AttributeError, match="environment service"):
        envs.get_attr("np_random")
    envs.reset(seed=0)
    frames = envs.render()
    assert isinstance(frames, tuple) and len(frames) == 5
    assert all(f.dtype == np.uint8 and f.ndim == 3 for f in frames)
    assert "CogmentVectorEnv('CartPole-v1', num_envs=5)" == repr(envs)


def test_reset_seeds_options_and_mask(closing: Callable[[Any], Any]) -> None:
    envs = closing(CogmentVectorEnv("CartPole-v1", num_envs=3, envs_per_trial=1))
    direct = [gym.make("CartPole-v1") for _ in range(3)]
    obs, _ = envs.reset(seed=[4, 9, 2], options={"low": 0.1, "high": 0.2})
    for i, seed in enumerate([4, 9, 2]):
        assert_data_equal(direct[i].reset(seed=seed, options={"low": 0.1, "high": 0.2})[0], obs[i], f"obs[{i}]")
    # Per-sub-env options (an extension: one dict, or None, per sub-env).
    obs, _ = envs.reset(seed=1, options=[None, {"low": 0.3, "high": 0.4}, None])
    assert_data_equal(direct[1].reset(seed=2, options={"low": 0.3, "high": 0.4})[0], obs[1], "obs[1]")
    # reset_mask: only the masked sub-envs start a new episode; the others keep going.
    envs.step(np.array([0, 1, 0]))
    before, *_ = envs.step(np.array([0, 1, 0]))
    mask = np.array([False, True, False])
    obs, infos = envs.reset(seed=[None, 21, None], options={"reset_mask": mask})
    assert_data_equal(direct[1].reset(seed=21)[0], obs[1], "masked reset")
    assert_data_equal(before[[0, 2]], obs[[0, 2]], "unmasked sub-envs keep their observation")
    after, _, terminated, truncated, _ = envs.step(np.array([0, 0, 0]))
    assert not np.array_equal(after[0], before[0])
    for bad in ([1, 2], "seed", -1, [0, 1, -2], 1.5):
        with pytest.raises(ValueError):
            envs.reset(seed=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(ValueError):
        envs.reset(options=[None, None])  # type: ignore[list-item]


def test_default_reset_seeds_options_and_mask(closing: Callable[[Any], Any]) -> None:
    """On the default (batched) path, every reset SyncVectorEnv takes: any seed list, one
    options dict per sub-env, any reset_mask (tests/envs/test_vector_resets.py, step by step)."""
    envs = closing(CogmentVectorEnv("CartPole-v1", num_envs=3))
    assert isinstance(envs, BatchedVectorEnv) and envs.envs_per_trial == 3
    direct = [gym.make("CartPole-v1") for _ in range(3)]
    obs, _ = envs.reset(seed=[4, 5, 6], options={"low": 0.1, "high": 0.2})
    for i in range(3):
        assert_data_equal(direct[i].reset(seed=4 + i, options={"low": 0.1, "high": 0.2})[0], obs[i], f"obs[{i}]")
    obs, _ = envs.reset(seed=[4, 9, 2])
    for i, s in enumerate([4, 9, 2]):
        assert_data_equal(direct[i].reset(seed=s)[0], obs[i], f"seed list: obs[{i}]")
    per_env: list[Any] = [None, {"low": 0.3, "high": 0.4}, None]
    obs, _ = envs.reset(seed=1, options=per_env)
    for i in range(3):
        assert_data_equal(direct[i].reset(seed=1 + i, options=per_env[i])[0], obs[i], f"options list: obs[{i}]")
    kept = obs
    obs, _ = envs.reset(seed=[None, 7, None], options={"reset_mask": np.array([False, True, False])})
    assert_data_equal(direct[1].reset(seed=7)[0], obs[1], "reset_mask: obs[1]")
    assert_data_equal(kept[[0, 2]], obs[[0, 2]], "reset_mask: the others")


@pytest.mark.parametrize(
    ("kwargs", "strategy"),
    [
        ({}, BatchedVectorEnv),
        ({"envs_per_trial": 1}, PerTrialVectorEnv),
        ({"envs_per_trial": 2}, BatchedVectorEnv),
        ({"max_steps": 5}, PerTrialVectorEnv),
        ({"render_mode": "rgb_array"}, PerTrialVectorEnv),
    ],
    ids=["default", "per-trial", "batched", "max_steps", "render_mode"],
)
def test_the_strategy_follows_the_options(kwargs: dict[str, Any], strategy: type, closing: Callable[[Any], Any]) -> None:
    envs = closing(CogmentVectorEnv("CartPole-v1", num_envs=4, **kwargs))
    assert type(envs) is strategy
    assert envs.envs_per_trial == (1 if strategy is PerTrialVectorEnv else kwargs.get("envs_per_trial", 4))
    envs.reset(seed=0)
    envs.step(envs.action_space.sample())


def test_asking_for_batched_trials_with_what_they_cannot_do_still_raises() -> None:
    with pytest.raises(ValueError, match="do not render"):
        CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=4, render_mode="rgb_array")
    with pytest.raises(ValueError, match="max_steps=3 would cut"):
        CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=2, max_steps=3)


def test_connection_options_object_is_accepted(closing: Callable[[Any], Any]) -> None:
    options = cogment_gym.ConnectionOptions(env="CartPole-v1", timeout=10.0)
    envs = closing(CogmentVectorEnv(num_envs=2, options=options))
    assert envs.options is options
    envs.reset(seed=1)
    with pytest.raises(TypeError, match=r"either options=ConnectionOptions\(...\) or the keywords \['timeout'\]"):
        CogmentVectorEnv(num_envs=2, options=options, timeout=5.0)


# ---------------------------------------------------------------------------------------------
# remote modes


@pytest.fixture(scope="module")
def tick_servers() -> Iterator[list[cogment_gym.EnvServer]]:
    servers = [cogment_gym.serve({TICK_ID: TICK_ID}) for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def orchestrator_server() -> Iterator[OrchestratorServer]:
    with start_orchestrator() as server:
        yield server


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_remote_service_matches_sync_vector_env(mode: AutoresetMode, tick_servers: list[cogment_gym.EnvServer], closing: Callable[[Any], Any]) -> None:
    bridged = closing(CogmentVectorEnv(environment=tick_servers[0].endpoint, num_envs=4, autoreset_mode=mode))
    assert_vector_match(bridged, closing(sync_of(TICK_ID, 4, mode)), steps=40, seeds=[0, None], options={"extra": 2})


def test_several_endpoints_share_the_trials(tick_servers: list[cogment_gym.EnvServer], closing: Callable[[Any], Any]) -> None:
    endpoints = [server.endpoint for server in tick_servers]
    bridged = closing(CogmentVectorEnv(environment=endpoints, num_envs=5))
    assert bridged.get_attr("env_endpoint") == tuple(endpoints[i % 2] for i in range(5))
    assert_vector_match(bridged, closing(sync_of(TICK_ID, 5, AutoresetMode.NEXT_STEP)), steps=20, seeds=[1])


def test_several_endpoints_get_one_batched_trial_each_by_default(served: Callable[..., cogment_gym.EnvServer], closing: Callable[[Any], Any]) -> None:
    counters = [StepCounter(), StepCounter()]
    servers = [served({"count": functools.partial(CountingEnv, counter)}) for counter in counters]
    envs = closing(CogmentVectorEnv(environment=[s.endpoint for s in servers], num_envs=6))
    assert isinstance(envs, BatchedVectorEnv) and envs.envs_per_trial == 3
    assert envs.get_attr("env_endpoint") == tuple(servers[i // 3].endpoint for i in range(6))
    envs.reset(seed=0)
    for _ in range(4):
        envs.step(np.zeros((6, 2), np.float32))
    assert (counters[0].steps, counters[1].steps) == (12, 12)  # sub-envs 0..2 on the first, 3..5 on the second


def test_several_endpoints_really_run_trials(served: Callable[..., cogment_gym.EnvServer], closing: Callable[[Any], Any]) -> None:
    counters = [StepCounter(), StepCounter()]
    servers = [served({"count": functools.partial(CountingEnv, counter)}) for counter in counters]
    envs = closing(CogmentVectorEnv(environment=[s.endpoint for s in servers], num_envs=3))
    envs.reset(seed=0)
    for _ in range(4):
        envs.step(np.zeros((3, 2), np.float32))
    assert (counters[0].steps, counters[1].steps) == (8, 4)  # sub-envs 0 and 2 on the first, 1 on the second


def test_endpoints_of_different_envs_are_refused(tick_servers: list[cogment_gym.EnvServer], served: Callable[..., cogment_gym.EnvServer]) -> None:
    other = served({TICK_ID: "CartPole-v1"})  # same implementation name, other spaces
    with pytest.raises(cogment_gym.CogmentGymError, match="differ"):
        CogmentVectorEnv(environment=[tick_servers[0].endpoint, other.endpoint], num_envs=2)


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_remote_orchestrator_matches_sync_vector_env(
    mode: AutoresetMode, tick_servers: list[cogment_gym.EnvServer], orchestrator_server: OrchestratorServer, closing: Callable[[Any], Any]
) -> None:
    bridged = closing(CogmentVectorEnv(orchestrator=orchestrator_server.lifecycle_endpoint, environment=tick_servers[1].endpoint, num_envs=3, autoreset_mode=mode))
    assert_vector_match(bridged, closing(sync_of(TICK_ID, 3, mode)), steps=30, seeds=[5])


def test_remote_cartpole_seeded_starts_match(tick_servers: list[cogment_gym.EnvServer], served: Callable[..., cogment_gym.EnvServer], closing: Callable[[Any], Any]) -> None:
    server = served("CartPole-v1")
    bridged = closing(CogmentVectorEnv(environment=server.endpoint, num_envs=6))
    direct = closing(sync_of("CartPole-v1", 6, AutoresetMode.NEXT_STEP))
    # Before any sub-episode ends, every trial is a seeded episode: exact match.
    assert_vector_match(bridged, direct, steps=8, seeds=[100, 200])


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_remote_cartpole_unseeded_autoresets_match(mode: AutoresetMode, served: Callable[..., cogment_gym.EnvServer], closing: Callable[[Any], Any]) -> None:
    """Each sub-env names itself to the service (EnvConfig.instance_key) and gets its own env
    instance back in every new trial: unseeded autoresets continue the same generators as
    SyncVectorEnv's, even with two vector envs sharing the service's pool meanwhile."""
    server = served("CartPole-v1")
    other = closing(CogmentVectorEnv(environment=server.endpoint, num_envs=3))
    other.reset(seed=50)
    bridged = closing(CogmentVectorEnv(environment=server.endpoint, num_envs=4, autoreset_mode=mode))
    direct = closing(sync_of("CartPole-v1", 4, mode))
    ended = 0
    for round_ in range(3):  # interleave the other client's episodes with ours
        for _ in range(40):
            other.step(other.action_space.sample())
        ended += assert_vector_match(bridged, direct, steps=60, seeds=[3] if round_ == 0 else [None], action_seed=round_)
    assert ended >= 15, "autoresets (new trials, unseeded) must have happened"
