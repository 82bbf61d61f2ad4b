"""Exceptions raised by cogment_gym.

Every exception the package raises on purpose derives from :class:`CogmentGymError`, and every
one is defined here. Where a builtin (or Gymnasium) exception has the same meaning, the subclass
inherits it too, so existing ``except ValueError`` (``except gym.error.ResetNeeded``) code keeps
working::

    try:
        decode(space, message)
    except SpaceMismatchError as err:   # also a ValueError
        print(err.path, err)
"""

from __future__ import annotations

import gymnasium as gym

__all__ = [
    "CogmentGymError",
    "CodecError",
    "SpaceMismatchError",
    "UnsupportedSpaceError",
    "UnsupportedValueError",
    "MalformedMessageError",
    "EndpointError",
    "TrialFailedError",
    "InvalidActionError",
    "EnvironmentFailedError",
    "EnvironmentTimeoutError",
    "ActorFailedError",
    "PeerLostError",
    "PeerTimeoutError",
    "EndpointUnreachableError",
    "WrongServiceError",
    "EnvironmentLostError",
    "EnvironmentUnreachableError",
    "OrchestratorLostError",
    "OrchestratorUnreachableError",
    "TrialTerminatedError",
    "ProtocolError",
    "TrialStartError",
    "TrialParamsError",
    "UnknownImplementationError",
    "TrialSetupError",
    "NoActionError",
    "UnknownPolicyError",
    "WorkerStartError",
    "EnvSourceNotPicklableError",
    "ResetNeededError",
    "AlreadyPendingCallError",
    "NoAsyncCallError",
    "ClosedEnvironmentError",
    "NotOpenError",
    "EnvConfigError",
    "TrialFileError",
    "CorruptTrialFileError",
    "TruncatedTrialFileError",
    "DatasetExportError",
    "SecuritySettingsError",
    "AuthenticationError",
    "EndpointRefusedError",
    "MissingExtraError",
    "DirectoryError",
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


class EndpointError(CogmentGymError, ValueError):
    """An endpoint string that cogment_gym cannot use."""


# ---------------------------------------------------------------------------------------- trials


class TrialFailedError(CogmentGymError, RuntimeError):
    """A trial ended abnormally; raised on every side that was part of it.

    Attributes:
        failure: the in-band report (:class:`cogment_gym.protocol.Failure`) when the failure
            happened on another side, with the remote type, message and traceback.
        peer: which component failed or went silent, when one did: ``"environment"``,
            ``"orchestrator"``, ``"actor"`` (a service actor or a client actor), or ``""``
            (unknown, or not a component's failure). Classes made for one peer
            (:class:`EnvironmentLostError`, ...) set it themselves; a
            :class:`PeerTimeoutError` carries the peer that did not answer in time.
    """

    peer: str = ""

    def __init__(self, message: str, *, failure: object | None = None, peer: str | None = None) -> None:
        super().__init__(message)
        self.failure = failure
        if peer is None:
            peer = getattr(failure, "peer", None) or None
        if peer is not None:
            self.peer = peer


class InvalidActionError(TrialFailedError, ValueError):
    """An action did not fit the action space; the environment was not stepped."""


class EnvironmentFailedError(TrialFailedError):
    """The environment raised an exception during the trial."""

    peer = "environment"


class ActorFailedError(TrialFailedError):
    """A service actor's policy raised an exception during the trial."""

    peer = "actor"


class PeerLostError(TrialFailedError, ConnectionError):
    """A peer's stream broke (its process died, the connection dropped)."""


class PeerTimeoutError(TrialFailedError, TimeoutError):
    """A peer did not answer before its deadline."""


class EnvironmentTimeoutError(EnvironmentFailedError, PeerTimeoutError):
    """A served environment's ``reset`` / ``step`` (render included) did not return within the
    service's ``step_timeout`` (``serve(..., step_timeout=...)``). Only that trial fails; the
    service abandons that env instance and never reuses it. The message names the environment,
    the call, the trial and the deadline; the remote traceback is where the env hangs.

    Both an :class:`EnvironmentFailedError` (the env's own code is what failed, and like an env
    that raised, the instance is discarded: ``except EnvironmentFailedError`` code that restarts
    on env failures catches it) and a :class:`PeerTimeoutError` (a deadline passed: one timeout
    type for every deadline, and a builtin ``TimeoutError``).
    """


class EndpointUnreachableError(TrialFailedError, ConnectionError):
    """Nothing answers at an endpoint."""


# One class per component that can be lost, whatever the topology (embedded or standalone
# Orchestrator, TCP or unix socket; docs/protocol.md §11). "Unreachable" is a way of being
# lost: ``except EnvironmentLostError`` catches the environment service dying mid-trial and the
# next trial finding nothing at its endpoint; ``except EndpointUnreachableError`` still catches
# every endpoint that does not answer.


class EnvironmentLostError(PeerLostError):
    """The environment service of the trial is gone: its process died, its connection broke, it
    stopped answering keepalive pings (a stopped process, a network cut; within the bound of
    docs/protocol.md §11), or it closed its stream without ending the trial. Raised alike with an
    embedded or a standalone Orchestrator. Its subclass :class:`EnvironmentUnreachableError`:
    nothing answers at its endpoint when a trial starts or its spec is fetched."""

    peer = "environment"


class EnvironmentUnreachableError(EnvironmentLostError, EndpointUnreachableError):
    """Nothing answers at the environment service's endpoint (a trial starting, or its spec
    being fetched): the service is not running there (any more)."""


class OrchestratorLostError(PeerLostError):
    """The Orchestrator running the trial is gone: its process died, its connection broke, or it
    stopped answering keepalive pings, while the trial ran. Its subclass
    :class:`OrchestratorUnreachableError`: nothing answers at its endpoint when a trial starts."""

    peer = "orchestrator"


class OrchestratorUnreachableError(OrchestratorLostError, EndpointUnreachableError):
    """Nothing answers at the Orchestrator's endpoint (a trial starting, or a client joining)."""


class WrongServiceError(EndpointUnreachableError):
    """Something answers at an endpoint, but not the Cogment service expected there (its calls
    are UNIMPLEMENTED: e.g. an environment service given as the Orchestrator)."""


class TrialTerminatedError(TrialFailedError):
    """The trial was terminated from outside (hard TerminateTrial) while in use."""


class ProtocolError(CogmentGymError, RuntimeError):
    """A peer broke the Cogment protocol (wrong state, wrong message at this point)."""


class TrialStartError(CogmentGymError, RuntimeError):
    """A trial could not be started (bad parameters, id already used, hook failure)."""


class TrialParamsError(CogmentGymError, ValueError):
    """Trial parameters (a params file, a mapping) that cannot be turned into ``TrialParams``.

    Attributes:
        source: the file (or ``"<string>"``/``"<dict>"``) the parameters came from.
        key: where in it, e.g. ``"trial_params.actors[1].response_timeout"``.
    """

    def __init__(self, message: str, *, source: str = "", key: str = "") -> None:
        where = ", ".join(part for part in (source, f"key {key!r}" if key else "") if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.key = key


class EndpointRefusedError(TrialStartError):
    """A trial started over gRPC named an endpoint the Orchestrator may not dial (its
    :class:`~cogment_gym.orchestrator.admission.EndpointPolicy`)."""


# ---------------------------------------------------------------------------------------- security


class SecuritySettingsError(CogmentGymError, ValueError):
    """Security settings that cannot be used: half a key pair, an unreadable or non-PEM file,
    a token gRPC metadata cannot carry."""


class AuthenticationError(TrialFailedError, PermissionError):
    """A server refused the calls made to it: no token, or a wrong one (gRPC ``UNAUTHENTICATED``),
    whether this process called it or the Orchestrator did for a trial. See
    ``Security(token=...)`` and docs/security.md."""


# ---------------------------------------------------------------------------------------- services


class UnknownImplementationError(CogmentGymError, LookupError):
    """A trial asked for an implementation the server does not host."""


class TrialSetupError(CogmentGymError, ValueError):
    """The trial's init data cannot run on this implementation (actors, config)."""


class NoActionError(CogmentGymError, ValueError):
    """An agent whose action is needed at this tick has none (its actor is unavailable)."""


class UnknownPolicyError(CogmentGymError, LookupError):
    """A trial asked for an implementation (policy name) this server does not have."""


class WorkerStartError(CogmentGymError, RuntimeError):
    """A worker process did not start serving: it failed, died, or did not answer in time.
    The other workers were stopped. The message ends with the worker's traceback, if one came.

    Attributes:
        summary: the message without the remote traceback (one line).
        worker: the worker's index (0 to K-1).
        pid: its process id.
        exitcode: its exit code (negative: killed by that signal), None if it was still running.
        remote_type: the type name of the exception raised in the worker ("" if none arrived).
        remote_traceback: that exception's traceback, as text ("" if none arrived).
    """

    def __init__(
        self,
        summary: str,
        *,
        worker: int,
        pid: int,
        exitcode: int | None,
        remote_type: str = "",
        remote_traceback: str = "",
    ) -> None:
        text = summary
        if remote_traceback:
            text += f"\n\nRemote traceback:\n{remote_traceback.rstrip()}"
        super().__init__(text)
        self.summary = summary
        self.worker = worker
        self.pid = pid
        self.exitcode = exitcode
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback


class EnvSourceNotPicklableError(CogmentGymError, TypeError):
    """The env source cannot be sent to worker processes (it does not pickle)."""


# ---------------------------------------------------------------------------------------- facades


class ResetNeededError(CogmentGymError, gym.error.ResetNeeded):
    """``step`` was called with no trial running (before ``reset``, or after the episode ended)."""


class AlreadyPendingCallError(CogmentGymError, gym.error.AlreadyPendingCallError):
    """``step_async`` (or ``reset``, ``step``) while a ``step_async`` still waits for its ``step_wait``."""

    def __init__(self, message: str, name: str = "step") -> None:
        super().__init__(message, name)


class NoAsyncCallError(CogmentGymError, gym.error.NoAsyncCallError):
    """``step_wait`` without a ``step_async`` before it."""

    def __init__(self, message: str, name: str = "step") -> None:
        super().__init__(message, name)


class ClosedEnvironmentError(CogmentGymError, gym.error.ClosedEnvironmentError):
    """A call on a closed vector env (:class:`~cogment_gym.envs.CogmentVectorEnv`)."""


class NotOpenError(CogmentGymError, RuntimeError):
    """A facade's connection used before it was opened (no environment spec, no stub yet)."""


class EnvConfigError(CogmentGymError, ValueError):
    """An RLlib ``env_config`` that does not say how to reach the environment, or says it wrongly."""


class TrialFileError(CogmentGymError, ValueError):
    """A recorded trial file (``cogment_gym.datastore``) cannot be read.

    Attributes:
        path: the file.
        offset: byte offset in the file where the problem starts.
    """

    def __init__(self, message: str, path: str = "", offset: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset


class CorruptTrialFileError(TrialFileError):
    """A trial file holds bytes that are not what was written (bad magic, unknown version, a record
    whose checksum or contents are wrong): the file was damaged or is not a trial file."""


class TruncatedTrialFileError(TrialFileError):
    """A trial file ends in the middle of a record: its writer stopped (crashed, was killed) while
    writing. Records before the cut are intact."""


class DatasetExportError(CogmentGymError, ValueError):
    """Recorded trials cannot be turned into the requested dataset (no spaces known, an agent
    that is not in the trials, a payload that is not cogment_gym's, infos whose keys change)."""


# ---------------------------------------------------------------------------------------- optional packages


class MissingExtraError(CogmentGymError, ImportError):
    """An optional package is needed and not installed; the message names the extra installing it.

    Attributes:
        extra: the cogment-gym extra, e.g. ``"pettingzoo"`` for ``pip install 'cogment-gym[pettingzoo]'``.
    """

    def __init__(self, message: str, *, extra: str, name: str | None = None) -> None:
        super().__init__(message, name=name)
        self.extra = extra


# ---------------------------------------------------------------------------------------- directory


class DirectoryError(CogmentGymError, LookupError):
    """A Cogment Directory refused a registration, or has no service for a ``cogment://discover`` endpoint."""
