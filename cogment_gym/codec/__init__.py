"""Lossless conversion between numpy / Gymnasium values and the ``cogment_gym.v1`` protobuf schema.

- :func:`space_to_proto` / :func:`space_from_proto`: spaces.
- :func:`encode` / :func:`decode`: values of a space, leaf by leaf, validated on decode.
- :func:`encode_info` / :func:`decode_info`: ``info`` dicts and other plain data.
- :func:`register_space`: add a codec for a custom Space subclass.
- :class:`ForeignSpace`: what a space of a type with no codec here is rebuilt as (its standard
  form: see :mod:`cogment_gym.codec.foreign`).
"""

from cogment_gym.codec.custom import register_space
from cogment_gym.codec.foreign import ForeignSpace
from cogment_gym.codec.info import decode_info, decode_object, encode_info, encode_object
from cogment_gym.codec.spaces import space_from_proto, space_to_proto
from cogment_gym.codec.tensor import array_to_tensor, tensor_to_array, tensor_to_scalar
from cogment_gym.codec.values import decode, encode, parse_message, parse_value

__all__ = [
    "ForeignSpace",
    "array_to_tensor",
    "decode",
    "decode_info",
    "decode_object",
    "encode",
    "encode_info",
    "encode_object",
    "parse_message",
    "parse_value",
    "register_space",
    "space_from_proto",
    "space_to_proto",
    "tensor_to_array",
    "tensor_to_scalar",
]
