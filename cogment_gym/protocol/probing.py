"""Is the expected Cogment service at an endpoint? One ``Version`` call tells, within a deadline.

Every Cogment service (``TrialLifecycleSP``, ``ClientActorSP``, ``ServiceActorSP``,
``EnvironmentSP``, ...) has a ``Version`` call, so a client checks an endpoint the moment it is
given one, and says in one sentence what it expected there, instead of failing later with gRPC's
own text ("UNIMPLEMENTED: Method not found!").
"""

from __future__ import annotations

from typing import Sequence

import grpc

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym.errors import AuthenticationError, PeerLostError, PeerTimeoutError, WrongServiceError
from cogment_gym.protocol.failures import FailureKind, error_class

__all__ = ["PROBE_TIMEOUT", "check_service", "rpc_failure"]

# Seconds a service has to answer its Version call (a live one answers in milliseconds).
PROBE_TIMEOUT = 10.0


async def check_service(channel: grpc.aio.Channel, service: str, description: str, expected: str,
                        timeout: float = PROBE_TIMEOUT, metadata: Sequence[tuple[str, str]] = (), *,
                        peer: str = "") -> common_pb2.VersionInfo:
    """Call ``cogmentAPI.<service>/Version`` on ``channel``; returns the service's versions.

    Args:
        service: the Cogment service name, e.g. ``"TrialLifecycleSP"``.
        description: what the endpoint is, for messages: ``"orchestrator at grpc://..."``.
        expected: what should be there, for messages: ``"a Cogment Orchestrator"``.
        metadata: sent with the call (a token, see :class:`~cogment_gym.protocol.security.Security`).
        peer: which component is expected (``"environment"``, ``"orchestrator"``): the class of
            the unreachable error (:class:`~cogment_gym.errors.OrchestratorUnreachableError`, ...).

    Raises:
        EndpointUnreachableError: nothing answers there (of the peer's class).
        PeerTimeoutError: something accepted the connection but did not answer within ``timeout``
            (a hung or stopped server).
        WrongServiceError: something answers, but does not serve ``service``.
        AuthenticationError: it refuses the call (no token, or a wrong one).
    """
    version = channel.unary_unary(
        f"/cogmentAPI.{service}/Version",
        request_serializer=common_pb2.VersionRequest.SerializeToString,
        response_deserializer=common_pb2.VersionInfo.FromString,
    )
    try:
        info: common_pb2.VersionInfo = await version(common_pb2.VersionRequest(), timeout=timeout, metadata=tuple(metadata))
    except grpc.aio.AioRpcError as err:
        raise rpc_failure(err, description, f"{expected} (cogmentAPI.{service})", timeout, peer=peer) from None
    return info


def rpc_failure(err: grpc.aio.AioRpcError, description: str, expected: str, timeout: float | None = None, *, peer: str = "") -> Exception:
    """The typed error, in one sentence, for a call to ``description`` that failed with ``err``:
    "<description> <what happened>: expected <expected> there". ``peer`` (``"environment"``,
    ``"orchestrator"``) selects the unreachable error's class; a deadline is the timeout type."""
    code = err.code()
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return WrongServiceError(f"{description} answers, but not as {expected}: another kind of service listens there")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthenticationError(f"{description} refused the call: {err.details()}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:  # something took the connection, nothing answered: hung, or stopped
        within = f"within {timeout:g} s" if timeout else "in time"
        return PeerTimeoutError(f"{description} did not answer {within}: expected {expected} there", peer=peer or None)
    if code == grpc.StatusCode.UNAVAILABLE:
        unreachable = error_class(FailureKind.UNREACHABLE.value, peer)
        return unreachable(f"{description} is unreachable ({_reason(err, timeout)}): expected {expected} there", peer=peer or None)
    return PeerLostError(f"{description} failed ({code.name}: {err.details()}): expected {expected} there")


def _reason(err: grpc.aio.AioRpcError, timeout: float | None) -> str:
    """gRPC's details of an unreachable endpoint, said briefly."""
    if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer within {timeout:g} s" if timeout else "no answer in time"
    details = err.details() or ""
    for needle, reason in (("Connection refused", "connection refused"), ("DNS resolution failed", "unknown host"),
                           ("No such file or directory", "no such socket"), ("Connection reset", "connection reset"),
                           ("Socket closed", "connection closed")):
        if needle in details:
            return reason
    return details or "no connection"
