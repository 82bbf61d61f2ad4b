"""Registering codecs for Space types that Gymnasium does not ship.

Example, a space of points on a circle of given radius::

    import numpy as np
    from gymnasium.spaces import Space
    from cogment_gym import codec
    from cogment_gym._proto.cogment_gym.v1 import values_pb2

    class Circle(Space):
        def __init__(self, radius=1.0):
            super().__init__((2,), np.float64)
            self.radius = radius
        def contains(self, x):
            return np.isclose(np.hypot(*x), self.radius)
        def __eq__(self, other):
            return isinstance(other, Circle) and other.radius == self.radius

    codec.register_space(
        Circle,
        name="example.Circle",
        to_parameters=lambda space: str(space.radius).encode(),
        from_parameters=lambda data: Circle(float(data)),
        encode=lambda space, value: np.asarray(value, np.float64).tobytes(),
        decode=lambda space, data: np.frombuffer(data, np.float64).copy(),
    )

After that, ``space_to_proto``/``space_from_proto``/``encode``/``decode`` handle ``Circle`` like
any built-in space, also nested inside Dict or Tuple spaces. Both peers must register the same
name. ``decode`` results are checked with ``space.contains``.
"""

from __future__ import annotations

from typing import Any, Callable

from gymnasium import spaces

from cogment_gym._proto.cogment_gym.v1 import values_pb2
from cogment_gym.codec.spaces import CustomSpaceCodec, add_custom_space_codec
from cogment_gym.codec import values as _values
from cogment_gym.codec.values import describe_value
from cogment_gym.errors import CogmentGymError, MalformedMessageError, SpaceMismatchError

__all__ = ["register_space"]


def register_space(
    space_type: type[spaces.Space[Any]],
    *,
    name: str,
    to_parameters: Callable[[Any], bytes],
    from_parameters: Callable[[bytes], spaces.Space[Any]],
    encode: Callable[[Any, Any], bytes],
    decode: Callable[[Any, bytes], Any],
) -> None:
    """Teach the codec a custom Space subclass.

    Args:
        space_type: the Space subclass (its subclasses are covered too).
        name: wire name of the type, the same on every peer, e.g. ``"mylib.Circle"``.
        to_parameters: space -> bytes that describe it (for ``space_to_proto``).
        from_parameters: those bytes -> an equal space (for ``space_from_proto``).
        encode: (space, value) -> bytes.
        decode: (space, bytes) -> value. Errors it raises become ``MalformedMessageError``, and so
            do errors of ``from_parameters``; a value for which ``space.contains`` is false (or
            raises) is a ``SpaceMismatchError`` on both ``encode`` and ``decode``.

    Raises:
        CodecError: ``name`` is already registered for another type.
    """
    add_custom_space_codec(CustomSpaceCodec(name, space_type, to_parameters, from_parameters))
    _register_values(space_type, encode, decode)


def _register_values(
    space_type: type[spaces.Space[Any]],
    to_bytes: Callable[[Any, Any], bytes],
    from_bytes: Callable[[Any, bytes], Any],
) -> None:
    def _fits(space: Any, value: Any) -> bool:
        # A user's contains() may raise on values of the wrong shape or type instead of
        # returning False (the docstring's Circle does: np.hypot(*x) needs exactly 2 items).
        try:
            return bool(space.contains(value))
        except Exception:
            return False

    def _encode(space: Any, value: Any, path: str = "value", *, bounds: bool = True) -> values_pb2.Value:
        if not _fits(space, value):
            raise SpaceMismatchError(f"{path} does not fit {space!r}: got {describe_value(value)}", path=path)
        return values_pb2.Value(custom=to_bytes(space, value))

    def _decode(space: Any, msg: values_pb2.Value, path: str = "value", *, bounds: bool = True) -> Any:
        # ``bounds`` is not used: a custom space's ``contains`` is all there is to check.
        if msg.WhichOneof("kind") != "custom":
            raise SpaceMismatchError(
                f"{path} does not fit {space!r}: expected a custom value, got {msg.WhichOneof('kind') or 'an empty'} value",
                path=path,
            )
        try:
            value = from_bytes(space, msg.custom)
        except CogmentGymError:
            raise
        except Exception as err:
            raise MalformedMessageError(f"{path}: the codec of {type(space).__qualname__} failed: {err}") from err
        if not _fits(space, value):
            raise SpaceMismatchError(f"{path} does not fit {space!r}: got {describe_value(value)}", path=path)
        return value

    _values.encode.register(space_type, _encode)
    _values.decode.register(space_type, _decode)
