"""Values of every zoo space survive ``encode`` / ``decode``: exact, zero-copy, not upcast, compact."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector.utils import create_empty_array

from cogment_gym._proto.cogment_gym.v1 import spaces_pb2, tensor_pb2, values_pb2
from cogment_gym.codec import array_to_tensor, decode, encode, encode_object, parse_value, space_from_proto, space_to_proto
from cogment_gym.codec.tensor import DTYPES
from cogment_gym.errors import CogmentGymError, SpaceMismatchError
from cogment_gym.testing import canonical_value

from .space_zoo import ALL_NUMERIC_DTYPES, SPACE_ZOO, as_decoded, assert_value_equal, make_space_zoo

ZOO_IDS = list(SPACE_ZOO)
SAMPLES_PER_SPACE = 8


def _wire(space: spaces.Space[Any], value: Any) -> values_pb2.Value:
    """Encode, serialize and parse back: what the peer holds."""
    return parse_value(encode(space, value).SerializeToString())


@pytest.mark.parametrize("name", ZOO_IDS)
def test_sampled_values_round_trip_exactly(name: str) -> None:
    space = make_space_zoo()[name]
    space.seed(1234)
    remote_space = space_from_proto(spaces_pb2.Space.FromString(space_to_proto(space).SerializeToString()))
    for i in range(SAMPLES_PER_SPACE):
        value = as_decoded(space, space.sample())
        decoded = decode(remote_space, _wire(space, value), path="obs")
        assert_value_equal(decoded, value, f"sample {i}")
        assert space.contains(decoded)
        # Decoding the in-memory message (no bytes) gives the same.
        assert_value_equal(decode(space, encode(space, value)), value, f"sample {i} (in memory)")


@pytest.mark.parametrize("name", ZOO_IDS)
def test_encoding_is_deterministic(name: str) -> None:
    space = make_space_zoo()[name]
    space.seed(7)
    value = space.sample()
    assert encode(space, value).SerializeToString() == encode(space, value).SerializeToString()
    # Re-encoding the decoded value gives the same bytes (no drift, e.g. of dtypes or order).
    again = decode(space, _wire(space, value))
    assert encode(space, again).SerializeToString() == encode(space, value).SerializeToString()


def test_dict_values_keep_their_own_key_order_and_type() -> None:
    space = SPACE_ZOO["dict-unsorted-keys"]
    value = space.sample()
    assert list(decode(space, _wire(space, value))) == ["zeta", "alpha", "mid", "Beta"]
    # A value in another order than the space's (PettingZoo's {"observation", "action_mask"} in a
    # Dict space that sorted its keys) travels and decodes in its own order.
    reordered = dict(reversed(list(value.items())))
    decoded = decode(space, _wire(space, reordered))
    assert_value_equal(decoded, reordered)
    keys_on_wire = [entry.str_key for entry in encode(space, reordered).dict.entries]
    assert keys_on_wire == ["Beta", "mid", "alpha", "zeta"]
    ordered = OrderedDict(reversed(list(value.items())))
    back = decode(space, _wire(space, ordered))
    assert type(back) is OrderedDict and list(back) == list(ordered)
    assert type(decode(space, _wire(space, value))) is dict


def test_graph_with_zero_edges_round_trips() -> None:
    space = SPACE_ZOO["graph-discrete-discrete"]
    value = spaces.GraphInstance(np.array([0, -2], np.int64), np.zeros((0,), np.int64), np.zeros((0, 2), np.int64))
    assert_value_equal(decode(space, _wire(space, value)), value)


def test_empty_sequence_round_trips() -> None:
    assert_value_equal(decode(SPACE_ZOO["sequence-box"], _wire(SPACE_ZOO["sequence-box"], ())), ())
    # Gymnasium's Sequence.sample cannot build an empty stacked sample; create_empty_array can.
    for name in ("sequence-box-stacked", "sequence-dict-stacked", "sequence-discrete-stacked", "sequence-text-stacked"):
        space = SPACE_ZOO[name]
        empty = create_empty_array(space.feature_space, 0)
        assert_value_equal(decode(space, _wire(space, empty)), empty, name)


def test_nan_and_signed_zero_survive_in_unbounded_box() -> None:
    space = spaces.Box(-np.inf, np.inf, (4,), np.float64)
    value = np.array([-0.0, np.inf, -np.inf, 5e-324])
    assert_value_equal(decode(space, _wire(space, value)), value)
    half = spaces.Box(-np.inf, np.inf, (3,), np.float16)
    value16 = np.array([-0.0, 6.0e-8, 65504.0], np.float16)
    assert_value_equal(decode(half, _wire(half, value16)), value16)


# ---------------------------------------------------------------------------------------------
# Zero-copy and no upcast


def _root_buffer(array: np.ndarray[Any, Any]) -> Any:
    base: Any = array
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base


def _numeric_spaces() -> list[tuple[str, spaces.Space[Any]]]:
    return [
        (name, space)
        for name, space in SPACE_ZOO.items()
        if isinstance(space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary))
    ]


@pytest.mark.parametrize("name, space", _numeric_spaces(), ids=[n for n, _ in _numeric_spaces()])
def test_numeric_leaves_decode_zero_copy_and_read_only(name: str, space: spaces.Space[Any]) -> None:
    msg = _wire(space, np.asarray(space.sample()))  # an integer Box of shape () samples a scalar
    array = decode(space, msg)
    assert isinstance(array, np.ndarray)
    assert not array.flags.writeable
    assert not array.flags.owndata
    root = _root_buffer(array)
    # The array is a view of the bytes object protobuf handed out, not a copy of it.
    assert isinstance(root, bytes), type(root)
    assert root == msg.array.data
    if array.size:
        assert np.shares_memory(array, np.frombuffer(root, np.uint8))
    with pytest.raises(ValueError):
        array[...] = 0


def test_nested_numeric_leaves_are_zero_copy_too() -> None:
    space = SPACE_ZOO["deeply-nested"]
    space.seed(3)
    decoded = decode(space, _wire(space, space.sample()))
    camera = decoded["obs"][0]["camera"]
    assert isinstance(_root_buffer(camera), bytes) and not camera.flags.writeable
    nodes = decoded["obs"][2].nodes
    assert isinstance(_root_buffer(nodes), bytes) and not nodes.flags.writeable


@pytest.mark.parametrize("dtype", ALL_NUMERIC_DTYPES, ids=str)
def test_box_values_travel_in_their_own_dtype(dtype: np.dtype[Any]) -> None:
    space = spaces.Box(0, 1, (3, 5), dtype)
    tensor = encode(space, space.sample()).array
    assert tensor.dtype == DTYPES[dtype]
    assert list(tensor.shape) == [3, 5]
    assert len(tensor.data) == 15 * dtype.itemsize


def test_float16_is_not_upcast() -> None:
    space = spaces.Box(-1, 1, (10,), np.float16)
    value = space.sample()
    msg = encode(space, value)
    assert msg.array.dtype == tensor_pb2.DTYPE_FLOAT16
    assert len(msg.array.data) == 20
    assert msg.array.data == value.tobytes()
    decoded = decode(space, parse_value(msg.SerializeToString()))
    assert decoded.dtype == np.float16


def test_bytes_are_little_endian_c_order() -> None:
    space = spaces.Box(0, 1000, (2, 2), np.uint16)
    value = np.array([[1, 2], [3, 258]], np.uint16)
    assert encode(space, value).array.data == b"\x01\x00\x02\x00\x03\x00\x02\x01"
    fortran = np.asfortranarray(value)
    assert encode(space, fortran).array.data == b"\x01\x00\x02\x00\x03\x00\x02\x01"
    big = value.astype(">u2")
    assert encode(space, big).array.data == b"\x01\x00\x02\x00\x03\x00\x02\x01"


# ---------------------------------------------------------------------------------------------
# No flattening, no one-hot


def test_discrete_value_is_an_8_byte_scalar_or_a_varint() -> None:
    msg = encode(spaces.Discrete(1000), np.int64(999))
    assert msg.WhichOneof("kind") == "scalar"
    assert msg.scalar.dtype == tensor_pb2.DTYPE_INT64
    assert list(msg.scalar.shape) == []
    assert len(msg.scalar.data) == 8
    assert len(msg.SerializeToString()) <= 16
    msg32 = encode(spaces.Discrete(5, dtype=np.int32), np.int32(4))
    assert msg32.scalar.dtype == tensor_pb2.DTYPE_INT32 and len(msg32.scalar.data) == 4
    # A Python int (FrozenLake's observations) is the same scalar, plus that it was an int: a varint.
    python = encode(spaces.Discrete(1000), 999)
    assert python.WhichOneof("kind") == "scalar" and python.exact.WhichOneof("kind") == "int_value"
    assert len(python.SerializeToString()) <= 16 + 5


def test_dict_of_discrete_is_a_few_bytes_per_leaf() -> None:
    n_leaves = 100
    space = spaces.Dict({f"k{i:02d}": spaces.Discrete(1000) for i in range(n_leaves)})
    value = space.sample()
    size = len(encode(space, value).SerializeToString())
    key_bytes = sum(len(k) for k in space.spaces)
    # Per leaf: the 8 value bytes, a key of 3 bytes, and at most ~16 bytes of protobuf framing.
    assert size <= key_bytes + n_leaves * (8 + 16), size
    # Flattened one-hot would be at least 1000 elements per leaf.
    assert size < n_leaves * 1000 / 10


def test_multi_binary_and_frames_are_not_inflated() -> None:
    mb = spaces.MultiBinary(1000)
    assert len(encode(mb, mb.sample()).SerializeToString()) <= 1000 + 16
    frame = SPACE_ZOO["box-uint8-84x84x3"]
    assert len(encode(frame, frame.sample()).SerializeToString()) <= 84 * 84 * 3 + 20
    md = spaces.MultiDiscrete([1000] * 10)
    assert len(encode(md, md.sample()).SerializeToString()) <= 10 * 8 + 16


# ---------------------------------------------------------------------------------------------
# encode: values that fit but are not in the space's own types travel as they are


def _without_form_fields(msg: values_pb2.Value) -> values_pb2.Value:
    """``msg`` as a reader of the schema before these fields sees it: exact, as_list, MapValue.type
    and int_index unknown (cleared), recursively."""
    out = values_pb2.Value()
    out.CopyFrom(msg)
    stack = [out]
    while stack:
        value = stack.pop()
        value.ClearField("exact")
        kind = value.WhichOneof("kind")
        if kind == "dict":
            value.dict.ClearField("type")
            stack.extend(entry.value for entry in value.dict.entries)
        elif kind in ("tuple", "list"):
            getattr(value, kind).ClearField("as_list")
            stack.extend(getattr(value, kind).items)
        elif kind == "one_of":
            value.one_of.ClearField("int_index")
            stack.append(value.one_of.value)
    return out


@pytest.mark.parametrize(
    "space, value",
    [
        pytest.param(spaces.Box(0, 10, (3,), np.int64), [1, 2, 3], id="int-list-int64-box"),
        pytest.param(spaces.Box(0, 10, (3,), np.uint8), [1, 2, 3], id="int-list-uint8-box"),
        pytest.param(spaces.Box(0, 10, (2,), np.float32), [1, 2], id="int-list-float32-box"),
        pytest.param(spaces.Box(0, 10, (2,), np.float32), [0.5, 2.25], id="exact-float-list"),
        pytest.param(spaces.Box(0, 10, (2,), np.float32), (0.5, np.float32(2.25)), id="tuple-of-mixed-numbers"),
        pytest.param(spaces.Box(0, 1, (2,), np.float64), np.array([0.5, 0.25], np.float32), id="float32-array-float64-box"),
        pytest.param(spaces.Box(0, 10, (2,), np.int64), np.array([1, 2], np.int8), id="int8-array-int64-box"),
        pytest.param(spaces.Box(-5, 5, (), np.int64), 3, id="python-int-0d-box"),
        pytest.param(spaces.Box(-5, 5, (), np.float32), np.float32(1.5), id="np-scalar-0d-box"),
        pytest.param(spaces.Box(-5, 5, (), np.float32), np.array(1.5, np.float32), id="0d-array-0d-box"),
        pytest.param(spaces.Box(0, 1, (2,), bool), [True, False], id="bool-list"),
        pytest.param(spaces.MultiBinary(3), [0, 1, 1], id="multibinary-int-list"),
        pytest.param(spaces.MultiBinary(2), np.array([True, False]), id="multibinary-bool-array"),
        pytest.param(spaces.MultiDiscrete([3, 4]), (2, 3), id="multidiscrete-tuple"),
        pytest.param(spaces.Discrete(3, start=-1), -1, id="python-int-discrete"),
        pytest.param(spaces.Discrete(3), np.int8(2), id="np-int8-discrete"),
        pytest.param(spaces.Discrete(3), np.array(2), id="0d-array-discrete"),
        pytest.param(spaces.Discrete(3), np.array(2, np.uint8), id="0d-uint8-array-discrete"),
        pytest.param(spaces.Discrete(3), True, id="bool-discrete"),
        pytest.param(spaces.Discrete(5, dtype=np.int32), 4, id="python-int-int32-discrete"),
        pytest.param(spaces.Tuple((spaces.Discrete(2), spaces.Text(2))), [1, "a"], id="list-for-tuple"),
        pytest.param(spaces.Dict({"a": spaces.Discrete(2)}), OrderedDict(a=1), id="ordereddict-for-dict"),
        pytest.param(spaces.Dict({"a": spaces.Discrete(2), "b": spaces.Discrete(2)}), {"b": 1, "a": np.int64(0)}, id="dict-own-order"),
        pytest.param(spaces.Sequence(spaces.Discrete(3)), [0, 2], id="list-for-sequence"),
        pytest.param(spaces.OneOf((spaces.Discrete(2), spaces.Text(3))), (1, "ab"), id="oneof-python-index"),
        pytest.param(spaces.OneOf((spaces.Discrete(2), spaces.Text(3))), (np.int64(1), "ab"), id="oneof-numpy-index"),
    ],
)
def test_encode_keeps_the_types_of_values_that_fit(space: spaces.Space[Any], value: Any) -> None:
    for bounds in (True, False):
        assert_value_equal(decode(space, _wire(space, value), bounds=bounds), value)
        assert_value_equal(decode(space, encode(space, value, bounds=bounds), bounds=bounds), value)
    # A reader that does not know the fields saying how the value was given (an older
    # cogment_gym, the official SDK's scripts) reads the canonical value, as before.
    old_reader = _without_form_fields(encode(space, value))
    # (canonical_value leaves a bool as it is, to show it in a comparison; on the wire it is 1.)
    expected = space.dtype.type(value) if isinstance(value, bool) else canonical_value(space, value)
    back = decode(space, old_reader)
    if isinstance(expected, dict):
        back = {key: back[key] for key in expected}  # older readers gave the space's order
    assert_value_equal(back, expected)
    if not isinstance(space, spaces.Sequence):  # Sequence.contains wants a tuple; the codec takes lists too
        assert space.contains(value)  # what fits is what Gymnasium's contains accepts


@pytest.mark.parametrize(
    "space, value, expected",
    [
        # Documented changes (codec.values): native byte order, plain ndarrays, np.str_ as str,
        # other integer OneOf indices as np.int64, mappings other than dict/OrderedDict as dict.
        pytest.param(spaces.Box(0, 1, (2,), np.float32), np.array([0.5, 1], ">f4"), np.array([0.5, 1], np.float32), id="big-endian"),
        pytest.param(spaces.Box(0, 1, (2,), np.float64), np.ma.masked_array([0.5, 1.0]), np.array([0.5, 1.0]), id="masked-array"),
        pytest.param(spaces.Text(3), np.str_("ab"), "ab", id="np-str"),
        pytest.param(spaces.OneOf((spaces.Discrete(2), spaces.Text(3))), (np.int32(1), "ab"), (np.int64(1), "ab"), id="oneof-int32-index"),
        pytest.param(spaces.Dict({"a": spaces.Discrete(2)}), defaultdict(int, a=1), {"a": 1}, id="defaultdict"),
        pytest.param(spaces.Box(0, 10, (2, 2), np.int64), [[1, 2], [3, 4]], np.array([[1, 2], [3, 4]]), id="nested-list"),
    ],
)
def test_encode_changes_only_the_documented_types(space: spaces.Space[Any], value: Any, expected: Any) -> None:
    assert_value_equal(decode(space, _wire(space, value)), expected)


# ---------------------------------------------------------------------------------------------
# encode: values that do not fit are rejected


@pytest.mark.parametrize(
    "space, value, fragments",
    [
        pytest.param(spaces.Box(0, 10, (2,), np.int64), np.array([1.0, 2.0]), ["dtype int64", "float64"], id="float64-array-int-box"),
        pytest.param(spaces.Box(0, 1, (2,), np.float32), np.array([0.5, 0.25]), ["dtype float32", "float64"], id="float64-to-float32"),
        pytest.param(spaces.Box(0, 10, (2,), np.int8), np.array([1, 2]), ["dtype int8", "int64"], id="int64-to-int8"),
        pytest.param(spaces.Box(0, 10, (2,), np.uint8), np.array([1, 2], np.int8), ["dtype uint8", "int8"], id="int8-to-uint8"),
        pytest.param(spaces.Box(0, 10, (2,), np.int64), [0.5, 1.0], ["int64"], id="float-list-int-box"),
        pytest.param(spaces.Box(0, 255, (2,), np.uint8), [1, 300], ["uint8"], id="list-overflows-uint8"),
        pytest.param(spaces.Box(0, 255, (2,), np.uint8), [1, -1], ["uint8"], id="list-negative-uint8"),
        pytest.param(spaces.Box(0, 1, (2,), np.float16), [2049, 1], ["float16"], id="list-not-exact-float16"),
        pytest.param(spaces.Box(0, 1, (2,), np.float32), ["a", "b"], ["float32"], id="str-list"),
        pytest.param(spaces.Box(0, 1, (2,), np.float32), [[1.0], [1.0, 2.0]], ["float32"], id="ragged-list"),
        pytest.param(spaces.Box(0, 1, (2,), np.float32), np.zeros(3, np.float32), ["shape (2,)", "(3,)"], id="shape"),
        pytest.param(spaces.Box(0, 1, (2, 2), np.float32), np.zeros(4, np.float32), ["shape (2, 2)", "(4,)"], id="shape-flat"),
        pytest.param(spaces.Box(0, 1, (2,), np.float32), None, ["float32"], id="none-for-box"),
        pytest.param(spaces.MultiBinary(2), np.array([0, 1]), ["int8", "int64"], id="int64-array-multibinary"),
        pytest.param(spaces.Discrete(3), 1.0, ["an integer", "float"], id="float-discrete"),
        pytest.param(spaces.Discrete(3), "1", ["an integer", "str"], id="str-discrete"),
        pytest.param(spaces.Discrete(3), np.array([1]), ["an integer", "shape (1,)"], id="1d-array-discrete"),
        pytest.param(spaces.Discrete(3, start=-1), 2, ["[-1, 2)", "2"], id="discrete-out-of-range"),
        pytest.param(spaces.Text(5), b"abc", ["a str", "bytes"], id="bytes-for-text"),
        pytest.param(spaces.Dict({"a": spaces.Discrete(2), "b": spaces.Discrete(2)}), {"a": 1}, ["missing ['b']"], id="dict-missing"),
        pytest.param(
            spaces.Dict({"a": spaces.Discrete(2)}), {"a": 1, "zz": 0}, ["unexpected ['zz']"], id="dict-extra"
        ),
        pytest.param(spaces.Dict({"a": spaces.Discrete(2)}), [1], ["a dict", "list"], id="list-for-dict"),
        pytest.param(spaces.Tuple((spaces.Discrete(2),) * 2), (1,), ["a tuple of 2 items"], id="tuple-short"),
        pytest.param(spaces.Tuple((spaces.Discrete(2),)), {"a": 1}, ["a tuple of 1 items"], id="dict-for-tuple"),
        pytest.param(spaces.Sequence(spaces.Discrete(2)), 1, ["a tuple of elements"], id="int-for-sequence"),
        pytest.param(spaces.Graph(spaces.Discrete(2), None), np.zeros(2), ["GraphInstance"], id="array-for-graph"),
        pytest.param(
            spaces.Graph(spaces.Box(0, 1, (2,), np.float32), None),
            spaces.GraphInstance(np.zeros((3, 2)), None, None),
            ["float32", "float64"],
            id="graph-nodes-dtype",
        ),
        pytest.param(
            spaces.Graph(spaces.Discrete(2), None),
            spaces.GraphInstance(np.zeros(2, np.int64), np.zeros(1, np.int64), np.zeros((1, 2), np.int64)),
            ["edges"],
            id="graph-edges-without-edge-space",
        ),
        pytest.param(
            spaces.Graph(spaces.Discrete(2), spaces.Discrete(2)),
            spaces.GraphInstance(np.zeros(2, np.int64), np.zeros(2, np.int64), np.zeros((1, 2), np.int64)),
            ["edge_links", "(2, 2)"],
            id="graph-links-shape",
        ),
        pytest.param(spaces.OneOf((spaces.Discrete(2),)), (1, 0), ["an index in [0, 1)"], id="oneof-index"),
        pytest.param(spaces.OneOf((spaces.Discrete(2),)), [0, 0], ["a tuple (index, value)"], id="oneof-list"),
    ],
)
def test_encode_rejects_values_that_do_not_fit(space: spaces.Space[Any], value: Any, fragments: list[str]) -> None:
    with pytest.raises(SpaceMismatchError) as info:
        encode(space, value, path="action")
    err = info.value
    assert isinstance(err, CogmentGymError) and isinstance(err, ValueError)
    message = str(err)
    assert err.path.startswith("action")
    assert message.startswith(err.path)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_encode_error_names_the_nested_path() -> None:
    space = spaces.Dict({"camera": spaces.Box(0, 255, (2, 2), np.uint8), "arm": spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3)))})
    with pytest.raises(SpaceMismatchError) as info:
        encode(space, {"camera": np.zeros((2, 2), np.float32), "arm": (0, 1)}, path="obs")
    assert info.value.path == "obs['camera']"
    assert "obs['camera']" in str(info.value) and "uint8" in str(info.value) and "float32" in str(info.value)
    with pytest.raises(SpaceMismatchError) as info:
        encode(space, {"camera": np.zeros((2, 2), np.uint8), "arm": (0, 3)}, path="obs")
    assert info.value.path == "obs['arm'][1]"


# ---------------------------------------------------------------------------------------------
# decode: messages that do not fit the space are rejected, naming the path


CAMERA = spaces.Box(0, 255, (4, 4, 3), np.uint8)
OBS = spaces.Dict(
    [
        ("camera", CAMERA),
        ("pos", spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, 2.0]), dtype=np.float64)),
        ("mode", spaces.Discrete(3, start=-1)),
        ("arm", spaces.Tuple((spaces.MultiDiscrete([2, 3]), spaces.MultiBinary(2)))),
        ("note", spaces.Text(4, min_length=1, charset="abc")),
    ]
)


def _good_obs() -> dict[str, Any]:
    return {
        "camera": np.zeros((4, 4, 3), np.uint8),
        "pos": np.array([0.0, 1.0]),
        "mode": -1,
        "arm": (np.array([1, 2]), np.array([0, 1], np.int8)),
        "note": "ab",
    }


def _obs_msg(**leaves: values_pb2.Value) -> values_pb2.Value:
    """A valid OBS message with some leaves replaced by raw messages."""
    msg = encode(OBS, _good_obs())
    for entry in msg.dict.entries:
        if entry.str_key in leaves:
            entry.value.CopyFrom(leaves[entry.str_key])
    return parse_value(msg.SerializeToString())


def _tensor_value(array: Any, kind: str = "array") -> values_pb2.Value:
    return values_pb2.Value(**{kind: array_to_tensor(np.asarray(array))})


def _with_exact(canonical: values_pb2.Value, exact: values_pb2.Value) -> values_pb2.Value:
    canonical.exact.CopyFrom(exact)
    return canonical


DECODE_MISMATCHES = [
    pytest.param(
        _obs_msg(camera=_tensor_value(np.zeros((4, 4, 3), np.float32))),
        "obs['camera']", ["dtype uint8", "dtype float32"], id="wrong-dtype",
    ),
    pytest.param(
        _obs_msg(camera=_tensor_value(np.zeros((4, 4, 3), np.int8))),
        "obs['camera']", ["dtype uint8", "dtype int8"], id="wrong-dtype-same-size",
    ),
    pytest.param(
        _obs_msg(camera=_tensor_value(np.zeros((3, 4, 4), np.uint8))),
        "obs['camera']", ["shape (4, 4, 3)", "shape (3, 4, 4)"], id="wrong-shape",
    ),
    pytest.param(
        _obs_msg(camera=_tensor_value(np.zeros(48, np.uint8))),
        "obs['camera']", ["shape (4, 4, 3)", "shape (48,)"], id="flattened",
    ),
    pytest.param(
        _obs_msg(pos=_tensor_value(np.array([0.0, 2.5]))),
        "obs['pos']", ["bounds", "2.5", "index (1,)"], id="box-above-high",
    ),
    pytest.param(
        _obs_msg(pos=_tensor_value(np.array([-1.5, 1.0]))),
        "obs['pos']", ["bounds", "-1.5", "index (0,)"], id="box-below-low",
    ),
    pytest.param(
        _obs_msg(pos=_tensor_value(np.array([np.nan, 1.0]))),
        "obs['pos']", ["bounds", "nan"], id="box-nan",
    ),
    pytest.param(
        _obs_msg(mode=_tensor_value(np.int64(2), "scalar")),
        "obs['mode']", ["[-1, 2)", "got 2"], id="discrete-out-of-range",
    ),
    pytest.param(
        _obs_msg(mode=_tensor_value(np.int32(0), "scalar")),
        "obs['mode']", ["int64 scalar", "int32 scalar"], id="discrete-wrong-dtype",
    ),
    pytest.param(
        _obs_msg(mode=_tensor_value(np.array([0]))),
        "obs['mode']", ["a scalar value", "got array value"], id="discrete-as-array",
    ),
    pytest.param(
        _obs_msg(mode=values_pb2.Value(int_value=0)),
        "obs['mode']", ["a scalar value", "int_value"], id="discrete-as-int",
    ),
    pytest.param(
        _obs_msg(pos=encode_object([0.0, 1.0])),
        "obs['pos']", ["a array value", "list value"], id="box-as-list-without-canonical-form",
    ),
    pytest.param(
        _obs_msg(mode=_with_exact(_tensor_value(np.int64(0), "scalar"), encode_object(0.5))),
        "obs['mode']", ["an integer", "float 0.5"], id="discrete-exact-not-an-integer",
    ),
    pytest.param(
        _obs_msg(mode=_with_exact(_tensor_value(np.int64(0), "scalar"), encode_object(7))),
        "obs['mode']", ["[-1, 2)", "7"], id="discrete-exact-out-of-range",
    ),
    pytest.param(
        _obs_msg(pos=_with_exact(_tensor_value(np.array([0.0, 1.0])), encode_object(["a", "b"]))),
        "obs['pos']", ["float64 values", "list"], id="box-exact-not-numbers",
    ),
    pytest.param(
        _obs_msg(pos=_with_exact(_tensor_value(np.array([0.0, 1.0])), encode_object([0.0]))),
        "obs['pos']", ["shape (2,)", "list"], id="box-exact-wrong-shape",
    ),
    pytest.param(
        _obs_msg(pos=_with_exact(_tensor_value(np.array([0.0, 1.0])), encode_object([0.0, 5.0]))),
        "obs['pos']", ["bounds", "5.0"], id="box-exact-out-of-bounds",
    ),
    pytest.param(
        _obs_msg(camera=_with_exact(_tensor_value(np.zeros((4, 4, 3), np.uint8)), encode_object(np.zeros((4, 4, 3), np.float32)))),
        "obs['camera']", ["dtype uint8", "not safely castable"], id="box-exact-unsafe-dtype",
    ),
    pytest.param(
        _obs_msg(arm=values_pb2.Value(tuple=values_pb2.ListValue(items=[_tensor_value(np.array([1, 2]))]))),
        "obs['arm']", ["2 items", "1 items"], id="tuple-too-short",
    ),
    pytest.param(
        _obs_msg(arm=values_pb2.Value(list=values_pb2.ListValue())),
        "obs['arm']", ["a tuple value", "list value"], id="tuple-as-list",
    ),
    pytest.param(
        _obs_msg(arm=_wire(OBS["arm"], (np.array([1, 3]), np.array([0, 1], np.int8)))),
        "obs['arm'][0]", ["bounds", "3"], id="multidiscrete-out-of-range",
    ),
    pytest.param(
        _obs_msg(arm=values_pb2.Value(tuple=values_pb2.ListValue(items=[
            _tensor_value(np.array([1, 2])), _tensor_value(np.array([0, 2], np.int8))]))),
        "obs['arm'][1]", ["only 0s and 1s"], id="multibinary-2",
    ),
    pytest.param(_obs_msg(note=values_pb2.Value(text="abcab")), "obs['note']", ["[1, 4]", "5 characters"], id="text-too-long"),
    pytest.param(_obs_msg(note=values_pb2.Value(text="")), "obs['note']", ["[1, 4]", "0 characters"], id="text-too-short"),
    pytest.param(_obs_msg(note=values_pb2.Value(text="abz")), "obs['note']", ["charset", "'z'"], id="text-bad-charset"),
    pytest.param(
        _obs_msg(note=values_pb2.Value(bytes_value=b"ab")), "obs['note']", ["a text value", "bytes_value"], id="text-as-bytes"
    ),
    pytest.param(
        _obs_msg(camera=values_pb2.Value(text="hello")), "obs['camera']", ["a array value", "text value"], id="box-as-text"
    ),
    pytest.param(_obs_msg(camera=values_pb2.Value()), "obs['camera']", ["a array value", "empty value"], id="box-empty"),
]


def _dict_msg(keys: list[str]) -> values_pb2.Value:
    good = encode(OBS, _good_obs())
    by_key = {e.str_key: e.value for e in good.dict.entries}
    entries = [values_pb2.MapEntry(str_key=k, value=by_key.get(k, values_pb2.Value(text="x"))) for k in keys]
    return values_pb2.Value(dict=values_pb2.MapValue(entries=entries))


DECODE_MISMATCHES += [
    pytest.param(_dict_msg(["camera", "pos", "mode", "arm"]), "obs", ["keys", "missing ['note']"], id="dict-missing-key"),
    pytest.param(
        _dict_msg(["camera", "pos", "mode", "arm", "note", "extra"]), "obs", ["keys", "unexpected ['extra']"], id="dict-extra-key"
    ),
    pytest.param(_dict_msg(["camera", "pos", "mode", "arm", "note", "note"]), "obs", ["repeated"], id="dict-repeated-key"),
    pytest.param(
        values_pb2.Value(dict=values_pb2.MapValue(entries=[values_pb2.MapEntry(int_key=1)])), "obs", ["str keys", "1"],
        id="dict-int-key",
    ),
    pytest.param(values_pb2.Value(tuple=values_pb2.ListValue()), "obs", ["a dict value", "tuple value"], id="dict-as-tuple"),
]


@pytest.mark.parametrize("msg, path, fragments", DECODE_MISMATCHES)
def test_decode_rejects_messages_that_do_not_fit(msg: values_pb2.Value, path: str, fragments: list[str]) -> None:
    with pytest.raises(SpaceMismatchError) as info:
        decode(OBS, msg, path="obs")
    err = info.value
    assert isinstance(err, CogmentGymError) and isinstance(err, ValueError)
    assert err.path == path
    message = str(err)
    assert message.startswith(f"{path} does not fit "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_decode_accepts_the_good_message() -> None:
    decoded = decode(OBS, _obs_msg(), path="obs")
    assert OBS.contains(decoded)


@pytest.mark.parametrize(
    "space, value, path, fragments",
    [
        pytest.param(
            spaces.Graph(spaces.Discrete(3), spaces.Discrete(2)),
            values_pb2.Value(graph=values_pb2.GraphValue(
                nodes=encode(spaces.Box(0, 2, (2,), np.int64), np.array([0, 1])).array,
                edges=encode(spaces.Box(0, 2, (1,), np.int64), np.array([1])).array,
                edge_links=encode(spaces.Box(0, 5, (1, 2), np.int64), np.array([[0, 2]])).array,
            )),
            "g.edge_links", ["below 2"], id="graph-link-to-missing-node",
        ),
        pytest.param(
            spaces.Graph(spaces.Discrete(3), None),
            values_pb2.Value(graph=values_pb2.GraphValue(nodes=encode(spaces.Box(0, 5, (2,), np.int64), np.array([0, 3])).array)),
            "g.nodes", ["every item inside Discrete(3)"], id="graph-node-out-of-space",
        ),
        pytest.param(
            spaces.Graph(spaces.Discrete(3), None),
            values_pb2.Value(graph=values_pb2.GraphValue(
                nodes=encode(spaces.Box(0, 2, (2,), np.int64), np.array([0, 1])).array,
                edges=encode(spaces.Box(0, 2, (1,), np.int64), np.array([1])).array,
            )),
            "g", ["edges and edge_links together"], id="graph-edges-without-edge-space",
        ),
        pytest.param(
            spaces.OneOf((spaces.Discrete(2), spaces.Text(2))),
            values_pb2.Value(one_of=values_pb2.OneOfValue(index=2, value=values_pb2.Value(text="a"))),
            "g", ["an index in [0, 2)", "got 2"], id="oneof-index",
        ),
        pytest.param(
            spaces.OneOf((spaces.Discrete(2), spaces.Text(2))),
            values_pb2.Value(one_of=values_pb2.OneOfValue(index=0, value=values_pb2.Value(text="a"))),
            "g[1]", ["a scalar value", "text value"], id="oneof-wrong-branch",
        ),
        pytest.param(
            spaces.Sequence(spaces.Discrete(2), stack=True),
            values_pb2.Value(tuple=values_pb2.ListValue(items=[encode(spaces.Discrete(3), 2)])),
            "g[0]", ["[0, 2)"], id="sequence-item",
        ),
        pytest.param(
            spaces.Box(0, 1, (), np.float32),
            _tensor_value(np.array(2.0, np.float32)),
            "g", ["bounds", "2.0"], id="0d-box-out-of-bounds",
        ),
    ],
)
def test_decode_rejects_bad_composites(space: spaces.Space[Any], value: values_pb2.Value, path: str, fragments: list[str]) -> None:
    with pytest.raises(SpaceMismatchError) as info:
        decode(space, parse_value(value.SerializeToString()), path="g")
    assert info.value.path == path
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {info.value}"


def test_full_range_integer_boxes_accept_extremes() -> None:
    for name in ("int8", "int64", "uint8", "uint64"):
        space = SPACE_ZOO[f"box-{name}-full-range"]
        info = np.iinfo(name)
        value = np.array([[info.min, info.max], [info.max, info.min]], dtype=name)
        assert_value_equal(decode(space, _wire(space, value)), value)


# Cases above that break only the space's bounds (structure, dtype and shape are right).
BOUNDS_ONLY = {
    "box-above-high": ("pos", np.array([0.0, 2.5])),
    "box-below-low": ("pos", np.array([-1.5, 1.0])),
    "box-nan": ("pos", np.array([np.nan, 1.0])),
    "discrete-out-of-range": ("mode", np.int64(2)),
    "multidiscrete-out-of-range": ("arm", (np.array([1, 3]), np.array([0, 1], np.int8))),
    "multibinary-2": ("arm", (np.array([1, 2]), np.array([0, 2], np.int8))),
    "discrete-exact-out-of-range": ("mode", 7),  # the form it was given in: a Python int
    "box-exact-out-of-bounds": ("pos", [0.0, 5.0]),
}


MISMATCH_BY_ID = {p.id: p.values for p in DECODE_MISMATCHES}


@pytest.mark.parametrize("case_id", sorted(BOUNDS_ONLY))
def test_decode_without_bounds_returns_values_outside_them(case_id: str) -> None:
    msg, _path, _fragments = MISMATCH_BY_ID[case_id]
    value = decode(OBS, msg, "obs", bounds=False)
    key, expected = BOUNDS_ONLY[case_id]
    assert list(value) == list(OBS.spaces)
    assert_value_equal(value[key], expected)
    assert not OBS[key].contains(value[key])


@pytest.mark.parametrize("case_id", sorted(set(MISMATCH_BY_ID) - set(BOUNDS_ONLY)))
def test_decode_without_bounds_still_checks_structure_dtype_and_shape(case_id: str) -> None:
    msg, path, fragments = MISMATCH_BY_ID[case_id]
    with pytest.raises(SpaceMismatchError) as info:
        decode(OBS, msg, "obs", bounds=False)
    assert info.value.path == path
    for fragment in fragments:
        assert fragment in str(info.value)


def test_decode_without_bounds_reaches_graph_nodes_and_one_of_branches() -> None:
    graph = spaces.Graph(node_space=spaces.Box(0, 1, (2,), np.float32), edge_space=spaces.Discrete(3))
    nodes = np.array([[0.5, 4.0]], np.float32)
    instance = spaces.GraphInstance(nodes, np.array([5]), np.array([[0, 0]]))
    msg = encode(spaces.Graph(node_space=spaces.Box(0, 9, (2,), np.float32), edge_space=spaces.Discrete(9)), instance)
    with pytest.raises(SpaceMismatchError):
        decode(graph, msg, "g")
    back = decode(graph, msg, "g", bounds=False)
    assert_value_equal(back.nodes, nodes)
    assert_value_equal(back.edges, np.array([5]))
    one_of = spaces.OneOf([spaces.Discrete(2), spaces.Box(0, 1, (1,), np.float32)])
    msg = encode(spaces.OneOf([spaces.Discrete(2), spaces.Box(0, 7, (1,), np.float32)]), (1, np.array([7.0], np.float32)))
    with pytest.raises(SpaceMismatchError):
        decode(one_of, msg, "o")
    index, inner = decode(one_of, msg, "o", bounds=False)
    assert index == 1
    assert_value_equal(inner, np.array([7.0], np.float32))


def test_encode_without_bounds_lets_discrete_values_outside_their_range_through() -> None:
    space = spaces.Dict({"d": spaces.Discrete(3), "t": spaces.Tuple((spaces.Discrete(2, start=1),))})
    value = {"d": np.int64(5), "t": (np.int64(0),)}
    with pytest.raises(SpaceMismatchError, match=r"\[0, 3\)"):
        encode(space, value)
    msg = encode(space, value, bounds=False)
    assert decode(space, msg, bounds=False) == value
    with pytest.raises(SpaceMismatchError):
        decode(space, msg)
    with pytest.raises(SpaceMismatchError, match="an integer"):  # structure is still checked
        encode(space, {"d": 1.5, "t": (np.int64(1),)}, bounds=False)
