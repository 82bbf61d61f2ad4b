"""Client side of batched trials (``EnvConfig.num_envs > 0``): reading a ``BatchedStep`` payload,
and cutting / joining batched values when a vector env runs several batched trials."""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import concatenate, create_empty_array, iterate

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import decode, decode_info, parse_message, tensor_to_array
from cogment_gym.errors import MalformedMessageError

__all__ = ["BatchedObservation", "join_batches", "split_batch", "unpack_batched"]

# Spaces whose batched values are plain arrays stacked on axis 0.
_ARRAY_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


class BatchedObservation:
    """What one tick of a batched trial says about its ``num_envs`` sub-environments.

    ``infos`` is empty when no sub-environment has info; ``ends`` lists ``(index, final_obs,
    final_info)`` of SAME_STEP autoresets."""

    __slots__ = ("obs", "rewards", "terminations", "truncations", "infos", "ends")

    def __init__(
        self, obs: Any, rewards: np.ndarray, terminations: np.ndarray, truncations: np.ndarray,
        infos: list[dict[str, Any]], ends: list[tuple[int, Any, dict[str, Any]]],
    ) -> None:
        self.obs, self.rewards, self.terminations, self.truncations = obs, rewards, terminations, truncations
        self.infos, self.ends = infos, ends


def _flags(tensor: Any, dtype: type, n: int, name: str, where: str) -> np.ndarray:
    array = tensor_to_array(tensor)
    if array.dtype != dtype or array.shape != (n,):
        raise MalformedMessageError(f"{where}batch.{name} must be {np.dtype(dtype).name}[{n}], got {array.dtype.name}{list(array.shape)}")
    return array


def unpack_batched(
    content: bytes, batched_space: gym.Space[Any], single_space: gym.Space[Any], num_envs: int, where: str = ""
) -> BatchedObservation:
    """Decode one ObservationPayload of a batched trial of ``num_envs`` sub-environments."""
    payload = parse_message(env_pb2.ObservationPayload, content, f"{where}observation")
    if not payload.HasField("batch"):
        raise MalformedMessageError(
            f"{where}expected the payload of a batched trial ({num_envs} sub-environments), got one without `batch`: "
            "the environment service predates batched trials"
        )
    batch = payload.batch
    obs = decode(batched_space, payload.value, f"{where}observation", bounds=False)  # as Gymnasium: not held to bounds
    rewards = _flags(batch.rewards, np.float64, num_envs, "rewards", where)
    terminations = _flags(batch.terminations, np.bool_, num_envs, "terminations", where)
    truncations = _flags(batch.truncations, np.bool_, num_envs, "truncations", where)
    if len(batch.infos) not in (0, num_envs):
        raise MalformedMessageError(f"{where}batch.infos must hold 0 or {num_envs} entries, got {len(batch.infos)}")
    infos = [decode_info(info) for info in batch.infos]  # [] when every info is empty
    ends = []
    for end in batch.ends:
        if end.index >= num_envs:
            raise MalformedMessageError(f"{where}batch.ends names sub-environment {end.index}, expected < {num_envs}")
        final = decode(single_space, end.observation, f"{where}final observation of sub-environment {end.index}", bounds=False)
        ends.append((int(end.index), final, decode_info(end.info) if end.HasField("info") else {}))
    return BatchedObservation(obs, rewards, terminations, truncations, infos, ends)


def split_batch(batched_space: gym.Space[Any], single_space: gym.Space[Any], value: Any, parts: int) -> list[Any]:
    """Cut a batched value of ``parts * k`` sub-environments into ``parts`` batched values of ``k``."""
    if parts == 1:
        return [value]
    if isinstance(single_space, _ARRAY_SPACES):
        return list(np.split(np.asarray(value), parts))
    items = list(iterate(batched_space, value))
    k = len(items) // parts
    return [concatenate(single_space, items[j * k : (j + 1) * k], _empty(single_space, k)) for j in range(parts)]


def join_batches(single_space: gym.Space[Any], part_space: gym.Space[Any], batches: Sequence[Any]) -> Any:
    """Join batched values of equal size (each of ``part_space``), in order, into one new,
    writable value (as ``SyncVectorEnv`` returns; decoded arrays are read-only views)."""
    if isinstance(single_space, _ARRAY_SPACES):
        return np.concatenate(batches) if len(batches) > 1 else np.array(batches[0])
    items = [item for batch in batches for item in iterate(part_space, batch)]
    return concatenate(single_space, items, _empty(single_space, len(items)))


def _empty(space: gym.Space[Any], n: int) -> Any:
    return create_empty_array(space, n=n, fn=np.empty)
