"""numpy arrays <-> Tensor: one dtype table, exact bytes, malformed tensors rejected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cogment_gym._proto.cogment_gym.v1 import tensor_pb2
from cogment_gym.codec import array_to_tensor, tensor_to_array, tensor_to_scalar
from cogment_gym.codec.tensor import DTYPES, MAX_NDIM, dtype_from_proto, dtype_to_proto
from cogment_gym.errors import MalformedMessageError, UnsupportedValueError

from .space_zoo import ALL_NUMERIC_DTYPES, assert_value_equal


def test_dtype_table_covers_every_wire_dtype_once() -> None:
    wire = {v for v in tensor_pb2.DType.values() if v != tensor_pb2.DTYPE_UNSPECIFIED}
    assert set(DTYPES.values()) == wire
    assert len(DTYPES) == len(wire)
    for dtype in ALL_NUMERIC_DTYPES:
        assert dtype in DTYPES
        assert tensor_pb2.DType.Name(DTYPES[dtype]) == f"DTYPE_{dtype.name.upper()}"


@pytest.mark.parametrize("dtype", [*ALL_NUMERIC_DTYPES, np.dtype(np.complex64), np.dtype(np.complex128)], ids=str)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 4), (2, 3, 4)], ids=str)
def test_arrays_round_trip(dtype: np.dtype[Any], shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8).tobytes()
    if dtype.kind == "b":
        raw = bytes(b & 1 for b in raw)
    array = np.frombuffer(raw, dtype).reshape(shape).copy()
    tensor = tensor_pb2.Tensor.FromString(array_to_tensor(array).SerializeToString())
    assert tensor.dtype == dtype_to_proto(dtype)
    assert tuple(tensor.shape) == shape
    assert tensor.data == raw
    assert_value_equal(tensor_to_array(tensor), array)


@pytest.mark.parametrize("dtype", ALL_NUMERIC_DTYPES, ids=str)
def test_scalars_round_trip_as_numpy_scalars(dtype: np.dtype[Any]) -> None:
    scalar = np.ones((), dtype)[()]
    out = tensor_to_scalar(array_to_tensor(scalar))
    assert_value_equal(out, scalar)


def test_out_parameter_fills_an_existing_message() -> None:
    out = tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT64, shape=[9, 9], data=b"x")
    result = array_to_tensor(np.arange(3, dtype=np.int16), out=out)
    assert result is out
    assert (out.dtype, list(out.shape), out.data) == (tensor_pb2.DTYPE_INT16, [3], b"\0\0\1\0\2\0")


@pytest.mark.parametrize(
    "array", [np.array(["a"]), np.array([object()], dtype=object), np.zeros(2, "datetime64[s]"), np.zeros(1, "V4")], ids=str
)
def test_dtypes_without_wire_form_raise(array: np.ndarray[Any, Any]) -> None:
    with pytest.raises(UnsupportedValueError, match="no wire representation"):
        array_to_tensor(array)


def test_unknown_wire_dtype_raises() -> None:
    with pytest.raises(MalformedMessageError, match="DTYPE_UNSPECIFIED"):
        dtype_from_proto(tensor_pb2.DTYPE_UNSPECIFIED)
    with pytest.raises(MalformedMessageError, match="99"):
        dtype_from_proto(99)


def _t(dtype: int, shape: list[int], data: bytes) -> tensor_pb2.Tensor:
    return tensor_pb2.Tensor(dtype=dtype, shape=shape, data=data)


@pytest.mark.parametrize(
    "tensor, fragment",
    [
        pytest.param(_t(tensor_pb2.DTYPE_UNSPECIFIED, [], b""), "DTYPE_UNSPECIFIED", id="unspecified"),
        pytest.param(_t(77, [1], b"\0"), "77", id="unknown-enum"),
        pytest.param(_t(tensor_pb2.DTYPE_FLOAT32, [2], b"\0" * 7), "needs 8 bytes, got 7", id="short"),
        pytest.param(_t(tensor_pb2.DTYPE_FLOAT32, [2], b"\0" * 9), "needs 8 bytes, got 9", id="long"),
        pytest.param(_t(tensor_pb2.DTYPE_INT64, [], b""), "needs 8 bytes", id="scalar-without-data"),
        pytest.param(_t(tensor_pb2.DTYPE_BOOL, [2], b"\x01\x02"), "0 and 1", id="bool-not-0-1"),
        pytest.param(_t(tensor_pb2.DTYPE_UINT8, [2**32, 2**32], b""), "needs", id="huge-shape"),
        pytest.param(_t(tensor_pb2.DTYPE_UINT8, [0, 2**64 - 1], b""), "shape", id="zero-times-uint64-max"),
        pytest.param(_t(tensor_pb2.DTYPE_INT64, [0, 2**62], b""), "shape", id="zero-size-but-too-big"),
        pytest.param(_t(tensor_pb2.DTYPE_UINT8, [0, 2**40, 2**40], b""), "shape", id="zero-size-dims-overflow"),
        pytest.param(_t(tensor_pb2.DTYPE_UINT8, [1] * 65, b"\0"), "dimensions", id="too-many-dims"),
        pytest.param(_t(tensor_pb2.DTYPE_UINT8, [0] * 70, b""), "dimensions", id="too-many-zero-dims"),
    ],
)
def test_malformed_tensors_raise(tensor: tensor_pb2.Tensor, fragment: str) -> None:
    with pytest.raises(MalformedMessageError) as err:
        tensor_to_array(tensor)
    assert fragment in str(err.value), str(err.value)


def test_large_but_valid_zero_size_shapes_decode() -> None:
    out = tensor_to_array(_t(tensor_pb2.DTYPE_UINT8, [0, 2**20, 2**20], b""))
    assert out.shape == (0, 2**20, 2**20) and out.dtype == np.uint8
    assert tensor_to_array(_t(tensor_pb2.DTYPE_FLOAT32, [1] * 32, b"\0" * 4)).ndim == 32


def test_scalar_requires_empty_shape() -> None:
    with pytest.raises(MalformedMessageError, match="empty shape"):
        tensor_to_scalar(_t(tensor_pb2.DTYPE_INT64, [1], b"\0" * 8))


def test_decoded_arrays_are_read_only_views() -> None:
    tensor = array_to_tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    out = tensor_to_array(tensor)
    assert not out.flags.writeable and not out.flags.owndata
    with pytest.raises(ValueError):
        out[0, 0] = 1.0


def test_arrays_with_more_dimensions_than_every_peer_supports_do_not_travel() -> None:
    fits = np.zeros((1,) * MAX_NDIM, np.uint8)
    assert tensor_to_array(array_to_tensor(fits)).shape == fits.shape
    if np.lib.NumpyVersion(np.__version__) < "2.0.0":
        pytest.skip("numpy 1.x cannot build an array with more than 32 dimensions")
    with pytest.raises(UnsupportedValueError, match="dimensions"):
        array_to_tensor(np.zeros((1,) * (MAX_NDIM + 1), np.uint8))
