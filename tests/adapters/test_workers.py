"""``serve(env, workers=K)``: K real worker processes, one gRPC endpoint each, on 127.0.0.1.

Processes are observed without sleeping: a stopped worker is reaped (its PID is gone); the exit
of a process we do not reap is seen through a pidfd (Linux).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import cogment_gym
from cogment_gym import CogmentEnv
from cogment_gym.adapters.workers import EnvWorkers, worker_addresses
from cogment_gym.errors import EnvSourceNotPicklableError, WorkerStartError
from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.protocol import parse_endpoint
from cogment_gym.testing.envs import PidEnv

ROOT = Path(cogment_gym.__file__).resolve().parents[1]
DEADLINE = 60.0  # seconds for a process to start, or to be seen ending


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state != "Z"


def _worker_children() -> list[int]:
    """PIDs of this process's children that are env workers (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == os.getpid() and b"cogment_gym.adapters.worker import worker_entry" in cmdline:
            found.append(int(entry.name))
    return found


def _episode(env: CogmentEnv) -> int:
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        done = terminated or truncated
    return steps


@pytest.fixture
def workers() -> Iterator[list[EnvWorkers]]:
    """Servers started by a test: stopped at teardown, whatever it did."""
    started: list[EnvWorkers] = []
    yield started
    for server in started:
        server.stop()


def _serve(started: list[EnvWorkers], env: Any, count: int = 2, **options: Any) -> EnvWorkers:
    server = cogment_gym.serve(env, workers=count, **options)
    assert isinstance(server, EnvWorkers)
    started.append(server)
    return server


# ---------------------------------------------------------------------------------------- without processes


def test_addresses_rule() -> None:
    assert worker_addresses(3) == ["127.0.0.1:0"] * 3
    assert worker_addresses(3, host="0.0.0.0", port=9001) == ["0.0.0.0:9001", "0.0.0.0:9002", "0.0.0.0:9003"]
    assert worker_addresses(2, unix_socket="/run/env.sock") == ["unix:/run/env-0.sock", "unix:/run/env-1.sock"]
    assert worker_addresses(1, unix_socket="/run/env") == ["unix:/run/env-0"]
    with pytest.raises(ValueError, match="65535"):
        worker_addresses(2, port=65535)
    with pytest.raises(ValueError, match="workers must be an int >= 1, got 0"):
        worker_addresses(0)


def test_workers_must_be_a_positive_int() -> None:
    with pytest.raises(ValueError, match="workers must be an int >= 1, got 0"):
        cogment_gym.serve("CartPole-v1", workers=0)


def test_one_worker_is_the_in_process_server() -> None:
    with cogment_gym.serve("CartPole-v1", workers=1) as server:
        assert isinstance(server, cogment_gym.EnvServer)


def test_a_source_that_does_not_pickle_is_refused_before_any_process_starts() -> None:
    def local_factory() -> PidEnv:
        return PidEnv()

    with pytest.raises(EnvSourceNotPicklableError, match="expected a Gymnasium id.*local_factory"):
        cogment_gym.serve(local_factory, workers=2)
    with pytest.raises(EnvSourceNotPicklableError, match="lambda"):
        cogment_gym.serve({"a": lambda: PidEnv()}, workers=2)
    assert _worker_children() == []


# ---------------------------------------------------------------------------------------- with processes


@pytest.mark.slow
def test_two_workers_serve_trials_spread_by_the_vector_env(workers: list[EnvWorkers]) -> None:
    server = _serve(workers, PidEnv, env_kwargs={"episode_length": 3})
    assert len(server.endpoints) == len(set(server.endpoints)) == 2
    assert all(endpoint.startswith("grpc://127.0.0.1:") for endpoint in server.endpoints)
    assert server.endpoint == server.endpoints[0]
    assert len(set(server.pids)) == 2 and os.getpid() not in server.pids
    assert server.implementations == ["PidEnv"]
    assert "PidEnv" in repr(server) and "running" in repr(server)

    envs = CogmentVectorEnv(environment=server.endpoints, num_envs=4)
    try:
        seen: list[int] = []
        _, infos = envs.reset(seed=0)
        seen += list(infos["pid"][infos["_pid"]])
        for _ in range(8):  # over two episodes of 3 steps, with the NEXT_STEP autoresets
            _, rewards, _, _, infos = envs.step(envs.action_space.sample())
            seen += list(infos["pid"][infos["_pid"]])
        # By default one batched trial per worker: sub-envs 0-1 on endpoints[0], 2-3 on
        # endpoints[1]; both workers ran trials, nothing ran here.
        assert envs.envs_per_trial == 2
        assert set(seen) == set(server.pids)
        assert list(infos["pid"]) == [server.pids[i // 2] for i in range(4)]
    finally:
        envs.close()
    assert server.exited() == {}


@pytest.mark.slow
def test_stop_ends_every_worker(workers: list[EnvWorkers]) -> None:
    server = _serve(workers, "CartPole-v1", env_kwargs={"max_episode_steps": 5})
    env = CogmentEnv(environment=server.endpoints[1])
    try:
        assert 1 <= _episode(env) <= 5
    finally:
        env.close()
    pids = server.pids
    assert all(_alive(pid) for pid in pids)
    server.stop()
    assert not any(_alive(pid) for pid in pids)
    assert "stopped" in repr(server)
    server.stop()  # idempotent
    assert _worker_children() == []


@pytest.mark.slow
def test_a_worker_that_fails_to_start_is_a_clear_error_and_leaves_no_process() -> None:
    with pytest.raises(WorkerStartError) as caught:
        cogment_gym.serve({"ok": "CartPole-v1", "bad": "NoSuchEnv-v0"}, workers=2)
    err = caught.value
    assert err.worker in (0, 1)
    assert err.exitcode == 1
    assert err.remote_type == "NameNotFound"
    assert f"env worker {err.worker} of 2 (pid {err.pid}" in err.summary
    assert "failed to start: NameNotFound" in err.summary and "NoSuchEnv" in err.summary
    assert "exit code 1" in err.summary
    assert "Remote traceback:" in str(err) and "gym.make" in err.remote_traceback
    assert _worker_children() == []


@pytest.mark.slow
def test_a_port_in_use_names_the_worker(workers: list[EnvWorkers]) -> None:
    with cogment_gym.serve("CartPole-v1") as taken:
        # Worker 1 binds taken.port (port + 1); worker 0 (port - 1) is free or fails as well.
        with pytest.raises(WorkerStartError, match=r"env worker [01] of 2 .* failed to start: OSError: could not bind"):
            cogment_gym.serve("CartPole-v1", workers=2, port=taken.port - 1)
    assert _worker_children() == []


@pytest.mark.slow
def test_workers_on_unix_sockets(workers: list[EnvWorkers], tmp_path: Path) -> None:
    server = _serve(workers, "CartPole-v1", unix_socket=str(tmp_path / "env.sock"), env_kwargs={"max_episode_steps": 3})
    assert server.endpoints == [f"unix://{tmp_path / 'env-0.sock'}", f"unix://{tmp_path / 'env-1.sock'}"]
    for endpoint in server.endpoints:
        env = CogmentEnv(environment=endpoint)
        try:
            assert 1 <= _episode(env) <= 3
        finally:
            env.close()


@pytest.mark.slow
def test_a_worker_that_dies_is_reported_by_exited(workers: list[EnvWorkers]) -> None:
    server = _serve(workers, "CartPole-v1")
    pidfd = os.pidfd_open(server.pids[1])
    try:
        os.kill(server.pids[1], signal.SIGKILL)  # our own child, by PID
        assert select.select([pidfd], [], [], DEADLINE)[0], "the worker did not die"
    finally:
        os.close(pidfd)
    assert server.exited() == {1: -signal.SIGKILL}
    killed_socket_dir = os.path.dirname(parse_endpoint(server._workers[1].local_endpoint).address)
    assert os.path.isdir(killed_socket_dir)  # the killed worker could not remove it
    server.stop()
    assert server.exited() == {}
    assert not os.path.exists(killed_socket_dir)  # the parent did


LAUNCHER = textwrap.dedent(
    """
    import sys
    import cogment_gym
    server = cogment_gym.serve("CartPole-v1", workers=2)
    print(*server.pids, flush=True)
    sys.stdin.read()  # until killed
    """
)


@pytest.mark.slow
def test_workers_exit_when_their_parent_is_killed() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    pidfds: list[int] = []
    try:
        assert launcher.stdout is not None
        ready, _, _ = select.select([launcher.stdout], [], [], DEADLINE)
        assert ready, "the launcher did not print its workers' PIDs"
        pids = [int(pid) for pid in launcher.stdout.readline().split()]
        assert len(pids) == 2
        pidfds = [os.pidfd_open(pid) for pid in pids]  # readable once that process has exited
        launcher.kill()  # SIGKILL, by PID: no clean-up code runs in the workers' parent
        launcher.wait(DEADLINE)
        for pid, pidfd in zip(pids, pidfds):
            assert select.select([pidfd], [], [], DEADLINE)[0], f"worker {pid} outlived its parent"
        assert not any(_alive(pid) for pid in pids)
        # They held the launcher's stdout too: nothing else was written, and nobody holds it now.
        assert launcher.stdout.read() == b""
    finally:
        for pidfd in pidfds:
            os.close(pidfd)
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(DEADLINE)
        for stream in (launcher.stdin, launcher.stdout):
            if stream is not None:
                stream.close()


def test_pid_env_reports_its_process() -> None:
    # What the spreading test relies on: the pid in every info.
    env = PidEnv(episode_length=2)
    _, info = env.reset(seed=0)
    assert info == {"pid": os.getpid()}
    obs, reward, terminated, truncated, info = env.step(0)
    assert obs.dtype == np.int64 and reward == 1.0 and not terminated and info["pid"] == os.getpid()
    assert env.step(1)[2] is True
