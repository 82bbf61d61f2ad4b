"""Spaces of types with no codec: subclasses of known spaces go to their nearest registered base
class; other Space subclasses travel by their standard form as a ForeignSpace; a clear
UnsupportedSpaceError only when nothing fits. (MiniGrid itself is exercised by the sweep,
tests/envs/test_env_sweep.py; these stand-ins have the same shape as its MissionSpace.)"""

from __future__ import annotations

import copy
import re
from typing import Any, Callable

import numpy as np
import pytest
from gymnasium import spaces

from cogment_gym._proto.cogment_gym.v1 import spaces_pb2
from cogment_gym.codec import ForeignSpace, decode, encode, parse_value, register_space, space_from_proto, space_to_proto
from cogment_gym.errors import MalformedMessageError, SpaceMismatchError, UnsupportedSpaceError

from .space_zoo import assert_value_equal


def _wire(msg: spaces_pb2.Space) -> spaces.Space[Any]:
    return space_from_proto(spaces_pb2.Space.FromString(msg.SerializeToString()))


class Mission(spaces.Space[str]):
    """Like minigrid.core.mission.MissionSpace: a Space[str] of its own, made of code."""

    def __init__(self, make: Callable[..., str], choices: list[str] | None = None) -> None:
        self.make, self.choices = make, choices
        super().__init__(dtype=str)

    def sample(self) -> str:
        if self.choices is None:
            return self.make()
        return self.make(self.choices[int(self.np_random.integers(len(self.choices)))])

    def contains(self, x: Any) -> bool:
        if not isinstance(x, str):
            return False
        return x in ([self.make()] if self.choices is None else [self.make(c) for c in self.choices])


class Point(spaces.Space[np.ndarray]):
    """A Space of float32 arrays of shape (2,) with a test of its own (on the unit circle)."""

    def __init__(self) -> None:
        super().__init__((2,), np.float32)

    def sample(self) -> np.ndarray:
        angle = self.np_random.uniform(0, 2 * np.pi)
        return np.array([np.cos(angle), np.sin(angle)], np.float32)

    def contains(self, x: Any) -> bool:
        return bool(np.isclose(np.hypot(*np.asarray(x, np.float64)), 1.0, atol=1e-6))


class Bag(spaces.Space[Any]):
    """Nothing to go on: no dtype, no shape."""


class MyText(spaces.Text):
    def contains(self, x: Any) -> bool:
        return super().contains(x) and x.startswith("a")


def test_a_text_subclass_travels_as_its_nearest_known_base() -> None:
    space = MyText(5, charset="abc")
    back = _wire(space_to_proto(space))
    assert type(back) is spaces.Text and back == spaces.Text(5, charset="abc")
    assert decode(back, parse_value(encode(space, "ab").SerializeToString())) == "ab"


def test_a_subclass_of_a_registered_space_uses_its_codec() -> None:
    class Circle(spaces.Space[np.ndarray]):
        def __init__(self, radius: float = 1.0) -> None:
            super().__init__((2,), np.float64)
            self.radius = radius

        def contains(self, x: Any) -> bool:
            return bool(np.isclose(np.hypot(*x), self.radius))

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Circle) and other.radius == self.radius

    class BigCircle(Circle):
        pass

    register_space(
        Circle, name="tests.foreign.Circle", to_parameters=lambda s: str(s.radius).encode(), from_parameters=lambda d: Circle(float(d)),
        encode=lambda s, v: np.asarray(v, np.float64).tobytes(), decode=lambda s, d: np.frombuffer(d, np.float64).copy(),
    )
    big = BigCircle(2.0)
    msg = space_to_proto(big)
    assert msg.WhichOneof("kind") == "custom" and msg.custom.type_name == "tests.foreign.Circle"
    assert _wire(msg) == Circle(2.0)
    value = np.array([0.0, 2.0])
    np.testing.assert_array_equal(decode(big, encode(big, value)), value)


def test_a_str_space_of_its_own_travels_as_a_foreign_space() -> None:
    env_space = Mission(lambda color: f"get the {color} ball", ["red", "green", "blue"])
    env_space.seed(123)
    state = copy.deepcopy(env_space.np_random.bit_generator.state)
    msg = space_to_proto(env_space)
    # The env's space and its generator are untouched: the samples come from a seeded copy.
    assert env_space.np_random.bit_generator.state == state
    assert msg.foreign.type_name == f"{__name__}.Mission" and msg.foreign.text and len(msg.foreign.samples) == 16
    client = _wire(msg)
    assert isinstance(client, ForeignSpace) and client.type_name == f"{__name__}.Mission"
    # Sampling gives what the env's space samples; contains accepts every mission the env makes.
    client.seed(0)
    drawn = {client.sample() for _ in range(50)}
    assert drawn == {"get the red ball", "get the green ball", "get the blue ball"}
    assert all(env_space.contains(m) for m in drawn)
    assert client.contains("get the red ball") and client.contains("anything else") and not client.contains(3)
    # It describes itself as the env's space did, and equals only its like.
    assert space_to_proto(client) == msg and client == _wire(msg) and client != env_space
    # Values: str, both ways; the env side checks actions with the env's own contains().
    assert decode(client, parse_value(encode(env_space, "get the red ball", bounds=False).SerializeToString()), bounds=False) == "get the red ball"
    action = encode(client, "get the pink ball")
    with pytest.raises(SpaceMismatchError, match=r"Mission.contains\(\) accepts"):
        decode(env_space, action)
    assert decode(env_space, action, bounds=False) == "get the pink ball"  # observations: no test
    with pytest.raises(SpaceMismatchError, match="a str"):
        encode(client, 3)


def test_a_fixed_mission_samples_exactly_as_the_env_space() -> None:
    env_space = Mission(lambda: "go")
    client = _wire(space_to_proto(env_space))
    assert {client.sample() for _ in range(5)} == {"go"} == {env_space.sample()}


def test_an_array_space_of_its_own_travels_by_dtype_and_shape() -> None:
    env_space = Point()
    client = _wire(space_to_proto(env_space))
    assert isinstance(client, ForeignSpace) and client.dtype == np.float32 and client.shape == (2,)
    sample = client.sample()
    assert sample.dtype == np.float32 and sample.flags.writeable and env_space.contains(sample)
    value = np.array([0.6, 0.8], np.float32)
    assert_value_equal(decode(client, parse_value(encode(env_space, value).SerializeToString())), value)
    assert client.contains(value) and not client.contains(np.zeros(3, np.float32))
    with pytest.raises(SpaceMismatchError, match="shape"):
        encode(client, np.zeros(3, np.float32))
    with pytest.raises(SpaceMismatchError, match=r"Point.contains\(\) accepts"):
        decode(env_space, encode(client, np.array([2.0, 0.0], np.float32)))
    # Nested in a Dict like any other space.
    nested = spaces.Dict({"p": Point(), "d": spaces.Discrete(2)})
    remote = _wire(space_to_proto(nested))
    out = decode(remote, parse_value(encode(nested, {"p": value, "d": 1}).SerializeToString()))
    assert_value_equal(out, {"p": value, "d": 1})


def test_a_space_that_says_nothing_is_refused_clearly() -> None:
    for what in (lambda: space_to_proto(Bag()), lambda: encode(Bag(), 1), lambda: decode(Bag(), encode(spaces.Discrete(2), 1))):
        with pytest.raises(UnsupportedSpaceError, match=rf"no codec for space type {re.escape(__name__)}\.Bag .*dtype None and shape None.*register_space"):
            what()
    with pytest.raises(UnsupportedSpaceError, match="no codec for space type"):
        space_to_proto(spaces.Dict({"bag": Bag()}))


def test_a_space_that_cannot_sample_travels_without_samples() -> None:
    class Unsampled(spaces.Space[str]):
        def __init__(self) -> None:
            super().__init__(dtype=str)

    client = _wire(space_to_proto(Unsampled()))
    assert isinstance(client, ForeignSpace) and client.samples == ()
    with pytest.raises(NotImplementedError, match="could not be sampled"):
        client.sample()


def test_malformed_foreign_descriptions_are_refused() -> None:
    msg = space_to_proto(Mission(lambda: "go"))
    for _ in range(20):
        msg.foreign.samples.add(text="go")
    with pytest.raises(MalformedMessageError, match="samples, at most 16"):
        _wire(msg)
    bad = spaces_pb2.Space()
    bad.foreign.type_name = "x.Y"
    bad.foreign.shape.extend([1] * 40)
    bad.foreign.dtype = 11
    with pytest.raises(MalformedMessageError, match="dimensions"):
        _wire(bad)
    wrong = space_to_proto(Point())
    wrong.foreign.samples[0].text = "not an array"
    with pytest.raises(SpaceMismatchError):
        _wire(wrong)
