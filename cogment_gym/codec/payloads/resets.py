"""The reset arguments of a batched trial's sub-environments (``SubEnvReset``): each one's first
reset in ``EnvConfig.resets``, and a reset tick of a running trial (``ActionPayload.reset``,
gymnasium.vector's ``reset_mask``). Written by ``CogmentVectorEnv``, read by the environment
side (``adapters/batched_trial.py``) and the datastore replay."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.info import decode_object, encode_object
from cogment_gym.errors import MalformedMessageError

__all__ = ["ResetRequest", "SubEnvResetArgs", "config_resets", "read_reset_request", "reset_action_payload", "write_config_resets"]

#: ``(seed, options)`` of one ``env.reset(seed=..., options=...)``.
SubEnvResetArgs = tuple["int | None", "dict[str, Any] | None"]


class ResetRequest:
    """A reset tick of a batched trial: ``resets`` maps each sub-environment to reset (ascending
    indices) to its ``(seed, options)``; the others are neither stepped nor reset."""

    __slots__ = ("resets",)

    def __init__(self, resets: dict[int, SubEnvResetArgs]) -> None:
        self.resets = resets

    def __repr__(self) -> str:
        return f"ResetRequest({self.resets!r})"


def _fill(msg: env_pb2.SubEnvReset, seed: int | None, options: Mapping[str, Any] | None, what: str) -> None:
    if seed is not None:
        msg.seed = int(seed)
    if options is not None:
        msg.options.CopyFrom(encode_object(dict(options), f"{what} options"))  # in place: see codec.building


def _read(msg: env_pb2.SubEnvReset, what: str) -> SubEnvResetArgs:
    seed = int(msg.seed) if msg.HasField("seed") else None
    options = decode_object(msg.options, f"{what} options") if msg.HasField("options") else None
    if options is not None and not isinstance(options, dict):
        raise MalformedMessageError(f"{what}: reset options must be a dict, got {type(options).__name__}")
    return seed, options


def write_config_resets(
    config: env_pb2.EnvConfig, resets: Sequence[tuple[int | None, Mapping[str, Any] | None] | None]
) -> None:
    """Fill ``config.resets``: sub-environment i's first reset is ``resets[i]`` (None: deferred
    to the first step, ``SubEnvReset.deferred``)."""
    for i, reset in enumerate(resets):
        entry = config.resets.add()
        if reset is None:
            entry.deferred = True
        else:
            _fill(entry, reset[0], reset[1], f"sub-environment {i}")


def config_resets(
    config: env_pb2.EnvConfig, num_envs: int, seed: int | None, options: dict[str, Any] | None
) -> list[SubEnvResetArgs | None]:
    """The first reset of each of ``num_envs`` sub-environments: ``config.resets`` when given
    (None for one deferred to the first step), else ``(seed + i, options)`` (``seed``,
    ``options``: the config's own, already decoded).

    Raises:
        MalformedMessageError: ``config.resets`` does not hold ``num_envs`` entries.
    """
    if not config.resets:
        return [(None if seed is None else seed + i, options) for i in range(num_envs)]
    if len(config.resets) != num_envs:
        raise MalformedMessageError(f"environment config: resets must hold num_envs={num_envs} entries, got {len(config.resets)}")
    return [None if r.deferred else _read(r, f"environment config: resets[{i}]") for i, r in enumerate(config.resets)]


def reset_action_payload(resets: Mapping[int, tuple[int | None, Mapping[str, Any] | None]]) -> bytes:
    """The ActionPayload of a reset tick: sub-environment ``i`` in ``resets`` (at least one) is
    reset with ``resets[i] = (seed, options)``."""
    payload = env_pb2.ActionPayload()
    for index in sorted(resets):
        seed, options = resets[index]
        _fill(payload.reset.resets.add(index=index), seed, options, f"sub-environment {index}")
    return payload.SerializeToString()


def read_reset_request(reset: env_pb2.BatchedReset, num_envs: int, path: str) -> ResetRequest:
    """The checked request of an ActionPayload's ``reset``.

    Raises:
        MalformedMessageError: no sub-environment named, an index out of range, not ascending.
    """
    if not reset.resets:
        raise MalformedMessageError(f"{path}: a reset tick must reset at least one sub-environment")
    out: dict[int, SubEnvResetArgs] = {}
    last = -1
    for entry in reset.resets:
        index = int(entry.index)
        if index >= num_envs or index <= last:
            raise MalformedMessageError(
                f"{path}: reset indices must be ascending, each once and < {num_envs}; got {[int(e.index) for e in reset.resets]}"
            )
        last = index
        out[index] = _read(entry, f"{path}: reset of sub-environment {index}")
    return ResetRequest(out)
