"""Differential tests: PettingZoo environments stepped directly and through the facades with the
same seeds and actions give exactly equal observations, rewards, terminations, truncations,
infos, agent lists and (AEC) agent selections, at every step.

"Exactly" as in :func:`cogment_gym.testing.assert_data_equal`, with nothing converted: the
facades return the environment's own types (``int`` rewards stay ``int``, a 0-d array
observation stays one, dicts keep the env's key order).

Modes: the embedded default for every environment; an environment service reached over gRPC
and a remote Orchestrator (``OrchestratorServer``) for a few.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any, Callable, Iterator

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo.test.example_envs import (
    generated_agents_env_action_mask_info_v0,
    generated_agents_env_action_mask_obs_v0,
    generated_agents_env_v0,
    generated_agents_parallel_v0,
)
from pettingzoo.utils.conversions import turn_based_aec_to_parallel

import cogment_gym
from cogment_gym import CogmentAECEnv, CogmentParallelEnv
from cogment_gym.orchestrator.server import OrchestratorServer
from cogment_gym.testing import assert_data_equal

SEEDS = [0, None, 7]  # None: the same env instance goes on with its generator, on both sides
# The generated-agents test envs reseed their spaces with reset's seed: None draws OS entropy.
SEEDED_ONLY = [0, 3, 7]


def _module(name: str) -> Any:
    return importlib.import_module(f"pettingzoo.{name}")


AEC_ENVS: dict[str, tuple[Any, Callable[[], Any]]] = {
    "tictactoe_v3": ("pettingzoo.classic.tictactoe_v3", lambda: _module("classic.tictactoe_v3").env()),
    "connect_four_v3": ("pettingzoo.classic.connect_four_v3", lambda: _module("classic.connect_four_v3").env()),
    "rps_v2": ("pettingzoo.classic.rps_v2", lambda: _module("classic.rps_v2").env()),
    "knights_archers_zombies_v11": ("pettingzoo.butterfly.knights_archers_zombies_v11", lambda: _module("butterfly.knights_archers_zombies_v11").env()),
    "multiwalker_v9": ("pettingzoo.sisl.multiwalker_v9", lambda: _module("sisl.multiwalker_v9").env()),
    "generated_agents_env_v0": (generated_agents_env_v0.env, generated_agents_env_v0.env),
    "generated_agents_env_action_mask_info_v0": (generated_agents_env_action_mask_info_v0.env, generated_agents_env_action_mask_info_v0.env),
    "generated_agents_env_action_mask_obs_v0": (generated_agents_env_action_mask_obs_v0.env, generated_agents_env_action_mask_obs_v0.env),
}
PARALLEL_ENVS: dict[str, tuple[Any, Callable[[], Any]]] = {
    "rps_v2": ("pettingzoo.classic.rps_v2", lambda: _module("classic.rps_v2").parallel_env()),
    "tictactoe_v3": ("pettingzoo.classic.tictactoe_v3", lambda: turn_based_aec_to_parallel(_module("classic.tictactoe_v3").env())),
    "knights_archers_zombies_v11": ("pettingzoo.butterfly.knights_archers_zombies_v11", lambda: _module("butterfly.knights_archers_zombies_v11").parallel_env()),
    "multiwalker_v9": ("pettingzoo.sisl.multiwalker_v9", lambda: _module("sisl.multiwalker_v9").parallel_env()),
    "generated_agents_parallel_v0": (generated_agents_parallel_v0.parallel_env, generated_agents_parallel_v0.parallel_env),
}
MAX_ITERATIONS = 400  # AEC steps (or parallel steps) per episode at most


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------------------------------------------- actions


def _mask_of(observation: Any, info: Any) -> Any:
    if isinstance(observation, dict) and "action_mask" in observation:
        return observation["action_mask"]
    if isinstance(info, dict) and "action_mask" in info:
        return info["action_mask"]
    return None


def _choose(rng: np.random.Generator, space: spaces.Space[Any], mask: Any) -> Any:
    """An action of ``space`` from the test's own generator (the envs' generators stay untouched)."""
    if isinstance(space, spaces.Discrete):
        legal = np.flatnonzero(np.asarray(mask)) if mask is not None else np.arange(space.n)
        if legal.size == 0:
            legal = np.arange(space.n)
        return int(space.start + rng.choice(legal))
    if isinstance(space, spaces.Box):
        low = np.where(np.isfinite(space.low), space.low, -1.0)
        high = np.where(np.isfinite(space.high), space.high, 1.0)
        return rng.uniform(low, high).astype(space.dtype)
    raise AssertionError(f"no chooser for {space}")


# ------------------------------------------------------------------------------------- comparing


def _same_observation(space: spaces.Space[Any], direct: Any, bridged: Any, path: str, *, exact: bool = True) -> None:
    if not exact:  # values the env itself draws from unseeded generators: only their space
        assert space.contains(bridged) and space.contains(direct), path
        return
    assert_data_equal(direct, bridged, path)


def _seeded(agent: str) -> bool:
    """The AEC generated-agents envs seed the spaces of their first 3 agent types at reset; a
    type added later samples its observations from an unseeded space: not reproducible even
    between two direct runs."""
    kind, _, _ = agent.rpartition("_")
    return not (kind.startswith("type") and kind[4:].isdigit() and int(kind[4:]) >= 3)


def _same_tables(direct: Any, bridged: Any, where: str) -> None:
    assert bridged.agents == list(direct.agents), f"{where}: agents"
    assert_data_equal(dict(direct.rewards), bridged.rewards, f"{where}: rewards")
    assert_data_equal(dict(direct._cumulative_rewards), bridged._cumulative_rewards, f"{where}: cumulative rewards")
    assert_data_equal(dict(direct.terminations), bridged.terminations, f"{where}: terminations")
    assert_data_equal(dict(direct.truncations), bridged.truncations, f"{where}: truncations")
    assert_data_equal(dict(direct.infos), bridged.infos, f"{where}: infos")
    if direct.agents:
        assert bridged.agent_selection == direct.agent_selection, f"{where}: agent_selection"


def check_aec_match(
    make_direct: Callable[[], Any], bridged: CogmentAECEnv, seeds: list[int | None], rng_seed: int = 0, max_iterations: int = MAX_ITERATIONS,
) -> int:
    """Play the same episodes on both (at most ``max_iterations`` AEC steps each); returns the
    number of AEC steps compared."""
    direct = make_direct()
    rng = np.random.default_rng(rng_seed)
    compared = 0
    try:
        for episode, seed in enumerate(seeds):
            direct.reset(seed=seed)
            bridged.reset(seed=seed)
            _same_tables(direct, bridged, f"episode {episode} reset")
            for step, agent in enumerate(direct.agent_iter(max_iterations)):
                where = f"episode {episode} step {step} agent {agent!r}"
                assert bridged.agent_selection == agent, f"{where}: selection"
                obs_d, reward_d, term_d, trunc_d, info_d = direct.last()
                obs_b, reward_b, term_b, trunc_b, info_b = bridged.last()
                _same_observation(direct.observation_space(agent), obs_d, obs_b, f"{where}: observation", exact=_seeded(agent))
                if not _seeded(agent) and isinstance(obs_d, dict) and "action_mask" in obs_d:
                    break  # its random action mask decides what is legal there: the runs part
                assert_data_equal(reward_d, reward_b, f"{where}: reward")
                assert_data_equal((term_d, trunc_d), (term_b, trunc_b), f"{where}: flags")
                assert_data_equal(info_d, info_b, f"{where}: info")
                action = None if term_d or trunc_d else _choose(rng, direct.action_space(agent), _mask_of(obs_d, info_d))
                direct.step(action)
                bridged.step(action)
                _same_tables(direct, bridged, where)
                compared += 1
    finally:
        direct.close()
    return compared


def check_parallel_match(
    make_direct: Callable[[], Any], bridged: CogmentParallelEnv, seeds: list[int | None], rng_seed: int = 0, max_iterations: int = MAX_ITERATIONS,
) -> int:
    direct = make_direct()
    rng = np.random.default_rng(rng_seed)
    compared = 0

    def same(d: tuple[Any, ...], b: tuple[Any, ...], where: str) -> None:
        obs_d, *rest_d = d
        obs_b, *rest_b = b
        assert obs_b.keys() == obs_d.keys(), f"{where}: observation keys"
        for agent in obs_d:
            _same_observation(direct.observation_space(agent), obs_d[agent], obs_b[agent], f"{where}: observation of {agent!r}")
        if len(rest_d) == 1:  # reset: infos
            assert_data_equal(rest_d[0], rest_b[0], f"{where}: infos")
            return
        rewards_d, terms_d, truncs_d, infos_d = rest_d
        assert_data_equal(dict(rewards_d), rest_b[0], f"{where}: rewards")
        assert_data_equal(dict(terms_d), rest_b[1], f"{where}: terminations")
        assert_data_equal(dict(truncs_d), rest_b[2], f"{where}: truncations")
        assert_data_equal(infos_d, rest_b[3], f"{where}: infos")

    try:
        for episode, seed in enumerate(seeds):
            result_d = direct.reset(seed=seed)
            result_b = bridged.reset(seed=seed)
            same(result_d, result_b, f"episode {episode} reset")
            assert bridged.agents == list(direct.agents)
            observations, infos = result_d
            for step in range(max_iterations):
                if not direct.agents:
                    break
                actions = {
                    a: _choose(rng, direct.action_space(a), _mask_of(observations.get(a), infos.get(a))) for a in direct.agents
                }
                result_d = direct.step(actions)
                result_b = bridged.step(actions)
                where = f"episode {episode} step {step}"
                same(result_d, result_b, where)
                assert bridged.agents == list(direct.agents), f"{where}: agents"
                observations, infos = result_d[0], result_d[4]
                compared += 1
            assert not direct.agents or step == max_iterations - 1
    finally:
        direct.close()
    return compared


# ------------------------------------------------------------------------------------- tests


def _seeds(name: str) -> list[int | None]:
    return SEEDED_ONLY if name.startswith("generated") else SEEDS


@pytest.mark.parametrize("name", list(AEC_ENVS))
def test_aec_envs_match_through_the_facade(name: str) -> None:
    source, make_direct = AEC_ENVS[name]
    bridged = CogmentAECEnv(source)
    try:
        assert check_aec_match(make_direct, bridged, _seeds(name)) > 10
    finally:
        bridged.close()


@pytest.mark.parametrize("name", list(PARALLEL_ENVS))
def test_parallel_envs_match_through_the_facade(name: str) -> None:
    source, make_direct = PARALLEL_ENVS[name]
    bridged = CogmentParallelEnv(source)
    try:
        assert check_parallel_match(make_direct, bridged, _seeds(name)) > 10
    finally:
        bridged.close()


@pytest.fixture
def remote() -> Iterator[Callable[..., dict[str, Any]]]:
    """Factory: kwargs of a facade whose environment is served over gRPC (and, in mode
    "remote-orchestrator", whose trials run on an OrchestratorServer)."""
    servers: list[Any] = []

    def kwargs(source: Any, api: str, mode: str) -> dict[str, Any]:
        server = cogment_gym.serve(source, api=api)
        servers.append(server)
        out = {"environment": server.endpoint}
        if mode == "remote-orchestrator":
            orch = OrchestratorServer()
            servers.append(orch)
            out["orchestrator"] = orch.lifecycle_endpoint
        return out

    yield kwargs
    for server in reversed(servers):
        server.stop()


# Agent slots over a remote Orchestrator cost one gRPC stream per slot (32): kept to a served env.
@pytest.mark.parametrize(
    "name, mode",
    [("connect_four_v3", "remote-env"), ("connect_four_v3", "remote-orchestrator"), ("generated_agents_env_action_mask_info_v0", "remote-env")],
)
def test_aec_match_over_grpc(name: str, mode: str, remote: Callable[..., dict[str, Any]]) -> None:
    source, make_direct = AEC_ENVS[name]
    bridged = CogmentAECEnv(**remote(source, "aec", mode))
    try:
        # A served env keeps one instance for its only client: seed=None continues it too.
        assert check_aec_match(make_direct, bridged, _seeds(name), rng_seed=3) > 10
    finally:
        bridged.close()


@pytest.mark.parametrize("name, mode", [("rps_v2", "remote-env"), ("multiwalker_v9", "remote-orchestrator")])
def test_parallel_match_over_grpc(name: str, mode: str, remote: Callable[..., dict[str, Any]]) -> None:
    source, make_direct = PARALLEL_ENVS[name]
    bridged = CogmentParallelEnv(**remote(source, "parallel", mode))
    try:
        assert check_parallel_match(make_direct, bridged, _seeds(name), rng_seed=3) > 10
    finally:
        bridged.close()


def test_the_comparison_catches_a_reward_difference() -> None:
    """The harness can fail: a bridge that rewards the wrong agent is caught."""
    source, make_direct = AEC_ENVS["connect_four_v3"]

    class Swapped(CogmentAECEnv):
        def _apply(self, data: Any, rewards: Any) -> None:
            super()._apply(data, rewards)
            if len(self.rewards) == 2:
                a, b = list(self.rewards)
                self.rewards = {a: self.rewards[b], b: self.rewards[a]}

    bridged = Swapped(source)
    try:
        with pytest.raises(AssertionError, match="rewards"):
            check_aec_match(make_direct, bridged, [1, 2, 3, 4])
    finally:
        bridged.close()
