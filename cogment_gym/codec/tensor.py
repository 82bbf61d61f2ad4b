"""numpy arrays <-> ``cogment_gym.v1.Tensor``.

One table maps numpy dtypes to wire dtypes. Elements travel as raw little-endian bytes in C
order; decoding wraps the received bytes without copying (the array is read-only).
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from cogment_gym._proto.cogment_gym.v1 import tensor_pb2
from cogment_gym.errors import MalformedMessageError, UnsupportedValueError

__all__ = [
    "DTYPES",
    "array_to_tensor",
    "dtype_from_proto",
    "dtype_to_proto",
    "tensor_to_array",
    "tensor_to_scalar",
]

# numpy dtype (little-endian) <-> wire enum. The only place that knows the mapping.
DTYPES: dict[np.dtype[Any], tensor_pb2.DType] = {
    np.dtype("?"): tensor_pb2.DTYPE_BOOL,
    np.dtype("<i1"): tensor_pb2.DTYPE_INT8,
    np.dtype("<i2"): tensor_pb2.DTYPE_INT16,
    np.dtype("<i4"): tensor_pb2.DTYPE_INT32,
    np.dtype("<i8"): tensor_pb2.DTYPE_INT64,
    np.dtype("<u1"): tensor_pb2.DTYPE_UINT8,
    np.dtype("<u2"): tensor_pb2.DTYPE_UINT16,
    np.dtype("<u4"): tensor_pb2.DTYPE_UINT32,
    np.dtype("<u8"): tensor_pb2.DTYPE_UINT64,
    np.dtype("<f2"): tensor_pb2.DTYPE_FLOAT16,
    np.dtype("<f4"): tensor_pb2.DTYPE_FLOAT32,
    np.dtype("<f8"): tensor_pb2.DTYPE_FLOAT64,
    np.dtype("<c8"): tensor_pb2.DTYPE_COMPLEX64,
    np.dtype("<c16"): tensor_pb2.DTYPE_COMPLEX128,
}
_FROM_PROTO: dict[int, np.dtype[Any]] = {code: dtype for dtype, code in DTYPES.items()}
# Most dimensions a tensor may have: numpy 1.x's limit (numpy 2 allows 64), the same on every peer.
MAX_NDIM = 32


def dtype_to_proto(dtype: Any) -> tensor_pb2.DType:
    """Return the wire enum of a numpy dtype; raises for dtypes with no wire form (object, str)."""
    dt = np.dtype(dtype)
    code = DTYPES.get(dt.newbyteorder("<") if dt.byteorder == ">" else dt)
    if code is None:
        raise UnsupportedValueError(
            f"dtype {dt} has no wire representation; expected one of "
            f"{', '.join(str(d) for d in DTYPES)}"
        )
    return code


def dtype_from_proto(code: int) -> np.dtype[Any]:
    """Return the numpy dtype of a wire enum; raises MalformedMessageError for unknown codes."""
    dtype = _FROM_PROTO.get(code)
    if dtype is None:
        name = tensor_pb2.DType.Name(code) if code in tensor_pb2.DType.values() else str(code)
        raise MalformedMessageError(f"tensor dtype {name} is not a known numeric dtype")
    return dtype


def array_to_tensor(array: Any, out: tensor_pb2.Tensor | None = None) -> tensor_pb2.Tensor:
    """Encode an array (or numpy scalar) as a Tensor, filling ``out`` when given."""
    array = np.asarray(array)
    if array.ndim > MAX_NDIM:
        raise UnsupportedValueError(f"array has {array.ndim} dimensions; at most {MAX_NDIM} can travel")
    code = DTYPES.get(array.dtype)
    if code is None:  # big-endian input, or a dtype with no wire form
        code = dtype_to_proto(array.dtype)
        array = array.astype(array.dtype.newbyteorder("<"))
    if out is None:
        return tensor_pb2.Tensor(dtype=code, shape=array.shape, data=array.tobytes())
    out.dtype = code
    out.shape[:] = array.shape
    out.data = array.tobytes()
    return out


def _checked_buffer(tensor: tensor_pb2.Tensor) -> tuple[np.dtype[Any], tuple[int, ...], bytes]:
    dtype = _FROM_PROTO.get(tensor.dtype)
    if dtype is None:
        dtype = dtype_from_proto(tensor.dtype)
    shape = tuple(tensor.shape)
    if len(shape) > MAX_NDIM:
        raise MalformedMessageError(f"tensor has {len(shape)} dimensions, more than {MAX_NDIM}")
    data = tensor.data
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise MalformedMessageError(
            f"tensor of dtype {dtype} and shape {shape} needs {expected} bytes, got {len(data)}"
        )
    # An empty tensor may still claim absurd dimensions, e.g. (0, 2**62); numpy refuses a shape
    # whose non-zero dimensions would not fit in memory, so refuse it here first.
    if expected == 0 and math.prod(dim or 1 for dim in shape) * dtype.itemsize > sys.maxsize:
        raise MalformedMessageError(f"tensor shape {shape} is too large for an array")
    if dtype.kind == "b" and data.translate(None, b"\x00\x01"):
        raise MalformedMessageError("bool tensor holds bytes other than 0 and 1")
    return dtype, shape, data


def tensor_to_array(tensor: tensor_pb2.Tensor) -> np.ndarray[Any, Any]:
    """Decode a Tensor into a read-only array that shares the message's bytes."""
    dtype, shape, data = _checked_buffer(tensor)
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def tensor_to_scalar(tensor: tensor_pb2.Tensor) -> np.generic:
    """Decode a Tensor of empty shape into a numpy scalar (np.int64(3), not array(3))."""
    dtype, shape, data = _checked_buffer(tensor)
    if shape:
        raise MalformedMessageError(f"a scalar tensor must have an empty shape, got {shape}")
    return np.frombuffer(data, dtype=dtype)[0]  # type: ignore[no-any-return]
