"""Failures that travel in-band.

When a trial fails on one side (an env raised, an action did not fit the action space, a peer
vanished), the reason travels in the ``details`` string of the hard ``END`` every peer receives.
Cogment tools show that string as it is, so it starts with a readable sentence; cogment_gym peers
also find, after a marker line, a JSON object they turn back into a typed exception with the
remote message and traceback::

    environment 'CartPole-v1' raised ValueError: boom
    --- cogment_gym failure v1 ---
    {"kind": "env_exception", "type": "ValueError", "message": "boom", "traceback": "...", "origin": "..."}
"""

from __future__ import annotations

import enum
import json
import traceback
from dataclasses import asdict, dataclass

from cogment_gym import errors

__all__ = ["Failure", "FailureKind", "failure_from_exception"]

_MARKER = "\n--- cogment_gym failure v1 ---\n"


class FailureKind(str, enum.Enum):
    INVALID_ACTION = "invalid_action"
    ENV_EXCEPTION = "env_exception"
    ACTOR_EXCEPTION = "actor_exception"
    PEER_LOST = "peer_lost"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    UNAUTHENTICATED = "unauthenticated"
    BAD_REQUEST = "bad_request"
    TERMINATED = "terminated"
    OTHER = "other"


_ERROR_CLASSES: dict[str, type[errors.TrialFailedError]] = {
    FailureKind.INVALID_ACTION: errors.InvalidActionError,
    FailureKind.ENV_EXCEPTION: errors.EnvironmentFailedError,
    FailureKind.ACTOR_EXCEPTION: errors.ActorFailedError,
    FailureKind.PEER_LOST: errors.PeerLostError,
    FailureKind.TIMEOUT: errors.PeerTimeoutError,
    FailureKind.UNREACHABLE: errors.EndpointUnreachableError,
    FailureKind.UNAUTHENTICATED: errors.AuthenticationError,
    FailureKind.BAD_REQUEST: errors.TrialFailedError,
    FailureKind.TERMINATED: errors.TrialTerminatedError,
}


@dataclass(frozen=True)
class Failure:
    """Why a trial failed, as reported by the side where it happened."""

    kind: str
    message: str
    origin: str = ""
    type: str = ""
    traceback: str = ""

    def to_details(self) -> str:
        """The ``details`` string of an END message."""
        return self.summary + _MARKER + json.dumps(asdict(self))

    @property
    def summary(self) -> str:
        return self.message if not self.origin else f"{self.origin}: {self.message}"

    @classmethod
    def from_details(cls, details: str) -> Failure:
        """Read a ``details`` string; foreign text becomes a Failure of kind ``other``."""
        head, marker, tail = details.partition(_MARKER)
        if marker:
            try:
                data = json.loads(tail)
                return cls(**{k: str(data.get(k, "")) for k in ("kind", "message", "origin", "type", "traceback")})
            except (ValueError, TypeError):
                pass
        return cls(kind=FailureKind.OTHER.value, message=details or "the trial ended without details")

    def to_exception(self, trial_id: str = "") -> errors.TrialFailedError:
        """The typed exception to raise on this side."""
        cls = _ERROR_CLASSES.get(self.kind, errors.TrialFailedError)
        text = self.summary
        if trial_id:
            text = f"trial {trial_id!r}: {text}"
        if self.traceback:
            text += f"\n\nRemote traceback:\n{self.traceback.rstrip()}"
        return cls(text, failure=self)


def failure_from_exception(err: BaseException, *, origin: str, kind: FailureKind | None = None) -> Failure:
    """Describe an exception caught on this side, with its traceback."""
    if kind is None:
        if isinstance(err, errors.TrialFailedError) and isinstance(err.failure, Failure):
            return err.failure
        kind = FailureKind.OTHER
    return Failure(
        kind=kind.value,
        message=f"{type(err).__name__}: {err}",
        origin=origin,
        type=type(err).__name__,
        traceback="".join(traceback.format_exception(type(err), err, err.__traceback__)),
    )
