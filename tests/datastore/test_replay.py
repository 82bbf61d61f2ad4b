"""Replay of recorded batched and multi-agent trials equals the environments stepped directly
with the same seeds and actions (single-agent trials: tests/datastore/test_datalog_service.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import cogment_gym
from cogment_gym.datastore import Episode, TrialRecorder, episodes, trials
from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.testing import assert_data_equal


class _ReferenceEpisodes:
    """Each sub-env's episodes, read from a SyncVectorEnv's resets and steps as the replay should
    give them; unfinished ones truncated at their last step (:meth:`finish`)."""

    def __init__(self, mode: AutoresetMode, n: int) -> None:
        self.mode = mode
        self.current: list[dict[str, Any] | None] = [None] * n
        self.done: list[dict[str, Any]] = []

    def begin(self, i: int, obs: Any, seed: Any, options: Any = None) -> None:
        self.current[i] = {"sub_env": i, "seed": seed, "options": options, "obs": [obs[i]], "actions": [], "rewards": [], "term": [], "trunc": []}

    def cut(self, i: int) -> None:
        """Sub-env i's episode ends here (truncated unless it terminated), if it took a step."""
        episode, self.current[i] = self.current[i], None
        if episode is not None and episode["actions"]:
            episode["trunc"][-1] = episode["trunc"][-1] or not episode["term"][-1]
            self.done.append(episode)

    def step(self, action: Any, obs: Any, rewards: Any, terms: Any, truncs: Any, infos: dict[str, Any]) -> None:
        same_step = self.mode == AutoresetMode.SAME_STEP
        for i, episode in enumerate(self.current):
            if episode is None:  # NEXT_STEP: this step reset it
                self.begin(i, obs, None)
                continue
            final = infos["final_obs"][i] if same_step and (terms[i] or truncs[i]) else obs[i]
            episode["actions"].append(action[i]); episode["obs"].append(final)
            episode["rewards"].append(rewards[i]); episode["term"].append(terms[i]); episode["trunc"].append(truncs[i])
            if terms[i] or truncs[i]:
                self.done.append(episode)
                self.current[i] = None
                if same_step:
                    self.begin(i, obs, None)

    def finish(self) -> list[dict[str, Any]]:
        for i in range(len(self.current)):
            self.cut(i)
        return self.done


def _reference_episodes(mode: AutoresetMode, n: int, seed: int, actions: list[np.ndarray]) -> list[dict[str, Any]]:
    """Each sub-env's episodes from a SyncVectorEnv; unfinished ones truncated at their last step."""
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(n)], autoreset_mode=mode)
    obs, _ = envs.reset(seed=seed)
    reference = _ReferenceEpisodes(mode, n)
    for i in range(n):
        reference.begin(i, obs, seed + i)
    for action in actions:
        reference.step(action, *envs.step(action))
    envs.close()
    return reference.finish()


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_batched_trials_replay_each_sub_environment(tmp_path: Path, mode: AutoresetMode) -> None:
    n, steps, seed = 3, 120, 5
    rng = np.random.default_rng(1)
    actions = [rng.integers(2, size=n) for _ in range(steps)]
    venv = CogmentVectorEnv("CartPole-v1", num_envs=n, envs_per_trial=n, autoreset_mode=mode, datalog=tmp_path)
    try:
        venv.reset(seed=seed)
        for action in actions:
            venv.step(action)
    finally:
        venv.close()
    [trial] = list(trials(tmp_path))
    assert trial.num_envs == n
    recorded = sorted(episodes(tmp_path), key=lambda e: (e.sub_env, e._start_tick))
    # A stable sort: each sub-env's episodes stay in the order they ended, which is the order they began.
    reference = sorted(_reference_episodes(mode, n, seed, actions), key=lambda e: e["sub_env"])
    assert len(recorded) == len(reference) > n  # some sub-envs finished episodes and began others
    for got, want in zip(recorded, reference):
        assert (got.sub_env, got.seed) == (want["sub_env"], want["seed"])
        assert len(got.observations) == len(want["obs"])
        assert all(np.array_equal(a, b) for a, b in zip(got.observations, want["obs"]))
        assert [int(a) for a in got.actions] == [int(a) for a in want["actions"]]
        assert got.rewards == [float(r) for r in want["rewards"]]
        assert got.terminations == [bool(t) for t in want["term"]] and got.truncations == [bool(t) for t in want["trunc"]]


def test_multi_agent_trials_replay_one_episode_per_agent(tmp_path: Path) -> None:
    pytest.importorskip("pettingzoo")
    from pettingzoo.classic import rps_v2

    env = cogment_gym.CogmentParallelEnv("pettingzoo.classic.rps_v2", datalog=tmp_path)
    direct = rps_v2.parallel_env()
    rng = np.random.default_rng(2)
    expected: dict[str, Episode] = {}
    try:
        for seed in (7, 8):
            obs, infos = env.reset(seed=seed)
            want_obs, want_infos = direct.reset(seed=seed)
            episodes_now = {a: Episode("", a, seed=seed, observations=[want_obs[a]], infos=[want_infos[a]]) for a in direct.agents}
            assert obs == want_obs
            while env.agents:
                actions = {a: int(rng.integers(3)) for a in env.agents}
                env.step(actions)
                o, r, te, tr, i = direct.step(actions)
                for agent, action in actions.items():
                    episodes_now[agent]._step(action, o[agent], r[agent], te[agent], tr[agent], i[agent])
            for agent, episode in episodes_now.items():
                expected[f"{seed}/{agent}"] = episode
    finally:
        env.close()
    recorded = list(episodes(tmp_path))
    assert len(recorded) == 4
    for got in recorded:
        want = expected[f"{got.seed}/{got.agent}"]
        assert [int(o) for o in got.observations] == [int(o) for o in want.observations]
        assert [int(a) for a in got.actions] == want.actions
        assert (got.rewards, got.terminations, got.truncations, got.infos) == (want.rewards, want.terminations, want.truncations, want.infos)
    assert [e.agent for e in episodes(tmp_path, agent="player_1")] == ["player_1", "player_1"]


def test_turn_based_trials_replay_each_agents_own_view(tmp_path: Path) -> None:
    """AEC: an agent's episode is what a direct ``agent_iter`` / ``last()`` loop shows it."""
    pytest.importorskip("pettingzoo")
    from pettingzoo.classic import tictactoe_v3

    env = cogment_gym.CogmentAECEnv("pettingzoo.classic.tictactoe_v3", datalog=tmp_path)
    rng = np.random.default_rng(5)
    chosen: list[int | None] = []
    try:
        for seed in (3, 4):
            env.reset(seed=seed)
            for agent in env.agent_iter():
                obs, _, terminated, truncated, _ = env.last()
                action = None if terminated or truncated else int(rng.choice(np.flatnonzero(obs["action_mask"])))
                chosen.append(action)
                env.step(action)
    finally:
        env.close()
    direct = tictactoe_v3.env()
    expected: dict[tuple[int, str], Episode] = {}
    moves = iter(chosen)
    for seed in (3, 4):
        direct.reset(seed=seed)
        pending: dict[str, Any] = {}
        for agent in direct.agent_iter():
            obs, reward, terminated, truncated, info = direct.last()
            episode = expected.get((seed, agent))
            if episode is None:
                expected[(seed, agent)] = Episode("", agent, seed=seed, observations=[obs], infos=[info])
            else:
                episode._step(pending[agent], obs, reward, terminated, truncated, info)
            action = next(moves)
            pending[agent] = action
            direct.step(action)
    recorded = list(episodes(tmp_path))
    assert sorted((e.seed, e.agent) for e in recorded) == sorted(expected)
    for got in recorded:
        want = expected[(got.seed, got.agent)]
        assert len(got.observations) == len(want.observations)
        for a, b in zip(got.observations, want.observations):
            assert all(np.array_equal(a[k], b[k]) for k in b)
        assert [int(a) for a in got.actions] == want.actions
        assert (got.rewards, got.terminations, got.truncations) == (want.rewards, want.terminations, want.truncations)


def test_replay_gives_rewards_and_flags_in_the_env_s_own_types(tmp_path: Path) -> None:
    """As the facades do (tests/adapters/test_exact_types.py): an int, np.float32, np.int64 or
    bool reward and np.bool_ flags come back as such, not as float and bool."""
    from tests.adapters.test_exact_types import FLAGS, REWARDS, TypesEnv

    env = cogment_gym.CogmentEnv(TypesEnv, datalog=TrialRecorder(tmp_path))
    try:
        env.reset(seed=0)
        for _ in range(len(REWARDS)):
            env.step(1)
    finally:
        env.close()
    [episode] = episodes(tmp_path)
    for t, (reward, terminated, truncated) in enumerate(zip(episode.rewards, episode.terminations, episode.truncations)):
        assert_data_equal(REWARDS[t], reward, f"reward {t}")
        assert_data_equal(FLAGS[t], terminated, f"terminated {t}")
        assert type(truncated) is np.bool_, (t, type(truncated))


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_batched_trials_with_per_sub_env_resets_and_reset_ticks_replay(tmp_path: Path, mode: AutoresetMode) -> None:
    """A batched trial started with its own seed and options per sub-env (EnvConfig.resets) and
    reset_masks in between (reset ticks): each masked reset ends that sub-env's episode (truncated
    at its last step) and begins one with the reset's seed and options, as a SyncVectorEnv gives."""
    from tests.envs.test_vector_resets import DRAW_ID

    n = 3
    rng = np.random.default_rng(4)
    seeds = [8, 3, 40]
    per_env: list[Any] = [{"extra": 1}, None, {"extra": 2}]
    plan: list[Any] = []  # per step: the actions, or (mask, seeds, options) of a reset before them
    for t in range(40):
        if t % 7 == 6:
            mask = rng.random(n) < 0.5
            mask[t % n] = True
            plan.append((mask, [int(s) for s in rng.integers(0, 100, n)], {"extra": t % 3}))
        plan.append(rng.integers(0, 3, size=n))
    assert any(isinstance(step, tuple) and not step[0].all() for step in plan), "some reset ticks"
    venv = CogmentVectorEnv(DRAW_ID, num_envs=n, envs_per_trial=n, autoreset_mode=mode, datalog=tmp_path)
    try:
        venv.reset(seed=seeds, options=per_env)
        for step in plan:
            if isinstance(step, tuple):
                venv.reset(seed=step[1], options={"reset_mask": step[0], **step[2]})
            else:
                venv.step(step)
    finally:
        venv.close()

    direct = gym.vector.SyncVectorEnv([lambda: gym.make(DRAW_ID) for _ in range(n)], autoreset_mode=mode)
    direct.reset(seed=seeds)
    reference_episodes = _ReferenceEpisodes(mode, n)
    for i in range(n):
        mask = np.arange(n) == i
        obs, _ = direct.reset(seed=seeds, options={"reset_mask": mask, **(per_env[i] or {})})
    for i in range(n):
        reference_episodes.begin(i, obs, seeds[i], per_env[i])
    for step in plan:
        if isinstance(step, tuple):
            mask, reset_seeds, options = step
            obs, _ = direct.reset(seed=reset_seeds, options={"reset_mask": mask, **options})
            for i in np.flatnonzero(mask):
                reference_episodes.cut(i)
                reference_episodes.begin(i, obs, reset_seeds[i], options)
            continue
        reference_episodes.step(step, *direct.step(step))
    done = reference_episodes.finish()
    direct.close()

    # Trial after trial (a mask of every sub-env starts a new one), each in its order: a stable
    # sort keeps each sub-env's episodes in the order they began (the reference's: they ended).
    recorded = sorted(episodes(tmp_path), key=lambda e: e.sub_env)
    reference = sorted(done, key=lambda e: e["sub_env"])
    assert len(recorded) == len(reference) > 2 * n
    assert sum(1 for e in reference if e["options"] == {"extra": 1} and e["seed"] is not None and e["seed"] != 8) >= 1
    for k, (got, want) in enumerate(zip(recorded, reference)):
        where = f"episode {k} of sub-env {want['sub_env']}"
        assert (got.sub_env, got.seed, got.options) == (want["sub_env"], want["seed"], want["options"]), where
        assert_data_equal(want["obs"], got.observations, f"{where}: observations")
        assert [int(a) for a in got.actions] == [int(a) for a in want["actions"]], where
        assert got.rewards == [float(r) for r in want["rewards"]], where
        assert got.terminations == [bool(t) for t in want["term"]] and got.truncations == [bool(t) for t in want["trunc"]], where
