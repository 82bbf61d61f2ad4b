"""Mixed trials: some agents are played by the facade, the others by service actors.

The acceptance scenario: connect_four with player 0 as ``CogmentEnv`` (a single-agent Gymnasium
env) and player 1 as a service actor in another process, 50 games to the end, with the correct
final rewards on both sides (checked against the final board).
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test

import cogment_gym
from cogment_gym import CogmentAECEnv, CogmentEnv, CogmentParallelEnv, ServiceActor
from cogment_gym.actors import RandomPolicy, random_policy
from cogment_gym.orchestrator.server import OrchestratorServer
from tests.actors.processes import ActorProcess

CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"


def four_in_a_row(plane: np.ndarray) -> bool:
    """Whether a 6x7 board plane has four connected pieces (any direction)."""
    rows, cols = plane.shape
    for r in range(rows):
        for c in range(cols):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(r + i * dr, c + i * dc) for i in range(4)]
                if all(0 <= y < rows and 0 <= x < cols and plane[y, x] for y, x in cells):
                    return True
    return False


@pytest.fixture
def actor_process() -> Iterator[ActorProcess]:
    process = ActorProcess()
    yield process
    process.stop()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["embedded", "remote-orchestrator"])
def test_fifty_games_against_a_service_actor_in_another_process(mode: str, actor_process: ActorProcess) -> None:
    servers: list[Any] = []
    kwargs: dict[str, Any] = {}
    if mode == "remote-orchestrator":
        env_server = cogment_gym.serve(CONNECT_FOUR)
        orch = OrchestratorServer()
        servers += [env_server, orch]
        kwargs = {"environment": env_server.endpoint, "orchestrator": orch.lifecycle_endpoint}
    else:
        kwargs = {"env": CONNECT_FOUR}
    env = CogmentEnv(service_actors={"player_1": actor_process.endpoint}, **kwargs)
    rng = np.random.default_rng(2024)
    games: list[tuple[str, float, Any]] = []
    try:
        assert env.action_space.n == 7 and set(env.observation_space.spaces) == {"action_mask", "observation"}
        for game in range(50):
            obs, info = env.reset(seed=game)
            assert obs["action_mask"].any() and info == {}
            total = 0.0
            while True:
                action = int(rng.choice(np.flatnonzero(obs["action_mask"])))
                obs, reward, terminated, truncated, info = env.step(action)
                assert type(reward) is int  # connect four's own reward type, as env.last() gives it
                total += reward
                if terminated or truncated:
                    break
                assert reward == 0.0  # connect four rewards only its end
            assert terminated and not truncated
            games.append((env.trial_id, total, obs["observation"]))
        results = {r["trial_id"]: r for r in actor_process.results(50)}
    finally:
        env.close()
        for server in reversed(servers):
            server.stop()
    assert len({trial_id for trial_id, _, _ in games}) == 50
    outcomes = {-1.0: 0, 0.0: 0, 1.0: 0}
    for trial_id, mine, board in games:
        theirs = results[trial_id]
        assert theirs["agent"] == "player_1" and theirs["terminated"] and not theirs["truncated"]
        assert theirs["reward"] == -mine, f"game {trial_id}: player_0 got {mine}, player_1 {theirs['reward']}"
        assert theirs["moves"] >= 3
        # The final board as player_0 sees it: plane 0 its pieces, plane 1 the opponent's.
        assert four_in_a_row(board[..., 0]) == (mine == 1.0)
        assert four_in_a_row(board[..., 1]) == (mine == -1.0)
        if mine == 0.0:
            assert board.sum() == 42  # a draw: the board is full
        outcomes[mine] += 1
    assert outcomes[1.0] > 0 and outcomes[-1.0] > 0


def test_aec_facade_controls_some_agents_and_passes_api_test() -> None:
    """With player_1 a service actor, the facade is a PettingZoo env of player_0 alone."""
    env = CogmentAECEnv(CONNECT_FOUR, service_actors={"player_1": random_policy})
    try:
        assert env.possible_agents == ["player_0"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            api_test(env, num_cycles=100)
        env.reset(seed=5)
        seen = [agent for agent in env.agent_iter() if not env.step(_act(env, agent))]
        assert set(seen) == {"player_0"}
    finally:
        env.close()


def _act(env: Any, agent: str) -> Any:
    obs, _, terminated, truncated, _ = env.last()
    return None if terminated or truncated else int(np.flatnonzero(obs["action_mask"])[0])


def test_parallel_facade_with_a_service_actor() -> None:
    """rps: player_1 always plays rock (a served policy), the facade's player_0 paper."""
    def rock(observation: Any, context: Any) -> int:
        return 0

    env = CogmentParallelEnv("pettingzoo.classic.rps_v2", service_actors={"player_1": rock}, max_cycles=5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parallel_api_test(env, num_cycles=20)
        observations, infos = env.reset(seed=0)
        assert list(observations) == ["player_0"] and env.agents == ["player_0"]
        steps = 0
        while env.agents:
            observations, rewards, terminations, truncations, infos = env.step({"player_0": 1})
            steps += 1
            assert observations == {"player_0": 0}  # the opponent's last move: rock
            assert rewards == {"player_0": 1.0}
        assert steps == 5 and truncations == {"player_0": True}
    finally:
        env.close()


def test_two_service_actor_seats_and_one_facade_seat() -> None:
    """KAZ with 4 agents: two played here, two by service actors (one of them optional)."""
    env = CogmentParallelEnv(
        "pettingzoo.butterfly.knights_archers_zombies_v11",
        service_actors={"archer_1": RandomPolicy, "knight_1": ServiceActor(random_policy, optional=True, default_action=5)},
        max_cycles=50,
    )
    try:
        assert env.possible_agents == ["archer_0", "knight_0"]
        observations, _ = env.reset(seed=1)
        assert set(observations) == {"archer_0", "knight_0"}
        cycles = 0
        while env.agents:
            observations, rewards, terminations, truncations, _ = env.step({a: env.action_space(a).sample() for a in env.agents})
            assert set(rewards) <= {"archer_0", "knight_0"}
            cycles += 1
        assert 0 < cycles <= 50
    finally:
        env.close()
