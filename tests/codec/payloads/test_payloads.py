"""Every ``env.proto`` payload written by one side and read by the other, through
``cogment_gym.codec.payloads`` only (the env side's writers, the actors' and facades' readers)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.payloads import (
    ACTING,
    MISSING,
    NO_ACTION,
    WAITING,
    AgentSpaces,
    action_content,
    action_payload,
    batched_pieces,
    read_action,
    read_agent_action,
    read_batched_action,
    unpack_batched,
    unpack_observation,
    write_batched,
    write_frame,
    write_observation,
    write_spaces,
)
from cogment_gym.codec.payloads import batched as batched_module
from cogment_gym.codec.payloads.agents import read_payload
from cogment_gym.errors import CogmentGymError, MalformedMessageError, SpaceMismatchError

BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)


def test_a_step_round_trips_in_the_envs_types() -> None:
    msg = env_pb2.ObservationPayload()
    obs = np.array([0.5, -0.5], np.float32)
    summaries = write_observation(msg, BOX, obs, np.float32(1.5), np.bool_(True), False, {"lives": 3})
    write_frame(msg, np.zeros((2, 3, 3), np.uint8))
    back, reward, terminated, truncated, info, frame = unpack_observation(msg.SerializeToString(), BOX)
    assert summaries == (1.5, True, False)
    assert np.array_equal(back, obs) and back.dtype == np.float32
    assert type(reward) is np.float32 and reward == 1.5
    assert type(terminated) is np.bool_ and terminated and truncated is False
    assert info == {"lives": 3}
    assert frame.shape == (2, 3, 3) and frame.dtype == np.uint8


def test_a_text_frame_and_an_observation_out_of_bounds() -> None:
    msg = env_pb2.ObservationPayload()
    write_observation(msg, BOX, np.array([5.0, 0.0], np.float32), 0.0, False, False, {})
    write_frame(msg, "+--+")
    back, *_, info, frame = unpack_observation(msg.SerializeToString(), BOX)
    assert back[0] == 5.0 and info == {} and frame == "+--+"
    assert not msg.HasField("info")


def test_an_observation_that_does_not_fit_names_its_path() -> None:
    with pytest.raises(SpaceMismatchError, match="observation of agent 'a'"):
        write_observation(env_pb2.ObservationPayload(), BOX, np.zeros(3, np.float32), 0.0, False, False, None, path="observation of agent 'a'")


def test_no_observation_needs_no_space() -> None:
    msg = env_pb2.ObservationPayload()
    write_observation(msg, None, MISSING, 1.0, False, False, None)
    assert not msg.HasField("value") and msg.reward == 1.0
    with pytest.raises(CogmentGymError, match="the observation space is not known"):
        write_observation(env_pb2.ObservationPayload(), None, np.zeros(2, np.float32), 0.0, False, False, None)


def test_an_agents_payload_round_trips_with_its_spaces() -> None:
    msg = env_pb2.ObservationPayload(status=WAITING, agent="p1", agent_selection="p0", agents=["p0", "p1"])
    write_observation(msg, BOX, np.zeros(2, np.float32), 2, False, (False, True), {"x": 1}, cumulative_reward=5)
    write_spaces(msg, BOX, spaces.Discrete(3))
    known = AgentSpaces()
    tick = read_payload(msg.SerializeToString(), known)
    assert (tick.agent, tick.status, tick.agent_selection, tick.agents) == ("p1", WAITING, "p0", ["p0", "p1"])
    assert type(tick.reward) is int and tick.reward == 2 and tick.cumulative_reward == 5
    assert tick.truncated == (False, True) and not tick.done and tick.new_spaces
    assert known.observation_space("p1") == BOX and known.action_space("p1") == spaces.Discrete(3)
    assert tick.info == {"x": 1} and np.array_equal(tick.observation, np.zeros(2, np.float32))


def test_an_agents_payload_without_value_is_missing() -> None:
    msg = env_pb2.ObservationPayload(status=ACTING, agent="p0")
    tick = read_payload(msg.SerializeToString(), AgentSpaces())
    assert tick.observation is MISSING and tick.must_act


def test_actions_round_trip() -> None:
    content = action_payload(BOX, np.array([0.5, 0.0], np.float32))
    assert np.array_equal(read_action(content, BOX, "action of actor 'a'"), [0.5, 0.0])
    with pytest.raises(SpaceMismatchError, match="action of actor 'a'"):
        read_action(action_payload(spaces.Box(-9.0, 9.0, (2,), np.float32), np.array([5.0, 0.0], np.float32)), BOX, "action of actor 'a'")
    with pytest.raises(MalformedMessageError):
        read_action(b"\xff\xff", BOX, "action of actor 'a'")


def test_a_multi_agent_no_action_is_missing_and_asks_no_space() -> None:
    asked: list[str] = []

    def space_of(agent: str) -> spaces.Space:
        asked.append(agent)
        return spaces.Discrete(2)

    assert action_content(spaces.Discrete(2), None) == NO_ACTION
    assert read_agent_action(NO_ACTION, "a", space_of) is MISSING
    assert read_agent_action(env_pb2.ActionPayload().SerializeToString(), "a", space_of) is MISSING
    assert asked == []
    assert read_agent_action(action_content(spaces.Discrete(2), 1), "a", space_of) == 1 and asked == ["a"]
    with pytest.raises(CogmentGymError, match="the action space is not known"):
        action_content(None, 1)


def test_a_batched_step_round_trips() -> None:
    single = spaces.Discrete(4)
    batched = batch_space(single, 3)
    obs = np.array([1, 2, 3], np.int64)
    rewards = np.array([0.0, 1.0, 2.5])
    terms = np.array([False, True, False])
    truncs = np.zeros(3, np.bool_)
    content = write_batched(batched, single, obs, rewards, terms, truncs, [{}, {"a": 1}, {}], [(1, 0, {"final": True})])
    assert env_pb2.ObservationPayload.FromString(content).reward == 3.5
    step = unpack_batched(content, batched, single, 3)
    assert np.array_equal(step.obs, obs) and np.array_equal(step.rewards, rewards)
    assert np.array_equal(step.terminations, terms) and np.array_equal(step.truncations, truncs)
    assert step.infos == [{}, {"a": 1}, {}] and step.ends == [(1, 0, {"final": True})]
    no_info = unpack_batched(write_batched(batched, single, obs, rewards, terms, truncs, [{}, {}, {}], []), batched, single, 3)
    assert no_info.infos == [] and no_info.ends == []
    with pytest.raises(MalformedMessageError, match="batch.rewards must be float64\\[2\\]"):
        unpack_batched(content, batched, single, 2)
    with pytest.raises(MalformedMessageError, match="without `batch`"):
        unpack_batched(env_pb2.ObservationPayload().SerializeToString(), batched, single, 3)


def test_a_batched_action_must_have_a_value() -> None:
    batched = batch_space(spaces.Discrete(2), 2)
    assert list(read_batched_action(action_payload(batched, np.array([1, 0])), batched, "action of actor 'a'", 2)) == [1, 0]
    with pytest.raises(MalformedMessageError, match="expected the batched action of 2 sub-environments, got no value"):
        read_batched_action(env_pb2.ActionPayload().SerializeToString(), batched, "action of actor 'a'", 2)


def _parsed(content: bytes) -> env_pb2.ObservationPayload:
    return env_pb2.ObservationPayload.FromString(content)


@pytest.mark.parametrize(
    "single",
    [
        spaces.Box(0, 255, (84, 84, 3), np.uint8),
        spaces.Box(-1.0, 1.0, (4,), np.float32),
        spaces.Box(-1.0, 1.0, (), np.float64),
        spaces.MultiBinary(5),
        spaces.MultiDiscrete([3, 4]),
        spaces.Box(0, 1, (0, 2), np.float32),
    ],
    ids=["image", "vector", "scalar-box", "multibinary", "multidiscrete", "empty"],
)
def test_batched_pieces_are_the_payload_write_batched_makes(single: spaces.Space, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batched_module, "LARGE_FIELD", 0)  # every size: the pieces themselves are tested
    n = 3
    batched = batch_space(single, n)
    single.seed(1)
    obs = [np.array(single.sample()) for _ in range(n)]
    rewards, terms, truncs = np.array([1.0, -2.5, 0.0]), np.array([False, True, False]), np.array([False, False, True])
    infos, ends = [{}, {"a": 1}, {}], [(1, obs[0], {"final": True})]
    pieces = batched_pieces(single, obs, rewards, terms, truncs, infos, ends, [2])
    assert pieces is not None
    content = pieces.join()
    assert len(content) == len(pieces)
    reference = write_batched(batched, single, np.stack(obs), rewards, terms, truncs, infos, ends, [2])
    assert _parsed(content) == _parsed(reference)
    step = unpack_batched(content, batched, single, n)
    np.testing.assert_array_equal(step.obs, np.stack(obs))
    assert step.obs.dtype == single.dtype and step.reset_indices == [2]


def test_batched_pieces_leave_what_the_encoder_must_convert_to_write_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    image = spaces.Box(0, 255, (64, 64, 3), np.uint8)
    frames = [np.zeros((64, 64, 3), np.uint8)] * 6
    zeros6, flags6 = np.zeros(6), np.zeros(6, dtype=np.bool_)
    assert batched_pieces(image, frames, zeros6, flags6, flags6, [], []) is not None  # 74 kB: over LARGE_FIELD
    assert batched_pieces(image, frames[:5], zeros6[:5], flags6[:5], flags6[:5], [], []) is None  # 61 kB: protobuf's way
    monkeypatch.setattr(batched_module, "LARGE_FIELD", 0)
    box = spaces.Box(-1.0, 1.0, (2,), np.float32)
    zeros, flags = np.zeros(2), np.zeros(2, dtype=np.bool_)
    ok = [np.zeros(2, np.float32), np.ones(2, np.float32)]
    assert batched_pieces(box, ok, zeros, flags, flags, [], []) is not None
    for obs in (
        [np.zeros(2, np.float64), ok[1]],  # another dtype: the encoder casts it
        [np.zeros(3, np.float32)[:2], [0.0, 1.0]],  # a list
        [np.zeros(4, np.float32)[::2], ok[1]],  # not contiguous
        [np.zeros((1, 2), np.float32), ok[1]],  # another shape
    ):
        assert batched_pieces(box, obs, zeros, flags, flags, [], []) is None
    dict_space = spaces.Dict({"x": box})
    assert batched_pieces(dict_space, [{"x": o} for o in ok], zeros, flags, flags, [], []) is None

    class MyBox(spaces.Box):  # a subclass may have a codec of its own
        pass

    assert batched_pieces(MyBox(-1.0, 1.0, (2,), np.float32), ok, zeros, flags, flags, [], []) is None


def test_a_stacked_observation_is_read_where_it_arrived(monkeypatch: pytest.MonkeyPatch) -> None:
    """unpack_batched wraps a plain array observation's bytes in the received payload (no copy);
    anything else goes through protobuf's parser and the decoder, with their errors."""
    from cogment_gym.codec.payloads.batched import _stacked_observation

    monkeypatch.setattr(batched_module, "LARGE_FIELD", 0)
    single = spaces.Box(0, 255, (4, 4, 3), np.uint8)
    batched = batch_space(single, 2)
    obs = np.arange(96, dtype=np.uint8).reshape(2, 4, 4, 3)
    zeros, flags = np.zeros(2), np.zeros(2, dtype=np.bool_)
    content = write_batched(batched, single, obs, zeros, flags, flags, [], [])
    split = _stacked_observation(content, batched, single)
    assert split is not None
    array, rest = split
    assert array.base is not None and not array.flags.writeable
    assert bytes(memoryview(array)) in content and len(rest) < len(content) - obs.nbytes
    np.testing.assert_array_equal(unpack_batched(content, batched, single, 2).obs, obs)

    # Not the space's dtype, bool data, a value with more than its array: left to the decoder.
    as_float = write_batched(batch_space(spaces.Box(0, 255, (4, 4, 3), np.float32), 2), spaces.Box(0, 255, (4, 4, 3), np.float32),
                             obs.astype(np.float32), zeros, flags, flags, [], [])
    assert _stacked_observation(as_float, batched, single) is None
    with pytest.raises(SpaceMismatchError):
        unpack_batched(as_float, batched, single, 2)
    binary = spaces.MultiBinary(3)
    assert _stacked_observation(write_batched(batch_space(binary, 2), binary, np.ones((2, 3), np.int8), zeros, flags, flags, [], []),
                                batch_space(binary, 2), binary) is not None
    boolean = spaces.Box(0, 1, (3,), np.bool_)
    assert _stacked_observation(write_batched(batch_space(boolean, 2), boolean, np.ones((2, 3), np.bool_), zeros, flags, flags, [], []),
                                batch_space(boolean, 2), boolean) is None
    payload = env_pb2.ObservationPayload.FromString(content)
    payload.value.exact.text = "given as a list"
    assert _stacked_observation(payload.SerializeToString(), batched, single) is None
    for broken in (content[:-5], content[:10] + b"\xff" * 12):
        assert _stacked_observation(broken, batched, single) is None
        with pytest.raises(MalformedMessageError):
            unpack_batched(broken, batched, single, 2)
    monkeypatch.setattr(batched_module, "LARGE_FIELD", len(content) + 1)  # small payloads: protobuf's way
    assert _stacked_observation(content, batched, single) is None
