"""In-band failures: the peer travels with the kind, selects the exception class on the other
side, and readers that predate it (no ``peer`` field) still get the kind's class."""

from __future__ import annotations

import json

import pytest

from cogment_gym import errors
from cogment_gym.errors import (
    EndpointUnreachableError,
    EnvironmentFailedError,
    EnvironmentLostError,
    EnvironmentUnreachableError,
    OrchestratorLostError,
    OrchestratorUnreachableError,
    PeerLostError,
    PeerTimeoutError,
    TrialFailedError,
)
from cogment_gym.protocol import Failure, FailureKind
from cogment_gym.protocol.failures import error_class, failure_from_link_error


@pytest.mark.parametrize(
    ("kind", "peer", "expected"),
    [
        ("peer_lost", "environment", EnvironmentLostError),
        ("unreachable", "environment", EnvironmentUnreachableError),
        ("peer_lost", "orchestrator", OrchestratorLostError),
        ("unreachable", "orchestrator", OrchestratorUnreachableError),
        ("peer_lost", "actor", PeerLostError),
        ("peer_lost", "", PeerLostError),
        ("unreachable", "", EndpointUnreachableError),
        ("timeout", "environment", PeerTimeoutError),
        ("env_exception", "", EnvironmentFailedError),
        ("no such kind", "environment", TrialFailedError),
    ],
)
def test_details_round_trip_selects_the_class(kind: str, peer: str, expected: type) -> None:
    failure = Failure(kind, "why", "trial 't1'", "SomeError", "", peer)
    back = Failure.from_details(failure.to_details())
    assert back == failure
    error = back.to_exception()
    assert type(error) is expected and error_class(kind, peer) is expected
    assert error.failure == failure
    assert error.peer == (peer or expected.peer)
    assert str(error) == "trial 't1': why"


def test_details_without_a_peer_field_read_as_before() -> None:
    """A cogment_gym peer from before the field: the kind's class, no peer."""
    old = json.dumps({"kind": "peer_lost", "message": "gone", "origin": "trial 't'", "type": "PeerLostError", "traceback": ""})
    failure = Failure.from_details("trial 't': gone\n--- cogment_gym failure v1 ---\n" + old)
    assert failure.peer == ""
    assert type(failure.to_exception()) is PeerLostError


def test_the_classes_keep_their_bases() -> None:
    """``except PeerLostError`` / ``EndpointUnreachableError`` / ``ConnectionError`` still catch."""
    assert issubclass(EnvironmentUnreachableError, EnvironmentLostError) and issubclass(EnvironmentUnreachableError, EndpointUnreachableError)
    assert issubclass(OrchestratorUnreachableError, OrchestratorLostError) and issubclass(OrchestratorUnreachableError, EndpointUnreachableError)
    for cls in (EnvironmentLostError, OrchestratorLostError, EnvironmentUnreachableError, OrchestratorUnreachableError):
        assert issubclass(cls, PeerLostError) and issubclass(cls, ConnectionError) and issubclass(cls, errors.CogmentGymError)
    assert not issubclass(EnvironmentLostError, EndpointUnreachableError)
    assert not issubclass(OrchestratorLostError, EnvironmentLostError)


def test_a_link_error_becomes_the_failure_of_its_peer() -> None:
    lost = failure_from_link_error(EnvironmentLostError("environment 'e' at grpc://h:1 is gone: its connection broke"),
                                   origin="trial 't'", waiting_for="observations from environment 'e'")
    assert (lost.kind, lost.peer, lost.type) == (FailureKind.PEER_LOST.value, "environment", "EnvironmentLostError")
    assert lost.message.endswith("; the trial was waiting for observations from environment 'e'")
    unreachable = failure_from_link_error(EnvironmentUnreachableError("environment 'e' at grpc://h:1 is unreachable: refused"), origin="trial 't'",
                                          waiting_for="the init answer")
    assert (unreachable.kind, unreachable.peer) == (FailureKind.UNREACHABLE.value, "environment")
    assert "waiting for" not in unreachable.message
    timeout = failure_from_link_error(PeerTimeoutError("no answer within 2 s", peer="environment"), origin="trial 't'", waiting_for="x")
    assert (timeout.kind, timeout.peer, timeout.message) == (FailureKind.TIMEOUT.value, "environment", "no answer within 2 s")
    assert type(Failure.from_details(lost.to_details()).to_exception()) is EnvironmentLostError
