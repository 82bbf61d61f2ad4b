"""Gymnasium spaces <-> ``cogment_gym.v1.Space``.

``space_from_proto(space_to_proto(s)) == s`` for every Gymnasium space, nested arbitrarily.
Spaces of other types can be added with :func:`cogment_gym.codec.register_space`. Without that:
a subclass of a Gymnasium (or registered) space is described as its nearest such base class (its
parameters travel; what it overrides, being code, does not), and any other Space subclass by its
standard form, rebuilt as a :class:`~cogment_gym.codec.foreign.ForeignSpace`
(see :mod:`cogment_gym.codec.foreign`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import singledispatch
from typing import Any, Callable

import numpy as np
from gymnasium import spaces

from cogment_gym._proto.cogment_gym.v1 import spaces_pb2
from cogment_gym.codec.building import nesting_depth
from cogment_gym.codec.foreign import MAX_SAMPLES, ForeignSpace, draw_samples, standard_form, type_name
from cogment_gym.codec.tensor import MAX_NDIM, array_to_tensor, dtype_from_proto, dtype_to_proto, tensor_to_array
from cogment_gym.codec.values import decode, encode
from cogment_gym.errors import CodecError, MalformedMessageError, UnsupportedSpaceError

__all__ = ["CustomSpaceCodec", "MAX_SAMPLE_BYTES", "space_from_proto", "space_to_proto", "custom_space_codec", "add_custom_space_codec"]


@dataclass(frozen=True)
class CustomSpaceCodec:
    """How a registered custom space type is described on the wire."""

    name: str
    space_type: type[spaces.Space[Any]]
    to_parameters: Callable[[Any], bytes]
    from_parameters: Callable[[bytes], spaces.Space[Any]]


_CUSTOM_BY_NAME: dict[str, CustomSpaceCodec] = {}

# Most elements a MultiBinary may have (16 MiB per value). Its description is only a shape, so
# without a cap a few bytes could make Gymnasium allocate arbitrary memory (Sequence(stack=True)
# and Graph build arrays of the full shape). Box and MultiDiscrete carry their bounds element by
# element, so their size is already bounded by the message's.
MAX_MULTI_BINARY_SIZE = 2**24


def _check_multi_binary_shape(shape: tuple[int, ...] | list[int]) -> str | None:
    if len(shape) > MAX_NDIM:
        return f"MultiBinary shape {tuple(shape)} has more than {MAX_NDIM} dimensions"
    if math.prod(shape) > MAX_MULTI_BINARY_SIZE:
        return f"MultiBinary shape {tuple(shape)} has more than {MAX_MULTI_BINARY_SIZE} elements"
    return None


def add_custom_space_codec(codec: CustomSpaceCodec) -> None:
    """Record a custom space's description codec (called by ``register_space``)."""
    known = _CUSTOM_BY_NAME.get(codec.name)
    if known is not None and known.space_type is not codec.space_type:
        raise CodecError(
            f"custom space name {codec.name!r} is already registered for {known.space_type.__qualname__}"
        )
    _CUSTOM_BY_NAME[codec.name] = codec

    def _describe(space: spaces.Space[Any]) -> spaces_pb2.Space:
        return spaces_pb2.Space(
            custom=spaces_pb2.CustomSpace(type_name=codec.name, parameters=codec.to_parameters(space))
        )

    space_to_proto.register(codec.space_type, _describe)


def custom_space_codec(name: str) -> CustomSpaceCodec:
    codec = _CUSTOM_BY_NAME.get(name)
    if codec is None:
        raise UnsupportedSpaceError(
            f"custom space {name!r} is not registered here; known: {sorted(_CUSTOM_BY_NAME) or 'none'}"
        )
    return codec


@singledispatch
def space_to_proto(space: spaces.Space[Any]) -> spaces_pb2.Space:
    """Describe a Gymnasium space as a ``cogment_gym.v1.Space`` message.

    Example:
        >>> from gymnasium.spaces import Discrete
        >>> space_from_proto(space_to_proto(Discrete(3, start=-1))) == Discrete(3, start=-1)
        True
    """
    raise UnsupportedSpaceError(
        f"no codec for space type {type(space).__qualname__} ({space!r}); expected a Gymnasium space "
        "or a type registered with cogment_gym.codec.register_space"
    )


@space_to_proto.register
def _(space: spaces.Box) -> spaces_pb2.Space:
    return spaces_pb2.Space(
        box=spaces_pb2.BoxSpace(
            low=array_to_tensor(space.low.astype(space.dtype)),
            high=array_to_tensor(space.high.astype(space.dtype)),
        )
    )


@space_to_proto.register
def _(space: spaces.Discrete) -> spaces_pb2.Space:
    return spaces_pb2.Space(
        discrete=spaces_pb2.DiscreteSpace(n=int(space.n), start=int(space.start), dtype=dtype_to_proto(space.dtype))
    )


@space_to_proto.register
def _(space: spaces.MultiDiscrete) -> spaces_pb2.Space:
    return spaces_pb2.Space(
        multi_discrete=spaces_pb2.MultiDiscreteSpace(
            nvec=array_to_tensor(space.nvec.astype(space.dtype)),
            start=array_to_tensor(space.start.astype(space.dtype)),
        )
    )


@space_to_proto.register
def _(space: spaces.MultiBinary) -> spaces_pb2.Space:
    problem = _check_multi_binary_shape(space.shape)
    if problem is not None:
        raise UnsupportedSpaceError(problem)
    return spaces_pb2.Space(
        multi_binary=spaces_pb2.MultiBinarySpace(shape=space.shape, int_n=isinstance(space.n, (int, np.integer)))
    )


@space_to_proto.register
def _(space: spaces.Text) -> spaces_pb2.Space:
    return spaces_pb2.Space(
        text=spaces_pb2.TextSpace(
            min_length=space.min_length, max_length=space.max_length, charset=space.characters
        )
    )


# protobuf (upb) refuses to parse messages nested deeper than 100 levels; a Space travels inside
# up to 2 more (EnvSpec > ActorSpec > Space), so a description may nest this deep.
MAX_SPACE_DEPTH = 96


def _space_leaf_depth(space: spaces.Space[Any]) -> int:
    if isinstance(space, spaces.Graph):  # Space > GraphSpace > Space ...
        parts = [space.node_space] + ([space.edge_space] if space.edge_space is not None else [])
        return 2 + max(nesting_depth(s, _space_leaf_depth) for s in parts)
    if not isinstance(space, _KNOWN_LEAVES):
        return 4  # Space > ForeignSpace > Value > Tensor (its samples), or a CustomSpace
    return 3  # Space > BoxSpace > Tensor at most


def _check_depth(space: spaces.Space[Any]) -> None:
    depth = nesting_depth(space, _space_leaf_depth)
    if depth > MAX_SPACE_DEPTH:
        raise UnsupportedSpaceError(
            f"{type(space).__name__} space nested too deep to describe: {depth} message levels, at most "
            f"{MAX_SPACE_DEPTH} can travel (protobuf parses 100; 3 per Dict level, 2 per Tuple / Sequence / OneOf "
            "/ Graph level); flatten the space"
        )


@space_to_proto.register
def _(space: spaces.Dict) -> spaces_pb2.Space:
    for key in space.spaces:
        if not isinstance(key, str):
            raise UnsupportedSpaceError(f"Dict space keys must be str to travel, got {key!r} ({type(key).__name__})")
    _check_depth(space)
    msg = spaces_pb2.Space()
    msg.dict.SetInParent()  # an empty Dict space is still a dict
    for key, sub in space.spaces.items():
        msg.dict.entries.add(key=key).space.CopyFrom(space_to_proto(sub))
    return msg


def _listed(space: spaces.Tuple | spaces.OneOf, kind: str) -> spaces_pb2.Space:
    """A Tuple's or OneOf's description (``kind``: "tuple" / "one_of"): its spaces in order."""
    _check_depth(space)
    msg = spaces_pb2.Space()
    container = getattr(msg, kind)
    container.SetInParent()  # no spaces is still a tuple / one_of
    for sub in space.spaces:
        container.spaces.add().CopyFrom(space_to_proto(sub))
    return msg


@space_to_proto.register
def _(space: spaces.Tuple) -> spaces_pb2.Space:
    return _listed(space, "tuple")


@space_to_proto.register
def _(space: spaces.Sequence) -> spaces_pb2.Space:
    _check_depth(space)
    msg = spaces_pb2.Space()
    msg.sequence.feature_space.CopyFrom(space_to_proto(space.feature_space))
    msg.sequence.stack = space.stack
    return msg


@space_to_proto.register
def _(space: spaces.Graph) -> spaces_pb2.Space:
    _check_depth(space)
    msg = spaces_pb2.Space()
    msg.graph.node_space.CopyFrom(space_to_proto(space.node_space))
    if space.edge_space is not None:
        msg.graph.edge_space.CopyFrom(space_to_proto(space.edge_space))
    return msg


@space_to_proto.register
def _(space: spaces.OneOf) -> spaces_pb2.Space:
    return _listed(space, "one_of")


_KNOWN_LEAVES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Text)
# Bytes of samples a ForeignSpace description carries at most.
MAX_SAMPLE_BYTES = 64 * 1024


def _foreign(name: str, space: spaces.Space[Any], samples: Any) -> spaces_pb2.Space:
    form = standard_form(space)
    msg = spaces_pb2.Space()
    foreign = msg.foreign
    foreign.type_name = name
    foreign.text = form.text
    if not form.text:
        try:
            foreign.dtype = dtype_to_proto(form.dtype)
        except CodecError as err:
            raise UnsupportedSpaceError(f"{name}: {err}") from err
        foreign.shape.extend(form.shape or ())
    size = 0
    for value in samples:
        # Only values in the form's own types: a str, or an array (what ForeignSpace.sample gives).
        if not isinstance(value, str if form.text else np.ndarray):
            break
        try:
            encoded = encode(space, value, "sample", bounds=False)
        except CodecError:
            break
        size += encoded.ByteSize()
        if size > MAX_SAMPLE_BYTES:
            break
        foreign.samples.add().CopyFrom(encoded)
    return msg


@space_to_proto.register
def _(space: spaces.Space) -> spaces_pb2.Space:
    # Neither a Gymnasium space, a subclass of one, nor registered: its standard form.
    return _foreign(type_name(space), space, draw_samples(space))


@space_to_proto.register
def _(space: ForeignSpace) -> spaces_pb2.Space:
    return _foreign(space.type_name, space, space.samples)


def _int_array(tensor: Any, what: str) -> np.ndarray[Any, Any]:
    array = tensor_to_array(tensor)
    if array.dtype.kind not in "iu":
        raise MalformedMessageError(f"{what} must be an integer tensor, got dtype {array.dtype}")
    return array


def _build(kind: str | None, msg: spaces_pb2.Space) -> spaces.Space[Any]:
    if kind == "box":
        low, high = tensor_to_array(msg.box.low), tensor_to_array(msg.box.high)
        if low.dtype != high.dtype or low.shape != high.shape:
            raise MalformedMessageError(
                f"Box bounds disagree: low is {low.dtype}{list(low.shape)}, high is {high.dtype}{list(high.shape)}"
            )
        return spaces.Box(low=low, high=high, shape=low.shape, dtype=low.dtype)
    if kind == "discrete":
        d = msg.discrete
        return spaces.Discrete(d.n, start=d.start, dtype=dtype_from_proto(d.dtype))
    if kind == "multi_discrete":
        nvec = _int_array(msg.multi_discrete.nvec, "MultiDiscrete nvec")
        start = _int_array(msg.multi_discrete.start, "MultiDiscrete start")
        return spaces.MultiDiscrete(nvec, dtype=nvec.dtype, start=start)
    if kind == "multi_binary":
        shape = [int(n) for n in msg.multi_binary.shape]
        problem = _check_multi_binary_shape(shape)
        if problem is not None:
            raise MalformedMessageError(problem)
        if msg.multi_binary.int_n:
            if len(shape) != 1:
                raise MalformedMessageError(f"MultiBinary with an int n must have one dimension, got shape {shape}")
            return spaces.MultiBinary(shape[0])
        return spaces.MultiBinary(shape)
    if kind == "text":
        t = msg.text
        return spaces.Text(t.max_length, min_length=t.min_length, charset=t.charset)
    if kind == "dict":
        keys = [e.key for e in msg.dict.entries]
        if len(set(keys)) != len(keys):
            raise MalformedMessageError(f"Dict space repeats keys: {keys}")
        # A list of pairs, not a dict: Gymnasium sorts the keys of a plain dict, and the wire order
        # is the space's order.
        return spaces.Dict([(e.key, space_from_proto(e.space)) for e in msg.dict.entries])
    if kind == "tuple":
        return spaces.Tuple([space_from_proto(s) for s in msg.tuple.spaces])
    if kind == "sequence":
        return spaces.Sequence(space_from_proto(msg.sequence.feature_space), stack=msg.sequence.stack)
    if kind == "graph":
        g = msg.graph
        edge = space_from_proto(g.edge_space) if g.HasField("edge_space") else None
        return spaces.Graph(space_from_proto(g.node_space), edge)
    if kind == "one_of":
        return spaces.OneOf([space_from_proto(s) for s in msg.one_of.spaces])
    if kind == "foreign":
        f = msg.foreign
        if len(f.samples) > MAX_SAMPLES:
            raise MalformedMessageError(f"foreign space {f.type_name!r}: {len(f.samples)} samples, at most {MAX_SAMPLES}")
        if f.text:
            foreign = ForeignSpace(f.type_name, text=True)
        else:
            shape = [int(n) for n in f.shape]
            if len(shape) > MAX_NDIM:
                raise MalformedMessageError(f"foreign space {f.type_name!r}: shape {shape} has more than {MAX_NDIM} dimensions")
            foreign = ForeignSpace(f.type_name, text=False, dtype=dtype_from_proto(f.dtype), shape=shape)
        foreign.samples = tuple(decode(foreign, v, f"{f.type_name} sample {i}", bounds=False) for i, v in enumerate(f.samples))
        return foreign
    if kind == "custom":
        codec = custom_space_codec(msg.custom.type_name)
        try:
            space = codec.from_parameters(msg.custom.parameters)
        except CodecError:
            raise
        except Exception as err:  # user code: struct.error, KeyError, ... all mean bad parameters
            raise MalformedMessageError(
                f"custom space {codec.name!r}: parameters {msg.custom.parameters[:40]!r} were refused: {err!r}"
            ) from err
        if not isinstance(space, codec.space_type):
            raise MalformedMessageError(
                f"custom space {codec.name!r}: from_parameters returned {type(space).__qualname__}, "
                f"expected a {codec.space_type.__qualname__}"
            )
        return space
    raise MalformedMessageError("space message has no kind set")


def space_from_proto(msg: spaces_pb2.Space) -> spaces.Space[Any]:
    """Rebuild the Gymnasium space a ``cogment_gym.v1.Space`` message describes.

    Raises:
        MalformedMessageError: the message does not describe a valid space.
        UnsupportedSpaceError: it names a custom space type not registered in this process.
    """
    if not isinstance(msg, spaces_pb2.Space):
        raise MalformedMessageError(f"expected a cogment_gym.v1.Space message, got {type(msg).__qualname__}")
    kind = msg.WhichOneof("kind")
    try:
        return _build(kind, msg)
    except CodecError:
        raise
    except (ValueError, TypeError, AssertionError, OverflowError, IndexError) as err:
        # Gymnasium's own constructors reject inconsistent parameters (n <= 0, low > high, ...).
        raise MalformedMessageError(f"invalid {kind} space description: {err}") from err
