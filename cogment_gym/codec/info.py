"""``info`` dicts (and other plain Python data) <-> ``cogment_gym.v1.Value``.

What travels, with its type kept exactly:

==========================  ==========================================
Python                      decoded as
==========================  ==========================================
``None``                    ``None``
``bool``                    ``bool``
``int`` (any size)          ``int``
``float``                   ``float`` (NaN, infinities and -0.0 kept)
``str``, ``bytes``          ``str``, ``bytes``
numpy array (numeric/bool)  read-only array, same dtype and shape
numpy scalar                numpy scalar of the same dtype
``dict`` (str/int keys)     ``dict``, insertion order kept
``OrderedDict``             ``OrderedDict``, order kept
``list``, ``tuple``         ``list``, ``tuple``
==========================  ==========================================

Other subclasses of dict, list and tuple (defaultdict, namedtuple, ...) decode as the plain
builtin; subclasses of OrderedDict as OrderedDict.
Anything else (objects, sets, complex, object or string arrays, nesting deeper than 32 levels,
ints with more than 4300 decimal digits) raises :class:`~cogment_gym.errors.UnsupportedValueError`
naming the key where it was found.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, cast

import numpy as np

from cogment_gym._proto.cogment_gym.v1 import values_pb2
from cogment_gym.codec.building import list_value
from cogment_gym.codec.tensor import array_to_tensor, tensor_to_array, tensor_to_scalar
from cogment_gym.errors import MalformedMessageError, UnsupportedValueError

__all__ = ["decode_info", "decode_object", "encode_info", "encode_object"]

Value = values_pb2.Value
# Containers nested deeper than this do not travel. protobuf parsers refuse messages nested
# deeper than 100 levels; a dict level costs 3 (Value, MapValue, MapEntry), and the payload that
# carries an info dict and a leaf's Tensor add one each: 1 + 3 * 32 + 1 + 1 = 99.
MAX_DEPTH = 32
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def encode_object(obj: Any, path: str = "info", _depth: int = 0) -> Value:
    """Encode plain Python/numpy data (see the module docstring for what is supported)."""
    if _depth > MAX_DEPTH:
        raise UnsupportedValueError(f"{path}: nesting deeper than {MAX_DEPTH} levels (a cycle?)")
    if obj is None:
        return Value(none=values_pb2.NoneValue())
    # numpy scalars first: np.float64 is a float subclass and must come back as np.float64.
    # (np.str_ / np.bytes_ are str / bytes subclasses and travel as those.)
    if isinstance(obj, np.generic) and not isinstance(obj, (np.str_, np.bytes_)):
        try:
            msg = Value()
            array_to_tensor(obj, out=msg.scalar)
            return msg
        except UnsupportedValueError as err:
            raise UnsupportedValueError(f"{path}: {err}") from err
    if isinstance(obj, bool):
        return Value(bool_value=obj)
    if isinstance(obj, int):
        if _INT64_MIN <= obj <= _INT64_MAX:
            return Value(int_value=obj)
        try:
            decimal = str(int(obj))
        except ValueError as err:  # more digits than sys.get_int_max_str_digits() allows
            raise UnsupportedValueError(f"{path}: int too large to travel ({err})") from err
        return Value(big_int=values_pb2.BigInt(decimal=decimal))
    if isinstance(obj, float):
        return Value(float_value=obj)
    if isinstance(obj, str):
        return Value(text=obj)
    if isinstance(obj, (bytes, bytearray)):
        return Value(bytes_value=bytes(obj))
    if isinstance(obj, np.ndarray):
        try:
            msg = Value()
            array_to_tensor(obj, out=msg.array)
            return msg
        except UnsupportedValueError as err:
            raise UnsupportedValueError(f"{path}: {err}") from err
    if isinstance(obj, dict):
        msg = Value()
        msg.dict.SetInParent()  # {} still travels as a dict
        if isinstance(obj, OrderedDict):
            msg.dict.type = values_pb2.MAP_TYPE_ORDERED_DICT
        entries = msg.dict.entries
        for key, item in obj.items():
            item_path = f"{path}[{key!r}]"
            if isinstance(key, str):
                entry = entries.add(str_key=key)
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and _INT64_MIN <= key <= _INT64_MAX:
                entry = entries.add(int_key=int(key))
            else:
                raise UnsupportedValueError(
                    f"{path}: dict key {key!r} ({type(key).__name__}) cannot travel; expected str or int keys"
                )
            entry.value.CopyFrom(encode_object(item, item_path, _depth + 1))
        return msg
    if isinstance(obj, (list, tuple)):
        items = [encode_object(item, f"{path}[{i}]", _depth + 1) for i, item in enumerate(obj)]
        return list_value(items, "list" if isinstance(obj, list) else "tuple")
    raise UnsupportedValueError(
        f"{path}: a {type(obj).__qualname__} cannot travel; expected None, bool, int, float, str, bytes, "
        "a numeric numpy array or scalar, or a dict/list/tuple of those"
    )


def decode_object(msg: Value, path: str = "info", _depth: int = 0) -> Any:
    """Decode data encoded by :func:`encode_object`."""
    if _depth > MAX_DEPTH:
        raise MalformedMessageError(f"{path}: nesting deeper than {MAX_DEPTH} levels")
    kind = msg.WhichOneof("kind")
    if kind == "none":
        return None
    if kind == "bool_value":
        return msg.bool_value
    if kind == "int_value":
        return msg.int_value
    if kind == "big_int":
        try:
            return int(msg.big_int.decimal)
        except ValueError as err:
            raise MalformedMessageError(f"{path}: {msg.big_int.decimal[:40]!r} is not a decimal integer") from err
    if kind == "float_value":
        return msg.float_value
    if kind == "text":
        return msg.text
    if kind == "bytes_value":
        return msg.bytes_value
    if kind == "array":
        return tensor_to_array(msg.array)
    if kind == "scalar":
        return tensor_to_scalar(msg.scalar)
    if kind == "dict":
        out: dict[Any, Any] = OrderedDict() if msg.dict.type == values_pb2.MAP_TYPE_ORDERED_DICT else {}
        for entry in msg.dict.entries:
            key_kind = entry.WhichOneof("key")
            if key_kind is None:
                raise MalformedMessageError(f"{path}: dict entry without a key")
            key = getattr(entry, key_kind)
            out[key] = decode_object(entry.value, f"{path}[{key!r}]", _depth + 1)
        return out
    if kind in ("list", "tuple"):
        items = [decode_object(item, f"{path}[{i}]", _depth + 1) for i, item in enumerate(getattr(msg, kind).items)]
        return items if kind == "list" else tuple(items)
    raise MalformedMessageError(f"{path}: a {kind or 'empty'} value is not plain data")


def encode_info(info: dict[str, Any]) -> Value:
    """Encode a Gymnasium ``info`` dict.

    Example:
        >>> import numpy as np
        >>> decode_info(encode_info({"lives": 3, "pos": np.zeros(2, np.float32)}))
        {'lives': 3, 'pos': array([0., 0.], dtype=float32)}

    Raises:
        UnsupportedValueError: an entry has no wire form; the message names its key.
    """
    if not isinstance(info, dict):
        raise UnsupportedValueError(f"info must be a dict, got {type(info).__qualname__}")
    return encode_object(info, "info")


def decode_info(msg: Value | None) -> dict[Any, Any]:
    """Decode an ``info`` dict; an absent or empty message gives ``{}``."""
    if msg is None or msg.WhichOneof("kind") is None:
        return {}
    if msg.WhichOneof("kind") != "dict":
        raise MalformedMessageError(f"info must be a dict value, got a {msg.WhichOneof('kind')} value")
    return cast("dict[Any, Any]", decode_object(msg, "info"))

