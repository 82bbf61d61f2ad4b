"""Progress of long CLI work: a tqdm bar on a terminal (episodes and steps per second), a plain
periodic line otherwise (logs, pipes, CI)."""

from __future__ import annotations

import time
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["Progress"]


class Progress:
    """Reports ``done`` of ``total`` episodes (or other units) and the steps behind them.

    Args:
        total: how many units the work has (None: unknown).
        stream: where to write (a terminal gets a bar redrawn in place).
        interval: seconds between updates (default: 0.1 on a terminal, 5 otherwise).
        unit: what ``done`` counts ("episodes").
        description: shown before the bar.
    """

    def __init__(self, total: int | None, stream: TextIO, *, interval: float | None = None, unit: str = "episodes",
                 description: str = "") -> None:
        self.total = total
        self.stream = stream
        self.unit = unit
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self._last = time.perf_counter()
        self._done = 0
        self._bar: Any = None
        if self.tty:
            self._bar = tqdm(total=total, file=stream, unit=" " + unit, desc=description or None, mininterval=self.interval,
                             miniters=1, dynamic_ncols=True, leave=True)

    def update(self, done: int, steps: int, elapsed: float) -> None:
        """``done`` units finished, ``steps`` steps taken, ``elapsed`` seconds since the start."""
        rate = steps / elapsed if elapsed > 0 else 0.0
        if self._bar is not None:
            self._bar.set_postfix_str(f"{steps} steps, {rate:,.0f} steps/s", refresh=False)
            self._bar.update(done - self._done)
            self._done = done
            return
        now = time.perf_counter()
        if now - self._last < self.interval and (self.total is None or done < self.total):
            return
        if self.total is not None and done >= self.total:
            return  # the summary follows; no need for a last line
        self._last = now
        of = f"/{self.total}" if self.total is not None else ""
        self.stream.write(f"{done}{of} {self.unit}, {steps} steps, {rate:,.0f} steps/s\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
