"""Failures that travel in-band.

When a trial fails on one side (an env raised, an action did not fit the action space, a peer
vanished), the reason travels in the ``details`` string of the hard ``END`` every peer receives.
Cogment tools show that string as it is, so it starts with a readable sentence; cogment_gym peers
also find, after a marker line, a JSON object they turn back into a typed exception with the
remote message and traceback::

    environment 'CartPole-v1' raised ValueError: boom
    --- cogment_gym failure v1 ---
    {"kind": "env_exception", "type": "ValueError", "message": "boom", "traceback": "...", "origin": "...", "peer": "environment"}

``peer`` names the component that failed or went silent (``environment``, ``orchestrator``,
``actor``; empty when none did or it is not known): with ``kind`` it selects the exception
class, so that a lost environment is an :class:`~cogment_gym.errors.EnvironmentLostError`
whichever process noticed (docs/protocol.md §11). Readers that predate it ignore it and
raise the kind's class (:class:`~cogment_gym.errors.PeerLostError`, ...).
"""

from __future__ import annotations

import enum
import json
import traceback
from dataclasses import asdict, dataclass

from cogment_gym import errors

__all__ = ["ENVIRONMENT", "ORCHESTRATOR", "ACTOR", "Failure", "FailureKind", "error_class", "failure_from_exception", "failure_from_link_error"]

# Peers (Failure.peer, TrialFailedError.peer).
ENVIRONMENT, ORCHESTRATOR, ACTOR = "environment", "orchestrator", "actor"

_MARKER = "\n--- cogment_gym failure v1 ---\n"


class FailureKind(str, enum.Enum):
    INVALID_ACTION = "invalid_action"
    ENV_EXCEPTION = "env_exception"
    ENV_TIMEOUT = "env_timeout"  # a served env's reset/step outlived the service's step_timeout
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
    FailureKind.ENV_TIMEOUT: errors.EnvironmentTimeoutError,
    FailureKind.ACTOR_EXCEPTION: errors.ActorFailedError,
    FailureKind.PEER_LOST: errors.PeerLostError,
    FailureKind.TIMEOUT: errors.PeerTimeoutError,
    FailureKind.UNREACHABLE: errors.EndpointUnreachableError,
    FailureKind.UNAUTHENTICATED: errors.AuthenticationError,
    FailureKind.BAD_REQUEST: errors.TrialFailedError,
    FailureKind.TERMINATED: errors.TrialTerminatedError,
}

# Kinds whose class depends on the peer.
_PEER_CLASSES: dict[tuple[str, str], type[errors.TrialFailedError]] = {
    (FailureKind.PEER_LOST.value, ENVIRONMENT): errors.EnvironmentLostError,
    (FailureKind.UNREACHABLE.value, ENVIRONMENT): errors.EnvironmentUnreachableError,
    (FailureKind.PEER_LOST.value, ORCHESTRATOR): errors.OrchestratorLostError,
    (FailureKind.UNREACHABLE.value, ORCHESTRATOR): errors.OrchestratorUnreachableError,
}


def error_class(kind: str, peer: str = "") -> type[errors.TrialFailedError]:
    """The exception class of a failure of ``kind`` (a :class:`FailureKind` value) of ``peer``."""
    return _PEER_CLASSES.get((kind, peer)) or _ERROR_CLASSES.get(kind, errors.TrialFailedError)


@dataclass(frozen=True)
class Failure:
    """Why a trial failed, as reported by the side where it happened."""

    kind: str
    message: str
    origin: str = ""
    type: str = ""
    traceback: str = ""
    peer: str = ""

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
                return cls(**{k: str(data.get(k, "")) for k in ("kind", "message", "origin", "type", "traceback", "peer")})
            except (ValueError, TypeError):
                pass
        return cls(kind=FailureKind.OTHER.value, message=details or "the trial ended without details")

    def to_exception(self, trial_id: str = "") -> errors.TrialFailedError:
        """The typed exception to raise on this side."""
        cls = error_class(self.kind, self.peer)
        text = self.summary
        if trial_id:
            text = f"trial {trial_id!r}: {text}"
        if self.traceback:
            text += f"\n\nRemote traceback:\n{self.traceback.rstrip()}"
        return cls(text, failure=self, peer=self.peer or None)


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


def failure_from_link_error(err: errors.TrialFailedError, *, origin: str, waiting_for: str = "") -> Failure:
    """The in-band report of a lost, unreachable, refusing or silent peer (an error a
    :class:`~cogment_gym.protocol.links.Link` raised): its kind and peer from the error's class,
    its message completed with what was being waited for."""
    if isinstance(err, errors.EndpointUnreachableError):
        kind = FailureKind.UNREACHABLE
    elif isinstance(err, errors.AuthenticationError):  # a component refused the Orchestrator's token
        kind = FailureKind.UNAUTHENTICATED
    elif isinstance(err, errors.PeerTimeoutError):
        kind = FailureKind.TIMEOUT
    else:
        kind = FailureKind.PEER_LOST
    message = str(err)
    if waiting_for and kind == FailureKind.PEER_LOST and waiting_for not in message:
        message += f"; the trial was waiting for {waiting_for}"
    return Failure(kind.value, message, origin, type(err).__name__, peer=err.peer)
