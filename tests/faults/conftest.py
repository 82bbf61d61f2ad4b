"""Fixtures of the fault-injection suite: the topologies a failure is injected in, the processes
of each test (stopped at teardown, whatever happened), and the check every test of the suite
ends with: nothing leaked (threads, file descriptors, child processes, temp directories)."""

from __future__ import annotations

import gc
import glob
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

import cogment_gym
from cogment_gym import CogmentEnv
from tests.faults.stack import EnvProcess, OrchestratorProcess, Process, socket_dir
from tests.waiting import wait_until

__all__ = ["EMBEDDED", "STANDALONE", "Stack", "TOPOLOGIES", "Topology"]

EMBEDDED, STANDALONE = "embedded", "standalone"


@dataclass(frozen=True)
class Topology:
    """Where the Orchestrator runs (``embedded`` in the client, or a ``standalone`` process) and
    how the environment service is reached (``tcp`` on 127.0.0.1, or a ``unix`` socket)."""

    orchestrator: str
    transport: str


TOPOLOGIES = [pytest.param(Topology(o, t), id=f"{o}-{t}") for o in (EMBEDDED, STANDALONE) for t in ("tcp", "unix")]


class Stack:
    """The processes of one test in its topology."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self._processes: list[Process] = []
        self._dirs: list[str] = []
        self._orchestrator: OrchestratorProcess | None = None

    def env(self, envs: dict[str, str], **options: Any) -> EnvProcess:
        """An environment service process on the topology's transport."""
        unix = ""
        if self.topology.transport == "unix":
            directory = socket_dir()
            self._dirs.append(directory)
            unix = os.path.join(directory, "env.sock")
        process = EnvProcess(envs, unix=unix, options=options)
        self._processes.append(process)
        return process

    @property
    def orchestrator(self) -> OrchestratorProcess:
        """The standalone Orchestrator process (started on first use)."""
        if self._orchestrator is None:
            self._orchestrator = OrchestratorProcess()
            self._processes.append(self._orchestrator)
        return self._orchestrator

    def where(self, env: EnvProcess) -> dict[str, Any]:
        """Facade keywords for a trial on ``env`` in this topology."""
        kwargs: dict[str, Any] = {"environment": env.endpoint}
        if self.topology.orchestrator == STANDALONE:
            kwargs["orchestrator"] = self.orchestrator.endpoint
        return kwargs

    def close(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        for directory in self._dirs:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=TOPOLOGIES)
def topology(request: pytest.FixtureRequest) -> Topology:
    topology: Topology = request.param
    return topology


@pytest.fixture
def stack(topology: Topology) -> Iterator[Stack]:
    started = Stack(topology)
    try:
        yield started
    finally:
        started.close()


# ------------------------------------------------------------------------------------ leak check


def _children() -> set[int]:
    """PIDs of this process's children (zombies included: a child nobody reaped is a leak)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.add(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _temp_dirs() -> set[str]:
    """Directories the package (same-host sockets) and this suite (unix sockets) make in /tmp."""
    root = tempfile.gettempdir()
    return set(glob.glob(os.path.join(root, "cogment-gym-*"))) | set(glob.glob(os.path.join(root, "cgf-*")))


def _fd_targets() -> list[str]:
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return sorted(targets)


@dataclass(frozen=True)
class Resources:
    threads: frozenset[int]
    fds: int
    children: frozenset[int]
    temp_dirs: frozenset[str]

    @classmethod
    def now(cls) -> Resources:
        gc.collect()  # closes files and channels nothing refers to any more
        return cls(
            frozenset(t.ident for t in threading.enumerate() if t.ident is not None),
            len(os.listdir("/proc/self/fd")),
            frozenset(_children()),
            frozenset(_temp_dirs()),
        )

    def leaks_since(self, before: Resources) -> list[str]:
        found = []
        threads = [t.name for t in threading.enumerate() if t.ident in self.threads - before.threads]
        if threads:
            found.append(f"threads {threads}")
        if self.fds > before.fds:
            found.append(f"{self.fds - before.fds} file descriptors ({before.fds} -> {self.fds}: {_fd_targets()})")
        if self.children - before.children:
            found.append(f"child processes {sorted(self.children - before.children)}")
        if self.temp_dirs - before.temp_dirs:
            found.append(f"temp dirs {sorted(self.temp_dirs - before.temp_dirs)}")
        return found


@pytest.fixture(scope="session")
def _private_tmp() -> Iterator[str]:
    """A temp directory of this session's own, for this process and its children (TMPDIR): the
    temp-directory check then sees only what they made (the machine's /tmp is shared)."""
    directory = tempfile.mkdtemp(prefix="cgf-tmp-")
    previous_env, previous = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = directory
    try:
        yield directory
    finally:
        tempfile.tempdir = previous
        if previous_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = previous_env
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def _grpc_warm(_private_tmp: str) -> None:
    """gRPC's process-wide threads and descriptors exist before the first snapshot: one trial
    over TCP and one over a unix socket, with a standalone Orchestrator in this process."""
    from cogment_gym.orchestrator.server import OrchestratorServer

    directory = socket_dir()
    try:
        with cogment_gym.serve("CartPole-v1", port=0) as tcp, cogment_gym.serve("CartPole-v1", unix_socket=os.path.join(directory, "s")) as unix:
            with OrchestratorServer(lifecycle_port=0) as orchestrator:
                for kwargs in ({"environment": tcp.endpoint}, {"environment": unix.endpoint},
                               {"environment": tcp.endpoint, "orchestrator": orchestrator.lifecycle_endpoint}):
                    env = CogmentEnv(**kwargs)
                    env.reset(seed=0)
                    env.step(0)
                    env.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_leaks(_grpc_warm: None) -> Iterator[None]:
    """Set up before, and torn down after, every other function fixture of a test: what the
    test and its fixtures started must all be gone (within 15 s: gRPC closes its sockets and
    threads end asynchronously)."""
    before = Resources.now()
    yield
    leaks: list[str] = []

    def clean() -> bool:
        nonlocal leaks
        leaks = Resources.now().leaks_since(before)
        return not leaks

    assert wait_until(clean, 15.0), "leaked: " + "; ".join(leaks)
