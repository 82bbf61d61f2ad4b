"""A slow service actor (another process) past its ``response_timeout``: the trial fails with the
timeout type in every topology, naming the actor and its deadline; the same actor server's other
policy, the same environment service and the same Orchestrator serve other trials untouched."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pytest

from cogment_gym import CogmentEnv, ServiceActor
from cogment_gym.errors import PeerTimeoutError
from tests.faults.checks import FAST, Bystander, Clock
from tests.faults.conftest import Stack
from tests.faults.stack import ActorProcess

CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"
DELAY, RESPONSE_TIMEOUT = 3.0, 0.5


@pytest.fixture
def actor() -> Iterator[ActorProcess]:
    process = ActorProcess(delay=DELAY)
    try:
        yield process
    finally:
        process.stop()


def _legal(obs: Any) -> int:
    return int(np.flatnonzero(obs["action_mask"])[0])


def test_slow_actor_fails_its_trial_with_the_timeout_type(stack: Stack, actor: ActorProcess, closing: Any) -> None:
    service = stack.env({"c4": CONNECT_FOUR, "cartpole": "CartPole-v1"})
    slow = ServiceActor(actor.endpoint, implementation="slow", response_timeout=RESPONSE_TIMEOUT)
    env = closing(CogmentEnv(**stack.where(service), implementation="c4", service_actors={"player_1": slow}))
    game = closing(CogmentEnv(**stack.where(service), implementation="c4",
                              service_actors={"player_1": ServiceActor(actor.endpoint, implementation="fast")}))
    bystander = Bystander(closing(CogmentEnv(**stack.where(service), implementation="cartpole")))
    obs, _ = env.reset(seed=0)
    game_obs, _ = game.reset(seed=0)
    with Clock() as clock, pytest.raises(PeerTimeoutError) as caught:
        env.step(_legal(obs))  # player_1's turn: it takes DELAY s, it has RESPONSE_TIMEOUT
    assert clock.elapsed < RESPONSE_TIMEOUT + FAST
    message = str(caught.value)
    assert isinstance(caught.value, TimeoutError)
    assert f"trial {env.trial_id!r}: required actors ['player_1'] unavailable" in message, message
    assert f"no action within its response_timeout of {RESPONSE_TIMEOUT:g} s" in message
    # The fast policy of the same actor server plays a whole game; CartPole beside it is exact.
    bystander.step(3)
    terminated = truncated = False
    moves = 0
    while not (terminated or truncated):
        game_obs, _, terminated, truncated, _ = game.step(_legal(game_obs))
        moves += 1
    assert terminated and moves >= 4
    bystander.finish()
