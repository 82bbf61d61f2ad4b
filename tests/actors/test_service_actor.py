"""Service actors (``cogment_gym.actors``): Python policies served as ``ServiceActorSP`` play seats
of served games, over gRPC on 127.0.0.1 (port 0) or in this process.

The policy is asked for an action only when its agent acts; it sees the same decoded values and
spaces as the facades (spaces from the trial's ActorConfig, from ``spaces=`` or from the
environment's spec); ``TrialPolicy`` subclasses get one instance per trial and see the end.
"""

from __future__ import annotations

import asyncio
import logging
import io
import threading
from typing import Any, Iterator

import gymnasium as gym
import numpy as np
import pytest

import cogment_gym
from cogment_gym import CogmentAECEnv, CogmentEnv, ServiceActor
from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym.actors import ActorContext, KeyboardPolicy, RandomPolicy, TrialPolicy, random_policy, serve_actor
from cogment_gym.errors import TrialFailedError
from cogment_gym.orchestrator.server import OrchestratorServer
from tests.orchestrator.peers import Lifecycle, connect, run
from tests.waiting import wait_until

CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"


def _first_legal(mask: Any) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _play_player_0(env: CogmentEnv, rng: np.random.Generator) -> tuple[float, Any]:
    """One game of player_0 with random legal moves; its return and final observation."""
    obs, _ = env.reset(seed=int(rng.integers(1000)))
    total = 0.0
    while True:
        obs, reward, terminated, truncated, _ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
        total += float(reward)
        if terminated or truncated:
            return total, obs


@pytest.fixture
def servers() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for server in reversed(started):
        server.stop()


def test_function_policy_is_called_only_at_its_turns(servers: list[Any]) -> None:
    calls: list[tuple[str, str, Any, Any]] = []
    lock = threading.Lock()

    def first_legal(observation: Any, context: ActorContext) -> int:
        with lock:
            calls.append((context.agent, context.agent_selection, context.observation_space, observation))
        return _first_legal(context.action_mask)

    server = serve_actor(first_legal)
    servers.append(server)
    env = CogmentAECEnv(CONNECT_FOUR, service_actors={"player_1": server.endpoint})
    try:
        assert env.possible_agents == ["player_0"]
        rng = np.random.default_rng(1)
        env.reset(seed=3)
        turns = 0
        for agent in env.agent_iter():
            assert agent == "player_0"
            obs, _, terminated, truncated, _ = env.last()
            env.step(None if terminated or truncated else int(rng.choice(np.flatnonzero(obs["action_mask"]))))
            turns += 1
        assert env.agents == []
        spec_space = env.observation_space("player_0")
    finally:
        env.close()
    assert calls, "the service actor never played"
    assert turns - 1 <= len(calls) <= turns  # player_0 also had its dead step
    for agent, selection, space, observation in calls:
        assert (agent, selection) == ("player_1", "player_1")
        assert space == spec_space  # from the ActorConfig the facade filled in
        assert space.contains(observation) and observation["observation"].dtype == np.int8


def test_trial_policy_gets_one_instance_per_trial_and_sees_the_end(servers: list[Any]) -> None:
    instances: list[Recorder] = []

    class Recorder(RandomPolicy):
        def __init__(self, context: ActorContext) -> None:
            super().__init__(context)
            self.ended: list[tuple[float, bool, bool]] = []
            instances.append(self)

        def end(self, context: ActorContext) -> None:
            self.ended.append((context.cumulative_reward, context.terminated, context.truncated))

    server = serve_actor(Recorder)
    servers.append(server)
    env = CogmentEnv(CONNECT_FOUR, service_actors={"player_1": server.endpoint})
    rng = np.random.default_rng(0)
    try:
        results = [_play_player_0(env, rng)[0] for _ in range(3)]
        trial_ids = {env.trial_id}
    finally:
        env.close()
    assert len(instances) == 3
    assert len({i.context.trial_id for i in instances}) == 3 and trial_ids <= {i.context.trial_id for i in instances}
    for mine, policy in zip(results, instances):
        assert policy.ended == [(-mine, True, False)]  # zero-sum, seen once, at its dead step
        assert policy.moves >= 3


def test_settings_seed_makes_random_policy_reproducible(servers: list[Any]) -> None:
    server = serve_actor(RandomPolicy)
    servers.append(server)

    def boards() -> list[Any]:
        env = CogmentEnv(CONNECT_FOUR, service_actors={"player_1": ServiceActor(server.endpoint, settings={"seed": 5})})
        seen = []
        try:
            obs, _ = env.reset(seed=1)
            done = False
            while not done:
                seen.append(obs["observation"].copy())
                obs, _, terminated, truncated, _ = env.step(_first_legal(obs["action_mask"]))
                done = terminated or truncated
        finally:
            env.close()
        return seen

    first, second = boards(), boards()
    assert len(first) == len(second) > 2
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_keyboard_policy_asks_again_until_the_move_is_legal() -> None:
    moves = io.StringIO("abc\n99\n0\n4\n5\n")
    shown = io.StringIO()

    class Human(KeyboardPolicy):
        input = moves
        output = shown

    env = CogmentEnv("pettingzoo.classic.tictactoe_v3", service_actors={"player_2": Human})
    try:
        env.reset(seed=0)
        results = [env.step(cell) for cell in (0, 1, 2)]  # player_1 takes the top row
    finally:
        env.close()
    assert [r[1:4] for r in results] == [(0.0, False, False), (0.0, False, False), (1.0, True, False)]
    text = shown.getvalue()
    assert "not an action: invalid literal" in text
    assert "'99' is not in Discrete(9)" in text
    assert "0 is not a legal action now" in text
    assert "legal actions: [1, 2, 3, 4, 5, 6, 7, 8]" in text
    assert "episode terminated; final reward -1" in text
    assert moves.read() == ""  # every line was used: 4 and 5 were played


def test_random_policy_plays_legal_connect_four_games() -> None:
    """The ready-made random policy as a PettingZoo facade's opponent: whole games of Connect Four
    for several seeds, with no failure of the trial (that every move honours the mask: below)."""
    env = CogmentAECEnv(CONNECT_FOUR, service_actors={"player_1": random_policy})
    try:
        for seed in range(3):
            env.reset(seed=seed)
            for agent in env.agent_iter():
                obs, _, terminated, truncated, _ = env.last()
                env.step(None if terminated or truncated else _first_legal(obs["action_mask"]))
    finally:
        env.close()


class OneLegalActionEnv(gym.Env[dict[str, Any], int]):
    """Each step, its mask allows one action of Discrete(8), a different one each step; it
    records ``(allowed, taken)`` for every step of every instance."""

    STEPS = 60
    moves: list[tuple[int, int]] = []

    def __init__(self) -> None:
        self.action_space = gym.spaces.Discrete(8)
        self.observation_space = gym.spaces.Dict(
            {"position": gym.spaces.Discrete(self.STEPS + 1), "action_mask": gym.spaces.MultiBinary(8)}
        )
        self._t = 0

    def _obs(self) -> dict[str, Any]:
        mask = np.zeros(8, np.int8)
        mask[self._allowed()] = 1
        return {"position": self._t, "action_mask": mask}

    def _allowed(self) -> int:
        return (3 * self._t + 1) % 8

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        type(self).moves.append((self._allowed(), int(action)))
        self._t += 1
        return self._obs(), 0.0, self._t >= self.STEPS, False, {}


@pytest.mark.parametrize("policy", [random_policy, RandomPolicy], ids=["random_policy", "RandomPolicy"])
def test_random_policy_honours_the_action_mask(policy: Any, servers: list[Any]) -> None:
    """A mask allowing a single action, over a whole episode: every action is the allowed one
    (a policy ignoring the mask would pick it 1 time in 8)."""
    OneLegalActionEnv.moves = []
    _play_single_agent_trial(policy, servers, OneLegalActionEnv)
    moves = OneLegalActionEnv.moves
    assert len(moves) == OneLegalActionEnv.STEPS
    assert len({allowed for allowed, _ in moves}) == 8  # the mask moved over every action
    assert [taken for _, taken in moves] == [allowed for allowed, _ in moves]


def test_unserved_actor_class_fails_the_trial_clearly(servers: list[Any]) -> None:
    server = serve_actor(random_policy, actor_classes=["goalkeeper"])
    servers.append(server)
    env = CogmentEnv(CONNECT_FOUR, service_actors={"player_1": server.endpoint})
    try:
        with pytest.raises(TrialFailedError, match=r"player_1.*actor class 'player' is not served here"):
            env.reset()
    finally:
        env.close()


def _play_cartpole_trial(policy: Any, servers: list[Any], **options: Any) -> Any:
    """One CartPole trial whose only actor is ``policy`` served as a service actor, started by a
    plain Cogment client (no ActorConfig: the actor gets its spaces from the env's spec); the
    actor's server."""
    return _play_single_agent_trial(policy, servers, "CartPole-v1", **options)


def _play_single_agent_trial(policy: Any, servers: list[Any], env: Any, **options: Any) -> Any:
    """One trial of the single-agent ``env`` (served here) played by ``policy`` as a service
    actor, as :func:`_play_cartpole_trial`; returns once the trial ended."""
    env_server = cogment_gym.serve(env)
    servers.append(env_server)
    actor_server = serve_actor(policy, environment=env_server.endpoint, **options)
    servers.append(actor_server)
    orch = OrchestratorServer()
    servers.append(orch)

    async def scenario() -> None:
        async with connect(orch) as channel:
            lifecycle = Lifecycle(channel)
            params = common_pb2.TrialParams(
                environment=common_pb2.EnvironmentParams(endpoint=env_server.endpoint),
                actors=[common_pb2.ActorParams(name="player", actor_class="player", endpoint=actor_server.endpoint)],
            )
            trial_id = await lifecycle.start(params)
            await lifecycle.wait_state(trial_id, common_pb2.ENDED, timeout=30)

    run(scenario())
    return actor_server


def test_service_actor_plays_a_single_agent_env_with_spaces_from_the_spec(servers: list[Any]) -> None:
    """Any actor class, any environment: CartPole's only actor is the service actor, started by
    a plain Cogment client (no ActorConfig): the spaces come from the env server's spec."""
    seen: list[tuple[str, gym.Space[Any], int]] = []
    done = threading.Event()

    class Balancer(TrialPolicy):
        def act(self, observation: Any, context: ActorContext) -> int:
            seen.append((context.actor_class, context.observation_space, context.tick))
            return int(observation[2] > 0)

        def end(self, context: ActorContext) -> None:
            seen.append(("end", context.terminated or context.truncated, context.tick))  # type: ignore[arg-type]
            done.set()

    _play_cartpole_trial(Balancer, servers)
    assert done.wait(30)
    assert seen[-1][:2] == ("end", True)
    moves = seen[:-1]
    assert len(moves) >= 10 and all(cls == "player" for cls, _, _ in moves)
    assert moves[0][1] == gym.make("CartPole-v1").observation_space
    assert [tick for _, _, tick in moves] == list(range(len(moves)))


def test_a_slow_async_end_runs_to_completion_with_the_final_observation(servers: list[Any]) -> None:
    """The trial's END usually arrives while ``end()`` still runs: it must neither cancel nor skip
    it, and ``end()`` sees the final observation (terminated, final tick)."""
    ended: list[tuple[bool, bool, int]] = []
    done = threading.Event()

    class SlowEnd(TrialPolicy):
        def act(self, observation: Any, context: ActorContext) -> int:
            return int(observation[2] > 0)

        async def end(self, context: ActorContext) -> None:  # type: ignore[override]
            await asyncio.sleep(0.3)  # a policy saving a model, say: END arrives meanwhile
            ended.append((context.final, context.terminated, context.tick))
            done.set()

    _play_cartpole_trial(SlowEnd, servers)
    assert done.wait(30)
    [(final, terminated, tick)] = ended
    assert final and terminated and tick >= 8


def test_an_end_that_never_returns_holds_the_stream_for_end_timeout_only(servers: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    class Stuck(TrialPolicy):
        def act(self, observation: Any, context: ActorContext) -> int:
            return int(observation[2] > 0)

        def end(self, context: ActorContext) -> None:  # runs in a worker thread: blocks it
            release.wait(60)

    try:
        with caplog.at_level(logging.WARNING, logger="cogment_gym.actors.service"):
            server = _play_cartpole_trial(Stuck, servers, end_timeout=0.5)
            assert wait_until(lambda: server.servicer.trials_played == 1 and server.servicer.active_trials == 0, 10)
        assert any("the policy's end()" in r.getMessage() for r in caplog.records)
    finally:
        release.set()  # the thread ends; nothing is left running
