"""The ``cogment-gym`` command line: ``run`` in-process, ``serve`` and ``orchestrator`` as processes."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import grpc
import pytest

import cogment_gym
from cogment_gym import CogmentEnv
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.cli import main
from cogment_gym.cli.progress import Progress as _Progress
from cogment_gym.protocol import parse_endpoint

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 30.0  # seconds to wait for a process to print that it is ready
EXIT_DEADLINE = 10.0  # seconds a process gets to exit after SIGTERM

SUMMARY = re.compile(
    r"(?P<episodes>\d+) episodes, (?P<steps>\d+) steps in [\d.]+ s.*\n"
    r"return: mean (?P<mean>[\d.]+)  min (?P<min>[\d.]+)  max (?P<max>[\d.]+)\n"
    r"throughput: (?P<sps>[\d,.]+) steps/s  (?P<eps>[\d,.]+) episodes/s\n"
)

# ---------------------------------------------------------------------------------------- helpers


class Process:
    """A CLI subprocess whose stdout lines are read with a deadline."""

    def __init__(self, *args: str) -> None:
        command = [sys.executable, "-m", "cogment_gym.cli", *args]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT dumps every thread's stack (see terminate)
        self.popen = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def readline(self, timeout: float = DEADLINE) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line on stdout within {timeout} s; stderr so far is not read") from None
        if line is None:
            code = self.popen.wait(EXIT_DEADLINE)
            raise AssertionError(f"the process exited ({code}) before printing; stderr: {self.stderr()}")
        return line

    def terminate(self) -> int:
        """SIGTERM this process (by its PID) and wait for its exit code. One that does not exit
        in time is aborted, and the failure shows where each of its threads was."""
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(EXIT_DEADLINE)
        except subprocess.TimeoutExpired:
            self.popen.send_signal(signal.SIGABRT)
            try:
                self.popen.wait(EXIT_DEADLINE)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(EXIT_DEADLINE)
            stderr = self.stderr()  # (stdout is the pump thread's)
            raise AssertionError(f"pid {self.popen.pid} did not exit within {EXIT_DEADLINE} s of SIGTERM; its stderr, "
                                 f"with its threads' stacks at SIGABRT:\n{stderr[-8000:]}") from None

    def stderr(self) -> str:
        assert self.popen.stderr is not None
        return self.popen.stderr.read() if self.popen.poll() is not None else ""

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(EXIT_DEADLINE)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


def _episode(env: CogmentEnv, seed: int = 0) -> int:
    env.reset(seed=seed)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        done = terminated or truncated
    return steps


def _assert_one_line_error(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("cogment-gym")]
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---------------------------------------------------------------------------------------- run


def test_run_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "CartPole-v1", "--episodes", "3", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    match = SUMMARY.search(out)
    assert match, out
    assert int(match["episodes"]) == 3
    assert int(match["steps"]) >= 3
    assert float(match["min"]) <= float(match["mean"]) <= float(match["max"])
    # CartPole pays 1 per step: the returns add up to the steps.
    assert float(match["mean"]) * 3 == pytest.approx(int(match["steps"]))
    assert float(match["sps"].replace(",", "")) > 0


def test_run_with_a_seed_is_repeatable(capsys: pytest.CaptureFixture[str]) -> None:
    returns = []
    for _ in range(2):
        assert main(["run", "CartPole-v1", "--episodes", "4", "--seed", "7"]) == 0
        match = SUMMARY.search(capsys.readouterr().out)
        assert match
        returns.append((match["steps"], match["mean"], match["min"], match["max"]))
    assert returns[0] == returns[1]


def test_run_against_a_served_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with cogment_gym.serve("CartPole-v1") as server:
        assert main(["run", "CartPole-v1", "--episodes", "2", "--max-steps", "5", "--environment", server.endpoint]) == 0
    out = capsys.readouterr().out
    match = SUMMARY.search(out)
    assert match, out
    # Cogment's max_steps=M ends a trial after M+1 actions (the last one sent with LAST).
    assert int(match["steps"]) <= 2 * 6
    assert server.endpoint in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "NoSuchEnv-v0"], "NoSuchEnv"),
        (["run", "CartPole-v1", "--environment", "grpc://nowhere"], "grpc://nowhere"),
        (["run", "CartPole-v1", "--environment", "http://127.0.0.1:1"], "http://127.0.0.1:1"),
        (["run", "CartPole-v1", "--environment", "grpc://127.0.0.1:1"], "unreachable"),
        (["run", "CartPole-v1", "--orchestrator", "grpc://127.0.0.1:1"], "--environment"),
        (["run", "CartPole-v1", "--episodes", "0"], "--episodes"),
        (["serve", "CartPole-v1", "--kwargs", "[1]"], "--kwargs"),
        (["serve", "CartPole-v1", "--port", "70000"], "--port"),
        (["serve", "CartPole-v1", "--step-timeout", "0"], "--step-timeout"),
        (["serve", "CartPole-v1", "--step-timeout", "soon"], "--step-timeout"),
        (["bogus"], "bogus"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert fragment in captured.err.strip().splitlines()[-1]


def test_serve_on_a_port_in_use_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with cogment_gym.serve("CartPole-v1") as server:
        assert main(["serve", "CartPole-v1", "--port", str(server.port)]) == 2
    _assert_one_line_error(capsys.readouterr().err, f"127.0.0.1:{server.port}")


def test_progress_is_a_bar_on_a_tty_and_lines_otherwise() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = _Progress(4, tty, interval=0)
    for done in range(1, 5):
        bar.update(done, done * 10, 1.0)
    bar.close()
    drawn = tty.getvalue()
    assert drawn.count("\r") >= 4  # tqdm redraws in place
    last = drawn.rstrip("\n").rsplit("\r", 1)[-1]
    assert "100%" in last and "4/4" in last and "40 steps, 40 steps/s" in last, last
    assert drawn.endswith("\n")

    log = io.StringIO()
    lines = _Progress(4, log, interval=0)
    for done in range(1, 5):
        lines.update(done, done * 10, 1.0)
    lines.close()
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines() == [f"{n}/4 episodes, {n * 10} steps, {n * 10} steps/s" for n in range(1, 4)]


# ---------------------------------------------------------------------------------------- serve


@pytest.mark.slow
def test_serve_prints_its_endpoint_and_stops_on_sigterm(processes: list[Process]) -> None:
    process = Process("serve", "CartPole-v1", "--port", "0")
    processes.append(process)
    line = process.readline()
    match = re.fullmatch(r"serving CartPole-v1 at (grpc://127\.0\.0\.1:(\d+))\n", line)
    assert match, line
    assert int(match[2]) > 0
    env = CogmentEnv(environment=match[1])
    try:
        assert _episode(env) >= 1
    finally:
        env.close()
    assert process.terminate() == 0


@pytest.mark.slow
@pytest.mark.parametrize("flags, announced", [((), True), (("--no-local-socket",), False)], ids=["default", "no-local-socket"])
def test_serve_announces_a_same_host_socket_unless_told_not_to(processes: list[Process], flags: tuple[str, ...], announced: bool) -> None:
    process = Process("serve", "CartPole-v1", "--port", "0", *flags)
    processes.append(process)
    line = process.readline()
    match = re.fullmatch(r"serving CartPole-v1 at (grpc://\S+)\n", line)
    assert match, line
    with grpc.insecure_channel(parse_endpoint(match[1]).grpc_target) as channel:
        spec = env_pb2_grpc.EnvSpecSPStub(channel).GetSpec(env_pb2.GetSpecRequest(), timeout=10)
    assert spec.local_endpoint.startswith("unix://") is announced
    assert process.terminate() == 0
    if announced:  # the socket's private directory goes with the service
        assert not os.path.exists(os.path.dirname(parse_endpoint(spec.local_endpoint).address))


@pytest.mark.slow
def test_serve_several_ids_on_a_unix_socket(processes: list[Process], tmp_path: Path) -> None:
    socket_path = tmp_path / "env.sock"
    process = Process("serve", "CartPole-v1", "Acrobot-v1", "--unix-socket", str(socket_path),
                      "--kwargs", '{"max_episode_steps": 3}')
    processes.append(process)
    line = process.readline()
    match = re.fullmatch(r"serving CartPole-v1, Acrobot-v1 at (unix://\S+)\n", line)
    assert match, line
    for implementation in ("CartPole-v1", "Acrobot-v1"):
        env = CogmentEnv(environment=match[1], implementation=implementation)
        try:
            assert 1 <= _episode(env) <= 3
        finally:
            env.close()
    assert process.terminate() == 0


@pytest.mark.slow
def test_serve_an_unknown_id_exits_2_without_traceback(processes: list[Process]) -> None:
    process = Process("serve", "NoSuchEnv-v0", "--port", "0")
    processes.append(process)
    assert process.popen.wait(DEADLINE) == 2
    assert process.popen.stdout is not None and process.popen.stdout.read() == ""
    _assert_one_line_error(process.stderr(), "NoSuchEnv")


@pytest.mark.slow
def test_serve_with_workers_prints_every_endpoint_and_stops_on_sigterm(processes: list[Process]) -> None:
    process = Process("serve", "CartPole-v1", "--port", "0", "--workers", "2", "--kwargs", '{"max_episode_steps": 3}')
    processes.append(process)
    endpoints = []
    for _ in range(2):
        line = process.readline()
        match = re.fullmatch(r"serving CartPole-v1 at (grpc://127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        endpoints.append(match[1])
    assert len(set(endpoints)) == 2
    for endpoint in endpoints:
        env = CogmentEnv(environment=endpoint)
        try:
            assert 1 <= _episode(env) <= 3
        finally:
            env.close()
    assert process.terminate() == 0
    # The workers shared its stdout: its end (nothing more printed) means they have exited too.
    assert _rest_of_stdout(process) == []


@pytest.mark.slow
def test_serve_with_workers_and_an_unknown_id_exits_2(processes: list[Process]) -> None:
    process = Process("serve", "NoSuchEnv-v0", "--port", "0", "--workers", "2")
    processes.append(process)
    assert process.popen.wait(DEADLINE) == 2
    assert _rest_of_stdout(process) == []
    _assert_one_line_error(process.stderr(), "NoSuchEnv", "worker")


def test_serve_with_workers_beyond_the_last_port_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "CartPole-v1", "--port", "65535", "--workers", "2"]) == 2
    _assert_one_line_error(capsys.readouterr().err, "65536")


def _rest_of_stdout(process: Process) -> list[str]:
    """Every line the process (and its children) still print, up to the end of its stdout."""
    lines = []
    while (line := process._lines.get(timeout=DEADLINE)) is not None:
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------- orchestrator


ORCHESTRATOR_READY = re.compile(r"orchestrator: lifecycle at (grpc://127\.0\.0\.1:\d+), client actors at (grpc://127\.0\.0\.1:\d+)\n")


@pytest.mark.slow
@pytest.mark.parametrize("actor_port", [None, "0"], ids=["one-port", "two-ports"])
def test_orchestrator_runs_trials_and_stops_on_sigterm(processes: list[Process], actor_port: str | None) -> None:
    args = ["orchestrator", "--lifecycle-port", "0"] + (["--actor-port", actor_port] if actor_port else [])
    process = Process(*args)
    processes.append(process)
    line = process.readline()
    match = ORCHESTRATOR_READY.fullmatch(line)
    assert match, line
    lifecycle, actor = match[1], match[2]
    assert (lifecycle == actor) == (actor_port is None)
    with cogment_gym.serve("CartPole-v1") as server:
        env = CogmentEnv(orchestrator=lifecycle, actor_endpoint=actor, environment=server.endpoint)
        try:
            assert _episode(env) >= 1
            assert _episode(env, seed=1) >= 1
        finally:
            env.close()
    assert process.terminate() == 0


@pytest.mark.slow
def test_orchestrator_reads_a_params_file(processes: list[Process], tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("trial_params:\n  max_steps: 10\n  environment:\n    implementation: CartPole-v1\n")
    process = Process("orchestrator", "--lifecycle-port", "0", "--params", str(params))
    processes.append(process)
    assert ORCHESTRATOR_READY.fullmatch(process.readline())
    assert process.terminate() == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "content, fragment",
    [(None, "missing.yaml"), ("trial_params:\n  max_stepz: 10\n", "max_stepz")],
    ids=["missing", "unknown-key"],
)
def test_orchestrator_with_a_bad_params_file_exits_2(processes: list[Process], tmp_path: Path, content: str | None, fragment: str) -> None:
    params = tmp_path / "missing.yaml"
    if content is not None:
        params.write_text(content)
    process = Process("orchestrator", "--lifecycle-port", "0", "--params", str(params))
    processes.append(process)
    assert process.popen.wait(DEADLINE) == 2
    _assert_one_line_error(process.stderr(), fragment)


def test_orchestrator_with_a_bad_hook_endpoint_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["orchestrator", "--lifecycle-port", "0", "--pre-trial-hooks", "nowhere"]) == 2
    _assert_one_line_error(capsys.readouterr().err, "nowhere")
