"""The ``ObservationPayload`` of a batched trial (``EnvConfig.num_envs > 0``): the batched
observation as its value and ``batch`` (``BatchedStep``: the sub-environments' rewards, flags,
infos and SAME_STEP final observations). Written by the environment side
(``adapters/batched_trial.py``), read by ``CogmentVectorEnv``."""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.info import decode_info, encode_info
from cogment_gym.codec.tensor import array_to_tensor, tensor_to_array
from cogment_gym.codec.values import decode, encode, parse_message
from cogment_gym.errors import MalformedMessageError

__all__ = ["BatchedObservation", "unpack_batched", "write_batched"]


class BatchedObservation:
    """What one tick of a batched trial says about its ``num_envs`` sub-environments.

    ``infos`` is empty when no sub-environment has info; ``ends`` lists ``(index, final_obs,
    final_info)`` of SAME_STEP autoresets."""

    __slots__ = ("obs", "rewards", "terminations", "truncations", "infos", "ends", "reset_indices")

    def __init__(
        self, obs: Any, rewards: np.ndarray, terminations: np.ndarray, truncations: np.ndarray,
        infos: list[dict[str, Any]], ends: list[tuple[int, Any, dict[str, Any]]], reset_indices: list[int] | None = None,
    ) -> None:
        self.obs, self.rewards, self.terminations, self.truncations = obs, rewards, terminations, truncations
        self.infos, self.ends = infos, ends
        #: A reset tick's reset sub-environments (``BatchedStep.reset_indices``); empty for a step.
        self.reset_indices = reset_indices or []


def write_batched(
    batched_space: gym.Space[Any], single_space: gym.Space[Any], obs: Any, rewards: np.ndarray, terminations: np.ndarray,
    truncations: np.ndarray, infos: Sequence[dict[str, Any]], ends: Sequence[tuple[int, Any, dict[str, Any]]],
    reset_indices: Sequence[int] = (),
) -> bytes:
    """The payload's bytes: ``obs`` (a value of ``batched_space``), the float64 ``rewards``, bool
    flags, each sub-environment's info (none sent when every info is empty) and the final
    ``(index, observation, info)`` of each sub-environment that SAME_STEP reset in this step.
    ``reset_indices``: a reset tick's reset sub-environments (none for a step).
    The plain ``reward`` holds the rewards' sum (Cogment's ``Reward``, datalogs)."""
    msg = env_pb2.ObservationPayload(reward=float(rewards.sum()))
    msg.value.CopyFrom(encode(batched_space, obs, "observation", bounds=False))  # in place: see codec.building
    batch = msg.batch
    array_to_tensor(rewards, batch.rewards)
    array_to_tensor(terminations, batch.terminations)
    array_to_tensor(truncations, batch.truncations)
    if any(infos):  # otherwise none is sent: no sub-environment has info
        for info in infos:
            entry = batch.infos.add()
            if info:
                entry.CopyFrom(encode_info(info))
    for index, final_obs, final_info in ends:
        end = batch.ends.add(index=index)
        what = f"final observation of sub-environment {index}"
        end.observation.CopyFrom(encode(single_space, final_obs, what, bounds=False))
        if final_info:
            end.info.CopyFrom(encode_info(final_info))
    if reset_indices:
        batch.reset_indices.extend(reset_indices)
    return msg.SerializeToString()


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
    reset_indices = [int(i) for i in batch.reset_indices]
    if any(i >= num_envs for i in reset_indices):
        raise MalformedMessageError(f"{where}batch.reset_indices must be < {num_envs}, got {reset_indices}")
    return BatchedObservation(obs, rewards, terminations, truncations, infos, ends, reset_indices)
