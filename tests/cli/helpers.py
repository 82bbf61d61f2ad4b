"""``cogment-gym`` as a user runs it: a child interpreter per command, optional packages hidden
on demand, lines read with deadlines, processes ended by their PID."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0  # seconds a command gets to print a line, or to finish
EXIT_DEADLINE = 15.0  # seconds a process gets to exit after SIGTERM

# The CLI's entry point, after making the packages named in argv[1] (comma-separated) impossible
# to import, as when they are not installed: a finder ahead of every other one says so.
LAUNCHER = r"""
import sys
hidden = {name for name in sys.argv.pop(1).split(",") if name}

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
if sys.argv[1:2] == ["--python"]:  # a Python snippet instead of the CLI
    exec(sys.argv[2])
    sys.exit(0)
from cogment_gym.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _environ(extra_path: Sequence[str | os.PathLike[str]] = ()) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT), *map(str, extra_path), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def command(*args: str, hide: Sequence[str] = ()) -> list[str]:
    return [sys.executable, "-c", LAUNCHER, ",".join(hide), *args]


def run_cli(*args: str, hide: Sequence[str] = (), path: Sequence[str | os.PathLike[str]] = (),
            timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    """``cogment-gym *args`` to its end (``hide``: packages made unimportable; ``path``: more
    PYTHONPATH entries)."""
    return subprocess.run(command(*args, hide=hide), capture_output=True, text=True, timeout=timeout, env=_environ(path), cwd=ROOT)


def run_python(code: str, hide: Sequence[str] = (), timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    """``code`` in a child interpreter where the ``hide`` packages cannot be imported."""
    return subprocess.run(command("--python", code, hide=hide), capture_output=True, text=True, timeout=timeout,
                          env=_environ(), cwd=ROOT)


def error_line(stderr: str) -> str:
    """The one ``cogment-gym: error: ...`` line of a failed command (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("cogment-gym")]
    assert len(lines) == 1, stderr
    return lines[0]


class Service:
    """A long-running command (``serve``, ``orchestrator``, a script): its stdout lines with
    deadlines, SIGTERM and exit code, SIGKILL at teardown if still running."""

    def __init__(self, argv: list[str], path: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environ(path), cwd=ROOT)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    @classmethod
    def cli(cls, *args: str) -> Service:
        return cls(command(*args))

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self._stderr.append(line)

    def readline(self, timeout: float = DEADLINE) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line on stdout within {timeout} s; stderr: {self.stderr()}") from None
        if line is None:
            raise AssertionError(f"the process exited ({self.popen.wait(EXIT_DEADLINE)}) before printing; stderr: {self.stderr()}")
        return line

    def stderr(self) -> str:
        return "".join(self._stderr)

    def terminate(self) -> int:
        """SIGTERM this process (by its PID); its exit code."""
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(EXIT_DEADLINE)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(EXIT_DEADLINE)
