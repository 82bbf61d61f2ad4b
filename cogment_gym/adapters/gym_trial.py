"""One trial of a single-agent Gymnasium environment: reset, decode actions, step, encode.

Knows nothing of streams; the servicer drives it, running its env calls on its instance's
thread (:class:`~cogment_gym.adapters.pool.PooledTrial`).
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.adapters.hosting import Implementation
from cogment_gym.adapters.pool import Instance, PooledTrial
from cogment_gym.codec import decode_object, parse_message
from cogment_gym.codec.payloads import flag_summary, read_action, write_frame, write_observation
from cogment_gym.codec.wire import Pieces
from cogment_gym.errors import TrialSetupError

__all__ = ["GymTrial", "StepResult", "reset_arguments", "single_actor_name"]


class StepResult:
    __slots__ = ("payload", "reward", "terminated", "truncated")

    def __init__(self, payload: bytes | Pieces, reward: float, terminated: bool, truncated: bool) -> None:
        self.payload, self.reward, self.terminated, self.truncated = payload, reward, terminated, truncated


def parse_env_config(config: common_pb2.SerializedMessage | None) -> env_pb2.EnvConfig:
    return parse_message(env_pb2.EnvConfig, config.content if config is not None else b"", "environment config")


def single_actor_name(impl: Implementation, actors: Sequence[common_pb2.TrialActor]) -> str:
    """The name of the one actor a single-agent environment's trial must have."""
    if len(actors) != 1:
        names = [a.name for a in actors]
        raise TrialSetupError(
            f"implementation {impl.name!r} is a single-agent environment: expected 1 actor in the trial, got {len(actors)} {names}"
        )
    return actors[0].name


def reset_arguments(config: env_pb2.EnvConfig) -> tuple[int | None, dict[str, Any] | None]:
    """``(seed, options)`` for ``env.reset`` from a trial's EnvConfig."""
    seed = config.seed if config.HasField("seed") else None
    options = decode_object(config.options, "options") if config.HasField("options") else None
    if options is not None and not isinstance(options, dict):
        raise TrialSetupError(f"reset options must be a dict, got {type(options).__name__}")
    return seed, options


class GymTrial(PooledTrial):
    """A Gymnasium env playing one trial for one actor."""

    impl: Implementation

    def __init__(self, impl: Implementation, actors: Sequence[common_pb2.TrialActor], config: env_pb2.EnvConfig) -> None:
        super().__init__()
        self.impl = impl
        self.actor_name = single_actor_name(impl, actors)
        self.render_mode = config.render_mode or None
        # Cogment Reward messages (the payload carries the reward anyway) unless the client opts out.
        self.send_reward_messages = not config.omit_reward_messages
        self.seed, self.options = reset_arguments(config)
        self.instance_key = config.instance_key
        self.env: gym.Env = None  # type: ignore[assignment]  # set by open()

    def _opened(self, instance: Instance) -> None:
        self.env = instance.env

    def _payload(self, obs: Any, reward: Any, terminated: Any, truncated: Any, info: dict[str, Any]) -> StepResult:
        msg = env_pb2.ObservationPayload()
        # In the env's own types; the summaries (float, bools) are for Cogment and the trial's end.
        reward_f, terminated_b, truncated_b = write_observation(msg, self.impl.observation_space, obs, reward, terminated, truncated, info)
        if self.render_mode in ("rgb_array", "ansi"):
            self.note("render")
            frame = self.env.render()
            if frame is not None:
                write_frame(msg, str(frame) if self.render_mode == "ansi" else frame)
        return StepResult(msg.SerializeToString(), reward_f, terminated_b, truncated_b)

    def reset(self) -> bytes | Pieces:
        obs, info = self.env.reset(seed=self.seed, options=self.options)
        return self._payload(obs, 0.0, False, False, info).payload

    def decode_action(self, content: bytes) -> Any:
        """Decode and check one action; raises SpaceMismatchError / MalformedMessageError."""
        return read_action(content, self.impl.action_space, f"action of actor {self.actor_name!r}")

    def step(self, action: Any, force_truncate: bool = False) -> StepResult:
        """On the instance's thread (see :meth:`PooledTrial.run`), as :meth:`reset`."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        if force_truncate and not flag_summary(terminated, "terminated") and not flag_summary(truncated, "truncated"):
            truncated = True
        return self._payload(obs, reward, terminated, truncated, info)
