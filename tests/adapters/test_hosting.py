"""What a server hosts (``adapters/hosting.py``): implementations and their specs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest

import cogment_gym
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
