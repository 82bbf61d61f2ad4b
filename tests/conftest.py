"""Fixtures shared by every test package: environment services in this process or in a child
process, and envs closed at teardown."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import cogment_gym

REPO_ROOT = Path(__file__).resolve().parents[1]

# A child process serving environments: prints its endpoint, serves until its stdin closes.
SERVE_SCRIPT = r"""
import sys
import cogment_gym
import cogment_gym.testing  # registers cogment_gym/CompositeSpaces-v0
server = cogment_gym.serve({name: name for name in sys.argv[1:]})
print(server.endpoint, flush=True)
sys.stdin.read()
server.stop()
"""


class ServiceProcess:
    """An environment service in a child process (``cogment_gym.serve``)."""

    def __init__(self, env_ids: list[str], timeout: float = 60.0) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self._log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: the child never blocks on it
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE_SCRIPT, *env_ids],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
        )
        self.pid = self.process.pid
        assert self.process.stdout is not None
        # readline() returns when the child prints its endpoint, or at EOF if it died first.
        line = self.process.stdout.readline().strip()
        if not line.startswith(("grpc://", "unix:")):
            self.stop()
            raise RuntimeError(f"the env service process did not start: {line!r} {self.stderr()}")
        self.endpoint = line

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
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stderr(self) -> str:
        self._log.seek(0)
        return self._log.read()


@pytest.fixture
def service_process() -> Iterator[Callable[..., ServiceProcess]]:
    """Factory: ``service_process("CartPole-v1")`` -> a started :class:`ServiceProcess`."""
    started: list[ServiceProcess] = []

    def start(*env_ids: str) -> ServiceProcess:
        process = ServiceProcess(list(env_ids))
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def served() -> Iterator[Callable[..., cogment_gym.EnvServer]]:
    """Factory: ``served(envs, **options)`` -> an in-process :func:`cogment_gym.serve` server."""
    servers: list[cogment_gym.EnvServer] = []

    def start(envs: Any, **options: Any) -> cogment_gym.EnvServer:
        server = cogment_gym.serve(envs, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """``env = closing(CogmentEnv(...))``: closed at teardown, whatever the test did."""
    envs: list[Any] = []

    def keep(env: Any) -> Any:
        envs.append(env)
        return env

    yield keep
    for env in reversed(envs):
        env.close()
