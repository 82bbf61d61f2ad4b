"""Ready-made policies: uniformly random legal actions, and a human at a keyboard."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

import numpy as np
from gymnasium import spaces

from cogment_gym.actors.policy import ActorContext, TrialPolicy

__all__ = ["KeyboardPolicy", "RandomPolicy", "random_policy"]


def _sample(space: spaces.Space[Any], mask: Any) -> Any:
    if mask is not None and isinstance(space, spaces.Discrete):
        return space.sample(mask=np.asarray(mask, dtype=np.int8))
    return space.sample()


def random_policy(observation: Any, context: ActorContext) -> Any:
    """A uniformly random legal action (the action mask is honoured when there is one)."""
    return _sample(context.action_space, context.action_mask)


class RandomPolicy(TrialPolicy):
    """Uniformly random legal actions, reproducible per trial: seeded with
    ``settings["seed"]`` of the trial's ActorConfig when given."""

    def __init__(self, context: ActorContext) -> None:
        super().__init__(context)
        self.rng = np.random.default_rng(context.settings.get("seed") if isinstance(context.settings, dict) else None)
        self.moves = 0

    def act(self, observation: Any, context: ActorContext) -> Any:
        space = context.action_space
        mask = context.action_mask
        self.moves += 1
        if isinstance(space, spaces.Discrete):
            legal = np.flatnonzero(np.asarray(mask)) if mask is not None else np.arange(space.n)
            return space.start + int(self.rng.choice(legal))
        space.seed(int(self.rng.integers(2**31)))
        return _sample(space, mask)


class KeyboardPolicy(TrialPolicy):
    """A human: shows the observation (and the legal actions) on ``output``, reads the action
    as a line from ``input``.

    Discrete actions are one integer; Box / MultiDiscrete / MultiBinary ones numbers separated
    by spaces. Illegal or malformed answers are asked again. Several trials at once share the
    terminal one question at a time.

    Args (class attributes, override in a subclass or set before serving):
        input, output: the streams (default: ``sys.stdin`` / ``sys.stdout``).
    """

    input: TextIO | None = None
    output: TextIO | None = None
    _lock = threading.Lock()

    def _streams(self) -> tuple[TextIO, TextIO]:
        return (self.input or sys.stdin), (self.output or sys.stdout)

    def act(self, observation: Any, context: ActorContext) -> Any:
        source, sink = self._streams()
        space = context.action_space
        mask = context.action_mask
        with self._lock:
            sink.write(f"\n[{context.actor_name} / agent {context.agent}] tick {context.tick}, reward {context.cumulative_reward:g}\n")
            sink.write(f"observation:\n{_show(observation)}\n")
            if mask is not None:
                sink.write(f"legal actions: {np.flatnonzero(np.asarray(mask)).tolist()}\n")
            while True:
                sink.write(f"your action ({space}): ")
                sink.flush()
                line = source.readline()
                if not line:
                    raise EOFError("no more input: the human left")
                try:
                    action = _parse(space, line)
                except ValueError as err:
                    sink.write(f"not an action: {err}\n")
                    continue
                if not space.contains(action):
                    sink.write(f"{line.strip()!r} is not in {space}\n")
                    continue
                if mask is not None and isinstance(space, spaces.Discrete) and not np.asarray(mask)[int(action) - space.start]:
                    sink.write(f"{int(action)} is not a legal action now\n")
                    continue
                return action

    def end(self, context: ActorContext) -> None:
        _, sink = self._streams()
        with self._lock:
            outcome = "terminated" if context.terminated else "truncated" if context.truncated else "over"
            sink.write(f"\n[{context.actor_name}] episode {outcome}; final reward {context.cumulative_reward:g}\n")
            sink.flush()


def _show(observation: Any) -> str:
    if isinstance(observation, dict):
        return "\n".join(f"{key}:\n{_show(value)}" for key, value in observation.items() if key != "action_mask")
    if isinstance(observation, np.ndarray) and observation.ndim == 3 and observation.shape[-1] == 2:
        # PettingZoo board games: one plane per player -> a text board.
        board = np.full(observation.shape[:2], ".", dtype="<U1")
        board[observation[..., 0] > 0] = "X"
        board[observation[..., 1] > 0] = "O"
        return "\n".join(" ".join(row) for row in board)
    return np.array2string(np.asarray(observation), threshold=200) if isinstance(observation, (np.ndarray, np.generic)) else repr(observation)


def _parse(space: spaces.Space[Any], line: str) -> Any:
    words = line.split()
    if isinstance(space, spaces.Discrete):
        if len(words) != 1:
            raise ValueError("expected one integer")
        return np.int64(int(words[0]))
    if isinstance(space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)):
        values = np.array([float(w) for w in words], dtype=np.float64)
        if values.size != int(np.prod(space.shape)):
            raise ValueError(f"expected {int(np.prod(space.shape))} numbers")
        return values.reshape(space.shape).astype(space.dtype)
    raise ValueError(f"{type(space).__name__} actions cannot be typed in")
