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
    "TrialFailedError",
    "InvalidActionError",
    "EnvironmentFailedError",
    "ActorFailedError",
    "PeerLostError",
    "PeerTimeoutError",
    "EndpointUnreachableError",
    "TrialTerminatedError",
    "ProtocolError",
    "TrialStartError",
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


class TrialFailedError(CogmentGymError, RuntimeError):
    """A trial ended abnormally; raised on every side that was part of it.

    Attributes:
        failure: the in-band report (:class:`cogment_gym.protocol.Failure`) when the failure
            happened on another side, with the remote type, message and traceback.
    """

    def __init__(self, message: str, *, failure: object | None = None) -> None:
        super().__init__(message)
        self.failure = failure


class InvalidActionError(TrialFailedError, ValueError):
    """An action did not fit the action space; the environment was not stepped."""


class EnvironmentFailedError(TrialFailedError):
    """The environment raised an exception during the trial."""


class ActorFailedError(TrialFailedError):
    """A service actor's policy raised an exception during the trial."""


class PeerLostError(TrialFailedError, ConnectionError):
    """A peer's stream broke (its process died, the connection dropped)."""


class PeerTimeoutError(TrialFailedError, TimeoutError):
    """A peer did not answer before its deadline."""


class EndpointUnreachableError(TrialFailedError, ConnectionError):
    """Nothing answers at an endpoint."""


class TrialTerminatedError(TrialFailedError):
    """The trial was terminated from outside (hard TerminateTrial) while in use."""


class ProtocolError(CogmentGymError, RuntimeError):
    """A peer broke the Cogment protocol (wrong state, wrong message at this point)."""


class TrialStartError(CogmentGymError, RuntimeError):
    """A trial could not be started (bad parameters, id already used, hook failure)."""
