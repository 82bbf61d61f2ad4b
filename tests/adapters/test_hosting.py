"""What a server hosts (``adapters/hosting.py``): implementations and their specs."""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import pytest

import cogment_gym
from cogment_gym.adapters import hosting
from cogment_gym.adapters.hosting import EnvHost
from cogment_gym.errors import UnsupportedSpaceError


def test_serving_a_space_too_deep_to_describe_is_a_typed_error() -> None:
    space: gym.spaces.Space[Any] = gym.spaces.Discrete(2)
    for _ in range(33):
        space = gym.spaces.Dict({"k": space})

    class Deep(gym.Env[Any, Any]):
        observation_space = space
        action_space = gym.spaces.Discrete(2)

    with pytest.raises(UnsupportedSpaceError, match="nested too deep"):
        cogment_gym.serve({"deep": Deep})


class NoRenderModeEnv(gym.Env[int, int]):
    """Like highway-env's lane-keeping-v0: its __init__ takes no render_mode argument."""

    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, size: int = 3) -> None:
        self.size = size

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        return 1, 1.0, True, False, {}


class RenderingEnv(NoRenderModeEnv):
    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__()
        self.render_mode = render_mode

    def render(self) -> str:
        return "frame"


gym.register("cogment_gym_tests/NoRenderMode-v0", entry_point=NoRenderModeEnv)
gym.register("cogment_gym_tests/Rendering-v0", entry_point=RenderingEnv)


def test_render_mode_is_passed_to_gym_make_only_when_one_is_asked(closing: Callable[[Any], Any]) -> None:
    impl = EnvHost("cogment_gym_tests/NoRenderMode-v0", {"size": 4}).get("")
    assert isinstance(impl, hosting.Implementation)
    made = [impl.create(None)]  # gym.make(id, render_mode=None) would be a TypeError here
    assert made[0].env.unwrapped.size == 4
    bridged = closing(cogment_gym.CogmentEnv("cogment_gym_tests/NoRenderMode-v0"))
    assert bridged.reset(seed=0) == (0, {}) and bridged.step(1)[:3] == (1, 1.0, True)
    rendering = EnvHost("cogment_gym_tests/Rendering-v0", None).get("")
    assert isinstance(rendering, hosting.Implementation)
    made += [rendering.create(None), rendering.create("ansi")]
    assert made[1].env.unwrapped.render_mode is None
    assert made[2].env.unwrapped.render_mode == "ansi"
    # An env that takes no render_mode gets one only if asked, and then gym.make says why not.
    with pytest.raises(TypeError, match="render_mode"):
        impl.create("ansi")
    for pool, instance in zip((impl, rendering, rendering), made):
        pool.discard(instance)
    impl.close()
    rendering.close()

