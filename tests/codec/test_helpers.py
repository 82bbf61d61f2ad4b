"""The strict comparison every round-trip test relies on must itself catch each kind of drift."""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from .space_zoo import SPACE_ZOO, as_decoded, assert_value_equal


def _nan(payload: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000000 | payload))[0]
    return value


def _graph(edges: Any = None, links: Any = None) -> spaces.GraphInstance:
    return spaces.GraphInstance(np.zeros((2, 1), np.float32), edges, links)


SAME = [
    (np.array([1.0, np.nan]), np.array([1.0, np.nan])),
    (np.float32(np.nan), np.float32(np.nan)),
    (_nan(3), _nan(3)),
    ({"b": 1, "a": (2, [3])}, {"b": 1, "a": (2, [3])}),
    (_graph(), _graph()),
    (None, None),
    (b"x", b"x"),
]

DIFFERENT = [
    pytest.param(np.zeros(2, np.float32), np.zeros(2, np.float64), id="dtype"),
    pytest.param(np.zeros((2, 1)), np.zeros((1, 2)), id="shape"),
    pytest.param(np.array(1), np.int64(1), id="0d-array-vs-scalar"),
    pytest.param(np.int32(1), np.int64(1), id="scalar-dtype"),
    pytest.param(np.array([0.0]), np.array([-0.0]), id="signed-zero-array"),
    pytest.param(0.0, -0.0, id="signed-zero-float"),
    pytest.param(_nan(1), _nan(2), id="nan-payload"),
    pytest.param(np.float64(1.0), 1.0, id="np-float64-vs-float"),
    pytest.param(True, 1, id="bool-vs-int"),
    pytest.param((1, 2), [1, 2], id="tuple-vs-list"),
    pytest.param({"a": 1, "b": 2}, {"b": 2, "a": 1}, id="key-order"),
    pytest.param({"a": 1}, OrderedDict(a=1), id="dict-vs-ordereddict"),
    pytest.param((1, (2, 3)), (1, (2, 4)), id="nested"),
    pytest.param(_graph(), _graph(np.zeros(0), np.zeros((0, 2), np.int64)), id="graph-edges"),
    pytest.param(
        _graph(np.zeros(1), np.array([[0, 1]], np.int64)), _graph(np.zeros(1), np.array([[0, 1]], np.int32)), id="graph-links"
    ),
    pytest.param("a", "b", id="str"),
]


@pytest.mark.parametrize("a, b", SAME)
def test_equal_values_pass(a: Any, b: Any) -> None:
    assert_value_equal(a, b)


@pytest.mark.parametrize("a, b", DIFFERENT)
def test_any_difference_fails(a: Any, b: Any) -> None:
    with pytest.raises(AssertionError):
        assert_value_equal(a, b)


def test_as_decoded_keeps_box_scalars() -> None:
    box0d = spaces.Box(-5, 5, (), np.int64)
    space = spaces.Dict([("b", box0d), ("d", spaces.Discrete(3)), ("o", spaces.OneOf((box0d,)))])
    value = {"b": np.int64(1), "d": np.int64(2), "o": (np.int64(0), np.int64(3))}
    assert_value_equal(as_decoded(space, value), {"b": np.int64(1), "d": np.int64(2), "o": (np.int64(0), np.int64(3))})


def test_zoo_ids_are_unique_and_readable() -> None:
    assert all(name and name == name.strip() and " " not in name for name in SPACE_ZOO)
