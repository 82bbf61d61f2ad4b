"""What every cogment_gym component shares on the wire: communication states, endpoints,
metadata keys, deadlines, failure reports, version/status replies, the in-process stream, and
the security settings (TLS, mTLS, token) of servers and channels."""

from cogment_gym.protocol.deadlines import DEFAULT_TIMEOUT, wait_for
from cogment_gym.protocol.endpoints import CLIENT_ENDPOINT, Endpoint, parse_endpoint
from cogment_gym.protocol.failures import Failure, FailureKind, failure_from_exception
from cogment_gym.protocol.local import LocalCall
from cogment_gym.protocol.security import Security
from cogment_gym.protocol.states import END, HEARTBEAT, LAST, LAST_ACK, NORMAL, state_name
from cogment_gym.protocol.versions import status_reply, version_info

__all__ = [
    "CLIENT_ENDPOINT",
    "DEFAULT_TIMEOUT",
    "END",
    "Endpoint",
    "Failure",
    "FailureKind",
    "HEARTBEAT",
    "LAST",
    "LAST_ACK",
    "LocalCall",
    "NORMAL",
    "Security",
    "failure_from_exception",
    "parse_endpoint",
    "state_name",
    "status_reply",
    "version_info",
    "wait_for",
]
