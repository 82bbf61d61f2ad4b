"""``info`` dicts and plain data survive ``encode_info`` / ``decode_info`` with their types."""

from __future__ import annotations

import math
import struct
from collections import OrderedDict, defaultdict, namedtuple
from typing import Any

import numpy as np
import pytest

from cogment_gym._proto.cogment_gym.v1 import values_pb2
from cogment_gym.codec import decode_info, decode_object, encode_info, encode_object, parse_value
from cogment_gym.codec.info import MAX_DEPTH
from cogment_gym.errors import CogmentGymError, MalformedMessageError, UnsupportedValueError

from .space_zoo import assert_value_equal


def _round_trip(info: Any) -> Any:
    return decode_info(parse_value(encode_info(info).SerializeToString()))


def _nan_with_payload(payload: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000 | payload))[0]
    return value


RICH_INFO: dict[str, Any] = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "int": -42,
    "int64-max": 2**63 - 1,
    "int64-min": -(2**63),
    "big": 2**64,
    "big-negative": -(10**40) - 7,
    "float": 0.1,
    "neg-zero": -0.0,
    "nan": float("nan"),
    "nan-payload": _nan_with_payload(0x1234),
    "inf": float("inf"),
    "-inf": float("-inf"),
    "tiny": 5e-324,
    "str": "héllo\n漢",
    "empty-str": "",
    "bytes": b"\x00\xff\x10",
    "empty-bytes": b"",
    "f32": np.float32(1.5),
    "f16": np.float16(-0.0),
    "f64": np.float64(2.25),
    "f64-nan": np.float64("nan"),
    "i8": np.int8(-3),
    "u64": np.uint64(2**64 - 1),
    "np-bool": np.bool_(True),
    "c64": np.complex64(1 + 2j),
    "arr-f32": np.arange(6, dtype=np.float32).reshape(2, 3),
    "arr-u8": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
    "arr-bool": np.array([True, False]),
    "arr-0d": np.array(7, np.int16),
    "arr-empty": np.zeros((0, 3), np.float64),
    "arr-nan": np.array([np.nan, -0.0, np.inf], np.float64),
    "arr-f16": np.array([1.0, -2.5], np.float16),
    "arr-c128": np.array([1 + 1j], np.complex128),
    "list": [1, "a", None, [2.5, (3,)]],
    "tuple": (1, (2, [3]), ()),
    "empty-list": [],
    "empty-tuple": (),
    "nested": {"a": {"b": {"c": [np.int32(1), {"d": np.zeros(2, np.uint16)}]}}},
    "empty-dict": {},
}


def test_rich_info_round_trips_exactly() -> None:
    assert_value_equal(_round_trip(RICH_INFO), RICH_INFO, "info")


@pytest.mark.parametrize("key", list(RICH_INFO), ids=list(RICH_INFO))
def test_each_info_entry_round_trips(key: str) -> None:
    """One entry at a time, so a failure names the type at fault."""
    assert_value_equal(_round_trip({key: RICH_INFO[key]})[key], RICH_INFO[key], key)


def test_numpy_scalar_types_are_kept() -> None:
    out = _round_trip({"f32": np.float32(1.5), "b": np.bool_(False), "f64": np.float64(1.0), "i": np.int64(3)})
    assert type(out["f32"]) is np.float32
    assert type(out["b"]) is np.bool_
    assert type(out["f64"]) is np.float64, "np.float64 is a float subclass but must stay np.float64"
    assert type(out["i"]) is np.int64
    assert type(_round_trip({"x": 1.0})["x"]) is float
    assert type(_round_trip({"x": True})["x"]) is bool
    assert type(_round_trip({"x": 1})["x"]) is int


def test_special_floats_keep_their_bits() -> None:
    out = _round_trip({"nz": -0.0, "nan": _nan_with_payload(5), "inf": math.inf})
    assert math.copysign(1.0, out["nz"]) == -1.0
    assert struct.pack("<d", out["nan"]) == struct.pack("<d", _nan_with_payload(5))
    assert out["inf"] == math.inf


def test_arrays_in_info_are_read_only_views_of_their_dtype() -> None:
    out = _round_trip({"a": np.arange(4, dtype=np.uint16)})["a"]
    assert out.dtype == np.uint16 and out.shape == (4,) and not out.flags.writeable


def test_int_keys_and_key_order() -> None:
    info = {"z": 1, 3: "three", "a": 2, -(2**63): "min", 10: {5: 6}}
    out = _round_trip(info)
    assert_value_equal(out, info)
    assert list(out) == ["z", 3, "a", -(2**63), 10]
    out = _round_trip({np.int64(4): 1})
    assert list(out) == [4] and type(next(iter(out))) is int


def test_big_int_travels_as_decimal() -> None:
    msg = encode_info({"n": 2**64 + 1})
    assert msg.dict.entries[0].value.WhichOneof("kind") == "big_int"
    assert msg.dict.entries[0].value.big_int.decimal == str(2**64 + 1)
    assert encode_info({"n": 2**63 - 1}).dict.entries[0].value.WhichOneof("kind") == "int_value"


def test_container_subclasses_decode_as_builtins_except_ordered_dict() -> None:
    point = namedtuple("point", "x y")
    out = _round_trip({"od": OrderedDict(b=1, a=2), "nt": point(1, 2), "dd": defaultdict(int, z=1, y=2), "plain": {"b": 1, "a": 2}})
    assert type(out["od"]) is OrderedDict and list(out["od"]) == ["b", "a"]
    assert type(out["nt"]) is tuple and out["nt"] == (1, 2)
    assert type(out["dd"]) is dict and list(out["dd"]) == ["z", "y"]
    assert type(out["plain"]) is dict and list(out["plain"]) == ["b", "a"]


def test_empty_and_absent_info() -> None:
    assert decode_info(None) == {}
    assert decode_info(values_pb2.Value()) == {}
    assert _round_trip({}) == {}


def test_encode_object_handles_non_dict_roots() -> None:
    for obj in ([1, 2.5], (None,), "s", 3, np.zeros(2, np.int8)):
        assert_value_equal(decode_object(parse_value(encode_object(obj).SerializeToString())), obj)


# ---------------------------------------------------------------------------------------------
# Unsupported values


def _self_referencing() -> dict[str, Any]:
    d: dict[str, Any] = {"inner": {}}
    d["inner"]["loop"] = d
    return d


def _self_referencing_list() -> dict[str, Any]:
    items: list[Any] = []
    items.append(items)
    return {"items": items}


@pytest.mark.parametrize(
    "info, path_fragment",
    [
        pytest.param({"obj": object()}, "info['obj']", id="object"),
        pytest.param({"s": {1, 2}}, "info['s']", id="set"),
        pytest.param({"fs": frozenset()}, "info['fs']", id="frozenset"),
        pytest.param({"c": 1 + 2j}, "info['c']", id="complex"),
        pytest.param({"a": {"b": [0, np.array([object()], dtype=object)]}}, "info['a']['b'][1]", id="object-array"),
        pytest.param({"strs": np.array(["a", "b"])}, "info['strs']", id="str-array"),
        pytest.param({"dt": np.array(["2020-01-01"], dtype="datetime64[D]")}, "info['dt']", id="datetime-array"),
        pytest.param({"rec": np.zeros(2, dtype=[("x", "f4")])}, "info['rec']", id="structured-array"),
        pytest.param({"np-str": np.str_("x"), "after": 1}, None, id="np-str-scalar-is-str"),
        pytest.param({"f": len}, "info['f']", id="function"),
        pytest.param({(1, 2): 3}, "dict key (1, 2)", id="tuple-key"),
        pytest.param({"d": {1.5: 3}}, "info['d']: dict key 1.5", id="float-key"),
        pytest.param({True: 1}, "dict key True", id="bool-key"),
        pytest.param({2**64: 1}, "dict key", id="big-int-key"),
        pytest.param(_self_referencing(), "info['inner']['loop']['inner']", id="self-referencing-dict"),
        pytest.param(_self_referencing_list(), "info['items'][0][0]", id="self-referencing-list"),
        pytest.param({"huge": 10**5000}, "info['huge']", id="int-too-long-for-decimal"),
    ],
)
def test_unsupported_values_raise_naming_the_key(info: dict[Any, Any], path_fragment: str | None) -> None:
    if path_fragment is None:  # documented: str subclasses travel as str
        out = _round_trip(info)
        assert type(out["np-str"]) is str and out["np-str"] == "x"
        return
    with pytest.raises(UnsupportedValueError) as err:
        encode_info(info)
    assert isinstance(err.value, CogmentGymError) and isinstance(err.value, TypeError)
    assert path_fragment in str(err.value), str(err.value)


def test_info_must_be_a_dict() -> None:
    with pytest.raises(UnsupportedValueError, match="info must be a dict"):
        encode_info([1, 2])  # type: ignore[arg-type]
    with pytest.raises(MalformedMessageError, match="info must be a dict"):
        decode_info(encode_object([1, 2]))


def _nest(kind: str, levels: int, leaf: Any) -> Any:
    for _ in range(levels):
        leaf = {"k": leaf} if kind == "dict" else [leaf]
    return leaf


@pytest.mark.parametrize("kind", ["dict", "list"])
def test_whatever_encodes_also_parses_and_decodes(kind: str) -> None:
    """The nesting limit must hold on both sides, also inside the payload that carries info."""
    from cogment_gym._proto.cogment_gym.v1 import env_pb2

    # info itself is one level; MAX_DEPTH levels below it hold the deepest leaf (an array).
    deepest = {"d": _nest(kind, MAX_DEPTH - 1, np.zeros(2, np.float32))}
    payload = env_pb2.ObservationPayload(info=encode_info(deepest))
    parsed = env_pb2.ObservationPayload.FromString(payload.SerializeToString())
    assert_value_equal(decode_info(parsed.info), deepest)
    with pytest.raises(UnsupportedValueError, match=f"deeper than {MAX_DEPTH}"):
        encode_info({"d": _nest(kind, MAX_DEPTH, np.zeros(2, np.float32))})
    # Anything deeper, built by hand, is refused by the parser or the decoder as malformed.
    too_deep = values_pb2.Value(
        dict=values_pb2.MapValue(entries=[values_pb2.MapEntry(str_key="d", value=encode_object(_nest(kind, MAX_DEPTH, 0)))])
    )
    with pytest.raises(MalformedMessageError):
        decode_info(parse_value(too_deep.SerializeToString()))


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param(values_pb2.Value(dict=values_pb2.MapValue(entries=[values_pb2.MapEntry()])), id="entry-without-key"),
        pytest.param(values_pb2.Value(big_int=values_pb2.BigInt(decimal="12a")), id="bad-big-int"),
        pytest.param(values_pb2.Value(graph=values_pb2.GraphValue()), id="graph"),
        pytest.param(values_pb2.Value(custom=b"x"), id="custom"),
        pytest.param(values_pb2.Value(one_of=values_pb2.OneOfValue()), id="one-of"),
    ],
)
def test_decode_object_rejects_non_plain_data(msg: values_pb2.Value) -> None:
    with pytest.raises(MalformedMessageError):
        decode_object(parse_value(msg.SerializeToString()))
