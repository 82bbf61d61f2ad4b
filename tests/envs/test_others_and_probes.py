"""``CogmentEnv(others=...)`` fills every seat nobody else plays; a remote Orchestrator is checked
when a facade opens: a wrong or dead endpoint is a typed error naming it, in one sentence."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import cogment_gym
from cogment_gym import CogmentEnv, CogmentGymError
from cogment_gym.actors import ActorContext
from cogment_gym.errors import EndpointUnreachableError, WrongServiceError

CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"


def first_legal(observation: Any, context: ActorContext) -> int:
    return int(np.flatnonzero(context.action_mask)[0])


def test_others_plays_every_agent_but_the_first() -> None:
    env = CogmentEnv(CONNECT_FOUR, others=first_legal)
    try:
        assert env.agent == "player_0" and env.other_agents == ["player_1"]
        obs, _ = env.reset(seed=0)
        assert obs["observation"].sum() == 0  # player_0 moves first: an empty board
        total, done, moves = 0.0, False, 0
        while not done:  # player_0 stacks column 6; player_1 (first legal) stacks column 0
            obs, reward, terminated, truncated, _ = env.step(6)
            total, moves, done = total + float(reward), moves + 1, terminated or truncated
        assert (moves, total, terminated) == (4, 1.0, True)
    finally:
        env.close()


def test_others_fills_the_seats_left_by_agent_and_service_actors() -> None:
    env = CogmentEnv(CONNECT_FOUR, agent="player_1", others=first_legal)
    try:
        assert env.agent == "player_1" and env.other_agents == ["player_0"]
        obs, _ = env.reset(seed=0)
        assert obs["observation"][5, 0, 1] == 1  # player_0 (first legal) played column 0
    finally:
        env.close()


def test_others_means_nothing_to_a_single_agent_env() -> None:
    env = CogmentEnv("CartPole-v1", others=first_legal)
    try:
        assert env.agent is None and env.other_agents == []
        env.reset(seed=0)
        env.step(0)
    finally:
        env.close()


def test_without_others_every_other_seat_needs_a_service_actor() -> None:
    with pytest.raises(CogmentGymError, match=r"or others= for the rest"):
        CogmentEnv(CONNECT_FOUR)


def test_an_environment_service_given_as_the_orchestrator_is_a_wrong_service() -> None:
    with cogment_gym.serve("CartPole-v1") as server:
        with pytest.raises(WrongServiceError) as caught:
            CogmentEnv(environment=server.endpoint, orchestrator=server.endpoint)
    message = str(caught.value)
    assert message == (f"orchestrator at {server.endpoint} answers, but not as a Cogment Orchestrator "
                       "(cogmentAPI.TrialLifecycleSP): another kind of service listens there")
    assert isinstance(caught.value, EndpointUnreachableError)  # (and a ConnectionError)


def test_an_orchestrator_where_nothing_listens_is_unreachable() -> None:
    with cogment_gym.serve("CartPole-v1") as server:
        with pytest.raises(EndpointUnreachableError, match=r"^orchestrator at grpc://127\.0\.0\.1:1 is unreachable \(connection refused\): "
                           r"expected a Cogment Orchestrator \(cogmentAPI\.TrialLifecycleSP\) there$"):
            CogmentEnv(environment=server.endpoint, orchestrator="grpc://127.0.0.1:1")


def test_a_separate_client_actor_endpoint_is_checked_too() -> None:
    from cogment_gym.orchestrator.server import OrchestratorServer

    with cogment_gym.serve("CartPole-v1") as server, OrchestratorServer(lifecycle_port=0) as orchestrator:
        with pytest.raises(WrongServiceError, match=rf"client actor endpoint {server.endpoint} answers, but not as a Cogment Orchestrator"):
            CogmentEnv(environment=server.endpoint, orchestrator=orchestrator.lifecycle_endpoint, actor_endpoint=server.endpoint)
