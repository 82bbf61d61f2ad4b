"""The ``ObservationPayload`` of a batched trial (``EnvConfig.num_envs > 0``): the batched
observation as its value and ``batch`` (``BatchedStep``: the sub-environments' rewards, flags,
infos and SAME_STEP final observations). Written by the environment side
(``adapters/batched_trial.py``), read by ``CogmentVectorEnv``."""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cogment_gym._proto.cogment_gym.v1 import env_pb2, tensor_pb2, values_pb2
from cogment_gym.codec.info import decode_info, encode_info
from cogment_gym.codec.tensor import DTYPES, array_to_tensor, dtype_from_proto, tensor_to_array
from cogment_gym.codec.values import decode, encode, parse_message
from cogment_gym.codec.wire import LARGE_FIELD, Pieces, WireError, only_field
from cogment_gym.errors import MalformedMessageError

__all__ = ["BatchedObservation", "batched_pieces", "unpack_batched", "write_batched"]

# Single spaces whose batched value is one array stacked on axis 0, encoded as one Tensor
# (``Value.array``) whatever the values: what batched_pieces writes without the encoder. Exact
# types: a subclass may have a codec of its own (codec.register_space).
_STACKED_SPACES = (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)
_PAYLOAD_VALUE = env_pb2.ObservationPayload.DESCRIPTOR.fields_by_name["value"].number
_VALUE_ARRAY = values_pb2.Value.DESCRIPTOR.fields_by_name["array"].number
_TENSOR_DATA = tensor_pb2.Tensor.DESCRIPTOR.fields_by_name["data"].number


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
    msg = _without_value(single_space, rewards, terminations, truncations, infos, ends, reset_indices)
    msg.value.CopyFrom(encode(batched_space, obs, "observation", bounds=False))  # in place: see codec.building
    return msg.SerializeToString()


def batched_pieces(
    single_space: gym.Space[Any], observations: Sequence[Any], rewards: np.ndarray, terminations: np.ndarray,
    truncations: np.ndarray, infos: Sequence[dict[str, Any]], ends: Sequence[tuple[int, Any, dict[str, Any]]],
    reset_indices: Sequence[int] = (),
) -> Pieces | None:
    """:func:`write_batched`'s payload as :class:`~cogment_gym.codec.wire.Pieces`, the
    sub-environments' observations (one per sub-environment, in order) as its pieces: the
    batched observation is never made, and its bytes are copied once, when the pieces are joined.

    None when this is not worth it or cannot be done, and :func:`write_batched` is what writes the
    payload: observations of less than ``LARGE_FIELD`` bytes in all, a single space other than a
    plain Box, MultiDiscrete or MultiBinary, or an observation that is not a C-contiguous numpy
    array of the space's exact dtype and shape (the encoder converts those)."""
    if type(single_space) not in _STACKED_SPACES:
        return None
    dtype, shape = single_space.dtype, single_space.shape
    if dtype is None or shape is None:
        return None
    code = DTYPES.get(dtype)
    n = len(observations)
    frame_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if code is None or n * frame_bytes < LARGE_FIELD:
        return None
    for obs in observations:
        if not (type(obs) is np.ndarray and obs.dtype == dtype and obs.shape == shape and obs.flags.c_contiguous):
            return None
    tensor = Pieces([tensor_pb2.Tensor(dtype=code, shape=(n, *shape)).SerializeToString()])
    tensor.add_field(_TENSOR_DATA, Pieces(observations, nbytes=n * frame_bytes))
    value = Pieces()
    value.add_field(_VALUE_ARRAY, tensor)
    rest = _without_value(single_space, rewards, terminations, truncations, infos, ends, reset_indices)
    payload = Pieces([rest.SerializeToString()])
    payload.add_field(_PAYLOAD_VALUE, value)
    return payload


def _without_value(
    single_space: gym.Space[Any], rewards: np.ndarray, terminations: np.ndarray, truncations: np.ndarray,
    infos: Sequence[dict[str, Any]], ends: Sequence[tuple[int, Any, dict[str, Any]]], reset_indices: Sequence[int],
) -> env_pb2.ObservationPayload:
    """A batched trial's ObservationPayload but its ``value``: rewards, flags, infos, ends."""
    msg = env_pb2.ObservationPayload(reward=float(rewards.sum()))
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
    return msg


def _stacked_observation(content: bytes, batched_space: gym.Space[Any], single_space: gym.Space[Any]) -> tuple[np.ndarray, bytes] | None:
    """The batched observation of a stacked-array space as a read-only array on ``content``'s own
    bytes, and the payload's other fields (small: rewards, flags, infos) to parse; None for
    anything else (a payload under ``LARGE_FIELD`` bytes, another space, a value with more than
    its array, a dtype or shape that is not the space's, bool data, malformed bytes), which the
    parser and the decoder then handle, with their errors."""
    if type(single_space) not in _STACKED_SPACES or not isinstance(content, bytes) or len(content) < LARGE_FIELD:
        return None
    try:  # ObservationPayload.value (beside other fields) > Value.array (alone) > Tensor.data
        value = only_field(content, 0, len(content), _PAYLOAD_VALUE, others=True)
        if value is None:
            return None
        array_field = only_field(content, value.value_start, value.end, _VALUE_ARRAY)
        if array_field is None:
            return None
        field = only_field(content, array_field.value_start, array_field.end, _TENSOR_DATA, others=True)
    except WireError:
        return None
    if field is None:
        return None
    header = tensor_pb2.Tensor.FromString(content[array_field.value_start : field.start] + content[field.end : array_field.end])
    try:
        dtype = dtype_from_proto(header.dtype)
    except MalformedMessageError:
        return None
    shape = tuple(int(d) for d in header.shape)
    if dtype != batched_space.dtype or dtype.kind == "b" or shape != batched_space.shape:
        return None
    count = int(np.prod(shape, dtype=np.int64))
    if field.end - field.value_start != count * dtype.itemsize:
        return None
    array = np.frombuffer(content, dtype=dtype, count=count, offset=field.value_start).reshape(shape)
    return array, content[: value.start] + content[value.end :]


def _flags(tensor: Any, dtype: type, n: int, name: str, where: str) -> np.ndarray:
    array = tensor_to_array(tensor)
    if array.dtype != dtype or array.shape != (n,):
        raise MalformedMessageError(f"{where}batch.{name} must be {np.dtype(dtype).name}[{n}], got {array.dtype.name}{list(array.shape)}")
    return array


def unpack_batched(
    content: bytes, batched_space: gym.Space[Any], single_space: gym.Space[Any], num_envs: int, where: str = ""
) -> BatchedObservation:
    """Decode one ObservationPayload of a batched trial of ``num_envs`` sub-environments."""
    split = _stacked_observation(content, batched_space, single_space)
    if split is not None:  # the observation wraps the received bytes; the rest is parsed
        obs, rest = split
        payload = parse_message(env_pb2.ObservationPayload, rest, f"{where}observation")
    else:
        payload = parse_message(env_pb2.ObservationPayload, content, f"{where}observation")
        obs = None
    if not payload.HasField("batch"):
        raise MalformedMessageError(
            f"{where}expected the payload of a batched trial ({num_envs} sub-environments), got one without `batch`: "
            "the environment service predates batched trials"
        )
    batch = payload.batch
    if obs is None:
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
