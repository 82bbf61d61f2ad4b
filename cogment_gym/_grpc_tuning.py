"""gRPC core settings for lock-step streaming, put in place before anything imports ``grpc``.

gRPC reads ``GRPC_EXPERIMENTS`` once, when ``grpc`` is imported. grpcio 1.62-1.85 routes client
channel and server listener I/O through its EventEngine, which costs extra thread hand-overs per
message. cogment_gym's trials exchange one small message each way per tick, so this shows up
directly: turning those two experiments off takes a grpc.aio ping-pong round trip from about 300
to about 180 µs here, and a batched trial of 32 CartPole sub-envs from about 33k to 38k steps/s
(``python benchmarks/event_loops.py``; docs/performance.md).

The setting is left alone when the user set ``GRPC_EXPERIMENTS`` (even to an empty string), when
``COGMENT_GYM_GRPC_TUNING=0``, when ``grpc`` was imported before cogment_gym (too late to take
effect: in Ray's workers, for instance), and for grpcio versions it was not measured on (other
versions may not know the names, and say so on stderr). It is written to ``os.environ``, so
processes started from this one inherit it: env service workers, which want it, but also other
programs with a gRPC of their own (their gRPC reads it as well; one that does not know the names
logs "Unknown experiment" once and carries on).
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

__all__ = ["TUNED_EXPERIMENTS", "apply", "applied"]

TUNED_EXPERIMENTS = "-event_engine_client,-event_engine_listener"
# grpcio releases checked to know both experiment names (older: unknown; newer: not measured).
_KNOWN_VERSIONS = ((1, 62), (1, 85))


def _grpcio_version() -> tuple[int, int] | None:
    try:
        major, minor = metadata.version("grpcio").split(".")[:2]
        return int(major), int(minor)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def apply() -> bool:
    """Set ``GRPC_EXPERIMENTS`` to :data:`TUNED_EXPERIMENTS` if nothing speaks against it (see
    the module doc); True if it was set now."""
    if "GRPC_EXPERIMENTS" in os.environ or os.environ.get("COGMENT_GYM_GRPC_TUNING", "1") == "0":
        return False
    if "grpc" in sys.modules:
        return False
    version = _grpcio_version()
    low, high = _KNOWN_VERSIONS
    if version is None or not low <= version <= high:
        return False
    os.environ["GRPC_EXPERIMENTS"] = TUNED_EXPERIMENTS
    return True


def applied() -> bool:
    """Whether this process runs with the tuned experiments (set by us or by the user)."""
    return os.environ.get("GRPC_EXPERIMENTS") == TUNED_EXPERIMENTS
