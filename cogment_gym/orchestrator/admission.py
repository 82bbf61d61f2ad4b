"""Which endpoints a trial started from the wire may make the Orchestrator dial.

A StartTrial request names the environment, the service actors and the datalog by endpoint, and
the Orchestrator connects to them: whoever can reach its lifecycle port can make it open gRPC
connections (to another host of the network, to a unix socket of its host). An
:class:`EndpointPolicy` bounds that for trials started over gRPC (``TrialLifecycleSP``); trials
started in the same process (the facades' embedded Orchestrator) are not checked.

- ``local://`` endpoints (components registered in the Orchestrator's own process) are refused
  unless ``allow_local`` is set: they are never meant to come from another process.
- ``allowed``: None lets any ``grpc://`` or ``unix:`` endpoint through (what Cogment does);
  otherwise every endpoint must match one entry:

  - an exact endpoint: ``grpc://10.0.0.5:9001``, ``unix:///run/cogment/env.sock``;
  - a pattern where ``*`` matches any run of characters and ``?`` one:
    ``grpc://*.cluster.local:*``, ``grpc://10.0.0.*:9001``, ``unix:///run/cogment/*``;
  - a host pattern alone, any port: ``10.0.0.*``, ``envs.example.org``.

  Hosts compare case-insensitively; ``*`` in a host never matches ``:`` or ``/`` (so
  ``grpc://good.example:*`` cannot match ``grpc://good.example:1@elsewhere:9001``), a port
  pattern is ``*`` or a number, a ``unix:`` path is compared once normalised (no ``..``).

Endpoints the operator named (the default params file) are always allowed.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Iterable

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym.errors import EndpointRefusedError
from cogment_gym.protocol import parse_endpoint
from cogment_gym.protocol.endpoints import CLIENT_ENDPOINT, EndpointError

__all__ = ["EndpointPolicy", "trial_endpoints"]

# What a host of a grpc:// endpoint may hold: a DNS name, an IPv4 address, an IPv6 literal.
_HOST = re.compile(r"^(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])$")


def trial_endpoints(params: common_pb2.TrialParams) -> list[tuple[str, str]]:
    """``(what, endpoint)`` for every component a trial's params make the Orchestrator dial."""
    out = []
    if params.environment.endpoint:
        out.append(("environment", params.environment.endpoint))
    for actor in params.actors:
        if actor.endpoint and actor.endpoint.lower() not in (CLIENT_ENDPOINT, "client"):
            out.append((f"actor {actor.name!r}", actor.endpoint))
    if params.datalog.endpoint:
        out.append(("datalog", params.datalog.endpoint))
    return out


def _wildcards(pattern: str, any_char: str) -> re.Pattern[str]:
    """``*`` and ``?`` as wildcards over ``any_char``; everything else literal."""
    parts = [f"{any_char}*" if c == "*" else any_char if c == "?" else re.escape(c) for c in pattern]
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE)


class _Rule:
    """One entry of an allow-list."""

    def __init__(self, entry: str) -> None:
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"an allowed endpoint must be a non-empty str, got {entry!r}")
        entry = entry.strip()
        self.entry = entry
        self.unix: re.Pattern[str] | None = None
        self.host: re.Pattern[str] | None = None
        self.port: str | None = None
        if entry.startswith("unix:"):
            path = entry[len("unix:"):]
            path = path[2:] if path.startswith("//") else path
            if not path.startswith("/"):
                raise ValueError(f"allowed endpoint {entry!r}: a unix socket path must be absolute, as in 'unix:///run/env.sock'")
            self.unix = _wildcards(posixpath.normpath(path), ".")
            return
        if entry.startswith("grpc://"):
            host, sep, port = entry[len("grpc://"):].rstrip("/").rpartition(":")
            if not sep or not host or not (port == "*" or port.isdigit()):
                raise ValueError(f"allowed endpoint {entry!r}: expected 'grpc://HOST:PORT' (HOST may hold * and ?, PORT may be *)")
        elif "://" in entry or entry.startswith("local:"):
            raise ValueError(f"allowed endpoint {entry!r}: expected grpc://HOST:PORT, unix:///PATH or a host pattern")
        else:
            host, port = entry, "*"
        if not re.fullmatch(r"[A-Za-z0-9_.*?-]+|\[[0-9A-Fa-f:.*?]+\]", host):
            raise ValueError(f"allowed endpoint {entry!r}: {host!r} is not a host name, address or pattern")
        self.host = _wildcards(host, r"[A-Za-z0-9_.\-\[\]]")
        self.port = port

    def matches(self, scheme: str, address: str) -> bool:
        if scheme == "unix":
            return self.unix is not None and self.unix.match(posixpath.normpath(address)) is not None
        if scheme != "grpc" or self.host is None:
            return False
        host, _, port = address.rpartition(":")
        return self.host.match(host) is not None and (self.port == "*" or self.port == port)


@dataclass(frozen=True)
class EndpointPolicy:
    """What a StartTrial received over gRPC may name (see the module docstring).

    Args:
        allow_local: let ``local://`` endpoints through (components registered in the
            Orchestrator's process); default False.
        allowed: None (default): any ``grpc://`` / ``unix:`` endpoint; else the exact endpoints
            and patterns every endpoint must match.

    Example:
        >>> policy = EndpointPolicy(allowed=("grpc://10.0.0.*:9001", "envs.example.org"))
        >>> policy.allows("grpc://10.0.0.7:9001"), policy.allows("grpc://envs.example.org:1234")
        (True, True)
        >>> policy.allows("grpc://10.0.0.7:22"), policy.allows("unix:///tmp/x.sock")
        (False, False)
    """

    allow_local: bool = False
    allowed: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.allowed is not None:
            if isinstance(self.allowed, str):
                raise TypeError("allowed must be a sequence of endpoints or patterns, not one str")
            entries = tuple(self.allowed)
            object.__setattr__(self, "allowed", entries)
            object.__setattr__(self, "_rules", tuple(_Rule(e) for e in entries))
        else:
            object.__setattr__(self, "_rules", None)

    @property
    def restricts(self) -> bool:
        """An allow-list is set."""
        return self.allowed is not None

    def allows(self, endpoint: str) -> bool:
        """Whether ``endpoint`` may be dialed for a trial started over gRPC (a malformed one is
        left to the trial's own checks, which refuse it)."""
        return self._refusal(endpoint) is None

    def _refusal(self, endpoint: str) -> str | None:
        try:
            parsed = parse_endpoint(endpoint)
        except EndpointError:  # not an endpoint at all: the trial's own checks say so
            return None
        if parsed.scheme == "local":
            return None if self.allow_local else "local:// endpoints name components of the Orchestrator's own process and are refused over gRPC"
        rules: tuple[_Rule, ...] | None = self._rules  # type: ignore[attr-defined]
        if rules is None:
            return None
        if parsed.scheme == "grpc" and not _HOST.match(parsed.address.rpartition(":")[0]):
            return "its host is not a host name or address"
        if any(rule.matches(parsed.scheme, parsed.address) for rule in rules):
            return None
        return f"it matches none of the allowed endpoints {list(self.allowed or ())}"

    def check(self, params: common_pb2.TrialParams, *, trial_id: str, trusted: Iterable[str] = ()) -> None:
        """Raise :class:`EndpointRefusedError` for the first endpoint of ``params`` this policy
        refuses; endpoints in ``trusted`` (the operator's own) always pass."""
        known = set(trusted)
        for what, endpoint in trial_endpoints(params):
            if endpoint in known:
                continue
            reason = self._refusal(endpoint)
            if reason is not None:
                raise EndpointRefusedError(f"trial {trial_id!r} cannot start: the {what} endpoint {endpoint!r} is refused: {reason}")
