"""Environment factories the suite's service processes import by name (``tests.faults.envs:raising``)."""

from __future__ import annotations

from typing import Any

from cogment_gym.testing import RaisingEnv

__all__ = ["RAISE_AT", "raising"]

RAISE_AT = 3  # the step that raises


def raising(**kwargs: Any) -> RaisingEnv:
    """Raises ``InjectedFault: boom (in step 3)`` at its third step."""
    return RaisingEnv(raise_on_step=RAISE_AT, message="boom")
