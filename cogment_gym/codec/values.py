"""Values of Gymnasium spaces <-> ``cogment_gym.v1.Value``.

Values are encoded leaf by leaf following their space: a Box value is one Tensor of the Box's
dtype and shape, a Dict value a map of its entries' encodings, and so on. Nothing is flattened.
Decoding checks the message against the space (structure, dtype, shape, and bounds unless told
not to: observations) and raises :class:`~cogment_gym.errors.SpaceMismatchError` naming the path
of the offending leaf.

Types are kept: a value decodes as the Python / numpy objects it was encoded from, as long as it
fits the space the way Gymnasium's ``contains`` defines it (bounds aside with ``bounds=False``).
A Discrete value given as a Python ``int`` comes back as ``int``, as ``np.int32`` as ``np.int32``,
as a 0-d array as a 0-d array; a Box value given as a list of numbers as that list, as an int32
array for an int64 Box as an int32 array; a Dict value in its own key order (not the space's),
an ``OrderedDict`` as an ``OrderedDict``; a list for a Tuple as a list. On the wire the value is
in its space's canonical form, which any reader understands, plus what tells the form it was
given in (``Value.exact`` and a few flags, see ``values.proto``). Where a type must change it is
said here:

- numpy arrays arrive read-only, native byte order, C-contiguous; ndarray subclasses (masked
  arrays, ``np.matrix``) as plain ndarrays; nested lists (a 2-d Box given as a list of lists) and
  objects that only ``np.asarray`` understands (``__array__``) as the space's array: their form
  would nest the message deeper than protobuf parses for the deepest spaces;
- mappings that are neither ``dict`` nor ``OrderedDict`` as ``dict``; ``np.str_`` as ``str``;
- a OneOf index that is neither a Python ``int`` nor ``np.int64`` as ``np.int64``;
- a stacked Sequence as Gymnasium's ``concatenate`` builds it.

Spaces with no codec (neither Gymnasium's nor registered, nor a subclass of one) are handled by
their standard form (see :mod:`cogment_gym.codec.foreign`).

``path`` arguments name the value in error messages (``"obs"`` gives ``obs['camera'][2]``).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from functools import singledispatch
from typing import Any, Callable, TypeVar, cast

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import concatenate, create_empty_array, iterate
from google.protobuf.message import Message

from cogment_gym._proto.cogment_gym.v1 import tensor_pb2, values_pb2
from cogment_gym.codec.building import list_value, nesting_depth
from cogment_gym.codec.foreign import standard_form
from cogment_gym.codec.info import decode_object, encode_object
from cogment_gym.codec.tensor import array_to_tensor, tensor_to_array, tensor_to_scalar
from cogment_gym.errors import MalformedMessageError, SpaceMismatchError, UnsupportedSpaceError, UnsupportedValueError

__all__ = ["decode", "encode", "parse_message", "parse_value"]

M = TypeVar("M", bound=Message)

Value = values_pb2.Value


def _mismatch(path: str, space: spaces.Space[Any], expected: str, got: object) -> SpaceMismatchError:
    return SpaceMismatchError(f"{path} does not fit {space!r}: expected {expected}, got {got}", path=path)


def describe_value(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    if isinstance(value, np.generic):
        return f"{type(value).__name__}({value!r})"
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"


def _kind(msg: Value, want: str, path: str, space: spaces.Space[Any]) -> None:
    kind = msg.WhichOneof("kind")
    if kind != want:
        raise _mismatch(path, space, f"a {want} value", f"{kind or 'an empty'} value")


# ---------------------------------------------------------------------------------------------
# Bounds checks, prepared once per Box / MultiDiscrete object (spaces are treated as immutable).


class _Bounds:
    """Inclusive element-wise bounds with the cheapest sufficient check precomputed."""

    __slots__ = ("low", "high", "check", "__weakref__")

    def __init__(self, low: np.ndarray[Any, Any], high: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> None:
        self.low, self.high = low, high
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            full = bool(np.all(low <= info.min)) and bool(np.all(high >= info.max))
        elif dtype.kind == "b":
            full = bool(np.all(low <= 0)) and bool(np.all(high >= 1))
        else:
            full = False
        if full:
            self.check: Callable[[np.ndarray[Any, Any]], bool] = lambda x: True
        elif low.size and np.all(low == low.flat[0]) and np.all(high == high.flat[0]):
            lo, hi = low.flat[0], high.flat[0]
            # min/max of x avoid allocating boolean arrays; NaN makes both comparisons False.
            self.check = lambda x: x.size == 0 or bool(x.min() >= lo and x.max() <= hi)
        elif low.size <= _SMALL:
            # Few elements: Python comparisons on exact Python numbers beat numpy's per-call cost
            # (~0.4 us against ~4 us for 4 floats). NaN fails both comparisons, as in numpy.
            lows, highs = low.ravel().tolist(), high.ravel().tolist()

            def _check_small(x: np.ndarray[Any, Any]) -> bool:
                for value, lo, hi in zip(x.ravel().tolist(), lows, highs):
                    if not lo <= value <= hi:
                        return False
                return True

            self.check = _check_small
        else:
            self.check = lambda x: bool(np.all(x >= low) and np.all(x <= high))


# Bounds arrays up to this size are checked element by element in Python.
_SMALL = 32

C = TypeVar("C")

_BOUNDS: dict[int, tuple[weakref.ref[Any], Any]] = {}
_DEPTHS: dict[int, tuple[weakref.ref[Any], Any]] = {}


def _cached(table: dict[int, tuple[weakref.ref[Any], Any]], space: spaces.Space[Any], make: Callable[[], C]) -> C:
    """``make()`` computed once per space object (spaces are treated as immutable)."""
    entry = table.get(id(space))
    if entry is not None and entry[0]() is space:
        return cast(C, entry[1])
    value = make()
    key = id(space)

    def _forget(_ref: weakref.ref[Any]) -> None:
        table.pop(key, None)

    table[key] = (weakref.ref(space, _forget), value)
    return value


def _bounds(space: spaces.Space[Any], make: Callable[[], _Bounds]) -> _Bounds:
    return _cached(_BOUNDS, space, make)


# protobuf (upb) refuses to parse messages nested deeper than 100 levels, and a payload wraps a
# Value in up to 3 more (ObservationPayload > BatchedStep > SubEnvEnd): a Value may nest this deep.
MAX_VALUE_DEPTH = 96


def _value_leaf_depth(space: spaces.Space[Any]) -> int:
    if isinstance(space, (spaces.Graph, spaces.Discrete)):
        return 3  # Value > GraphValue > Tensor; Value > exact Value > Tensor (an np.int32 Discrete value)
    dtype = getattr(space, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind in "biufc":
        return 5  # an array leaf given as a list of numpy scalars: Value > exact > ListValue > Value > Tensor
    return 2  # a text or custom leaf


def _check_depth(space: spaces.Space[Any], path: str) -> None:
    depth = _cached(_DEPTHS, space, lambda: nesting_depth(space, _value_leaf_depth))
    if depth > MAX_VALUE_DEPTH:
        raise UnsupportedSpaceError(
            f"{path}: values of {type(space).__name__} spaces nested this deep encode to {depth} message levels; "
            f"at most {MAX_VALUE_DEPTH} can travel inside a payload (protobuf parses 100 levels; flatten the space)"
        )


def _box_bounds(space: spaces.Box) -> _Bounds:
    return _bounds(space, lambda: _Bounds(space.low, space.high, space.dtype))


def _multi_discrete_bounds(space: spaces.MultiDiscrete) -> _Bounds:
    return _bounds(space, lambda: _Bounds(space.start, space.start + space.nvec - 1, space.dtype))


def _as_array_of(space: spaces.Space[Any], value: Any, path: str) -> np.ndarray[Any, Any]:
    """The value as an array of the space's dtype and shape, converting only where lossless."""
    dtype = space.dtype
    if dtype is None:  # every space routed here has one; a subclass that drops it has no array form
        raise UnsupportedSpaceError(f"{path}: {space} has no dtype, so its values have no array form")
    if isinstance(value, np.ndarray):
        array = value
        if array.dtype != dtype:
            if not np.can_cast(array.dtype, dtype, casting="safe"):
                raise _mismatch(path, space, f"dtype {dtype}", f"{describe_value(value)} (not safely castable)")
            array = array.astype(dtype)
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as err:
            raise _mismatch(path, space, f"a {dtype} array", describe_value(value)) from err
        if array.dtype != dtype:
            if array.dtype.kind not in "biuf" or (array.dtype.kind == "f" and dtype.kind in "iub"):
                raise _mismatch(path, space, f"{dtype} values", describe_value(value))
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below
                converted = array.astype(dtype)
            if not np.array_equal(converted, array):
                raise _mismatch(path, space, f"values representable as {dtype}", describe_value(value))
            array = converted
    if array.shape != space.shape:
        raise _mismatch(path, space, f"shape {space.shape}", describe_value(value))
    return array


def _out_of_bounds(
    path: str, space: spaces.Space[Any], array: np.ndarray[Any, Any], low: np.ndarray[Any, Any], high: np.ndarray[Any, Any]
) -> SpaceMismatchError:
    low, high = np.broadcast_to(low, array.shape), np.broadcast_to(high, array.shape)
    outside = np.argwhere(~((array >= low) & (array <= high)))
    where = tuple(int(i) for i in outside[0]) if len(outside) else ()
    return _mismatch(
        path, space, f"values within the bounds (index {where}: [{low[where]}, {high[where]}])",
        f"{array[where]} at index {where} ({describe_value(array)})",
    )


def _array_value(array: np.ndarray[Any, Any]) -> Value:
    # Filling the oneof in place copies the bytes once; Value(array=Tensor(...)) copies them twice.
    msg = Value()
    array_to_tensor(array, out=msg.array)
    return msg


def _decode_array(space: spaces.Space[Any], msg: Value, path: str) -> np.ndarray[Any, Any]:
    _kind(msg, "array", path, space)
    array = tensor_to_array(msg.array)
    if array.dtype != space.dtype:
        raise _mismatch(path, space, f"dtype {space.dtype}", f"dtype {array.dtype}")
    if array.shape != space.shape:
        raise _mismatch(path, space, f"shape {space.shape}", f"shape {array.shape}")
    return array


def _is_number(x: Any) -> bool:
    return isinstance(x, (bool, int, float, np.generic)) or (isinstance(x, np.ndarray) and x.shape == ())


def _exact_form(value: Any, dtype: np.dtype[Any], path: str) -> Value | None:
    """``Value.exact`` of an array leaf given as ``value``; None when the canonical array says it
    all, or when the form cannot travel (see the module docstring)."""
    if isinstance(value, np.ndarray):
        if value.dtype.newbyteorder("=") == dtype:
            return None  # another byte order or an ndarray subclass: the canonical array
    elif isinstance(value, (list, tuple)):
        if not all(_is_number(x) for x in value):
            return None  # nested lists: each level would nest the message two levels deeper
    elif not _is_number(value):
        return None  # an object np.asarray understands: its array
    try:
        return encode_object(value, path)
    except UnsupportedValueError:
        return None


def _encode_array_leaf(space: spaces.Space[Any], value: Any, path: str) -> Value:
    """A Box / MultiDiscrete / MultiBinary (or array-form) value: the canonical array, and the
    form it was given in when that is another."""
    if type(value) is np.ndarray and value.dtype == space.dtype and value.shape == space.shape:
        return _array_value(value)  # the usual case, first
    dtype: Any = space.dtype
    msg = _array_value(_as_array_of(space, value, path))  # raises if it does not fit
    exact = _exact_form(value, dtype, path)
    if exact is not None:
        msg.exact.CopyFrom(exact)
    return msg


def _given_form(space: spaces.Space[Any], msg: Value, path: str, in_bounds: Callable[[np.ndarray[Any, Any]], None] | None) -> Any:
    """An array leaf in the form it was given (``msg.exact``), checked as the canonical one is."""
    value = decode_object(msg.exact, path)
    array = _as_array_of(space, value, path)
    if in_bounds is not None:
        in_bounds(array)
    return value


# ---------------------------------------------------------------------------------------------
# encode


@singledispatch
def encode(space: spaces.Space[Any], value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    """Encode ``value``, a member of ``space``, as a ``cogment_gym.v1.Value`` message.

    Numeric leaves are converted to the space's dtype only when that is lossless (a Python list of
    ints for an int Box, an int32 array for an int64 Box); anything else raises. Array values are
    not checked against bounds here (decoding checks them); a Discrete value is, unless
    ``bounds=False`` (observations: see :func:`decode`).

    Example:
        >>> from gymnasium.spaces import Box
        >>> import numpy as np
        >>> space = Box(0, 1, (2,), np.float32)
        >>> decode(space, encode(space, np.array([0.5, 1.0], np.float32)))
        array([0.5, 1. ], dtype=float32)

    Raises:
        SpaceMismatchError: the value does not have the structure, dtype or shape of the space.
        UnsupportedSpaceError: no codec is registered for the space's type.
    """
    raise UnsupportedSpaceError(
        f"no codec for space type {type(space).__qualname__} ({space!r}); expected a Gymnasium space "
        "or a type registered with cogment_gym.codec.register_space"
    )


@encode.register
def _(space: spaces.Box, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    return _encode_array_leaf(space, value, path)


def _integer(space: spaces.Discrete, value: Any, path: str) -> int:
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu":
        return int(value)
    raise _mismatch(path, space, "an integer", describe_value(value))


@encode.register
def _(space: spaces.Discrete, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    number = _integer(space, value, path)
    if bounds and not int(space.start) <= number < int(space.start) + int(space.n):
        raise _mismatch(path, space, f"an integer in [{space.start}, {space.start + space.n})", number)
    msg = Value()
    array_to_tensor(space.dtype.type(number), out=msg.scalar)
    if type(value) is not space.dtype.type:  # a Python int or bool, another numpy integer, a 0-d array
        msg.exact.CopyFrom(encode_object(value, path))
    return msg


@encode.register
def _(space: spaces.MultiDiscrete, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    return _encode_array_leaf(space, value, path)


@encode.register
def _(space: spaces.MultiBinary, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    return _encode_array_leaf(space, value, path)


@encode.register
def _(space: spaces.Text, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    if not isinstance(value, str):
        raise _mismatch(path, space, "a str", describe_value(value))
    return Value(text=value)


@encode.register
def _(space: spaces.Dict, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    if not hasattr(value, "keys") or not hasattr(value, "__getitem__"):
        raise _mismatch(path, space, "a dict", describe_value(value))
    if set(value.keys()) != set(space.spaces.keys()):
        missing = [k for k in space.spaces if k not in value]
        extra = [k for k in value.keys() if k not in space.spaces]
        raise _mismatch(path, space, f"keys {list(space.spaces)}", f"missing {missing}, unexpected {extra}")
    _check_depth(space, path)
    msg = Value()
    entries = msg.dict.entries
    msg.dict.SetInParent()  # an empty Dict space still has a dict value
    if isinstance(value, OrderedDict):
        msg.dict.type = values_pb2.MAP_TYPE_ORDERED_DICT
    subspaces = space.spaces
    for key in value.keys():  # the value's order, which the decoded dict keeps
        entries.add(str_key=key).value.CopyFrom(encode(subspaces[key], value[key], f"{path}[{key!r}]", bounds=bounds))
    return msg


@encode.register
def _(space: spaces.Tuple, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    if not isinstance(value, (tuple, list)) or len(value) != len(space.spaces):
        raise _mismatch(path, space, f"a tuple of {len(space.spaces)} items", describe_value(value))
    _check_depth(space, path)
    msg = list_value([encode(s, v, f"{path}[{i}]", bounds=bounds) for i, (s, v) in enumerate(zip(space.spaces, value))])
    msg.tuple.as_list = isinstance(value, list)
    return msg


@encode.register
def _(space: spaces.Sequence, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    if space.stack:
        try:
            items = list(iterate(space.stacked_feature_space, value))
        except (TypeError, ValueError, AttributeError, KeyError) as err:
            raise _mismatch(path, space, "a stacked sequence", describe_value(value)) from err
    elif isinstance(value, (tuple, list)):
        items = list(value)
    else:
        raise _mismatch(path, space, "a tuple of elements", describe_value(value))
    feature = space.feature_space
    _check_depth(space, path)
    msg = list_value([encode(feature, v, f"{path}[{i}]", bounds=bounds) for i, v in enumerate(items)])
    msg.tuple.as_list = isinstance(value, list)
    return msg


def _graph_part(space: spaces.Space[Any], array: Any, path: str, owner: spaces.Graph) -> tensor_pb2.Tensor:
    if not isinstance(array, np.ndarray):
        raise _mismatch(path, owner, "an array", describe_value(array))
    if array.dtype != space.dtype or array.shape[1:] != space.shape:
        raise _mismatch(path, owner, f"a {space.dtype} array of shape (n, *{space.shape})", describe_value(array))
    return array_to_tensor(array)


@encode.register
def _(space: spaces.Graph, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    if not isinstance(value, spaces.GraphInstance):
        raise _mismatch(path, space, "a GraphInstance", describe_value(value))
    out = Value()
    msg = out.graph
    msg.nodes.CopyFrom(_graph_part(space.node_space, value.nodes, f"{path}.nodes", space))
    if (value.edges is None) != (value.edge_links is None) or (value.edges is not None and space.edge_space is None):
        raise _mismatch(path, space, "edges and edge_links both set (with an edge space) or both None", describe_value(value))
    if value.edges is not None and space.edge_space is not None:
        msg.edges.CopyFrom(_graph_part(space.edge_space, value.edges, f"{path}.edges", space))
        links = value.edge_links
        n_edges = len(cast("np.ndarray[Any, Any]", value.edges))
        if not isinstance(links, np.ndarray) or links.dtype.kind not in "iu" or links.shape != (n_edges, 2):
            raise _mismatch(f"{path}.edge_links", space, f"an integer array of shape ({n_edges}, 2)", describe_value(links))
        msg.edge_links.CopyFrom(array_to_tensor(links))
    return out


@encode.register
def _(space: spaces.OneOf, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    if not isinstance(value, tuple) or len(value) != 2 or not isinstance(value[0], (int, np.integer)):
        raise _mismatch(path, space, "a tuple (index, value)", describe_value(value))
    index = int(value[0])
    if not 0 <= index < len(space.spaces):
        raise _mismatch(path, space, f"an index in [0, {len(space.spaces)})", index)
    _check_depth(space, path)
    msg = Value()
    msg.one_of.index = index
    msg.one_of.int_index = isinstance(value[0], int)
    msg.one_of.value.CopyFrom(encode(space.spaces[index], value[1], f"{path}[1]", bounds=bounds))
    return msg


# ---------------------------------------------------------------------------------------------
# decode


@singledispatch
def decode(space: spaces.Space[Any], msg: Value, path: str = "value", *, bounds: bool = True) -> Any:
    """Decode a ``cogment_gym.v1.Value`` message into a member of ``space``.

    Numeric arrays share the message's bytes (no copy) and are read-only. With ``bounds=False``
    numeric values are not held to the space's bounds (Box low/high, Discrete and MultiDiscrete
    ranges, MultiBinary 0/1), only to its structure, dtype and shape: that is how observations
    are read, since Gymnasium does not hold environments to their observation bounds either.
    Actions are decoded with bounds checked: an environment must never see one outside its space.

    Raises:
        SpaceMismatchError: the message does not describe a member of the space (wrong structure,
            dtype, shape, or a value out of bounds); the message names the path in the value.
        MalformedMessageError: the message itself is inconsistent (e.g. a tensor's byte count
            does not match its shape).
        UnsupportedSpaceError: no codec is registered for the space's type.
    """
    raise UnsupportedSpaceError(
        f"no codec for space type {type(space).__qualname__} ({space!r}); expected a Gymnasium space "
        "or a type registered with cogment_gym.codec.register_space"
    )


def _box_in_bounds(space: spaces.Box, path: str) -> Callable[[np.ndarray[Any, Any]], None]:
    def check(array: np.ndarray[Any, Any]) -> None:
        if not _box_bounds(space).check(array):
            raise _out_of_bounds(path, space, array, space.low, space.high)

    return check


def _multi_discrete_in_bounds(space: spaces.MultiDiscrete, path: str) -> Callable[[np.ndarray[Any, Any]], None]:
    def check(array: np.ndarray[Any, Any]) -> None:
        if not _multi_discrete_bounds(space).check(array):
            raise _out_of_bounds(path, space, array, space.start, space.start + space.nvec - 1)

    return check


def _multi_binary_in_bounds(space: spaces.MultiBinary, path: str) -> Callable[[np.ndarray[Any, Any]], None]:
    def check(array: np.ndarray[Any, Any]) -> None:
        if array.size and not (array.min() >= 0 and array.max() <= 1):
            raise _mismatch(path, space, "only 0s and 1s", array)

    return check


@decode.register
def _(space: spaces.Box, msg: Value, path: str = "value", *, bounds: bool = True) -> Any:
    array = _decode_array(space, msg, path)
    if bounds and not _box_bounds(space).check(array):
        raise _out_of_bounds(path, space, array, space.low, space.high)
    if msg.HasField("exact"):
        return _given_form(space, msg, path, _box_in_bounds(space, path) if bounds else None)
    return array


@decode.register
def _(space: spaces.Discrete, msg: Value, path: str = "value", *, bounds: bool = True) -> Any:
    _kind(msg, "scalar", path, space)
    number = tensor_to_scalar(msg.scalar)
    if number.dtype != space.dtype:
        raise _mismatch(path, space, f"a {space.dtype} scalar", f"a {number.dtype} scalar")
    if bounds and not space.start <= number < space.start + space.n:
        raise _mismatch(path, space, f"an integer in [{space.start}, {space.start + space.n})", int(number))
    if not msg.HasField("exact"):
        return number
    value = decode_object(msg.exact, path)  # the form it was given in (a Python int, a 0-d array...)
    given = _integer(space, value, path)
    if bounds and not space.start <= given < space.start + space.n:
        raise _mismatch(path, space, f"an integer in [{space.start}, {space.start + space.n})", given)
    return value


@decode.register
def _(space: spaces.MultiDiscrete, msg: Value, path: str = "value", *, bounds: bool = True) -> Any:
    array = _decode_array(space, msg, path)
    check = _multi_discrete_in_bounds(space, path) if bounds else None
    if check is not None:
        check(array)
    return _given_form(space, msg, path, check) if msg.HasField("exact") else array


@decode.register
def _(space: spaces.MultiBinary, msg: Value, path: str = "value", *, bounds: bool = True) -> Any:
    array = _decode_array(space, msg, path)
    check = _multi_binary_in_bounds(space, path) if bounds else None
    if check is not None:
        check(array)
    return _given_form(space, msg, path, check) if msg.HasField("exact") else array


@decode.register
def _(space: spaces.Text, msg: Value, path: str = "value", *, bounds: bool = True) -> str:
    _kind(msg, "text", path, space)
    text = msg.text
    if not space.min_length <= len(text) <= space.max_length:
        raise _mismatch(path, space, f"a length in [{space.min_length}, {space.max_length}]", f"{len(text)} characters")
    bad = set(text) - space.character_set
    if bad:
        raise _mismatch(path, space, "characters from the space's charset", f"{sorted(bad)!r}")
    return text


@decode.register
def _(space: spaces.Dict, msg: Value, path: str = "value", *, bounds: bool = True) -> dict[str, Any]:
    _kind(msg, "dict", path, space)
    received: dict[str, Value] = {}
    for entry in msg.dict.entries:
        if entry.WhichOneof("key") != "str_key":
            raise _mismatch(path, space, "str keys", f"key {getattr(entry, entry.WhichOneof('key') or 'str_key')!r}")
        received[entry.str_key] = entry.value
    subspaces = space.spaces
    if received.keys() != subspaces.keys() or len(received) != len(msg.dict.entries):
        missing = [k for k in subspaces if k not in received]
        extra = [k for k in received if k not in subspaces]
        raise _mismatch(path, space, f"keys {list(subspaces)}", f"missing {missing}, unexpected {extra} (or repeated keys)")
    # In the order they travelled (the value's), as the type they were.
    out: dict[str, Any] = OrderedDict() if msg.dict.type == values_pb2.MAP_TYPE_ORDERED_DICT else {}
    for key, item in received.items():
        out[key] = decode(subspaces[key], item, f"{path}[{key!r}]", bounds=bounds)
    return out


@decode.register
def _(space: spaces.Tuple, msg: Value, path: str = "value", *, bounds: bool = True) -> Any:
    _kind(msg, "tuple", path, space)
    items = msg.tuple.items
    if len(items) != len(space.spaces):
        raise _mismatch(path, space, f"{len(space.spaces)} items", f"{len(items)} items")
    values = [decode(s, v, f"{path}[{i}]", bounds=bounds) for i, (s, v) in enumerate(zip(space.spaces, items))]
    return values if msg.tuple.as_list else tuple(values)


@decode.register
def _(space: spaces.Sequence, msg: Value, path: str = "value", *, bounds: bool = True) -> Any:
    _kind(msg, "tuple", path, space)
    feature = space.feature_space
    items = tuple(decode(feature, v, f"{path}[{i}]", bounds=bounds) for i, v in enumerate(msg.tuple.items))
    if not space.stack:
        return list(items) if msg.tuple.as_list else items
    out: Any = create_empty_array(feature, len(items))
    return concatenate(feature, items, out) if items else out


def _decode_graph_part(
    space: spaces.Space[Any], tensor: tensor_pb2.Tensor, path: str, owner: spaces.Graph, bounds: bool
) -> np.ndarray[Any, Any]:
    array = tensor_to_array(tensor)
    shape = space.shape or ()
    if array.dtype != space.dtype or array.ndim != len(shape) + 1 or array.shape[1:] != shape:
        raise _mismatch(path, owner, f"a {space.dtype} array of shape (n, *{space.shape})", describe_value(array))
    if not bounds:
        inside = True
    elif isinstance(space, spaces.Box):
        inside = _box_bounds(space).check(array)
    elif isinstance(space, spaces.Discrete):
        inside = array.size == 0 or bool(array.min() >= space.start and array.max() < space.start + space.n)
    else:
        inside = all(space.contains(item) for item in array)
    if not inside:
        raise _mismatch(path, owner, f"every item inside {space!r}", describe_value(array))
    return array


@decode.register
def _(space: spaces.Graph, msg: Value, path: str = "value", *, bounds: bool = True) -> spaces.GraphInstance:
    _kind(msg, "graph", path, space)
    g = msg.graph
    nodes = _decode_graph_part(space.node_space, g.nodes, f"{path}.nodes", space, bounds)
    if not g.HasField("edges") and not g.HasField("edge_links"):
        return spaces.GraphInstance(nodes, None, None)
    if space.edge_space is None or not (g.HasField("edges") and g.HasField("edge_links")):
        raise _mismatch(path, space, "edges and edge_links together, and only with an edge space", "a partial graph")
    edges = _decode_graph_part(space.edge_space, g.edges, f"{path}.edges", space, bounds)
    links = tensor_to_array(g.edge_links)
    if links.dtype.kind not in "iu" or links.shape != (len(edges), 2) or (links.size and (links.min() < 0 or links.max() >= len(nodes))):
        raise _mismatch(f"{path}.edge_links", space, f"integer node indices of shape ({len(edges)}, 2) below {len(nodes)}", describe_value(links))
    return spaces.GraphInstance(nodes, edges, links)


@decode.register
def _(space: spaces.OneOf, msg: Value, path: str = "value", *, bounds: bool = True) -> tuple[Any, Any]:
    _kind(msg, "one_of", path, space)
    index = msg.one_of.index
    if index >= len(space.spaces):
        raise _mismatch(path, space, f"an index in [0, {len(space.spaces)})", index)
    value = decode(space.spaces[index], msg.one_of.value, f"{path}[1]", bounds=bounds)
    return (int(index) if msg.one_of.int_index else np.int64(index)), value


# ---------------------------------------------------------------------------------------------
# spaces of types with no codec: by their standard form (codec.foreign)


def _fits_own_test(space: spaces.Space[Any], value: Any) -> bool:
    # Third-party contains() may raise on values it does not expect instead of returning False.
    try:
        return bool(space.contains(value))
    except Exception:
        return False


@encode.register
def _(space: spaces.Space, value: Any, path: str = "value", *, bounds: bool = True) -> Value:
    form = standard_form(space)
    if form.text:
        if not isinstance(value, str):
            raise _mismatch(path, space, "a str", describe_value(value))
        return Value(text=value)
    return _encode_array_leaf(space, value, path)  # its dtype and shape are the form's


@decode.register
def _(space: spaces.Space, msg: Value, path: str = "value", *, bounds: bool = True) -> Any:
    form = standard_form(space)
    if form.text:
        _kind(msg, "text", path, space)
        value: Any = msg.text
    else:
        array = _decode_array(space, msg, path)
        value = _given_form(space, msg, path, None) if msg.HasField("exact") else array
    # Bounds: the space's own test, where it is known (an action reaching the environment).
    if bounds and not _fits_own_test(space, value):
        raise _mismatch(path, space, f"a value {type(space).__name__}.contains() accepts", describe_value(value))
    return value


def parse_message(message_type: type[M], data: bytes, what: str) -> M:
    """Parse serialized bytes into a ``message_type`` message.

    Raises:
        MalformedMessageError: "``what`` is not a <full message name>: <protobuf's reason>".
    """
    msg = message_type()
    try:
        msg.ParseFromString(data)
    except Exception as err:  # protobuf raises DecodeError, or RuntimeError/ValueError by backend
        raise MalformedMessageError(f"{what} is not a {message_type.DESCRIPTOR.full_name}: {err}") from err
    return msg


def parse_value(data: bytes) -> Value:
    """Parse serialized bytes into a ``Value`` message, raising MalformedMessageError if invalid."""
    return parse_message(Value, data, "data")

