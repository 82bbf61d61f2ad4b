"""Exceptions raised by cogment_gym.

Every exception the package raises on purpose derives from :class:`CogmentGymError`. Where a
builtin exception has the same meaning, the subclass inherits it too, so existing ``except
ValueError`` code keeps working::

    try:
        decode(space, message)
    except SpaceMismatchError as err:   # also a ValueError
        print(err.path, err)
"""

from __future__ import annotations

__all__ = [
    "CogmentGymError",
    "CodecError",
    "SpaceMismatchError",
    "UnsupportedSpaceError",
    "UnsupportedValueError",
    "MalformedMessageError",
]


class CogmentGymError(Exception):
    """Root of every error raised by cogment_gym."""


class CodecError(CogmentGymError, ValueError):
    """A value, space or message could not be converted between numpy and protobuf."""


class SpaceMismatchError(CodecError):
    """A value does not belong to the space it is encoded or decoded with.

    Attributes:
        path: Where in the value the mismatch is, e.g. ``"obs['camera']"``.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class UnsupportedSpaceError(CodecError, TypeError):
    """The space type has no registered codec."""


class UnsupportedValueError(CodecError, TypeError):
    """A Python object (typically in an ``info`` dict) has no wire representation."""


class MalformedMessageError(CodecError):
    """Bytes or a protobuf message that are not a valid cogment_gym payload."""
