"""A service actor in a child process (``cogment_gym.actors.serve_actor``), for tests.

The child prints ``ENDPOINT <endpoint>`` once it serves, then one ``RESULT <json>`` line per
trial its policy saw end (trial id, agent, final cumulative reward, flags, moves made); it
serves until its stdin closes. Lines are read by a thread, so waiting on them has a deadline.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import cogment_gym

REPO_ROOT = Path(cogment_gym.__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
from cogment_gym.actors import RandomPolicy, serve_actor

class Reporting(RandomPolicy):
    def end(self, context):
        print("RESULT " + json.dumps({
            "trial_id": context.trial_id, "agent": context.agent, "reward": context.cumulative_reward,
            "terminated": context.terminated, "truncated": context.truncated, "moves": self.moves,
        }), flush=True)

server = serve_actor(Reporting)
print("ENDPOINT " + server.endpoint, flush=True)
sys.stdin.read()
server.stop()
"""


class ActorProcess:
    """The child; :meth:`stop` closes its stdin, :meth:`kill` sends SIGKILL (by PID)."""

    def __init__(self, timeout: float = 60.0) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self._log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
        )
        self.pid = self.process.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = self.next_line(timeout)
        if line is None or not line.startswith("ENDPOINT "):
            self.stop()
            raise RuntimeError(f"the actor process did not start: {line!r}\n{self.stderr()}")
        self.endpoint = line.split(" ", 1)[1]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, timeout: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from the actor process within {timeout} s\n{self.stderr()}") from None

    def results(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        out = []
        while len(out) < count:
            line = self.next_line(timeout)
            if line is None:
                raise AssertionError(f"the actor process ended after {len(out)} results\n{self.stderr()}")
            if line.startswith("RESULT "):
                out.append(json.loads(line.split(" ", 1)[1]))
        return out

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                self.kill()
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)

    def stderr(self) -> str:
        self._log.seek(0)
        return self._log.read()
