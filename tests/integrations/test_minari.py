"""Recorded trials -> Minari datasets -> ``minari.load_dataset``: every step exactly what the env
produced directly with the same seeds and actions."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator

import gymnasium as gym
import numpy as np
import pytest

import minari  # in the test extra: the round trip must run, never be skipped

import cogment_gym
from cogment_gym.cli import main
from cogment_gym.errors import DatasetExportError
from cogment_gym.integrations.minari import dataset_id_for_agent, export_minari
from tests.datastore.conftest import play


@pytest.fixture(autouse=True)
def minari_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(home))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is set to None.*", category=UserWarning)
        yield home


def _record_cartpole(directory: Path, seeds: list[int]) -> list[tuple[int, list]]:
    env = cogment_gym.CogmentEnv("CartPole-v1", datalog=directory)
    try:
        return play(env, seeds)
    finally:
        env.close()


def test_record_export_load_round_trip_is_exact(tmp_path: Path) -> None:
    played = _record_cartpole(tmp_path / "rec", [0, 1, 2, 3, 4])
    exported = export_minari(tmp_path / "rec", "cogment/cartpole-random-v0", author="tests")
    assert list(exported) == ["cogment/cartpole-random-v0"]
    dataset = minari.load_dataset("cogment/cartpole-random-v0")
    assert dataset.total_episodes == 5 and dataset.total_steps == sum(len(a) for _, a in played)
    assert dataset.observation_space == gym.make("CartPole-v1").observation_space and dataset.action_space == gym.spaces.Discrete(2)
    assert dataset.spec.env_spec is not None and dataset.spec.env_spec.id == "CartPole-v1"
    direct = gym.make("CartPole-v1")
    metadata = list(dataset.storage.get_episode_metadata(range(5)))
    for (seed, actions), episode, meta in zip(played, dataset.iterate_episodes(), metadata):
        assert meta["seed"] == seed
        obs, _ = direct.reset(seed=seed)
        assert episode.observations.dtype == np.float32 and np.array_equal(episode.observations[0], obs)
        assert episode.actions.tolist() == actions
        for t, action in enumerate(actions):
            obs, reward, terminated, truncated, _ = direct.step(action)
            assert np.array_equal(episode.observations[t + 1], obs)
            assert episode.rewards[t] == reward and bool(episode.terminations[t]) == terminated and bool(episode.truncations[t]) == truncated
        assert len(episode.observations) == len(actions) + 1


def test_multi_agent_trials_give_one_dataset_per_agent(tmp_path: Path) -> None:
    pytest.importorskip("pettingzoo")
    env = cogment_gym.CogmentParallelEnv("pettingzoo.classic.rps_v2", datalog=tmp_path / "rec")
    rng = np.random.default_rng(3)
    try:
        for seed in (1, 2, 3):
            env.reset(seed=seed)
            while env.agents:
                env.step({a: int(rng.integers(3)) for a in env.agents})
    finally:
        env.close()
    exported = export_minari(tmp_path / "rec", "cogment/rps-v0")
    assert sorted(exported) == ["cogment/rps-player_0-v0", "cogment/rps-player_1-v0"] == sorted(
        dataset_id_for_agent("cogment/rps-v0", a) for a in ("player_0", "player_1"))
    for dataset_id in exported:
        dataset = minari.load_dataset(dataset_id)
        assert dataset.total_episodes == 3 and dataset.observation_space == gym.spaces.Discrete(4)
        for episode in dataset.iterate_episodes():
            assert bool(episode.truncations[-1]) and len(episode.observations) == len(episode.actions) + 1
    one = export_minari(tmp_path / "rec", "cogment/rps-first-v0", agent="player_0")
    assert list(one) == ["cogment/rps-first-v0"]
    with pytest.raises(DatasetExportError, match="no recorded trial has actor 'nobody'"):
        export_minari(tmp_path / "rec", "cogment/rps-none-v0", agent="nobody")


def test_batched_trials_export_each_sub_environment(tmp_path: Path) -> None:
    from cogment_gym.envs import CogmentVectorEnv
    from cogment_gym.datastore import episodes

    venv = CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=4, datalog=tmp_path / "rec")
    rng = np.random.default_rng(4)
    try:
        venv.reset(seed=10)
        for _ in range(100):
            venv.step(rng.integers(2, size=4))
    finally:
        venv.close()
    replayed = list(episodes(tmp_path / "rec"))
    export_minari(tmp_path / "rec", "cogment/cartpole-batched-v0")
    dataset = minari.load_dataset("cogment/cartpole-batched-v0")
    assert dataset.total_episodes == len(replayed) > 4
    # NEXT_STEP: the step that resets a sub-environment is no transition.
    assert dataset.total_steps == sum(len(e) for e in replayed) == 400 - (len(replayed) - 4)
    for want, got in zip(replayed, dataset.iterate_episodes()):
        assert np.array_equal(np.stack(want.observations), got.observations)
        assert got.actions.tolist() == [int(a) for a in want.actions] and got.rewards.tolist() == want.rewards
        assert got.terminations.tolist() == want.terminations and got.truncations.tolist() == want.truncations


def test_batched_trials_with_reset_ticks_export_each_episode(tmp_path: Path) -> None:
    """A reset_mask inside a batched trial (a reset tick) ends the masked sub-envs' episodes
    there (truncated) and begins new ones; the export holds exactly the replayed episodes."""
    from cogment_gym.envs import CogmentVectorEnv
    from cogment_gym.datastore import episodes

    venv = CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=4, datalog=tmp_path / "rec")
    rng = np.random.default_rng(5)
    try:
        venv.reset(seed=[3, 1, 4, 1])
        for t in range(60):
            if t % 15 == 14:
                venv.reset(seed=[t, None, t + 1, None], options={"reset_mask": np.array([True, False, True, False])})
            venv.step(rng.integers(2, size=4))
    finally:
        venv.close()
    replayed = list(episodes(tmp_path / "rec"))
    assert sum(1 for e in replayed if e.seed is not None and e.seed >= 14) == 8, "4 reset ticks of 2 sub-envs each"
    export_minari(tmp_path / "rec", "cogment/cartpole-reset-ticks-v0")
    dataset = minari.load_dataset("cogment/cartpole-reset-ticks-v0")
    assert dataset.total_episodes == len(replayed)
    assert dataset.total_steps == sum(len(e) for e in replayed)
    for want, got in zip(replayed, dataset.iterate_episodes()):
        assert np.array_equal(np.stack(want.observations), got.observations)
        assert got.actions.tolist() == [int(a) for a in want.actions] and got.rewards.tolist() == want.rewards
        assert got.terminations.tolist() == want.terminations and got.truncations.tolist() == want.truncations


def test_export_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetExportError, match="no complete recorded trial"):
        export_minari(tmp_path / "empty", "cogment/none-v0")


@pytest.mark.slow
def test_cli_export_minari(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    played = _record_cartpole(tmp_path / "rec", [5, 6])
    assert main(["export-minari", str(tmp_path / "rec"), "--dataset-id", "cogment/cli-v0", "--author", "me"]) == 0
    out = capsys.readouterr().out
    assert f"cogment/cli-v0: 2 episodes, {sum(len(a) for _, a in played)} steps" in out
    assert minari.load_dataset("cogment/cli-v0").total_episodes == 2
    assert main(["export-minari", str(tmp_path / "rec"), "--dataset-id", "bad id!"]) == 2
    assert main(["export-minari", str(tmp_path / "nothing"), "--dataset-id", "cogment/x-v0"]) == 2
