"""Hypothesis strategies for random, depth-limited Gymnasium spaces (shared by property and fuzz tests).

Every space is built from drawn parameters only, so a failing example is reproduced by its draw.
Bounds stay where Gymnasium's own ``sample()`` is exact (finite float ranges that do not overflow
``high - low``, int64 bounds within float64's exact range unless they are the full range).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from hypothesis import strategies as st

from .space_zoo import ALL_NUMERIC_DTYPES

__all__ = ["leaf_spaces", "nested_spaces"]

# Largest finite bound magnitude per float dtype: high - low must not overflow to inf.
# (Powers of two, so that they are exact in every float width.)
_FLOAT_LIMIT = {np.dtype(np.float16): 2.0**13, np.dtype(np.float32): 2.0**100, np.dtype(np.float64): 2.0**1000}
# Gymnasium samples integer Boxes through float64, exact up to 2**53.
_INT_LIMIT = 2**50

# No lone surrogates (not valid UTF-8). No NUL in Text charsets: Gymnasium's Text.sample joins numpy
# str_ items, which drop trailing NULs, so it samples strings outside its own space.
_CHARS = st.characters(exclude_categories=("Cs",))
_CHARSET_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


@st.composite
def _shapes(draw: st.DrawFn, max_dims: int = 3) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(0, 3), max_size=max_dims)))


@st.composite
def _bound_pair(draw: st.DrawFn, dtype: np.dtype[Any]) -> tuple[Any, Any]:
    if dtype.kind == "b":
        low = draw(st.integers(0, 1))
        return low, draw(st.integers(low, 1))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if draw(st.booleans()):
            return int(info.min), int(info.max)
        lo, hi = max(int(info.min), -_INT_LIMIT), min(int(info.max), _INT_LIMIT)
        a, b = draw(st.integers(lo, hi)), draw(st.integers(lo, hi))
        return min(a, b), max(a, b)
    limit = _FLOAT_LIMIT[dtype]
    finite = st.floats(-limit / 2, limit / 2, width=8 * dtype.itemsize)
    # "+ 0.0" turns -0.0 into 0.0: Gymnasium's sample() rejects Box(0.0, -0.0) ("high - low < 0").
    low = draw(st.one_of(finite, st.just(-np.inf))) + 0.0
    high = draw(st.one_of(finite, st.just(np.inf))) + 0.0
    if low > high:
        low, high = high, low
        low = -np.inf if np.isinf(low) else low
        high = np.inf if np.isinf(high) else high
    return low, high


@st.composite
def boxes(draw: st.DrawFn) -> spaces.Box:
    dtype = draw(st.sampled_from(ALL_NUMERIC_DTYPES))
    shape = draw(_shapes())
    if draw(st.booleans()) or not shape:
        low, high = draw(_bound_pair(dtype))
        return spaces.Box(low, high, shape, dtype)
    pairs = [draw(_bound_pair(dtype)) for _ in range(int(np.prod(shape)))]
    low_arr = np.array([p[0] for p in pairs], dtype=np.float64 if dtype.kind == "f" else object).reshape(shape)
    high_arr = np.array([p[1] for p in pairs], dtype=np.float64 if dtype.kind == "f" else object).reshape(shape)
    return spaces.Box(low_arr.astype(dtype), high_arr.astype(dtype), shape, dtype)


@st.composite
def discretes(draw: st.DrawFn) -> spaces.Discrete:
    dtype = draw(st.sampled_from([np.int64, np.int32]))
    limit = 2**40 if dtype == np.int64 else 2**20
    return spaces.Discrete(draw(st.integers(1, limit)), start=draw(st.integers(-limit, limit)), dtype=dtype)


@st.composite
def multi_discretes(draw: st.DrawFn) -> spaces.MultiDiscrete:
    shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple))
    size = int(np.prod(shape))
    nvec = np.array(draw(st.lists(st.integers(1, 10), min_size=size, max_size=size))).reshape(shape)
    start = np.array(draw(st.lists(st.integers(-5, 5), min_size=size, max_size=size))).reshape(shape)
    dtype = draw(st.sampled_from([np.int64, np.int32, np.int8]))
    return spaces.MultiDiscrete(nvec, dtype=dtype, start=start)


@st.composite
def multi_binaries(draw: st.DrawFn) -> spaces.MultiBinary:
    if draw(st.booleans()):
        return spaces.MultiBinary(draw(st.integers(1, 6)))
    # A one-element list does not round trip (see test_spaces); use two or more dimensions.
    return spaces.MultiBinary(draw(st.lists(st.integers(1, 3), min_size=2, max_size=3)))


@st.composite
def texts(draw: st.DrawFn) -> spaces.Text:
    max_length = draw(st.integers(1, 8))
    min_length = draw(st.integers(0, max_length))
    charset = draw(st.text(_CHARSET_CHARS, min_size=1, max_size=12))
    return spaces.Text(max_length, min_length=min_length, charset=charset)


@st.composite
def graphs(draw: st.DrawFn) -> spaces.Graph:
    small_box = st.builds(
        lambda dtype, shape: spaces.Box(0, 5, shape, dtype),
        st.sampled_from([np.float32, np.float64, np.uint8, np.int32]),
        _shapes(max_dims=2),
    )
    node = draw(st.one_of(small_box, st.integers(1, 5).map(spaces.Discrete)))
    edge = draw(st.one_of(st.none(), small_box, st.integers(1, 5).map(spaces.Discrete)))
    return spaces.Graph(node, edge)


def leaf_spaces(graph: bool = True) -> st.SearchStrategy[spaces.Space[Any]]:
    leaves = [boxes(), discretes(), multi_discretes(), multi_binaries(), texts()]
    return st.one_of(*leaves, graphs()) if graph else st.one_of(*leaves)


def _stackable(space: spaces.Space[Any]) -> bool:
    if isinstance(space, spaces.Dict):
        return bool(space.spaces) and all(_stackable(sub) for sub in space.spaces.values())
    if isinstance(space, spaces.Tuple):
        return bool(space.spaces) and all(_stackable(sub) for sub in space.spaces)
    return True


def nested_spaces(depth: int = 3, graph: bool = True) -> st.SearchStrategy[spaces.Space[Any]]:
    """Random spaces nested at most ``depth`` composite levels deep."""
    if depth <= 0:
        return leaf_spaces(graph)
    sub = nested_spaces(depth - 1, graph)
    keys = st.lists(st.text(_CHARS, max_size=5), max_size=4, unique=True)
    dicts = keys.flatmap(lambda ks: st.tuples(*[sub for _ in ks]).map(lambda vs: spaces.Dict(list(zip(ks, vs)))))
    tuples = st.lists(sub, max_size=3).map(lambda ss: spaces.Tuple(tuple(ss)))
    plain_sequences = sub.map(lambda s: spaces.Sequence(s, stack=False))
    # Gymnasium cannot stack Graph values (batch_space has no Graph rule), and a stack of empty
    # Dicts or Tuples is itself empty, so its length is lost (not a value anyone can send).
    stacked_sequences = (
        nested_spaces(depth - 1, graph=False).filter(_stackable).map(lambda s: spaces.Sequence(s, stack=True))
    )
    one_ofs = st.lists(sub, min_size=1, max_size=3).map(lambda ss: spaces.OneOf(tuple(ss)))
    return st.one_of(leaf_spaces(graph), dicts, tuples, plain_sequences, stacked_sequences, one_ofs)
