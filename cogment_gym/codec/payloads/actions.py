"""``cogment_gym.v1.ActionPayload``: written by actors and client facades, read (decoded and
checked against the action space) by the environment side."""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.payloads.observations import MISSING
from cogment_gym.codec.payloads.resets import ResetRequest, read_reset_request
from cogment_gym.codec.values import decode, encode, parse_message
from cogment_gym.errors import CogmentGymError, MalformedMessageError

__all__ = ["NO_ACTION", "action_content", "action_payload", "read_action", "read_agent_action", "read_batched_action"]

# An ActionPayload without value: "no action" (off-turn, dead step, not in a parallel dict).
NO_ACTION = b""


def action_content(space: gym.Space[Any] | None, action: Any, path: str = "action") -> bytes:
    """An ActionPayload's bytes: the action encoded by ``space``; None gives an empty payload
    (a multi-agent "no action")."""
    if action is None:
        return NO_ACTION
    if space is None:
        raise CogmentGymError(f"{path}: the action space is not known")
    return action_payload(space, action, path)


def action_payload(space: gym.Space[Any], action: Any, path: str = "action") -> bytes:
    """An ActionPayload's bytes: ``action`` encoded by ``space`` (None does not fit a space: it
    raises SpaceMismatchError like any other misfit)."""
    payload = env_pb2.ActionPayload()
    payload.value.CopyFrom(encode(space, action, path))  # in place: see cogment_gym.codec.building
    return payload.SerializeToString()


def read_action(content: bytes, space: gym.Space[Any], path: str) -> Any:
    """The action of a single-agent trial, decoded and checked by ``space``.

    Raises:
        MalformedMessageError: ``content`` is no ActionPayload.
        SpaceMismatchError: the action does not fit ``space`` (the message names ``path``).
    """
    payload = parse_message(env_pb2.ActionPayload, content, path)
    return decode(space, payload.value, path)


def read_batched_action(content: bytes, space: gym.Space[Any], path: str, num_envs: int) -> Any:
    """The batched action of a batched trial of ``num_envs`` sub-environments (``space``: the
    batched action space), or the :class:`~cogment_gym.codec.payloads.resets.ResetRequest` of a
    reset tick (``ActionPayload.reset``); a payload with neither raises MalformedMessageError."""
    payload = parse_message(env_pb2.ActionPayload, content, path)
    if payload.HasField("reset"):
        request: ResetRequest = read_reset_request(payload.reset, num_envs, path)
        return request
    if not payload.HasField("value"):
        raise MalformedMessageError(f"{path}: expected the batched action of {num_envs} sub-environments, got no value")
    return decode(space, payload.value, path)


def read_agent_action(content: bytes, agent: str, space_of: Callable[[str], gym.Space[Any]]) -> Any:
    """One agent's action in a multi-agent trial, or :data:`MISSING` when the payload is empty or
    has no value ("no action"); ``space_of(agent)`` is asked for the space only when there is one."""
    if not content:
        return MISSING
    payload = parse_message(env_pb2.ActionPayload, content, f"action for agent {agent!r}")
    if not payload.HasField("value"):
        return MISSING
    return decode(space_of(agent), payload.value, f"action of agent {agent!r}")
