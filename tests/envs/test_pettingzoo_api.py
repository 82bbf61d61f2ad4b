"""PettingZoo's own checkers on the facades: ``api_test`` on CogmentAECEnv, ``parallel_api_test``
on CogmentParallelEnv, ``seed_test`` / ``parallel_seed_test`` on both.

Environments: the classic tictactoe_v3, connect_four_v3 and rps_v2; PettingZoo's test
environments whose agents appear and leave during the episode (generated_agents_*, served with
agent slots); Butterfly's knights_archers_zombies_v11 (agents die and leave) and SISL's
multiwalker_v9 (continuous actions). A turn-based AEC game is served to the parallel facade
through PettingZoo's turn_based_aec_to_parallel (``api="parallel"``).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator

import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test
from pettingzoo.test.example_envs import (
    generated_agents_env_action_mask_info_v0,
    generated_agents_env_action_mask_obs_v0,
    generated_agents_env_v0,
    generated_agents_parallel_v0,
)

from cogment_gym import CogmentAECEnv, CogmentParallelEnv

CLASSIC = ["pettingzoo.classic.tictactoe_v3", "pettingzoo.classic.connect_four_v3", "pettingzoo.classic.rps_v2"]
EXTRAS = ["pettingzoo.butterfly.knights_archers_zombies_v11", "pettingzoo.sisl.multiwalker_v9"]

AEC_SOURCES: dict[str, Any] = {
    **{name.rsplit(".", 1)[1]: name for name in CLASSIC + EXTRAS},
    "generated_agents_env_v0": generated_agents_env_v0.env,
    "generated_agents_env_action_mask_info_v0": generated_agents_env_action_mask_info_v0.env,
    "generated_agents_env_action_mask_obs_v0": generated_agents_env_action_mask_obs_v0.env,
}
PARALLEL_SOURCES: dict[str, Any] = {
    **{name.rsplit(".", 1)[1]: name for name in CLASSIC + EXTRAS},
    "generated_agents_parallel_v0": generated_agents_parallel_v0.parallel_env,
}
SLOW = {"generated_agents_env_v0", "generated_agents_env_action_mask_info_v0", "generated_agents_env_action_mask_obs_v0", "generated_agents_parallel_v0"}


def _params(sources: dict[str, Any]) -> list[Any]:
    return [pytest.param(source, id=name, marks=[pytest.mark.slow] if name in SLOW else []) for name, source in sources.items()]


@pytest.fixture
def facades() -> Iterator[Callable[..., Any]]:
    """Factory of facades, every one closed at teardown (the checkers close some themselves)."""
    made: list[Any] = []

    def make(cls: type, source: Any, **kwargs: Any) -> Any:
        env = cls(source, **kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


@pytest.fixture(autouse=True)
def _quiet_checkers() -> Iterator[None]:
    # The checkers warn about properties of the games themselves (not-a-Box spaces, agent
    # names); the same warnings appear on the direct environments.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("source", _params(AEC_SOURCES))
def test_api_test_passes_on_aec_facade(source: Any, facades: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    env = facades(CogmentAECEnv, source)
    api_test(env, num_cycles=300)
    assert "Passed API test" in capsys.readouterr().out


@pytest.mark.parametrize("source", _params(PARALLEL_SOURCES))
def test_parallel_api_test_passes_on_parallel_facade(source: Any, facades: Callable[..., Any], capsys: pytest.CaptureFixture[str]) -> None:
    env = facades(CogmentParallelEnv, source)
    parallel_api_test(env, num_cycles=300)
    assert "Passed Parallel API test" in capsys.readouterr().out


@pytest.mark.parametrize("source", _params(AEC_SOURCES))
def test_seed_test_passes_on_aec_facade(source: Any, facades: Callable[..., Any]) -> None:
    seed_test(lambda: facades(CogmentAECEnv, source), num_cycles=100)


@pytest.mark.parametrize("source", _params(PARALLEL_SOURCES))
def test_parallel_seed_test_passes_on_parallel_facade(source: Any, facades: Callable[..., Any]) -> None:
    parallel_seed_test(lambda: facades(CogmentParallelEnv, source), num_cycles=100)


def test_seed_test_catches_a_facade_that_ignores_seeds(facades: Callable[..., Any]) -> None:
    """The checker can fail here: reset's seed dropped on the way makes two facades differ."""

    class Unseeded(CogmentAECEnv):
        def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
            super().reset(seed=None, options=options)

    with pytest.raises(AssertionError):
        seed_test(lambda: facades(Unseeded, generated_agents_env_v0.env), num_cycles=50)


def test_api_test_catches_a_facade_that_keeps_done_agents(facades: Callable[..., Any]) -> None:
    """The checker can fail here too: agents that stay listed after their dead step."""

    class Sticky(CogmentAECEnv):
        def _apply(self, data: Any, rewards: Any) -> None:
            kept = list(self.agents)
            super()._apply(data, rewards)
            if not self.agents and kept:
                self.agents = kept

    env = facades(Sticky, "pettingzoo.classic.tictactoe_v3")
    with pytest.raises(AssertionError):
        api_test(env, num_cycles=50)
