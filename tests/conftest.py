"""Fixtures shared by every test package: environment services in this process or in a child
process, and envs closed at teardown."""

from __future__ import annotations

import os

# Before anything imports grpc: its fork handlers off. Tests (RLlib's Ray, service processes)
# start children with fork() + exec() while this process serves gRPC, and a child forked while
# another thread is inside gRPC may abort before its exec (seen: Ray's raylet never starting).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from typing import Any, Callable, Iterator

import pytest

import cogment_gym
from cogment_gym.adapters.sockets import remove_socket_directory
from tests.children import REPO_ROOT, Child
from tests.pki import Pki, make_pki

__all__ = ["REPO_ROOT", "ServiceProcess"]

# A child process serving environments: prints its endpoint, serves until its stdin closes.
SERVE_SCRIPT = r"""
import sys
import cogment_gym
import cogment_gym.testing  # registers cogment_gym/CompositeSpaces-v0
server = cogment_gym.serve({name: name for name in sys.argv[1:]})
print(server.endpoint, server.local_endpoint, flush=True)
sys.stdin.read()
server.stop()
"""


class ServiceProcess(Child):
    """An environment service in a child process (``cogment_gym.serve``); ``endpoint`` is where.
    Killed, it cannot remove its same-host socket's directory: :meth:`stop` does."""

    def __init__(self, env_ids: list[str], timeout: float = 60.0) -> None:
        self.local_endpoint = ""
        super().__init__(SERVE_SCRIPT, env_ids, timeout, what="the env service process")
        if not self.first_line.startswith(("grpc://", "unix:")):
            self.stop()
            raise RuntimeError(f"the env service process did not start: {self.first_line!r} {self.stderr()}")
        self.endpoint, _, self.local_endpoint = self.first_line.partition(" ")

    def stop(self) -> None:
        super().stop()
        remove_socket_directory(self.local_endpoint)


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


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA, server and client certificates (and an unrelated CA's), made once per run."""
    return make_pki(tmp_path_factory.mktemp("pki"))
