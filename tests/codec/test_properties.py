"""Property tests: random nested spaces and their sampled values survive the wire exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogment_gym._proto.cogment_gym.v1 import spaces_pb2, values_pb2
from cogment_gym.codec import array_to_tensor, decode, encode, parse_value, space_from_proto, space_to_proto
from cogment_gym.errors import SpaceMismatchError

from .space_zoo import as_decoded, assert_value_equal
from .strategies import boxes, nested_spaces

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _wire_space(space: spaces.Space[Any]) -> spaces.Space[Any]:
    return space_from_proto(spaces_pb2.Space.FromString(space_to_proto(space).SerializeToString()))


def _dict_orders(space: spaces.Space[Any]) -> Any:
    """The key order of every Dict in a space (Gymnasium's Dict equality ignores it)."""
    if isinstance(space, spaces.Dict):
        return [(key, _dict_orders(sub)) for key, sub in space.spaces.items()]
    if isinstance(space, (spaces.Tuple, spaces.OneOf)):
        return [_dict_orders(sub) for sub in space.spaces]
    if isinstance(space, spaces.Sequence):
        return _dict_orders(space.feature_space)
    return None


@PROPERTY_SETTINGS
@given(space=nested_spaces(depth=3))
def test_random_spaces_round_trip(space: spaces.Space[Any]) -> None:
    rebuilt = _wire_space(space)
    assert rebuilt == space
    assert _dict_orders(rebuilt) == _dict_orders(space)
    assert space_to_proto(rebuilt).SerializeToString() == space_to_proto(space).SerializeToString()


@PROPERTY_SETTINGS
@given(space=nested_spaces(depth=3), seed=st.integers(0, 2**32 - 1))
def test_random_values_round_trip(space: spaces.Space[Any], seed: int) -> None:
    space.seed(seed)
    remote = _wire_space(space)
    for _ in range(3):
        value = as_decoded(space, space.sample())
        data = encode(space, value, path="obs").SerializeToString()
        decoded = decode(remote, parse_value(data), path="obs")
        assert_value_equal(decoded, value)
        assert encode(remote, decoded).SerializeToString() == data


@PROPERTY_SETTINGS
@given(space=boxes(), seed=st.integers(0, 2**32 - 1))
def test_random_box_values_are_zero_copy_in_their_dtype(space: spaces.Box, seed: int) -> None:
    space.seed(seed)
    value = np.asarray(space.sample())  # an integer Box of shape () samples a numpy scalar
    msg = parse_value(encode(space, value).SerializeToString())
    assert len(msg.array.data) == value.size * space.dtype.itemsize
    decoded = decode(space, msg)
    assert_value_equal(decoded, value)
    assert not decoded.flags.writeable and not decoded.flags.owndata


@PROPERTY_SETTINGS
@given(space=boxes(), data=st.data())
def test_random_box_decode_agrees_with_contains(space: spaces.Box, data: st.DataObject) -> None:
    """Arbitrary elements of the right dtype and shape: decode accepts exactly what Box.contains does."""
    size = int(np.prod(space.shape)) * space.dtype.itemsize
    raw = data.draw(st.binary(min_size=size, max_size=size))
    if space.dtype.kind == "b":
        array = (np.frombuffer(raw, np.uint8) & 1).astype(bool).reshape(space.shape)
    else:
        array = np.frombuffer(raw, space.dtype).reshape(space.shape)
    msg = values_pb2.Value(array=array_to_tensor(array))
    try:
        decoded = decode(space, parse_value(msg.SerializeToString()))
    except SpaceMismatchError:
        accepted = False
    else:
        accepted = True
        assert_value_equal(decoded, array)
    assert accepted == bool(space.contains(array)), (array, space.low, space.high)
