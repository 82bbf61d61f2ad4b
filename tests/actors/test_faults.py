"""A service actor that crashes or stops answering is handled per its ``optional`` /
``response_timeout`` / ``default_action`` parameters: the default action is used and the game
goes on, or the trial ends with a clear, typed error within seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator

import numpy as np
import pytest

from cogment_gym import CogmentAECEnv, CogmentEnv, ServiceActor
from cogment_gym.actors import ActorContext, random_policy
from cogment_gym.errors import InvalidActionError, PeerLostError, PeerTimeoutError, TrialFailedError
from tests.actors.processes import ActorProcess

FAST = 5.0  # seconds within which a failure reaches the facade
CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"
RPS = "pettingzoo.classic.rps_v2"


class Clock:
    def __enter__(self) -> "Clock":
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.start


async def silent(observation: Any, context: ActorContext) -> Any:
    """Stops answering: never returns an action (cancelled when its trial ends)."""
    await asyncio.Event().wait()


def crashing(observation: Any, context: ActorContext) -> Any:
    raise ValueError("the policy broke")


@pytest.fixture
def actor_process() -> Iterator[ActorProcess]:
    process = ActorProcess()
    yield process
    process.stop()


def _legal(obs: Any) -> int:
    return int(np.flatnonzero(obs["action_mask"])[0])


def test_required_actor_process_killed_ends_the_trial_clearly(actor_process: ActorProcess) -> None:
    env = CogmentEnv(CONNECT_FOUR, service_actors={"player_1": actor_process.endpoint})
    try:
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(_legal(obs))  # player_1 (the child process) answered once
        actor_process.kill()
        with Clock() as clock, pytest.raises(PeerLostError, match="player_1") as caught:
            env.step(_legal(obs))
        assert clock.elapsed < FAST
        assert "required actor 'player_1' is gone" in str(caught.value)
        with Clock() as clock, pytest.raises(TrialFailedError, match="player_1"):
            env.reset()  # the next episode cannot start without it: said as clearly
        assert clock.elapsed < FAST
    finally:
        env.close()


def test_optional_actor_process_killed_is_replaced_by_its_default_action(actor_process: ActorProcess) -> None:
    who = ServiceActor(actor_process.endpoint, optional=True, default_action=1)  # paper
    env = CogmentEnv(RPS, service_actors={"player_1": who}, max_cycles=8)
    try:
        env.reset(seed=0)
        env.step(0)
        actor_process.kill()
        steps = 1
        with Clock() as clock:
            while True:
                obs, reward, terminated, truncated, _ = env.step(2)  # scissors
                steps += 1
                assert obs == 1, "player_0 sees its opponent's last move: the default action"
                assert reward == 1.0  # scissors beat paper
                if terminated or truncated:
                    break
        assert steps == 8 and truncated and clock.elapsed < FAST
    finally:
        env.close()


def test_silent_optional_actor_gets_its_default_action_after_the_response_timeout() -> None:
    who = ServiceActor(silent, optional=True, response_timeout=0.2, default_action=0)  # rock
    env = CogmentEnv(RPS, service_actors={"player_1": who}, max_cycles=3)
    try:
        env.reset(seed=0)
        with Clock() as clock:
            results = [env.step(1) for _ in range(3)]  # paper
        assert [r[0] for r in results] == [0, 0, 0]
        assert [r[1] for r in results] == [1.0, 1.0, 1.0]
        assert results[-1][3] is True  # truncated at max_cycles
        assert clock.elapsed < FAST
    finally:
        env.close()


def test_silent_required_actor_ends_the_trial_after_its_response_timeout() -> None:
    who = ServiceActor(silent, response_timeout=0.3)
    env = CogmentEnv(CONNECT_FOUR, service_actors={"player_1": who})
    try:
        obs, _ = env.reset(seed=0)
        with Clock() as clock, pytest.raises(PeerTimeoutError) as caught:
            env.step(_legal(obs))
        assert clock.elapsed < FAST
        assert "required actors ['player_1'] unavailable" in str(caught.value)
        assert "response_timeout of 0.3 s" in str(caught.value)
    finally:
        env.close()


def test_silent_optional_actor_without_default_action_fails_its_turn_clearly() -> None:
    """Cogment leaves the action out; the AEC environment cannot step a live agent without one."""
    who = ServiceActor(silent, optional=True, response_timeout=0.2)
    env = CogmentAECEnv(CONNECT_FOUR, service_actors={"player_1": who})
    try:
        env.reset(seed=0)
        obs, *_ = env.last()
        with Clock() as clock, pytest.raises(InvalidActionError, match=r"no action from actor 'player_1' for agent 'player_1' at its turn"):
            env.step(_legal(obs))
        assert clock.elapsed < FAST
    finally:
        env.close()


def test_policy_that_raises_ends_the_trial_with_its_error() -> None:
    env = CogmentEnv(CONNECT_FOUR, service_actors={"player_1": crashing})
    try:
        obs, _ = env.reset(seed=0)
        with pytest.raises(TrialFailedError, match=r"player_1.*ValueError: the policy broke"):
            env.step(_legal(obs))
        # The next episode runs (and fails the same way, as cleanly).
        with pytest.raises(TrialFailedError, match="the policy broke"):
            obs, _ = env.reset(seed=1)
            env.step(_legal(obs))
    finally:
        env.close()


def test_optional_raising_policy_is_replaced_by_its_default_action() -> None:
    who = ServiceActor(crashing, optional=True, default_action=2)
    env = CogmentEnv(RPS, service_actors={"player_1": who}, max_cycles=4)
    try:
        env.reset(seed=0)
        results = [env.step(0) for _ in range(4)]
        assert [r[0] for r in results] == [2, 2, 2, 2]
        assert [r[1] for r in results] == [1.0] * 4  # rock beats scissors
    finally:
        env.close()


def test_facade_keeps_working_after_a_failed_episode() -> None:
    env = CogmentEnv(CONNECT_FOUR, service_actors={"player_1": ServiceActor(silent, response_timeout=0.2)})
    try:
        obs, _ = env.reset(seed=0)
        with pytest.raises(PeerTimeoutError):
            env.step(_legal(obs))
    finally:
        env.close()
    env = CogmentEnv(CONNECT_FOUR, service_actors={"player_1": random_policy})
    try:
        obs, _ = env.reset(seed=0)
        env.step(_legal(obs))
    finally:
        env.close()
