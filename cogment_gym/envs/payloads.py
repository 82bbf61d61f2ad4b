"""Reading a single-agent environment's ``cogment_gym.v1.ObservationPayload`` on the client side
(``CogmentEnv``, ``CogmentVectorEnv``)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import decode, decode_info, parse_message, tensor_to_array
from cogment_gym.codec.returns import decode_returns

__all__ = ["unpack_observation"]


def unpack_observation(
    content: bytes, space: gym.Space[Any], path: str = "observation", where: str = ""
) -> tuple[Any, Any, Any, Any, dict[str, Any], Any]:
    """``(obs, reward, terminated, truncated, info, frame)`` of one ObservationPayload; ``frame``
    is None when the payload carries none. ``where`` prefixes the error of a malformed payload."""
    payload = parse_message(env_pb2.ObservationPayload, content, f"{where}observation")
    obs = decode(space, payload.value, path, bounds=False)  # as Gymnasium: observations may leave their bounds
    info = decode_info(payload.info) if payload.HasField("info") else {}
    frame: Any = None
    if payload.HasField("frame"):
        frame = tensor_to_array(payload.frame)
    elif payload.text_frame:
        frame = payload.text_frame
    reward, terminated, truncated = decode_returns(payload)  # the env's own types (codec.returns)
    return obs, reward, terminated, truncated, info, frame
