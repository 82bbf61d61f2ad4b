"""PettingZoo environments served by ``cogment_gym.serve``: the spec (one actor per agent, each
with its own spaces; agent slots for generated agents) and the per-tick wire contract
(``protos/cogment_gym/v1/env.proto``), checked with raw client actors of our Orchestrator over
gRPC on 127.0.0.1.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.test.example_envs import generated_agents_env_v0

import cogment_gym
from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.adapters import EnvHost
from cogment_gym.codec import decode, encode, space_from_proto
from cogment_gym.orchestrator.server import OrchestratorServer
from tests.orchestrator.peers import ClientActor, Lifecycle, client, connect, run, trial_params

CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"
ACTING, WAITING, LEAVING, ABSENT = (
    env_pb2.AGENT_STATUS_ACTING, env_pb2.AGENT_STATUS_WAITING, env_pb2.AGENT_STATUS_LEAVING, env_pb2.AGENT_STATUS_ABSENT,
)


class SpeakerListener(ParallelEnv):
    """Two agents with different spaces; each observes only its own thing."""

    metadata = {"name": "speaker_listener_test", "render_modes": []}

    def __init__(self, steps: int = 3) -> None:
        self.possible_agents = ["speaker_0", "listener_0"]
        self._obs = {"speaker_0": spaces.Discrete(3), "listener_0": spaces.Box(-1.0, 1.0, (2,), np.float32)}
        self._act = {"speaker_0": spaces.Box(0.0, 1.0, (1,), np.float32), "listener_0": spaces.Discrete(4)}
        self.steps = steps

    def observation_space(self, agent: str) -> spaces.Space[Any]:
        return self._obs[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:
        return self._act[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        self.agents = list(self.possible_agents)
        self.t = 0
        return {"speaker_0": 1, "listener_0": np.zeros(2, np.float32)}, {"speaker_0": {"secret": "for the speaker"}, "listener_0": {}}

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        self.t += 1
        done = self.t >= self.steps
        observations = {"speaker_0": self.t % 3, "listener_0": np.full(2, float(actions["speaker_0"][0]), np.float32)}
        rewards = {"speaker_0": 0.5, "listener_0": float(actions["listener_0"])}
        flags = dict.fromkeys(self.agents, done)
        infos = {"speaker_0": {"heard": int(actions["listener_0"])}, "listener_0": {}}
        if done:
            self.agents = []
        return observations, rewards, flags, dict.fromkeys(flags, False), infos


# ------------------------------------------------------------------------------------- spec


def test_spec_has_one_actor_per_agent_named_by_agent_id() -> None:
    host = EnvHost(CONNECT_FOUR)
    try:
        impl = host.default
        spec = impl.spec
        assert spec.multi_agent and spec.api == env_pb2.MULTI_AGENT_API_AEC and not spec.agent_slots
        assert [(a.name, a.actor_class) for a in spec.actors] == [("player_0", "player"), ("player_1", "player")]
        from pettingzoo.classic import connect_four_v3

        direct = connect_four_v3.env()
        for actor in spec.actors:
            assert space_from_proto(actor.observation_space) == direct.observation_space(actor.name)
            assert space_from_proto(actor.action_space) == direct.action_space(actor.name)
        assert spec.gym_id == CONNECT_FOUR and "rgb_array" in spec.render_modes
    finally:
        host.close()


def test_spec_carries_each_agents_own_spaces() -> None:
    host = EnvHost({"sl": SpeakerListener})
    try:
        spec = host.get("sl").spec
        assert spec.api == env_pb2.MULTI_AGENT_API_PARALLEL
        by_name = {a.name: a for a in spec.actors}
        assert by_name["speaker_0"].actor_class == "speaker" and by_name["listener_0"].actor_class == "listener"
        assert space_from_proto(by_name["speaker_0"].observation_space) == spaces.Discrete(3)
        assert space_from_proto(by_name["listener_0"].action_space) == spaces.Discrete(4)
        assert space_from_proto(by_name["speaker_0"].action_space) == spaces.Box(0.0, 1.0, (1,), np.float32)
    finally:
        host.close()


def test_generated_agents_are_served_with_agent_slots() -> None:
    host = EnvHost({"gen": generated_agents_env_v0.env}, max_agents=5)
    try:
        spec = host.get("gen").spec
        assert spec.agent_slots and [a.name for a in spec.actors] == [f"slot_{i}" for i in range(5)]
        assert {a.actor_class for a in spec.actors} == {"agent"}
        assert not spec.actors[0].HasField("observation_space")
        assert space_from_proto(spec.state_space) == spaces.MultiDiscrete([10, 10])
    finally:
        host.close()


@pytest.mark.parametrize(
    "source, api, expected",
    [
        ("pettingzoo.classic.rps_v2", None, env_pb2.MULTI_AGENT_API_AEC),
        ("pettingzoo.classic.rps_v2", "parallel", env_pb2.MULTI_AGENT_API_PARALLEL),
        ("pettingzoo.classic.tictactoe_v3", "parallel", env_pb2.MULTI_AGENT_API_PARALLEL),  # turn-based conversion
        (SpeakerListener, "aec", env_pb2.MULTI_AGENT_API_AEC),
    ],
)
def test_api_is_chosen_or_converted(source: Any, api: str | None, expected: int) -> None:
    host = EnvHost({"x": source}, api=api)
    try:
        assert host.get("x").spec.api == expected
    finally:
        host.close()


def test_serving_mistakes_fail_clearly() -> None:
    class IntAgents(SpeakerListener):
        def __init__(self) -> None:
            super().__init__()
            self.possible_agents = [0, 1]  # type: ignore[list-item]

    with pytest.raises(TypeError, match="agent ids must be strings"):
        cogment_gym.serve(IntAgents)
    with pytest.raises(TypeError, match="not a gymnasium.Env .nor a PettingZoo"):
        cogment_gym.serve(lambda: object())
    with pytest.raises(ValueError, match="api must be"):
        cogment_gym.serve(CONNECT_FOUR, api="sequential")
    with pytest.raises(gym.error.Error):  # not a module, not a registered id: Gymnasium says so
        cogment_gym.serve("pettingzoo.classic.no_such_game_v0")


# ------------------------------------------------------------------------------------- wire


def _payload(obs: common_pb2.Observation) -> env_pb2.ObservationPayload:
    payload = env_pb2.ObservationPayload()
    payload.ParseFromString(obs.content)
    return payload


def _action(space: spaces.Space[Any], value: Any) -> bytes:
    return env_pb2.ActionPayload(value=encode(space, value)).SerializeToString()


def test_turn_based_wire_contract_with_raw_client_actors() -> None:
    """connect_four played by two raw client actors: one ACTING actor per tick (the selected
    agent), its observation only; off-turn actions are ignored (each actor here always sends a
    column, legal or not); rewards for both at the end; dead steps; then ABSENT."""
    server = cogment_gym.serve(CONNECT_FOUR)
    orch = OrchestratorServer()
    column = spaces.Discrete(7)
    payloads: dict[str, list[env_pb2.ObservationPayload]] = {"player_0": [], "player_1": []}
    moves = {"player_0": iter([0, 0, 0, 0]), "player_1": iter([1, 1, 1])}

    def actor(name: str) -> Any:
        def act(obs: common_pb2.Observation) -> bytes:
            payload = _payload(obs)
            if payload.status == ACTING and not (payload.terminated or payload.truncated):
                return _action(column, next(moves[name]))
            return _action(column, 6)  # off-turn (or dead step): must be ignored
        return act

    async def scenario() -> None:
        async with connect(orch) as channel:
            lifecycle = Lifecycle(channel)
            trial_id = await lifecycle.start(trial_params(server.endpoint, [client("player_0"), client("player_1")]))
            actors = [ClientActor(channel, trial_id, name=n, act=actor(n)) for n in ("player_0", "player_1")]
            records = [await a.finished() for a in actors]
            for name, record in zip(("player_0", "player_1"), records):
                payloads[name] = [_payload(o) for o in record.observations]  # the final one too
                assert record.got_last and record.got_end and record.end_details in ("", None)
            # Reward messages (omit_reward_messages unset): the terminal rewards of both.
            assert [r.value for r in records[0].rewards] == [1.0]
            assert [r.value for r in records[1].rewards] == [-1.0]

    try:
        run(scenario())
    finally:
        orch.stop()
        server.stop()
    p0, p1 = payloads["player_0"], payloads["player_1"]
    assert len(p0) == len(p1)
    ticks = len(p0)
    for t in range(ticks):
        a, b = p0[t], p1[t]
        assert a.agents == b.agents and a.agent_selection == b.agent_selection
        statuses = {a.status, b.status}
        if a.agents:
            assert ACTING in statuses and statuses <= {ACTING, WAITING, ABSENT}  # ABSENT: left after its dead step
            acting = a if a.status == ACTING else b
            other = b if acting is a else a
            assert acting.agent == acting.agent_selection and acting.HasField("value")
            assert not other.HasField("value")  # no one sees the other's observation
    # Moves 0,1,0,1,0,1,0: player_0 wins vertically at tick 7; the 6s sent off-turn never landed.
    # The env's own key order travels: {"observation", "action_mask"}, not the space's sorted one.
    assert [e.str_key for e in p0[6].value.dict.entries] == ["observation", "action_mask"]
    board = decode(spaces.Box(0, 1, (6, 7, 2), np.int8), p0[6].value.dict.entries[0].value)
    assert board[:, 6].sum() == 0
    end = p0[7], p1[7]
    assert [(x.reward, x.cumulative_reward, x.terminated) for x in end] == [(1.0, 1.0, True), (-1.0, -1.0, True)]
    assert end[1].status == ACTING and end[1].HasField("value")  # player_1's dead step: it sees the end
    assert ticks == 10  # 7 moves, 2 dead steps, and the final tick with nobody left
    assert (p0[8].status, p1[8].status) == (ACTING, ABSENT)  # then player_0's dead step
    assert list(p0[9].agents) == [] and p0[9].status == ABSENT and p1[9].status == ABSENT


def test_parallel_wire_contract_keeps_each_agents_data_private() -> None:
    server = cogment_gym.serve({"sl": SpeakerListener})
    orch = OrchestratorServer()
    seen: dict[str, list[env_pb2.ObservationPayload]] = {"speaker_0": [], "listener_0": []}
    acts = {"speaker_0": functools.partial(_action, spaces.Box(0.0, 1.0, (1,), np.float32), np.array([0.25], np.float32)),
            "listener_0": functools.partial(_action, spaces.Discrete(4), 3)}

    def actor(name: str) -> Any:
        def act(obs: common_pb2.Observation) -> bytes:
            payload = _payload(obs)
            return acts[name]() if payload.status == ACTING else b""
        return act

    async def scenario() -> None:
        async with connect(orch) as channel:
            trial_id = await Lifecycle(channel).start(trial_params(server.endpoint, [client("speaker_0", "speaker"), client("listener_0", "listener")]))
            for a in [ClientActor(channel, trial_id, name=n, act=actor(n)) for n in ("speaker_0", "listener_0")]:
                seen[a.name] = [_payload(o) for o in (await a.finished()).observations]

    try:
        run(scenario())
    finally:
        orch.stop()
        server.stop()
    speaker, listener = seen["speaker_0"], seen["listener_0"]
    assert len(speaker) == len(listener) == 4  # reset + 3 steps
    assert [p.status for p in speaker] == [ACTING, ACTING, ACTING, LEAVING]
    assert [p.agent_selection for p in speaker] == [""] * 4
    assert decode(spaces.Discrete(3), speaker[0].value) == 1
    assert "secret" in str(speaker[0].info) and "secret" not in str(listener[0].info)
    assert [p.reward for p in speaker[1:]] == [0.5] * 3 and [p.reward for p in listener[1:]] == [3.0] * 3
    np.testing.assert_array_equal(decode(spaces.Box(-1.0, 1.0, (2,), np.float32), listener[1].value), [0.25, 0.25])
    assert speaker[-1].terminated and listener[-1].terminated and list(speaker[-1].agents) == []


def test_more_agents_than_slots_fails_the_trial_clearly() -> None:
    env = cogment_gym.CogmentAECEnv(generated_agents_env_v0.env, max_agents=3)
    try:
        with pytest.raises(cogment_gym.CogmentGymError, match="only 3 agent slots"):
            env.reset(seed=0)
    finally:
        env.close()
