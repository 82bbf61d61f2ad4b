"""Custom spaces: the example of ``cogment_gym.codec.custom`` works exactly as documented."""

from __future__ import annotations

import struct
import textwrap
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

import cogment_gym.codec.custom as custom_module
from cogment_gym._proto.cogment_gym.v1 import spaces_pb2, values_pb2
from cogment_gym.codec import decode, encode, parse_value, register_space, space_from_proto, space_to_proto
from cogment_gym.errors import CodecError, CogmentGymError, MalformedMessageError, SpaceMismatchError, UnsupportedSpaceError

from .space_zoo import assert_value_equal


def _docstring_example() -> str:
    """The code block of the module docstring, verbatim."""
    doc = custom_module.__doc__
    assert doc is not None
    block = doc.split("::\n", 1)[1].split("\nAfter that", 1)[0]
    return textwrap.dedent(block)


@pytest.fixture(scope="module")
def circle_type() -> type[spaces.Space[Any]]:
    namespace: dict[str, Any] = {}
    exec(compile(_docstring_example(), "custom.py docstring", "exec"), namespace)  # noqa: S102
    return namespace["Circle"]  # type: ignore[no-any-return]


def _wire_space(space: spaces.Space[Any]) -> spaces.Space[Any]:
    return space_from_proto(spaces_pb2.Space.FromString(space_to_proto(space).SerializeToString()))


def _wire_value(space: spaces.Space[Any], value: Any) -> values_pb2.Value:
    return parse_value(encode(space, value).SerializeToString())


def test_example_registers_under_its_name(circle_type: type) -> None:
    msg = space_to_proto(circle_type(2.5))
    assert msg.WhichOneof("kind") == "custom"
    assert msg.custom.type_name == "example.Circle"
    assert msg.custom.parameters == b"2.5"


def test_example_space_round_trips(circle_type: type) -> None:
    space = circle_type(2.5)
    rebuilt = _wire_space(space)
    assert type(rebuilt) is circle_type and rebuilt == space and rebuilt.radius == 2.5


def test_example_values_round_trip(circle_type: type) -> None:
    space = circle_type(2.0)
    value = np.array([0.0, 2.0])
    msg = encode(space, value)
    assert msg.WhichOneof("kind") == "custom" and msg.custom == value.tobytes()
    assert_value_equal(decode(space, parse_value(msg.SerializeToString())), value)
    angle = np.array([np.sqrt(2.0), np.sqrt(2.0)])
    assert_value_equal(decode(space, _wire_value(space, angle)), angle)


def test_example_nested_inside_dict_and_tuple(circle_type: type) -> None:
    space = spaces.Dict(
        [("ring", circle_type(1.0)), ("n", spaces.Discrete(3)), ("more", spaces.Tuple((circle_type(3.0), spaces.Text(2))))]
    )
    rebuilt = _wire_space(space)
    assert rebuilt == space and list(rebuilt.spaces) == ["ring", "n", "more"]
    assert type(rebuilt["ring"]) is circle_type and rebuilt["more"][0].radius == 3.0
    value = {"ring": np.array([1.0, 0.0]), "n": np.int64(2), "more": (np.array([0.0, -3.0]), "ab")}
    assert_value_equal(decode(rebuilt, _wire_value(space, value), path="obs"), value)


def test_example_rejects_values_off_the_circle(circle_type: type) -> None:
    space = spaces.Dict({"ring": circle_type(1.0)})
    for bad in (np.array([1.0, 1.0]), [1.0, 2.0, 3.0], "x", None):
        with pytest.raises(SpaceMismatchError) as err:
            encode(space, {"ring": bad}, path="obs")
        assert err.value.path == "obs['ring']"
        assert str(err.value).startswith("obs['ring'] does not fit ") and "Circle" in str(err.value)
    off = values_pb2.Value(custom=np.array([1.0, 1.0]).tobytes())
    with pytest.raises(SpaceMismatchError) as err:
        decode(circle_type(1.0), off, path="obs")
    assert err.value.path == "obs"


@pytest.mark.parametrize(
    "payload, error",
    [
        pytest.param(b"\0" * 7, MalformedMessageError, id="not-float64s"),
        pytest.param(b"", SpaceMismatchError, id="empty"),
        pytest.param(b"\0" * 8, SpaceMismatchError, id="one-float"),
        pytest.param(b"\0" * 24, SpaceMismatchError, id="three-floats"),
    ],
)
def test_example_decode_failures_are_codec_errors(circle_type: type, payload: bytes, error: type) -> None:
    with pytest.raises(error):
        decode(circle_type(1.0), values_pb2.Value(custom=payload))


def test_example_decode_rejects_other_value_kinds(circle_type: type) -> None:
    with pytest.raises(SpaceMismatchError, match="expected a custom value, got array value"):
        decode(circle_type(1.0), encode(spaces.Box(-1, 1, (2,)), np.zeros(2, np.float32)))


def test_example_bad_parameters_are_malformed(circle_type: type) -> None:
    msg = spaces_pb2.Space(custom=spaces_pb2.CustomSpace(type_name="example.Circle", parameters=b"not a float"))
    with pytest.raises(MalformedMessageError):
        space_from_proto(msg)


def test_unregistered_custom_space_raises_unsupported(circle_type: type) -> None:
    described = space_to_proto(spaces.Dict({"ring": circle_type(1.0)}))
    described.dict.entries[0].space.custom.type_name = "example.Square"
    with pytest.raises(UnsupportedSpaceError, match="example.Square") as err:
        space_from_proto(spaces_pb2.Space.FromString(described.SerializeToString()))
    assert "example.Circle" in str(err.value), "the message lists what is registered"


def test_registering_a_name_twice_for_another_type_raises(circle_type: type) -> None:
    class Impostor(spaces.Space[Any]):
        pass

    with pytest.raises(CodecError, match="example.Circle"):
        register_space(
            Impostor, name="example.Circle", to_parameters=bytes, from_parameters=lambda d: Impostor(),
            encode=lambda s, v: b"", decode=lambda s, d: None,
        )
    # The original registration still stands.
    assert type(space_from_proto(space_to_proto(circle_type(1.0)))) is circle_type


class Grid(spaces.Space[Any]):
    """A second custom space whose parameter codec raises a non-ValueError (struct.error)."""

    def __init__(self, rows: int, cols: int) -> None:
        super().__init__((rows, cols), np.int8)
        self.rows, self.cols = rows, cols

    def contains(self, x: Any) -> bool:
        return isinstance(x, np.ndarray) and x.shape == (self.rows, self.cols)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Grid) and (other.rows, other.cols) == (self.rows, self.cols)


register_space(
    Grid,
    name="tests.codec.Grid",
    to_parameters=lambda s: struct.pack("<ii", s.rows, s.cols),
    from_parameters=lambda data: Grid(*struct.unpack("<ii", data)),
    encode=lambda s, v: np.asarray(v, np.int8).tobytes(),
    decode=lambda s, data: np.frombuffer(data, np.int8).reshape(s.rows, s.cols),
)


def test_second_custom_space_round_trips() -> None:
    space = spaces.Tuple((Grid(2, 3), spaces.Discrete(2)))
    assert _wire_space(space) == space
    value = (np.arange(6, dtype=np.int8).reshape(2, 3), np.int64(1))
    assert_value_equal(decode(space, _wire_value(space, value)), value)


@pytest.mark.parametrize("parameters", [b"", b"\x01\x02", b"\0" * 9])
def test_any_error_of_from_parameters_is_malformed(parameters: bytes) -> None:
    msg = spaces_pb2.Space(custom=spaces_pb2.CustomSpace(type_name="tests.codec.Grid", parameters=parameters))
    with pytest.raises(MalformedMessageError, match="tests.codec.Grid"):
        space_from_proto(msg)


def test_any_error_of_custom_decode_is_a_codec_error() -> None:
    with pytest.raises(CogmentGymError):
        decode(Grid(2, 3), values_pb2.Value(custom=b"\0" * 5))
