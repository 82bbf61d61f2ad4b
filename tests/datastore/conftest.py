"""Fixtures of the datastore tests: a datalog process (``cogment-gym datalog``), recorded
CartPole episodes with their seeds and actions."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tests.children import REPO_ROOT

READY = re.compile(r"datalog: recording into (?P<dir>.+) at (?P<endpoint>grpc://127\.0\.0\.1:\d+)")


class DatalogProcess:
    """``python -m cogment_gym.cli datalog --out DIR --port 0``; ``endpoint`` from its ready line."""

    def __init__(self, out: Path, timeout: float = 30.0) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p))
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "cogment_gym.cli", "datalog", "--out", str(out), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
        )
        self.pid = self.popen.pid
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.popen.stdout is not None
            for line in self.popen.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"no ready line from the datalog process within {timeout} s") from None
        match = READY.fullmatch((line or "").strip())
        if match is None:
            self.kill()
            raise AssertionError(f"unexpected first line {line!r}; stderr: {self.stderr()}")
        self.endpoint = match["endpoint"]

    def stderr(self) -> str:
        assert self.popen.stderr is not None
        return self.popen.stderr.read() if self.popen.poll() is not None else ""

    def terminate(self, timeout: float = 15.0) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout)

    def kill(self) -> None:
        """SIGKILL by PID: the process dies with whatever it had in flight."""
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(30)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def datalog_process(tmp_path: Path) -> Iterator[Any]:
    started: list[DatalogProcess] = []

    def start(out: Path | None = None) -> DatalogProcess:
        process = DatalogProcess(out or tmp_path / "recorded")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def play(env: Any, seeds: list[int], rng_seed: int = 0) -> list[tuple[int, list[Any]]]:
    """Play one episode per seed with actions from a seeded generator; returns (seed, actions)."""
    rng = np.random.default_rng(rng_seed)
    played = []
    for seed in seeds:
        env.reset(seed=seed)
        actions, done = [], False
        while not done:
            action = env.action_space.sample() if rng is None else int(rng.integers(env.action_space.n))
            actions.append(action)
            _, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        played.append((seed, actions))
    return played
