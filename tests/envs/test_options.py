"""ConnectionOptions: one frozen, checked object for every facade's connection arguments; the
embedded default's env calls inline (env_threads=False) or on threads; the one truncation rule."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import cogment_gym
from cogment_gym import ConnectionOptions
from cogment_gym.envs import CogmentEnv, CogmentVectorEnv
from cogment_gym.envs.options import ended_by_orchestrator


class ThreadEnv(gym.Env[np.ndarray, np.int64]):
    """Tells in its info which thread runs it."""

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = spaces.Box(0, 1, (1,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {"thread": threading.current_thread().name}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return np.zeros(1, np.float32), 0.0, False, False, {"thread": threading.current_thread().name}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, TypeError, "give an environment to run"),
        ({"env": "CartPole-v1", "environment": "grpc://127.0.0.1:1"}, TypeError, "not both"),
        ({"env": "CartPole-v1", "orchestrator": "grpc://127.0.0.1:1"}, TypeError, "cannot reach an environment living in this process"),
        ({"environment": []}, TypeError, "empty list of endpoints"),
        ({"environment": 9001}, TypeError, "environment must be an endpoint string or a list of them, got int"),
        ({"env": "CartPole-v1", "max_steps": -1}, ValueError, "max_steps must be an int >= 0 .* got -1"),
        ({"env": "CartPole-v1", "timeout": "10"}, TypeError, "timeout must be a number of seconds, got '10'"),
        ({"env": "CartPole-v1", "env_threads": 1}, TypeError, "env_threads must be a bool, got 1"),
        ({"env": "CartPole-v1", "security": "tls"}, TypeError, "security must be a cogment_gym.Security, got str"),
        ({"env": "CartPole-v1", "datalog": 3}, TypeError, "datalog must be an endpoint string, a pathlib.Path or a TrialRecorder, got int"),
        ({"environment": "grpc://127.0.0.1:1", "observation_space": spaces.Discrete(2)}, TypeError, "give both observation_space and action_space"),
        ({"env": "CartPole-v1", "observation_space": spaces.Discrete(2), "action_space": spaces.Discrete(2)}, TypeError, "also pass environment="),
    ],
)
def test_options_are_checked_once_with_clear_errors(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ConnectionOptions(**kwargs)


def test_options_are_frozen_and_normalised() -> None:
    options = ConnectionOptions(environment=["grpc://127.0.0.1:1", "grpc://127.0.0.1:2"])
    assert options.environment == ("grpc://127.0.0.1:1", "grpc://127.0.0.1:2")
    assert options.endpoints == ["grpc://127.0.0.1:1", "grpc://127.0.0.1:2"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.timeout = 1.0  # type: ignore[misc]
    assert options.replace(timeout=2.0).timeout == 2.0
    with pytest.raises(ValueError, match="max_steps"):
        options.replace(max_steps=-3)


def test_every_facade_takes_options_or_keywords_not_both(closing: Callable[[Any], Any]) -> None:
    options = ConnectionOptions(env="CartPole-v1", max_steps=2)
    env = closing(CogmentEnv(options=options))
    assert env.options is options
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]  # max_steps came along
    with pytest.raises(TypeError, match=r"not both"):
        CogmentEnv(options=options, max_steps=3)
    with pytest.raises(TypeError, match="options must be a ConnectionOptions, got dict"):
        CogmentEnv(options={"env": "CartPole-v1"})  # type: ignore[arg-type]
    pytest.importorskip("pettingzoo")
    parallel = closing(cogment_gym.CogmentParallelEnv(options=ConnectionOptions(env="pettingzoo.classic.rps_v2")))
    parallel.reset(seed=1)
    assert parallel.agents


@pytest.mark.parametrize("env_threads", [False, True])
def test_the_embedded_env_runs_inline_unless_asked_for_threads(env_threads: bool, closing: Callable[[Any], Any]) -> None:
    here = threading.current_thread().name
    env = closing(CogmentEnv(ThreadEnv, env_threads=env_threads))
    _, info = env.reset()
    _, _, _, _, step_info = env.step(0)
    assert (info["thread"] == here) is (not env_threads)
    assert (step_info["thread"] == here) is (not env_threads)
    envs = closing(CogmentVectorEnv(ThreadEnv, num_envs=2, env_threads=env_threads))
    _, infos = envs.reset()
    assert all((name == here) is (not env_threads) for name in infos["thread"])


def test_ended_by_orchestrator_is_a_truncation_unless_the_env_said_otherwise() -> None:
    assert ended_by_orchestrator(True, False, False) is True
    assert ended_by_orchestrator(True, True, False) is False
    assert ended_by_orchestrator(False, False, False) is False
    assert ended_by_orchestrator(True, (True, True), (False, False)) == (False, False)  # per-agent flags: all done
    assert ended_by_orchestrator(True, (True, False), (False, False)) is True
    got = ended_by_orchestrator(True, np.array([True, False, False]), np.array([False, True, False]))
    assert got.tolist() == [False, True, True]
