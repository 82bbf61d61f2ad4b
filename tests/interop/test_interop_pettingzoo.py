"""An OFFICIAL Cogment SDK 2.10.1 service actor (separate venv, see sdk.py) plays one seat of a
PettingZoo game served by cogment_gym, through OUR Orchestrator (``OrchestratorServer``), against
``CogmentEnv`` playing the other seat.

The SDK actor (sdk_scripts/sdk_pettingzoo_player.py) follows the multi-agent wire contract with
nothing but the generated ``cogment_gym.v1`` messages: it moves when its payload is ACTING (the
first legal column of connect_four's action mask), sends an empty action otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest

import cogment_gym
from cogment_gym import CogmentEnv, ServiceActor
from cogment_gym.orchestrator.server import OrchestratorServer

from . import sdk

pytestmark = [pytest.mark.network, pytest.mark.slow]

WAIT = 30.0
GAMES = 5


def test_sdk_service_actor_plays_a_connect_four_seat(start_sdk) -> None:
    sdk_actor = start_sdk("sdk_pettingzoo_player.py")
    env_server = cogment_gym.serve("pettingzoo.classic.connect_four_v3")
    orch = OrchestratorServer()
    env = CogmentEnv(
        environment=env_server.endpoint, orchestrator=orch.lifecycle_endpoint, timeout=WAIT,
        service_actors={"player_1": ServiceActor(sdk_actor.endpoint, implementation="first_legal")},
    )
    rng = np.random.default_rng(7)
    games = []
    try:
        for game in range(GAMES):
            obs, _ = env.reset(seed=game)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
                total += reward
                done = terminated or truncated
            assert terminated
            summary = sdk_actor.wait_json("TRIAL_END", WAIT)
            games.append((env.trial_id, total, summary))
    finally:
        env.close()
        orch.stop()
        env_server.stop()
    for trial_id, mine, theirs in games:
        assert theirs["trial_id"] == trial_id and theirs["actor_class"] == "player" and theirs["has_spaces"]
        assert set(theirs["agents_seen"]) == {"player_1"}
        assert theirs["final"] == [-mine, True, False], (mine, theirs)
        statuses = theirs["statuses"]
        assert "AGENT_STATUS_WAITING" in statuses and statuses.count("AGENT_STATUS_ACTING") >= len(theirs["moves"]) + 1
        assert statuses[-1] == "AGENT_STATUS_ABSENT"  # the final tick: it left after its dead step
        assert theirs["event_types"][-2:] == ["ENDING", "FINAL"]  # a clean soft end
        assert theirs["moves"] and all(0 <= m < 7 for m in theirs["moves"])
