"""Client side of batched trials (``EnvConfig.num_envs > 0``): cutting / joining batched values
when a vector env runs several batched trials (their payloads: ``codec/payloads/batched.py``)."""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import concatenate, create_empty_array, iterate

__all__ = ["join_batches", "split_batch"]

# Spaces whose batched values are plain arrays stacked on axis 0.
_ARRAY_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


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
