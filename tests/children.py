"""Python child processes for tests: a script run with ``python -c``, the repository on its path.

The child's stdout is read line by line by a thread (so every wait on a line has a deadline);
its stderr goes to a file (the child never blocks on it; failures quote it). :meth:`Child.stop`
closes the child's stdin, which the scripts here take as "stop serving"; :meth:`Child.kill`
sends SIGKILL. Both act on this child only, by PID.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

__all__ = ["Child", "REPO_ROOT"]


class Child:
    """``python -c script *args``; ``first_line`` is what it printed first (within ``timeout``)."""

    def __init__(self, script: str, args: list[str] | tuple[str, ...] = (), timeout: float = 60.0, what: str = "the child process") -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self.what = what
        self._log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
        )
        self.pid = self.process.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            line = self.next_line(timeout)
        except AssertionError:
            self.stop()
            raise
        if line is None:
            self.stop()
            raise RuntimeError(f"{what} ended before it started\n{self.stderr()}")
        self.first_line = line

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, timeout: float) -> str | None:
        """The next line the child printed; None once its stdout is closed."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from {self.what} within {timeout} s\n{self.stderr()}") from None

    def kill(self) -> None:
        """SIGKILL this child (by its PID) and reap it: a crash, as far as its peers can tell."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Ask the child to stop (close its stdin); kill it, by PID, if it does not."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                self.kill()
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stderr(self) -> str:
        self._log.seek(0)
        return self._log.read()
