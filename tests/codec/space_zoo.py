"""A zoo of Gymnasium spaces with the edge cases the codec must survive, and a strict value check.

Shared by every test folder that moves spaces or values across the wire::

    from tests.codec.space_zoo import SPACE_ZOO, assert_value_equal   # from another folder
    from .space_zoo import SPACE_ZOO, assert_value_equal              # inside tests/codec

``SPACE_ZOO`` maps a readable id (used as the pytest id) to a space. Build fresh copies with
:func:`make_space_zoo` when a test seeds or mutates the spaces.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = [
    "ALL_NUMERIC_DTYPES",
    "SPACE_ZOO",
    "as_decoded",
    "assert_value_equal",
    "make_space_zoo",
]

ALL_NUMERIC_DTYPES: tuple[np.dtype[Any], ...] = tuple(
    np.dtype(name)
    for name in (
        "bool", "float16", "float32", "float64",
        "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64",
    )
)

INF = np.inf


def _boxes() -> dict[str, spaces.Space[Any]]:
    zoo: dict[str, spaces.Space[Any]] = {}
    # One Box of every dtype, small bounds.
    for dtype in ALL_NUMERIC_DTYPES:
        if dtype.kind == "b":
            zoo["box-bool"] = spaces.Box(0, 1, (3,), dtype)
        elif dtype.kind == "u":
            zoo[f"box-{dtype}"] = spaces.Box(0, 10, (4,), dtype)
        else:
            zoo[f"box-{dtype}"] = spaces.Box(-10, 10, (4,), dtype)
    # Full integer ranges (the bound check can be skipped entirely).
    for name in ("int8", "int64", "uint8", "uint64"):
        info = np.iinfo(name)
        zoo[f"box-{name}-full-range"] = spaces.Box(info.min, info.max, (2, 2), np.dtype(name))
    # Infinite and half-infinite float bounds, every float dtype.
    for name in ("float16", "float32", "float64"):
        zoo[f"box-{name}-unbounded"] = spaces.Box(-INF, INF, (3,), np.dtype(name))
        zoo[f"box-{name}-low-bounded"] = spaces.Box(0.0, INF, (3,), np.dtype(name))
        zoo[f"box-{name}-high-bounded"] = spaces.Box(-INF, 0.0, (3,), np.dtype(name))
    zoo["box-float32-mixed-infinite"] = spaces.Box(
        low=np.array([-INF, 0.0, -1.0, -INF], np.float32),
        high=np.array([INF, INF, 1.0, 2.5], np.float32),
        dtype=np.float32,
    )
    zoo["box-float32-extreme"] = spaces.Box(
        np.finfo(np.float32).min, np.finfo(np.float32).max, (2,), np.float32
    )
    # Non-uniform bounds.
    zoo["box-float64-nonuniform"] = spaces.Box(
        low=np.array([[0.0, -1.0, 2.0], [-3.5, 1e-9, 100.0]]),
        high=np.array([[1.0, 1.0, 5.0], [-3.0, 1e-8, 1e6]]),
        dtype=np.float64,
    )
    zoo["box-int16-nonuniform"] = spaces.Box(
        low=np.array([-5, 0, 7], np.int16), high=np.array([-1, 0, 300], np.int16), dtype=np.int16
    )
    # Shapes: 0-d, empty, multi-dimensional, an Atari frame.
    zoo["box-float32-0d"] = spaces.Box(-1.0, 1.0, (), np.float32)
    zoo["box-int64-0d"] = spaces.Box(-5, 5, (), np.int64)
    zoo["box-float32-empty"] = spaces.Box(0.0, 1.0, (0, 3), np.float32)
    zoo["box-float32-3d"] = spaces.Box(-1.0, 1.0, (2, 3, 4), np.float32)
    zoo["box-uint8-84x84x3"] = spaces.Box(0, 255, (84, 84, 3), np.uint8)
    return zoo


def _discretes() -> dict[str, spaces.Space[Any]]:
    return {
        "discrete-2": spaces.Discrete(2),
        "discrete-1": spaces.Discrete(1),
        "discrete-3-start-minus-1": spaces.Discrete(3, start=-1),
        "discrete-5-int32": spaces.Discrete(5, dtype=np.int32),
        "discrete-4-start-10-int32": spaces.Discrete(4, start=10, dtype=np.int32),
        "discrete-1000": spaces.Discrete(1000),
        "discrete-huge": spaces.Discrete(2**62, start=-(2**61)),
        "multi-discrete-1d": spaces.MultiDiscrete([3, 4, 5]),
        "multi-discrete-start": spaces.MultiDiscrete([3, 4, 5], start=[-1, 0, 10]),
        "multi-discrete-2d-int32": spaces.MultiDiscrete(
            np.array([[2, 3], [4, 5]]), dtype=np.int32, start=np.array([[-1, 0], [5, -3]])
        ),
        "multi-binary-int": spaces.MultiBinary(5),
        "multi-binary-shape": spaces.MultiBinary([2, 3]),
        "multi-binary-shape-3d": spaces.MultiBinary([2, 1, 3]),
    }


def _texts() -> dict[str, spaces.Space[Any]]:
    return {
        "text-default": spaces.Text(8),
        "text-min-max": spaces.Text(6, min_length=2),
        "text-exact-length": spaces.Text(4, min_length=4),
        "text-empty-allowed": spaces.Text(3, min_length=0),
        "text-charset": spaces.Text(10, min_length=3, charset="abcXYZ 01"),
        "text-unicode-charset": spaces.Text(5, min_length=1, charset="é€ü漢🙂\n"),
    }


def _composites() -> dict[str, spaces.Space[Any]]:
    box = spaces.Box(-1.0, 1.0, (2,), np.float32)
    zoo: dict[str, spaces.Space[Any]] = {
        # Keys deliberately not sorted: the order must survive the trip.
        "dict-unsorted-keys": spaces.Dict(
            [("zeta", spaces.Discrete(3)), ("alpha", box), ("mid", spaces.Text(4)), ("Beta", spaces.MultiBinary(2))]
        ),
        "dict-sorted-by-gymnasium": spaces.Dict({"b": spaces.Discrete(2), "a": box}),
        "dict-empty": spaces.Dict({}),
        "tuple": spaces.Tuple((spaces.Discrete(3, start=-1), box, spaces.Text(3))),
        "tuple-empty": spaces.Tuple(()),
        "sequence-box": spaces.Sequence(box),
        "sequence-box-stacked": spaces.Sequence(box, stack=True),
        "sequence-discrete": spaces.Sequence(spaces.Discrete(4, start=2)),
        "sequence-discrete-stacked": spaces.Sequence(spaces.Discrete(4, start=2), stack=True),
        "sequence-dict": spaces.Sequence(spaces.Dict({"b": box, "a": spaces.Discrete(2)})),
        "sequence-dict-stacked": spaces.Sequence(spaces.Dict({"b": box, "a": spaces.Discrete(2)}), stack=True),
        "sequence-text-stacked": spaces.Sequence(spaces.Text(3), stack=True),
        "graph-box-nodes-no-edges": spaces.Graph(spaces.Box(0.0, 1.0, (3,), np.float32), None),
        "graph-discrete-nodes-no-edges": spaces.Graph(spaces.Discrete(4), None),
        "graph-box-box": spaces.Graph(
            spaces.Box(-1.0, 1.0, (2, 2), np.float64), spaces.Box(0, 5, (1,), np.int32)
        ),
        "graph-discrete-discrete": spaces.Graph(spaces.Discrete(5, start=-2), spaces.Discrete(3)),
        "graph-box-discrete": spaces.Graph(spaces.Box(0, 255, (3,), np.uint8), spaces.Discrete(2)),
        "one-of": spaces.OneOf((spaces.Discrete(2), box, spaces.Dict({"t": spaces.Text(2)}))),
        "one-of-single": spaces.OneOf((spaces.MultiDiscrete([2, 2]),)),
    }
    zoo["deeply-nested"] = spaces.Dict(
        [
            ("obs", spaces.Tuple(
                (
                    spaces.Dict(
                        [
                            ("camera", spaces.Box(0, 255, (4, 4, 3), np.uint8)),
                            ("history", spaces.Sequence(
                                spaces.Tuple((spaces.Discrete(3, start=-1), spaces.Box(-INF, INF, (2,), np.float16)))
                            )),
                            ("stacked", spaces.Sequence(
                                spaces.Dict([("x", spaces.Box(0, 1, (2,), np.float32)), ("k", spaces.Discrete(3))]),
                                stack=True,
                            )),
                        ]
                    ),
                    spaces.OneOf(
                        (
                            spaces.Sequence(spaces.MultiBinary([2, 2])),
                            spaces.Tuple((spaces.Text(5, charset="xyz"), spaces.MultiDiscrete([[2, 3]], start=[[1, -1]]))),
                        )
                    ),
                    spaces.Graph(spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(4)),
                )
            )),
            ("aux", spaces.Sequence(spaces.Sequence(spaces.Dict({"n": spaces.Discrete(2, dtype=np.int32)})))),
            ("empty", spaces.Dict({})),
        ]
    )
    return zoo


def make_space_zoo() -> dict[str, spaces.Space[Any]]:
    """Fresh instances of every zoo space (so tests may seed them freely)."""
    return {**_boxes(), **_discretes(), **_texts(), **_composites()}


SPACE_ZOO: dict[str, spaces.Space[Any]] = make_space_zoo()


# ---------------------------------------------------------------------------------------------
# Strict equality of values


def _float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def assert_value_equal(actual: Any, expected: Any, path: str = "value") -> None:
    """Assert two space / info values are identical: types, dtypes, shapes, key order, float bits.

    Python ``float`` and numpy float arrays/scalars are compared bit for bit, so NaN equals a NaN
    with the same payload and ``-0.0`` differs from ``0.0``. Tuples and lists are not
    interchangeable, dict key order matters, ``GraphInstance`` fields are compared one by one.
    """
    assert type(actual) is type(expected), f"{path}: type {type(actual).__name__} != {type(expected).__name__}"
    if isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, f"{path}: shape {actual.shape} != {expected.shape}"
        # Compare bytes in C order: exact bits, NaN payloads and signed zeros included.
        assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes(), (
            f"{path}: elements differ\n  actual   {actual!r}\n  expected {expected!r}"
        )
    elif isinstance(expected, np.generic):
        assert actual.dtype == expected.dtype, f"{path}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.tobytes() == expected.tobytes(), f"{path}: {actual!r} != {expected!r}"
    elif isinstance(expected, float):
        assert _float_bits(actual) == _float_bits(expected), f"{path}: {actual!r} != {expected!r} (bitwise)"
    elif isinstance(expected, spaces.GraphInstance):
        for field in ("nodes", "edges", "edge_links"):
            assert_value_equal(getattr(actual, field), getattr(expected, field), f"{path}.{field}")
    elif isinstance(expected, dict):
        assert list(actual.keys()) == list(expected.keys()), (
            f"{path}: keys {list(actual.keys())} != {list(expected.keys())} (order matters)"
        )
        for key in expected:
            assert_value_equal(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_value_equal(a, e, f"{path}[{i}]")
    else:  # None, bool, int, str, bytes
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def as_decoded(space: spaces.Space[Any], value: Any) -> Any:
    """``value`` in the form the codec decodes it: as it is, except stacked Sequence values
    (rebuilt by Gymnasium's ``concatenate``). Box values keep their form: Gymnasium's
    ``Box.sample()`` returns a numpy scalar (``np.int64(3)``) for integer Boxes of shape ``()``,
    and it decodes as that scalar.
    """
    if isinstance(space, spaces.Box):
        return value
    if isinstance(space, spaces.Dict):
        return {key: as_decoded(space[key], item) for key, item in value.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(as_decoded(sub, item) for sub, item in zip(space.spaces, value))
    if isinstance(space, spaces.OneOf):
        return (value[0], as_decoded(space.spaces[int(value[0])], value[1]))
    if isinstance(space, spaces.Sequence):
        if space.stack:
            return _as_decoded_stacked(space.feature_space, value)
        return tuple(as_decoded(space.feature_space, item) for item in value)
    return value


def _as_decoded_stacked(feature: spaces.Space[Any], value: Any) -> Any:
    """Stacked Sequence values mirror the feature space; only its non-array leaves hold items."""
    if isinstance(feature, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Text)):
        return value  # one stacked array (or a tuple of str)
    if isinstance(feature, spaces.Dict):
        return {key: _as_decoded_stacked(feature[key], value[key]) for key in value}
    if isinstance(feature, spaces.Tuple):
        return tuple(_as_decoded_stacked(sub, item) for sub, item in zip(feature.spaces, value))
    return tuple(as_decoded(feature, item) for item in value)  # OneOf, Sequence, Graph: a tuple of items
