"""Small deterministic environments for testing bridges, and environments that fail on purpose.

- :class:`CompositeSpacesEnv`: nested Dict / Tuple observation with every common leaf space
  (Box of several dtypes, Discrete with a start, MultiDiscrete, MultiBinary, Text), a composite
  action space, a rich ``info`` (numpy arrays and scalars, nested dicts, lists, tuples, None,
  ints beyond 64 bits, NaN, -0.0, bytes), reset ``options``, and episodes that end after a
  seeded number of steps, some ``terminated`` and some ``truncated``. Every value it returns is
  already of its space's canonical type, so a bridge must give it back unchanged.
- :class:`CountingEnv`: counts its resets and steps in a shared :class:`StepCounter`, to prove
  that an env was (or was not) stepped.
- :class:`RaisingEnv`: raises :class:`InjectedFault` in ``reset`` or at a given step.
- :class:`PidEnv`: puts the id of the process it runs in into every ``info``, to tell which
  server (worker process) played a trial.
- :class:`HangingEnv`: blocks in ``reset``, ``step`` or ``render`` until its gate opens, when
  its reset options say so; registered as ``cogment_gym/Hanging-v0`` (whose gate never opens).

Example:
    >>> import gymnasium as gym
    >>> import cogment_gym.testing  # registers cogment_gym/CompositeSpaces-v0
    >>> env = gym.make("cogment_gym/CompositeSpaces-v0")
    >>> obs, info = env.reset(seed=1)
    >>> sorted(obs)[:3]
    ['counts', 'flags', 'image']
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = [
    "COMPOSITE_ENV_ID",
    "CompositeSpacesEnv",
    "CountingEnv",
    "HANGING_ENV_ID",
    "HangingEnv",
    "InjectedFault",
    "PidEnv",
    "RaisingEnv",
    "StepCounter",
    "register_envs",
]

COMPOSITE_ENV_ID = "cogment_gym/CompositeSpaces-v0"
HANGING_ENV_ID = "cogment_gym/Hanging-v0"

_LABEL_CHARSET = "abcdefgh"


class CompositeSpacesEnv(gym.Env[dict[str, Any], dict[str, Any]]):
    """A deterministic env with composite spaces; all randomness comes from ``self.np_random``.

    Reset options (all optional):
        ``episode_length`` (int >= 1): steps before the episode ends (default: seeded, 3 to 12).
        ``truncate`` (bool): end with ``truncated`` rather than ``terminated`` (default: seeded).
        ``label`` (str of ``"abcdefgh"``, 1 to 8 chars): the initial ``obs["label"]``.

    The reset ``info`` echoes the options under ``"options"`` (None when none were given).

    Args:
        render_mode: ``None`` or ``"ansi"`` (a one-line text rendering).
        nan_info: also put NaNs in the step ``info`` (a strict comparison must treat NaN as equal
            to NaN; Gymnasium's ``check_env`` does not, so this is off by default).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, nan_info: bool = False) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.nan_info = nan_info
        self.observation_space = spaces.Dict(
            {
                "position": spaces.Box(-10.0, 10.0, (3,), np.float32),
                "image": spaces.Box(0, 255, (2, 3), np.uint8),
                "offsets": spaces.Box(-100, 100, (2,), np.int32),
                "half": spaces.Box(-1.0, 1.0, (2,), np.float16),
                "mode": spaces.Discrete(3, start=-1),
                "flags": spaces.MultiBinary(4),
                "counts": spaces.MultiDiscrete([3, 5, 2]),
                "label": spaces.Text(max_length=8, min_length=1, charset=_LABEL_CHARSET),
                "pair": spaces.Tuple((spaces.Discrete(5), spaces.Box(-1.0, 1.0, (2,), np.float64))),
                "nested": spaces.Dict(
                    {
                        "grid": spaces.MultiDiscrete(np.array([[2, 3], [4, 5]])),
                        "bits": spaces.MultiBinary([2, 2]),
                        "level": spaces.Box(-1.0, 1.0, (), np.float64),
                    }
                ),
            }
        )
        self.action_space = spaces.Dict(
            {
                "move": spaces.Box(-1.0, 1.0, (2,), np.float32),
                "choice": spaces.Discrete(4),
                "extra": spaces.Tuple((spaces.MultiBinary(3), spaces.MultiDiscrete([2, 3]))),
            }
        )
        self._position = np.zeros(3, np.float32)
        self._label = "a"
        self._t = 0
        self._length = 1
        self._truncate = False
        self._last_choice = 0

    # ------------------------------------------------------------------ gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        opts = dict(options or {})
        rng = self.np_random
        length = int(rng.integers(3, 13))
        truncate = bool(rng.integers(2))
        if "episode_length" in opts:
            length = int(opts["episode_length"])
            if length < 1:
                raise ValueError(f"options['episode_length'] must be >= 1, got {length}")
        if "truncate" in opts:
            truncate = bool(opts["truncate"])
        label = opts.get("label")
        if label is None:
            label = "".join(rng.choice(list(_LABEL_CHARSET), size=int(rng.integers(1, 9))))
        if not isinstance(label, str) or not 1 <= len(label) <= 8 or set(label) - set(_LABEL_CHARSET):
            raise ValueError(f"options['label'] must be 1 to 8 characters of {_LABEL_CHARSET!r}, got {label!r}")
        self._length, self._truncate, self._label = length, truncate, label
        self._position = rng.uniform(-1.0, 1.0, 3).astype(np.float32)
        self._t = 0
        self._last_choice = 0
        info: dict[str, Any] = {
            "step": 0,
            "episode_length": length,
            "options": dict(options) if options is not None else None,
            "start": self._position.copy(),
        }
        return self._observation(), info

    def step(self, action: dict[str, Any]) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        rng = self.np_random
        move = np.asarray(action["move"], dtype=np.float32)
        choice = int(action["choice"])
        toggles, pick = action["extra"]
        self._t += 1
        self._last_choice = choice
        noise = rng.normal(0.0, 0.1, 3).astype(np.float32)
        self._position = np.clip(self._position + np.append(move, np.float32(0.25 * choice - 0.375)) * np.float32(0.5) + noise, -10.0, 10.0).astype(np.float32)
        if int(np.sum(toggles)) % 2:
            self._label = self._label[1:] + self._label[:1]
        reward = float(np.sum(move, dtype=np.float64)) + 0.25 * choice - 0.1 * int(np.sum(pick)) + float(rng.normal())
        done = self._t >= self._length
        terminated, truncated = done and not self._truncate, done and self._truncate
        info: dict[str, Any] = {
            "step": self._t,
            "choice": choice,
            "big": 2**70 + self._t,
            "neg_zero": -0.0,
            "raw": bytes([self._t % 256, 0, 255]),
            "trace": np.arange(4, dtype=np.int16) * np.int16(self._t),
            "nested": {
                "none": None,
                "scalar": np.float32(reward),
                "floats": np.array([-0.0, np.inf, -np.inf], np.float64),
                "list": [self._t, 0.5, "text", None],
                "tuple": (True, np.int8(-3), (1, 2)),
            },
        }
        if self.nan_info:
            info["nan"] = float("nan")
            info["nested"]["nan_array"] = np.array([np.nan, 1.0], np.float32)
            info["nested"]["nan_scalar"] = np.float16("nan")
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        x, y, z = (float(v) for v in self._position)
        return f"t={self._t} label={self._label} position=({x:.3f}, {y:.3f}, {z:.3f})\n"

    # ------------------------------------------------------------------ internals

    def _observation(self) -> dict[str, Any]:
        rng = self.np_random
        # Keys in the space's (sorted) order, values of the canonical types of their spaces.
        return {
            "counts": rng.integers(0, [3, 5, 2]).astype(np.int64),
            "flags": rng.integers(0, 2, 4).astype(np.int8),
            "half": rng.uniform(-1.0, 1.0, 2).astype(np.float16),
            "image": rng.integers(0, 256, (2, 3)).astype(np.uint8),
            "label": self._label,
            "mode": np.int64(self._t % 3 - 1),
            "nested": {
                "bits": rng.integers(0, 2, (2, 2)).astype(np.int8),
                "grid": rng.integers(0, [[2, 3], [4, 5]]).astype(np.int64),
                "level": np.array(rng.uniform(-1.0, 1.0), np.float64),
            },
            "offsets": rng.integers(-100, 101, 2).astype(np.int32),
            "pair": (np.int64(self._last_choice), rng.uniform(-1.0, 1.0, 2)),
            "position": self._position.copy(),
        }


class StepCounter:
    """Thread-safe counts of what :class:`CountingEnv` instances did (shared between instances)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.instances = 0
        self.resets = 0
        self.steps = 0
        self.actions: list[Any] = []

    def _add(self, what: str, action: Any = None) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)
            if what == "steps":
                self.actions.append(action)

    def __repr__(self) -> str:
        return f"StepCounter(instances={self.instances}, resets={self.resets}, steps={self.steps})"


class CountingEnv(gym.Env[np.ndarray, Any]):
    """Counts instances, resets and steps in ``counter``; observation = [resets, steps] so far.

    Args:
        counter: shared counts (one per test).
        action_space: default ``Box(-1, 1, (2,), float32)``.
        episode_length: steps before ``terminated`` (None: never ends by itself).
        step_delay: seconds each step takes (a slow env; it blocks its thread meanwhile).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        counter: StepCounter,
        action_space: spaces.Space[Any] | None = None,
        episode_length: int | None = None,
        step_delay: float = 0.0,
    ) -> None:
        self.counter = counter
        self.step_delay = step_delay
        self.action_space = action_space if action_space is not None else spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = spaces.Box(0, 2**31 - 1, (2,), np.int64)
        self.episode_length = episode_length
        self._t = 0
        counter._add("instances")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.counter._add("resets")
        self._t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.step_delay > 0:
            time.sleep(self.step_delay)
        self.counter._add("steps", action)
        self._t += 1
        terminated = self.episode_length is not None and self._t >= self.episode_length
        return self._obs(), 1.0, terminated, False, {"t": self._t}

    def _obs(self) -> np.ndarray:
        return np.array([self.counter.resets, self.counter.steps], np.int64)


class InjectedFault(RuntimeError):
    """What :class:`RaisingEnv` raises."""


class RaisingEnv(gym.Env[np.ndarray, np.int64]):
    """Raises :class:`InjectedFault` in ``reset`` or at a step.

    Args:
        raise_on_reset: raise in ``reset``.
        raise_on_step: raise at this step of each episode (1 is the first step); None: never.
        message: the exception's message.
    """

    metadata = {"render_modes": []}

    def __init__(self, raise_on_reset: bool = False, raise_on_step: int | None = None, message: str = "injected fault") -> None:
        self.raise_on_reset = raise_on_reset
        self.raise_on_step = raise_on_step
        self.message = message
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if self.raise_on_reset:
            self._fail("reset")
        self._t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        if self.raise_on_step is not None and self._t >= self.raise_on_step:
            self._fail(f"step {self._t}")
        return np.full(2, 0.5, np.float32), 0.0, False, False, {}

    def _fail(self, where: str) -> None:
        # A nested call, so that the remote traceback has a recognisable frame in it.
        raise InjectedFault(f"{self.message} (in {where})")


class PidEnv(gym.Env[np.ndarray, np.int64]):
    """Reports the process it runs in: ``info["pid"]`` (``os.getpid()``) after every reset and step.

    Args:
        episode_length: steps before ``terminated``.
    """

    metadata = {"render_modes": []}

    def __init__(self, episode_length: int = 5) -> None:
        self.episode_length = episode_length
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(0, 2**31 - 1, (1,), np.int64)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return np.array([self._t], np.int64), {"pid": os.getpid()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        return np.array([self._t], np.int64), 1.0, self._t >= self.episode_length, False, {"pid": os.getpid()}


_instance_numbers = itertools.count(1)
# The gate of HangingEnvs made without one: never opened (a hang for as long as the process lives).
_NEVER = threading.Event()


class HangingEnv(gym.Env[np.ndarray, np.int64]):
    """A hanging env, for fault tests: with ``options={"hang": "step"}`` (or ``"reset"``,
    ``"render"``) that call blocks until ``gate`` is set; other episodes play normally.

    Reset options: ``hang``: which call blocks (default: none); ``hang_at``: with ``"step"`` or
    ``"render"``, the step number it blocks at (default 1; render counts the reset as 0).
    Every ``info`` holds ``"instance"``, a number unique to this instance in its process; a
    closed instance has ``closed`` set.

    Args:
        gate: what a blocked call waits for (default: an event never set: it blocks forever,
            e.g. in another process; a test sets its own gate at teardown).
        entered: set once a call blocks (a test waits on it instead of sleeping).
        render_mode: ``None`` or ``"ansi"``.
        episode_length: steps before ``terminated``.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        gate: threading.Event | None = None,
        entered: threading.Event | None = None,
        render_mode: str | None = None,
        episode_length: int = 50,
    ) -> None:
        self.gate = gate if gate is not None else _NEVER
        self.entered = entered if entered is not None else threading.Event()
        self.render_mode = render_mode
        self.episode_length = episode_length
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(0, 2**31 - 1, (1,), np.int64)
        self.number = next(_instance_numbers)
        self.closed = False
        self._hang = ""
        self._hang_at = 1
        self._t = 0

    def _block(self) -> None:
        self.entered.set()
        self.gate.wait()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        self._hang = str(options.get("hang", ""))
        self._hang_at = int(options.get("hang_at", 1))
        self._t = 0
        if self._hang == "reset":
            self._block()
        return np.array([self._t], np.int64), {"instance": self.number}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        if self._hang == "step" and self._t == self._hang_at:
            self._block()
        return np.array([self._t], np.int64), 1.0, self._t >= self.episode_length, False, {"instance": self.number}

    def render(self) -> str | None:
        if self._hang == "render" and self._t == self._hang_at:
            self._block()
        return f"t={self._t}" if self.render_mode == "ansi" else None

    def close(self) -> None:
        self.closed = True


def register_envs() -> None:
    """Register :class:`CompositeSpacesEnv` as ``cogment_gym/CompositeSpaces-v0`` and
    :class:`HangingEnv` as ``cogment_gym/Hanging-v0`` (idempotent)."""
    if COMPOSITE_ENV_ID not in gym.registry:
        gym.register(id=COMPOSITE_ENV_ID, entry_point="cogment_gym.testing.envs:CompositeSpacesEnv")
    if HANGING_ENV_ID not in gym.registry:
        gym.register(id=HANGING_ENV_ID, entry_point="cogment_gym.testing.envs:HangingEnv")
