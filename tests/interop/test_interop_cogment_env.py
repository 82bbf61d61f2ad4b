"""``CogmentEnv`` (OUR Gymnasium facade) against the OFFICIAL Cogment Python SDK 2.10.1 and OUR
Orchestrator over gRPC.

* An environment written with the SDK (sdk_scripts/sdk_env.py, the "counter" env: observation
  = steps done as an int64 scalar, reward 1.0 per step, terminated after ``steps`` steps) driven
  by ``CogmentEnv(environment="grpc://...", observation_space=Discrete(...),
  action_space=Discrete(2))``, with the facade's embedded Orchestrator and with OUR
  ``OrchestratorServer`` (``orchestrator="grpc://..."``): termination by the env, soft end at
  ``max_steps`` (truncated), hard ends (reset / close mid-episode) after which the SDK env still
  serves new trials.
* ``CogmentEnv(orchestrator=<our OrchestratorServer>, environment=<our served CartPole>)``: our
  facade as a plain Cogment client of our Orchestrator.
"""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import pytest

import cogment_gym
from cogment_gym.errors import ResetNeededError

from . import sdk
from ._wire import TrialWatcher, assert_sdk_soft_end, assert_state_progression, replay_cartpole

pytestmark = [pytest.mark.network, pytest.mark.slow]

WAIT = 30.0  # seconds, for one SDK-side line / one trial state / CogmentEnv's answers
COUNTER_OBS = gym.spaces.Discrete(1_000_000)  # the counter's int64 scalar fits Discrete's int64
ACTIONS = gym.spaces.Discrete(2)
MODES = ["embedded-orchestrator", "our-orchestrator-server"]


@pytest.fixture
def counter_env(start_sdk) -> sdk.SdkProcess:
    """The SDK counter env, 5 steps per trial unless the trial's options say otherwise."""
    return start_sdk("sdk_env.py", "--steps", "5")


@pytest.fixture(params=MODES)
def make_counter_facade(request, counter_env):
    """Factory of CogmentEnv on the SDK counter env, with the embedded Orchestrator or through
    OUR OrchestratorServer; every facade made is closed at teardown."""
    server = request.getfixturevalue("orchestrator") if request.param == "our-orchestrator-server" else None
    made: list[cogment_gym.CogmentEnv] = []

    def make(**kwargs) -> cogment_gym.CogmentEnv:
        if server is not None:
            kwargs["orchestrator"] = server.lifecycle_endpoint
        env = cogment_gym.CogmentEnv(
            environment=counter_env.endpoint, observation_space=COUNTER_OBS, action_space=ACTIONS, timeout=WAIT, **kwargs
        )
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


def trial_end(process: sdk.SdkProcess) -> dict:
    return process.wait_json("TRIAL_END", WAIT)


# ---- 3. CogmentEnv drives an environment written with the SDK ----------------------------------------


def test_counter_env_played_to_termination(make_counter_facade, counter_env) -> None:
    env = make_counter_facade()
    assert env.observation_space == COUNTER_OBS and env.action_space == ACTIONS

    obs, info = env.reset(seed=7)
    assert obs == 0 and obs in env.observation_space and info == {}
    actions = [1, 0, 1, 1, 0]
    for step, action in enumerate(actions, start=1):
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs == step and obs in env.observation_space
        assert isinstance(obs, np.integer)
        assert reward == 1.0
        assert (terminated, truncated) == (step == 5, False)
        assert info == {"last_action": action}  # what the SDK env decoded from our ActionPayload
    with pytest.raises(ResetNeededError):
        env.step(0)

    # The next episode is a new trial, with the counter's length from the reset options.
    obs, info = env.reset(options={"steps": 3})
    assert obs == 0
    first = trial_end(counter_env)
    assert first["steps"] == 5 and first["steps_done"] == 5
    # session.end(): LAST, final observations, LAST_ACK; then END -> FINAL.
    assert assert_sdk_soft_end(first, "env") == ["ACTIVE"] * 5
    assert first["actions"] == [[a] for a in actions]

    results = [env.step(1) for _ in range(3)]
    assert [r[0] for r in results] == [1, 2, 3]
    assert [(r[2], r[3]) for r in results] == [(False, False), (False, False), (True, False)]
    env.close()
    second = trial_end(counter_env)
    assert second["trial_id"] != first["trial_id"]
    assert (second["steps"], second["steps_done"]) == (3, 3)
    assert assert_sdk_soft_end(second, "env") == ["ACTIVE"] * 3


def test_counter_env_soft_end_at_max_steps(make_counter_facade, counter_env) -> None:
    """Cogment's max_steps = M: LAST with the action set of tick M, so M + 1 steps; the env
    (asked to flag it) marks the observations answering that end truncated."""
    env = make_counter_facade(max_steps=2)
    obs, _ = env.reset(options={"steps": 10, "truncate_on_end": True})
    assert obs == 0
    results = [env.step(0) for _ in range(3)]
    assert [r[0] for r in results] == [1, 2, 3]
    assert [r[1] for r in results] == [1.0, 1.0, 1.0]
    assert [(r[2], r[3]) for r in results] == [(False, False), (False, False), (False, True)]
    with pytest.raises(ResetNeededError):
        env.step(0)
    env.close()
    summary = trial_end(counter_env)
    assert (summary["steps"], summary["steps_done"]) == (10, 3)
    assert assert_sdk_soft_end(summary, "orchestrator") == ["ACTIVE", "ACTIVE", "ENDING"]


def test_orchestrator_end_is_truncation_for_gymnasium(make_counter_facade) -> None:
    env = make_counter_facade(max_steps=2)
    env.reset(options={"steps": 10})  # the counter env does not flag the end itself
    results = [env.step(0) for _ in range(3)]
    assert [r[0] for r in results] == [1, 2, 3]
    assert (results[-1][2], results[-1][3]) == (False, True)


def test_sdk_env_survives_hard_ends(make_counter_facade, counter_env) -> None:
    """reset() and close() mid-episode end the running trial hard (END without LAST); the SDK env
    goes on serving trials."""
    env = make_counter_facade()
    env.reset()
    env.step(1)
    env.step(0)
    env.reset()  # hard end of the running trial
    cut = trial_end(counter_env)
    assert (cut["ended_by"], cut["last_exchanged"], cut["steps_done"]) == ("hard", False, 2)
    assert cut["event_types"] == ["ACTIVE", "ACTIVE"]
    assert cut["actions"] == [[1], [0]]

    for step in range(1, 6):  # a whole episode on the new trial
        obs, reward, terminated, truncated, _ = env.step(1)
        assert (obs, reward, terminated, truncated) == (step, 1.0, step == 5, False)
    env.reset()
    full = trial_end(counter_env)
    assert full["steps_done"] == 5
    assert_sdk_soft_end(full, "env")

    env.step(0)
    env.close()  # hard end of the running trial
    closed = trial_end(counter_env)
    assert (closed["ended_by"], closed["last_exchanged"], closed["steps_done"]) == ("hard", False, 1)

    # The SDK env process is alive and serves a new facade.
    assert counter_env.proc.poll() is None
    again = make_counter_facade()
    again.reset()
    steps = 0
    terminated = False
    while not terminated:
        _, _, terminated, truncated, _ = again.step(1)
        steps += 1
        assert not truncated and steps <= 5
    again.close()
    assert_sdk_soft_end(trial_end(counter_env), "env")


@pytest.mark.parametrize(
    "mode",
    [
        "embedded-orchestrator",
        "our-orchestrator-server",
    ],
)
def test_env_sees_episode_end_without_further_calls(request, counter_env, mode: str) -> None:
    kwargs = {"orchestrator": request.getfixturevalue("orchestrator").lifecycle_endpoint} if mode != "embedded-orchestrator" else {}
    env = cogment_gym.CogmentEnv(
        environment=counter_env.endpoint, observation_space=COUNTER_OBS, action_space=ACTIONS, timeout=WAIT, **kwargs
    )
    try:
        env.reset(options={"steps": 2})
        env.step(0)
        assert env.step(1)[2] is True  # terminated: the episode is over for the Gymnasium user
        # No further call on env: the SDK env must still see its trial end (END -> FINAL).
        summary = counter_env.wait_json("TRIAL_END", 3.0)
        assert summary["steps_done"] == 2
        assert_sdk_soft_end(summary, "env")
    finally:
        env.close()


# ---- 4. CogmentEnv as a client of our OrchestratorServer, with our served CartPole --------------------


@pytest.mark.parametrize(("max_steps", "ending"), [(0, "terminated"), (4, "truncated")])
def test_cogment_env_through_our_orchestrator_server(orchestrator, cartpole_server, max_steps: int, ending: str) -> None:
    seed = 3
    rng = random.Random(5)
    with TrialWatcher(orchestrator.lifecycle_endpoint) as watcher:
        env = cogment_gym.CogmentEnv(
            orchestrator=orchestrator.lifecycle_endpoint, environment=cartpole_server.endpoint, max_steps=max_steps, timeout=WAIT
        )
        try:
            reference = gym.make("CartPole-v1")
            assert env.observation_space == reference.observation_space
            assert env.action_space == reference.action_space
            reference.close()

            obs, info = env.reset(seed=seed)
            observations, actions, rewards, flags = [obs.tolist()], [], [], []
            done = False
            while not done:
                action = rng.randrange(2)
                obs, reward, terminated, truncated, info = env.step(action)
                actions.append(action)
                observations.append(obs.tolist())
                rewards.append(reward)
                flags.append([terminated, truncated])
                done = terminated or truncated
                assert len(actions) <= 500
            with pytest.raises(ResetNeededError):
                env.step(0)

            expected_obs, expected_flags = replay_cartpole(seed, actions)
            assert observations == expected_obs  # bit for bit, through two gRPC hops
            assert rewards == [1.0] * len(actions)
            if ending == "terminated":
                assert flags == expected_flags[1:] and flags[-1] == [True, False]
            else:
                assert len(actions) == max_steps + 1
                assert flags == [[False, False]] * max_steps + [[False, True]]

            # The trial ran on our OrchestratorServer, and ended there.
            [trial_id] = watcher.wait_trials(1, WAIT)
            assert_state_progression(watcher.wait_state(trial_id, "ENDED", WAIT))

            # A second episode is a second trial; close() mid-episode ends it (hard).
            env.reset(seed=seed + 1)
            env.step(0)
        finally:
            env.close()
        trial_ids = watcher.wait_trials(2, WAIT)
        assert len(trial_ids) == 2 and trial_ids[0] == trial_id
        second = watcher.wait_state(trial_ids[1], "ENDED", WAIT)
        assert_state_progression(second)
        assert "TERMINATING" not in second  # a hard end
