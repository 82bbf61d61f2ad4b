"""What every fault test asserts besides the error: how long the failure took to reach the caller
(:class:`Clock`), and that a trial running beside the failing one was not touched
(:class:`Bystander`: it gives exactly what the env stepped directly gives, to its episode's end)."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym

from cogment_gym import CogmentEnv
from cogment_gym.protocol.links import SILENT_PEER_BOUND
from cogment_gym.testing import assert_data_equal

__all__ = ["FAST", "SILENT", "Bystander", "Clock"]

FAST = 5.0  # seconds within which a failure the kernel reports (a killed process) reaches the caller
SILENT = SILENT_PEER_BOUND + 5.0  # ... and one only keepalive finds (a stopped process), with a margin


class Clock:
    def __enter__(self) -> Clock:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.start


class Bystander:
    """A CartPole trial beside the failing one, compared step by step with CartPole stepped
    directly with the same seed and actions.

    Args:
        env: the facade of the trial (closed by the caller).
        seed: the episode's seed.
    """

    def __init__(self, env: CogmentEnv, seed: int = 7) -> None:
        self.env = env
        self.direct = gym.make("CartPole-v1")
        self.t = 0
        self.episodes = 0
        expected, _ = self.direct.reset(seed=seed)
        got, _ = env.reset(seed=seed)
        assert_data_equal(expected, got, "reset observation")

    def step(self, count: int = 1) -> None:
        for _ in range(count):
            self._one()

    def finish(self) -> None:
        """Play to the end of the running episode (the trial ends cleanly there)."""
        episodes = self.episodes
        while self.episodes == episodes:
            self._one()

    def _one(self) -> Any:
        action = self.t % 2
        self.t += 1
        expected = self.direct.step(action)
        got = self.env.step(action)
        assert_data_equal(expected[0], got[0], f"observation of step {self.t}")
        assert got[1:4] == expected[1:4], f"step {self.t}: (reward, terminated, truncated) {got[1:4]} != {expected[1:4]}"
        if got[2] or got[3]:
            self.episodes += 1
            assert_data_equal(self.direct.reset(seed=self.t)[0], self.env.reset(seed=self.t)[0], "reset observation")
