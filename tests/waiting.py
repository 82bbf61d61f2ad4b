"""Bounded polling of state that another thread or process changes without telling the test
(a server's trial count after a client closed its stream). Every wait has a deadline."""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["wait_until"]


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether ``condition()`` became true within ``seconds`` (polled every 10 ms)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
