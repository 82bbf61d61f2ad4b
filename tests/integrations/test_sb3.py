"""Stable-Baselines3 integration: SB3's own checker on CogmentEnv, CogmentVecEnv against SB3's
DummyVecEnv (same seeds and actions, same results in SB3's conventions), and PPO training."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from gymnasium.vector import AutoresetMode  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.env_checker import check_env  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor  # noqa: E402

from cogment_gym import CogmentEnv  # noqa: E402
from cogment_gym.envs import CogmentVectorEnv  # noqa: E402
from cogment_gym.integrations.sb3 import CogmentVecEnv  # noqa: E402
from cogment_gym.testing import assert_data_equal  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.filterwarnings("ignore:We recommend you to use a symmetric and normalized Box action space")
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "Taxi-v4"])
def test_sb3_check_env_passes_on_cogment_env(env_id: str, closing: Callable[[Any], Any]) -> None:
    check_env(closing(CogmentEnv(env_id)), warn=True, skip_render_check=True)


def _dummy(env_id: str, n: int, **kwargs: Any) -> DummyVecEnv:
    return DummyVecEnv([lambda: gym.make(env_id, **kwargs) for _ in range(n)])


def _assert_step_match(expected: Any, got: Any, where: str) -> None:
    obs_e, rewards_e, dones_e, infos_e = expected
    obs_g, rewards_g, dones_g, infos_g = got
    assert_data_equal(obs_e, obs_g, f"{where}: obs")
    assert_data_equal(rewards_e, rewards_g, f"{where}: rewards")
    assert_data_equal(dones_e, dones_g, f"{where}: dones")
    assert len(infos_e) == len(infos_g)
    for i, (info_e, info_g) in enumerate(zip(infos_e, infos_g)):
        assert info_e.keys() == info_g.keys(), f"{where}: infos[{i}] keys"
        for key in info_e:
            assert_data_equal(info_e[key], info_g[key], f"{where}: infos[{i}][{key!r}]")


@pytest.mark.parametrize("envs_per_trial", [1, 2], ids=["trial-per-episode", "batched-trials"])
def test_vec_env_matches_dummy_vec_env(envs_per_trial: int, closing: Callable[[Any], Any]) -> None:
    """Autoreset in the step, terminal_observation, TimeLimit.truncated, float32 rewards."""
    bridged = closing(CogmentVecEnv("CartPole-v1", num_envs=4, max_episode_steps=12, envs_per_trial=envs_per_trial))
    direct = closing(_dummy("CartPole-v1", 4, max_episode_steps=12))
    assert bridged.observation_space == direct.observation_space and bridged.action_space == direct.action_space
    for venv in (bridged, direct):
        venv.seed(7)
    assert_data_equal(direct.reset(), bridged.reset(), "reset")
    rng = np.random.default_rng(0)
    dones = truncations = 0
    for t in range(80):
        actions = rng.integers(0, 2, 4)
        expected, got = direct.step(actions), bridged.step(actions)
        _assert_step_match(expected, got, f"step {t}")
        dones += int(got[2].sum())
        truncations += sum(info["TimeLimit.truncated"] for info in got[3])
    assert dones > 10 and 0 < truncations < dones, "both terminations and time-limit truncations must occur"
    assert_data_equal(direct.reset_infos, bridged.reset_infos, "reset_infos")


@pytest.mark.parametrize("envs_per_trial, chosen", [(None, 2), (1, 1)], ids=["default-batched", "trial-per-episode"])
def test_seed_and_options_apply_to_one_reset(closing: Callable[[Any], Any], envs_per_trial: int | None, chosen: int) -> None:
    """Seeds and options as SB3 sets them, one options dict per sub-env too: on the default (one
    batched trial of both sub-envs: EnvConfig.resets) and with one trial per episode."""
    venv = closing(CogmentVecEnv("CartPole-v1", num_envs=2, envs_per_trial=envs_per_trial))
    assert venv.venv.envs_per_trial == chosen
    assert venv.seed(3) == [3, 4]
    venv.set_options({"low": 0.2, "high": 0.3})
    first = venv.reset()
    direct = gym.make("CartPole-v1")
    for i in range(2):
        assert_data_equal(direct.reset(seed=3 + i, options={"low": 0.2, "high": 0.3})[0], first[i], f"obs[{i}]")
    second = venv.reset()
    assert not np.array_equal(first, second)
    assert np.any(np.abs(second) < 0.2), "the options were used again"
    venv.set_options([{"low": 0.2, "high": 0.3}, {}])  # per sub-env
    third = venv.reset()
    assert np.all((third[0] >= 0.2) & (third[0] <= 0.3))


@pytest.mark.parametrize("envs_per_trial", [None, 1], ids=["default-batched", "trial-per-episode"])
def test_per_sub_env_seeds_and_options_match_dummy_vec_env(envs_per_trial: int | None, closing: Callable[[Any], Any]) -> None:
    """SB3's seed() and set_options() with a different dict per sub-env, then steps: the same as
    DummyVecEnv, on the default (batched) path as with one trial per sub-env."""
    kwargs = {} if envs_per_trial is None else {"envs_per_trial": envs_per_trial}
    bridged = closing(CogmentVecEnv("CartPole-v1", num_envs=4, max_episode_steps=12, **kwargs))
    assert bridged.venv.envs_per_trial == (envs_per_trial or 4)
    direct = closing(_dummy("CartPole-v1", 4, max_episode_steps=12))
    rng = np.random.default_rng(5)
    per_env: list[Any] = [{"low": -0.01, "high": 0.01}, {}, {"low": 0.1, "high": 0.2}, {"low": -0.3, "high": -0.2}]
    for r in range(3):
        for venv in (bridged, direct):
            venv.seed(11 * r + 1)
            venv.set_options(per_env[r:] + per_env[:r])
        obs = direct.reset()
        assert_data_equal(obs, bridged.reset(), f"reset {r}")
        assert_data_equal(direct.reset_infos, bridged.reset_infos, f"reset {r}: reset_infos")
        for t in range(30):
            actions = rng.integers(0, 2, 4)
            _assert_step_match(direct.step(actions), bridged.step(actions), f"reset {r}, step {t}")
    assert np.all((obs[0] >= 0.1) & (obs[0] <= 0.2)), "the options were used"


def test_attributes_methods_and_wrapping(closing: Callable[[Any], Any]) -> None:
    venv = closing(CogmentVecEnv("CartPole-v1", num_envs=3, render_mode="rgb_array"))
    assert venv.render_mode == "rgb_array"
    assert venv.get_attr("render_mode") == ["rgb_array"] * 3
    assert venv.get_attr("observation_space", indices=[1]) == [venv.observation_space]
    assert venv.env_is_wrapped(gym.Wrapper) == [False] * 3
    venv.reset()
    frames = venv.env_method("render", indices=[0, 2])
    assert len(frames) == 2 and frames[0].dtype == np.uint8
    assert venv.render(mode="rgb_array").ndim == 3  # tiled
    with pytest.raises(AttributeError):
        venv.set_attr("gravity", 1.0)
    with pytest.raises(AttributeError):
        venv.env_method("close")
    with pytest.raises(ValueError, match="SAME_STEP"):
        CogmentVecEnv(closing(CogmentVectorEnv("CartPole-v1", num_envs=2)))
    wrapped = CogmentVecEnv(CogmentVectorEnv("CartPole-v1", num_envs=2, autoreset_mode=AutoresetMode.SAME_STEP))
    wrapped.close()
    assert wrapped.venv.closed


def test_ppo_learns_and_evaluates_through_the_bridge(closing: Callable[[Any], Any]) -> None:
    venv = closing(VecMonitor(CogmentVecEnv("CartPole-v1", num_envs=4)))
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu").learn(256)
    assert model.num_timesteps >= 256
    mean, _ = evaluate_policy(model, venv, n_eval_episodes=4)
    assert mean > 0


@pytest.mark.slow
def test_example_ppo_reaches_475_on_cartpole() -> None:
    """examples/sb3_ppo_cartpole.py: env served in another process, PPO through the bridge."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sb3_ppo_cartpole.py"), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"PPO CartPole through the bridge: {report} (wall {time.monotonic() - started:.0f} s)")
    assert report["mean_return"] >= 475, report


def test_cogment_vec_env_over_tls_with_a_token(pki: Any, served: Callable[..., Any]) -> None:
    """``security=`` reaches the CogmentVectorEnv under SB3's VecEnv."""
    server = served("CartPole-v1", security=pki.server(token="s3cret"))
    venv = CogmentVecEnv(environment=server.endpoint, num_envs=2, security=pki.client(token="s3cret"))
    try:
        obs = venv.reset()
        assert obs.shape == (2, 4)
        for _ in range(20):
            venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
    finally:
        venv.close()
