"""Gymnasium's own checker on CogmentEnv.

``check_env`` warns about things that are properties of the environment itself (CartPole's
infinite observation bounds, Pendulum's non-normalised action range). Those warnings are not
the bridge's doing, so the rule is: the bridged env may warn about nothing the same env does not
already warn about when checked directly. Any other warning, and any error, fails the test.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from cogment_gym import CogmentEnv
from cogment_gym.testing import COMPOSITE_ENV_ID

HAVE_PYGAME = importlib.util.find_spec("pygame") is not None
ENV_IDS = ["CartPole-v1", "Pendulum-v1", "FrozenLake-v1", "Blackjack-v1", COMPOSITE_ENV_ID]


@pytest.fixture(autouse=True)
def _headless(monkeypatch: pytest.MonkeyPatch) -> None:
    # check_env re-makes the env in each declared render mode, "human" included: no window here.
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def _warnings_of(check: Callable[[], Any]) -> set[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check()
    return {str(w.message) for w in caught}


def _needs_renderer(env_id: str) -> bool:
    # The classic-control and toy-text renderers need pygame; the composite env renders text.
    return env_id != COMPOSITE_ENV_ID


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_passes_on_bridged_env(env_id: str, closing: Callable[[Any], Any]) -> None:
    skip_render = _needs_renderer(env_id) and not HAVE_PYGAME
    direct = gym.make(env_id)
    try:
        expected = _warnings_of(lambda: check_env(direct.unwrapped, skip_render_check=skip_render))
    finally:
        direct.close()
    bridged = closing(CogmentEnv(env_id))
    got = _warnings_of(lambda: check_env(bridged, skip_render_check=skip_render))
    assert got <= expected, f"warnings only the bridge raises: {sorted(got - expected)}"


@pytest.mark.skipif(not HAVE_PYGAME, reason="CartPole's rgb_array rendering needs pygame")
def test_check_env_with_rgb_array_rendering(closing: Callable[[Any], Any]) -> None:
    direct = gym.make("CartPole-v1", render_mode="rgb_array")
    try:
        expected = _warnings_of(lambda: check_env(direct.unwrapped))
        bridged = closing(CogmentEnv("CartPole-v1", render_mode="rgb_array"))
        got = _warnings_of(lambda: check_env(bridged))
        assert got <= expected, f"warnings only the bridge raises: {sorted(got - expected)}"

        # render() returns the frame of the latest observation, as the env drew it.
        direct.reset(seed=4)
        bridged.reset(seed=4)
        frame = bridged.render()
        assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.shape == (400, 600, 3)
        np.testing.assert_array_equal(frame, direct.render())
        direct.step(1)
        bridged.step(1)
        np.testing.assert_array_equal(bridged.render(), direct.render())
    finally:
        direct.close()


def test_ansi_rendering_returns_text(closing: Callable[[Any], Any]) -> None:
    bridged = closing(CogmentEnv(COMPOSITE_ENV_ID, render_mode="ansi"))
    direct = gym.make(COMPOSITE_ENV_ID, render_mode="ansi")
    try:
        direct.reset(seed=2)
        bridged.reset(seed=2)
        assert bridged.render() == direct.render()
        action = direct.action_space.sample()
        direct.step(action)
        bridged.step(action)
        assert bridged.render() == direct.render()
    finally:
        direct.close()


def test_render_modes_come_from_the_served_env(closing: Callable[[Any], Any]) -> None:
    bridged = closing(CogmentEnv("FrozenLake-v1"))
    assert bridged.metadata["render_modes"] == gym.make("FrozenLake-v1").metadata["render_modes"]
    assert bridged.render_mode is None and bridged.render() is None
    with pytest.raises(ValueError, match="render_mode='rgb_array_list' is not supported"):
        CogmentEnv("FrozenLake-v1", render_mode="rgb_array_list")


def test_bridged_env_has_a_usable_spec(closing: Callable[[Any], Any]) -> None:
    bridged = closing(CogmentEnv(COMPOSITE_ENV_ID, render_mode="ansi"))
    assert bridged.spec is not None and bridged.spec.id == "cogment_gym/cogment_gym.CompositeSpaces-v0"
    remade = closing(bridged.spec.make())
    assert remade.unwrapped.render_mode == "ansi"
    assert remade.observation_space == bridged.observation_space
