"""Progress of long CLI work: a bar redrawn in place on a terminal, a periodic line otherwise."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """A plain-text progress bar on a TTY (redrawn in place), a periodic line otherwise."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO, *, interval: float | None = None) -> None:
        self.total = total
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self._last = time.perf_counter()
        self._drawn = False

    def update(self, done: int, steps: int, elapsed: float) -> None:
        now = time.perf_counter()
        if now - self._last < self.interval and done < self.total:
            return
        if not self.tty and done == self.total:
            return  # the summary follows; no need for a last line
        self._last = now
        rate = steps / elapsed if elapsed > 0 else 0.0
        if self.tty:
            filled = self.WIDTH * done // self.total
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {done}/{self.total} episodes  {steps} steps  {rate:,.0f} steps/s")
            self._drawn = True
        else:
            self.stream.write(f"{done}/{self.total} episodes, {steps} steps, {rate:,.0f} steps/s\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
