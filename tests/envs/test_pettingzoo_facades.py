"""Behaviour of the PettingZoo facades beyond the checkers: rendering, state, episodes ended by
the Orchestrator, resets mid-episode, misuse, and the served API having to match the facade's."""

from __future__ import annotations

import warnings
from typing import Any, Iterator

import numpy as np
import pytest
from pettingzoo.classic import connect_four_v3
from pettingzoo.sisl import multiwalker_v9

import cogment_gym
from cogment_gym import CogmentAECEnv, CogmentEnv, CogmentGymError, CogmentParallelEnv
from cogment_gym.testing import assert_data_equal

CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_rgb_array_frames_match_the_direct_env() -> None:
    direct = connect_four_v3.env(render_mode="rgb_array")
    bridged = CogmentAECEnv(CONNECT_FOUR, render_mode="rgb_array")
    try:
        direct.reset(seed=0)
        bridged.reset(seed=0)
        for column in (3, 3, 4):
            direct.last()
            bridged.last()
            direct.step(column)
            bridged.step(column)
        frame = bridged.render()
        assert isinstance(frame, np.ndarray) and frame.ndim == 3
        np.testing.assert_array_equal(frame, direct.render())
    finally:
        direct.close()
        bridged.close()


def test_state_is_sent_when_asked_for() -> None:
    direct = multiwalker_v9.parallel_env()
    bridged = CogmentParallelEnv("pettingzoo.sisl.multiwalker_v9", state=True)
    plain = CogmentParallelEnv("pettingzoo.sisl.multiwalker_v9")
    try:
        direct.reset(seed=4)
        bridged.reset(seed=4)
        assert_data_equal(direct.state(), bridged.state())
        for step in range(5):
            actions = {a: np.full(4, 0.1 * step, np.float32) for a in direct.agents}
            direct.step(actions)
            bridged.step(actions)
            assert_data_equal(direct.state(), bridged.state())
        plain.reset(seed=4)
        with pytest.raises(CogmentGymError, match="state=True"):
            plain.state()
    finally:
        for env in (direct, bridged, plain):
            env.close()
    no_state = CogmentAECEnv(CONNECT_FOUR, state=True)
    try:
        with pytest.raises(NotImplementedError):
            no_state.state()
    finally:
        no_state.close()


def test_orchestrator_end_truncates_every_agent_and_dead_steps_run_locally() -> None:
    env = CogmentAECEnv(CONNECT_FOUR, max_steps=2)  # the trial ends after 3 moves
    try:
        env.reset(seed=0)
        moves = []
        for agent in env.agent_iter():
            obs, _, terminated, truncated, _ = env.last()
            if terminated or truncated:
                assert truncated and not terminated
                env.step(None)
                continue
            moves.append(agent)
            env.step(int(np.flatnonzero(obs["action_mask"])[0]))
        assert moves == ["player_0", "player_1", "player_0"]
        assert env.agents == [] and env.rewards == {}
        with pytest.raises(CogmentGymError, match="reset"):
            env.step(0)
    finally:
        env.close()
    par = CogmentParallelEnv("pettingzoo.classic.rps_v2", max_steps=1)
    try:
        par.reset(seed=0)
        first = par.step({"player_0": 0, "player_1": 1})
        assert first[3] == {"player_0": False, "player_1": False} and par.agents == ["player_0", "player_1"]
        last = par.step({"player_0": 0, "player_1": 1})
        assert last[3] == {"player_0": True, "player_1": True} and par.agents == []
        with pytest.raises(CogmentGymError, match="reset"):
            par.step({"player_0": 0})
    finally:
        par.close()


def test_reset_mid_episode_starts_a_new_trial_and_close_is_idempotent() -> None:
    env = CogmentAECEnv(CONNECT_FOUR)
    env.reset(seed=0)
    first = env.trial_id
    env.step(3)
    env.reset(seed=0)
    assert env.trial_id != first and env.agents == ["player_0", "player_1"]
    assert env.observe("player_0")["observation"].sum() == 0  # a fresh board
    env.close()
    env.close()
    with pytest.raises(CogmentGymError, match="closed"):
        env.reset()


def test_misuse_is_reported_as_pettingzoo_would() -> None:
    env = CogmentAECEnv("pettingzoo.classic.tictactoe_v3")
    try:
        with pytest.raises(ValueError, match="seed"):
            env.reset(seed=-1)
        env.reset(seed=0)
        for cell in (0, 3, 1, 4):
            env.step(cell)
        env.step(2)  # player_1 wins
        assert env.terminations == {"player_1": True, "player_2": True}
        with pytest.raises(ValueError, match="only valid action is None"):
            env.step(5)
        with pytest.raises(cogment_gym.errors.SpaceMismatchError):
            CogmentAECEnv.reset(env, seed=1)
            env.step(42)
    finally:
        env.close()


def test_served_api_must_match_the_facade() -> None:
    server = cogment_gym.serve(CONNECT_FOUR)  # AEC
    try:
        with pytest.raises(CogmentGymError, match="api='parallel'"):
            CogmentParallelEnv(environment=server.endpoint)
        aec = CogmentAECEnv(environment=server.endpoint)
        aec.close()
    finally:
        server.stop()
    with pytest.raises(CogmentGymError, match="single-agent"):
        CogmentAECEnv("CartPole-v1")
    with pytest.raises(CogmentGymError, match=r"pass agent="):
        CogmentEnv(CONNECT_FOUR)
    with pytest.raises(ValueError, match="nobody plays"):
        CogmentEnv(CONNECT_FOUR, agent="player_0")
    with pytest.raises(ValueError, match="not agents of"):
        CogmentAECEnv(CONNECT_FOUR, service_actors={"player_9": "grpc://127.0.0.1:1"})
    with pytest.raises(TypeError, match="multi-agent"):
        CogmentEnv("CartPole-v1", agent="player")


def test_cogment_env_plays_either_seat_of_a_parallel_game() -> None:
    def scissors(observation: Any, context: Any) -> int:
        return 2

    env = CogmentEnv("pettingzoo.classic.rps_v2", agent="player_1", service_actors={"player_0": scissors}, max_cycles=3)
    try:
        obs, info = env.reset(seed=0)
        assert obs == 3 and info == {}  # rps: "no move yet"
        results = [env.step(0) for _ in range(3)]  # rock
        assert [r[:4] for r in results] == [(2, 1.0, False, False), (2, 1.0, False, False), (2, 1.0, False, True)]
    finally:
        env.close()


def test_cogment_env_as_the_second_player_of_a_turn_based_game() -> None:
    def first_legal(observation: Any, context: Any) -> int:
        return int(np.flatnonzero(context.action_mask)[0])

    env = CogmentEnv(CONNECT_FOUR, agent="player_1", service_actors={"player_0": first_legal})
    try:
        obs, _ = env.reset(seed=0)
        # player_0 already moved (column 0): reset returns at player_1's first turn.
        assert obs["observation"][..., 1].sum() == 1 and obs["observation"][5, 0, 1] == 1
        total, done, moves = 0.0, False, 0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(6)  # player_0 stacks column 0 and wins
            total += reward
            moves += 1
            done = terminated or truncated
        assert (moves, total, terminated) == (3, -1.0, True)
    finally:
        env.close()
