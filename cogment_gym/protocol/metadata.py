"""gRPC metadata keys Cogment uses (lower-case, as gRPC requires)."""

from __future__ import annotations

from typing import Iterable

__all__ = ["ACTOR_NAME", "TRIAL_ID", "TRIAL_STARTED", "USER_ID", "metadata_value", "metadata_values"]

TRIAL_ID = "trial-id"
USER_ID = "user-id"
ACTOR_NAME = "actor-name"
# Ours, not Cogment's (other peers ignore it): on a datalog stream, when the trial started, in ns
# since the epoch. The stream of a trial may reach the service after later trials' streams.
TRIAL_STARTED = "cogment-gym-trial-started"


def metadata_values(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> list[str]:
    """Every value of ``key`` (TerminateTrial may carry several trial-id entries)."""
    out = []
    for item in metadata or ():
        k, v = item[0], item[1]
        if k == key:
            out.append(v.decode() if isinstance(v, bytes) else v)
    return out


def metadata_value(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> str | None:
    values = metadata_values(metadata, key)
    return values[0] if values else None
