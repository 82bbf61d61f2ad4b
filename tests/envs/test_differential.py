"""Differential tests: every classic-control and toy-text env, stepped directly and through
CogmentEnv with the same seeds, options and actions, must match exactly
(:func:`cogment_gym.testing.check_bridge_matches`).

Modes: the embedded default for every env; a remote environment service
(``environment="grpc://..."``, served in this process) and a remote Orchestrator
(``orchestrator="grpc://..."``) for a few.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
import pytest

from cogment_gym import CogmentEnv, EnvServer
from cogment_gym.orchestrator.server import OrchestratorServer, start_orchestrator
from cogment_gym.testing import COMPOSITE_ENV_ID, MatchReport, assert_data_equal, check_bridge_matches

FAMILIES = ("gymnasium.envs.classic_control", "gymnasium.envs.toy_text")
MUST_HAVE = {
    "CartPole", "MountainCar", "MountainCarContinuous", "Pendulum", "Acrobot",
    "Blackjack", "FrozenLake", "FrozenLake8x8", "CliffWalking", "Taxi",
}
# None after a seeded episode continues each side's generator (the embedded default and a
# server with one client reuse the same env instance, see test_service.py).
SEEDS = [0, None, 7, None]
MAX_STEPS = 200


def _family_ids() -> list[str]:
    """The latest version of every registered env whose entry point is in FAMILIES."""
    latest: dict[str, Any] = {}
    for spec in gym.registry.values():
        entry = spec.entry_point if isinstance(spec.entry_point, str) else ""
        if spec.namespace is None and entry.startswith(FAMILIES):
            current = latest.get(spec.name)
            if current is None or (spec.version or 0) > (current.version or 0):
                latest[spec.name] = spec
    return sorted(spec.id for spec in latest.values())


FAMILY_IDS = _family_ids()


def test_registry_enumeration_covers_the_families() -> None:
    names = {gym.spec(env_id).name for env_id in FAMILY_IDS}
    assert MUST_HAVE <= names, f"missing from the registry scan: {sorted(MUST_HAVE - names)}"
    assert all(gym.spec(env_id).version == max(
        s.version or 0 for s in gym.registry.values() if s.namespace is None and s.name == gym.spec(env_id).name
    ) for env_id in FAMILY_IDS)


def _check(env_id: str, bridged: gym.Env[Any, Any], **kwargs: Any) -> MatchReport:
    kwargs.setdefault("seeds", SEEDS)
    kwargs.setdefault("max_steps", MAX_STEPS)
    report = check_bridge_matches(env_id, bridged, **kwargs)
    assert report.episodes == len(kwargs["seeds"]) and report.steps > 0
    return report


@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_embedded_bridge_matches_direct(env_id: str, closing: Callable[[Any], Any]) -> None:
    _check(env_id, closing(CogmentEnv(env_id)))


@pytest.mark.slow
@pytest.mark.parametrize("env_id", FAMILY_IDS)
def test_embedded_bridge_matches_direct_full_episodes(env_id: str, closing: Callable[[Any], Any]) -> None:
    """Whole episodes (up to each env's own time limit), more of them, other action streams."""
    report = _check(env_id, closing(CogmentEnv(env_id)), seeds=[11, None, None, 12, 13, None, 14, None], max_steps=1000, action_seed=5)
    assert report.capped == 0 or gym.spec(env_id).max_episode_steps is None


COMPOSITE_OPTIONS = [None, {"episode_length": 4, "truncate": False, "label": "hgfe"}, {"truncate": True}, None, {"episode_length": 1}]


def _check_composite(bridged: gym.Env[Any, Any]) -> MatchReport:
    # Strict: the composite env returns canonical values, so nothing is converted on either side.
    report = check_bridge_matches(
        COMPOSITE_ENV_ID, bridged, seeds=[0, None, 3, None, 4, 5], options=COMPOSITE_OPTIONS,
        canonical=False, env_kwargs={"nan_info": True},
    )
    assert report.terminated > 0 and report.truncated > 0 and report.capped == 0
    return report


def test_embedded_bridge_matches_composite_env(closing: Callable[[Any], Any]) -> None:
    _check_composite(closing(CogmentEnv(COMPOSITE_ENV_ID, nan_info=True)))


# ---------------------------------------------------------------------------------------------
# remote modes

REMOTE_IDS = ["CartPole-v1", "Pendulum-v1", "Taxi-v4", "Blackjack-v1"]


@pytest.fixture(scope="module")
def env_server() -> Iterator[EnvServer]:
    import cogment_gym

    envs: dict[str, Any] = {env_id: env_id for env_id in REMOTE_IDS}
    envs[COMPOSITE_ENV_ID] = lambda: gym.make(COMPOSITE_ENV_ID, nan_info=True)
    with cogment_gym.serve(envs) as server:
        yield server


@pytest.fixture(scope="module")
def orchestrator_server() -> Iterator[OrchestratorServer]:
    with start_orchestrator() as server:
        yield server


@pytest.mark.parametrize("env_id", REMOTE_IDS)
def test_remote_service_bridge_matches_direct(env_id: str, env_server: EnvServer, closing: Callable[[Any], Any]) -> None:
    _check(env_id, closing(CogmentEnv(environment=env_server.endpoint, implementation=env_id)))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Taxi-v4"])
def test_remote_orchestrator_bridge_matches_direct(
    env_id: str, env_server: EnvServer, orchestrator_server: OrchestratorServer, closing: Callable[[Any], Any]
) -> None:
    bridged = closing(CogmentEnv(orchestrator=orchestrator_server.lifecycle_endpoint, environment=env_server.endpoint, implementation=env_id))
    _check(env_id, bridged)


def test_remote_modes_match_composite_env(env_server: EnvServer, orchestrator_server: OrchestratorServer, closing: Callable[[Any], Any]) -> None:
    _check_composite(closing(CogmentEnv(environment=env_server.endpoint, implementation=COMPOSITE_ENV_ID)))
    _check_composite(closing(CogmentEnv(orchestrator=orchestrator_server.lifecycle_endpoint, environment=env_server.endpoint, implementation=COMPOSITE_ENV_ID)))


# ---------------------------------------------------------------------------------------------
# seeds and options


def test_unseeded_resets_are_not_seeded(closing: Callable[[Any], Any]) -> None:
    """reset(seed=None) means no seed: not 0, not the same start twice (CartPole starts uniformly
    in [-0.05, 0.05]^4 in float32, so equal starts would be a ~1e-26 coincidence)."""
    first, second = closing(CogmentEnv("CartPole-v1")), closing(CogmentEnv("CartPole-v1"))
    starts = [first.reset()[0], first.reset()[0], second.reset()[0], second.reset(seed=None)[0]]
    seeded_zero = gym.make("CartPole-v1").reset(seed=0)[0]
    for i, obs in enumerate(starts):
        assert not np.array_equal(obs, seeded_zero), f"unseeded start {i} is the seed=0 start"
        for j in range(i):
            assert not np.array_equal(obs, starts[j]), f"unseeded starts {j} and {i} are equal"
    # A seed given once continues to govern later unseeded resets, as with a direct env.
    direct = gym.make("CartPole-v1")
    assert_data_equal(direct.reset(seed=5)[0], first.reset(seed=5)[0], "seeded")
    assert_data_equal(direct.reset()[0], first.reset()[0], "unseeded after seeded")


def test_reset_options_arrive(closing: Callable[[Any], Any]) -> None:
    # Classic-control envs read "low"/"high" options for their start state.
    bridged = closing(CogmentEnv("CartPole-v1"))
    obs, _ = bridged.reset(seed=1, options={"low": 0.2, "high": 0.3})
    assert np.all((obs >= 0.2) & (obs <= 0.3))
    assert_data_equal(gym.make("CartPole-v1").reset(seed=1, options={"low": 0.2, "high": 0.3})[0], obs, "obs")
    report = check_bridge_matches("CartPole-v1", bridged, seeds=[1, 2], options={"low": -0.2, "high": 0.2})
    assert report.episodes == 2

    composite = closing(CogmentEnv(COMPOSITE_ENV_ID))
    options = {"episode_length": 2, "truncate": True, "label": "dcba", "extra": np.arange(3, dtype=np.uint16)}
    obs, info = composite.reset(options=options)
    assert obs["label"] == "dcba"
    assert_data_equal(options, info["options"], "info['options']")
    assert info["episode_length"] == 2
    action = composite.action_space.sample()
    assert composite.step(action)[2:4] == (False, False)
    assert composite.step(action)[2:4] == (False, True)
    # No options: the env sees None, not an empty dict.
    assert composite.reset(seed=3)[1]["options"] is None


def test_clients_sharing_a_served_env_each_continue_their_own_generator(served: Callable[..., EnvServer]) -> None:
    """Two CogmentEnvs on one service, episodes interleaved: each gets its own env instance back
    (EnvConfig.instance_key), so each unseeded reset matches its own direct env."""
    server = served("CartPole-v1")
    bridged = [CogmentEnv(environment=server.endpoint) for _ in range(2)]
    direct = [gym.make("CartPole-v1") for _ in range(2)]
    try:
        for k, (b, d) in enumerate(zip(bridged, direct)):
            assert_data_equal(d.reset(seed=10 + k)[0], b.reset(seed=10 + k)[0], f"client {k}: seeded reset")
        for episode in range(4):
            # Both episodes end (both instances go back to the pool), then both clients reset
            # without a seed: a pool handing out any idle instance would swap them.
            for k, (b, d) in enumerate(zip(bridged, direct)):
                while True:
                    expected, got = d.step(0), b.step(0)
                    assert_data_equal(expected[:4], got[:4], f"client {k}, episode {episode}: step")
                    if got[2] or got[3]:
                        break
            for k, (b, d) in enumerate(zip(bridged, direct)):
                assert_data_equal(d.reset()[0], b.reset()[0], f"client {k}, episode {episode}: unseeded reset")
    finally:
        for b in bridged:
            b.close()


class _LeavesItsBox(gym.Env[np.ndarray, np.int64]):
    """Observations outside the declared Box, as many real envs emit (Gymnasium only warns)."""

    observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.5, 1.5], np.float32), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return np.array([-float(self.t), 0.5], np.float32), 1.0, self.t >= 3, False, {}


def test_observations_outside_their_bounds_arrive_as_the_env_made_them(
    served: Callable[..., EnvServer], closing: Callable[[Any], Any]
) -> None:
    from cogment_gym.envs import CogmentVectorEnv

    expected = [np.array([0.5, 1.5], np.float32)] + [np.array([-t, 0.5], np.float32) for t in (1, 2, 3)]
    env = closing(CogmentEnv(_LeavesItsBox))
    got = [env.reset(seed=0)[0]] + [env.step(np.int64(0))[0] for _ in range(3)]
    for obs, want in zip(got, expected):
        assert_data_equal(obs, want)
    endpoint = served({"leaves": _LeavesItsBox}).endpoint
    for per_trial in (1, 4):
        venv = closing(CogmentVectorEnv(num_envs=4, environment=endpoint, implementation="leaves", envs_per_trial=per_trial))
        obs, _ = venv.reset(seed=0)
        assert_data_equal(obs, np.stack([expected[0]] * 4))
        for t in (1, 2, 3):
            obs, _, terminated, _, infos = venv.step(np.zeros(4, np.int64))
            assert_data_equal(obs, np.stack([expected[t]] * 4))
        assert terminated.all()


class _LeavesItsRange(gym.Env[np.int64, np.int64]):
    """A Discrete(3) observation of 5: outside the space, as Gymnasium would let it through."""

    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        return np.int64(5), {}

    def step(self, action: np.int64) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        return np.int64(-1), 0.0, True, False, {}


def test_discrete_observations_outside_their_range_arrive_too(served: Callable[..., EnvServer], closing: Callable[[Any], Any]) -> None:
    from cogment_gym.envs import CogmentVectorEnv

    env = closing(CogmentEnv(_LeavesItsRange))
    assert env.reset(seed=0)[0] == 5 and env.step(np.int64(0))[0] == -1
    endpoint = served({"range": _LeavesItsRange}).endpoint
    venv = closing(CogmentVectorEnv(num_envs=2, environment=endpoint, implementation="range", envs_per_trial=2))
    assert venv.reset(seed=0)[0].tolist() == [5, 5]
    assert venv.step(np.zeros(2, np.int64))[0].tolist() == [-1, -1]
