"""The official SDK test harness's way of launching an Orchestrator, rewritten here (the SDK's
tests are not on the package registry): the same command line, the same status-file protocol.

The SDK's harness (cogment-py-sdk, tests/helpers/launch_cogment.py, ``launch_orchestrator``)
copies the app's ``params.yaml`` to ``params_<test port>.yaml`` with its endpoints set to
``grpc://localhost:<test port>``, makes a FIFO as status file and runs, in the app directory::

    <cogment_path> services orchestrator --status_file=<fifo> --lifecycle_port=<port>
        --actor_port=<port> --params=params_<test port>.yaml --pre_trial_hooks=grpc://localhost:<test port>

then reads ``I`` and ``R`` from the FIFO; to stop it, SIGTERM, at most 5 s, and ``T`` read last.
:func:`launch_orchestrator` does exactly that with ``cogment_path`` pointed at our entry point
(:func:`entry_point`: ``cogment-gym`` of this interpreter), with deadlines on every wait.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

__all__ = ["LaunchedOrchestrator", "entry_point", "free_port", "launch_orchestrator"]

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0


def free_port() -> int:
    """A port free right now (the SDK harness's ``find_free_port``: its command line needs one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def entry_point(directory: Path) -> Path:
    """An executable that runs ``cogment-gym`` with this interpreter and this checkout: the
    ``cogment_path`` the harness calls (``<cogment_path> services orchestrator ...``)."""
    path = directory / "cogment"
    path.write_text(f"#!/bin/sh\nexec {sys.executable} -m cogment_gym.cli \"$@\"\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


class _StatusReader:
    """Reads the FIFO in a thread (opening it blocks until the Orchestrator opens it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.chars: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with open(self.path, "r", encoding="ascii") as fifo:
                while char := fifo.read(1):
                    self.chars.put(char)
        finally:
            self.chars.put(None)

    def next(self, timeout: float) -> str | None:
        """The next character, None at EOF; raises AssertionError after ``timeout`` s."""
        try:
            return self.chars.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no status character in {self.path} within {timeout:g} s") from None

    def close(self) -> None:
        if self._thread.is_alive():  # still blocked in open(): be the writer it waits for
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
        self._thread.join(5)


class LaunchedOrchestrator:
    """What :func:`launch_orchestrator` started; :meth:`terminate` is the harness's teardown."""

    def __init__(self, process: subprocess.Popen[str], status: _StatusReader, status_dir: str, log: Path) -> None:
        self.process = process
        self.status = status
        self.status_dir = status_dir
        self.log = log
        self.terminated_status: str | None = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def terminate(self) -> int | None:
        """SIGTERM (to this process only), 5 s to exit (then SIGKILL), and the last status read."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
                self.terminated_status = self.status.next(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        finally:
            self.status.close()
            for name in os.listdir(self.status_dir):
                os.unlink(os.path.join(self.status_dir, name))
            os.rmdir(self.status_dir)
        return self.process.returncode


def launch_orchestrator(app_directory: Path, orchestrator_port: int, test_port: int, cogment_path: Path,
                        substitute: Callable[[str], str] | None = None, environ: dict[str, str] | None = None) -> LaunchedOrchestrator:
    """Launch as the SDK harness does; returns once ``I`` and ``R`` were read from the status FIFO.

    ``app_directory`` holds ``params.yaml`` with ``<<token_placeholder>>`` where the test's own
    endpoint goes (``substitute`` may rewrite the lines further); ``environ``: more environment
    variables for the Orchestrator (e.g. ``COGMENT_DIRECTORY_ENDPOINT``).
    """
    test_host = f"grpc://localhost:{test_port}"
    params_file = f"params_{test_port}.yaml"
    with open(app_directory / "params.yaml") as template, open(app_directory / params_file, "w") as out:
        for line in template:
            line = line.replace("<<token_placeholder>>", test_host)
            out.write(substitute(line) if substitute is not None else line)
    status_dir = tempfile.mkdtemp()
    status_file = os.path.join(status_dir, "cogment_orchestrator_status")
    os.mkfifo(status_file)
    args = [
        str(cogment_path), "services", "orchestrator",
        f"--status_file={status_file}",
        f"--lifecycle_port={orchestrator_port}",
        f"--actor_port={orchestrator_port}",
        f"--params={params_file}",
        f"--pre_trial_hooks={test_host}",
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(environ or {})
    log = app_directory / f"orchestrator-{orchestrator_port}.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(args, cwd=app_directory, env=env, stdin=subprocess.DEVNULL, stdout=stderr, stderr=subprocess.STDOUT, text=True)
    status = _StatusReader(status_file)
    launched = LaunchedOrchestrator(process, status, status_dir, log)
    try:
        first, second = status.next(WAIT), status.next(WAIT)
        if (first, second) != ("I", "R"):
            raise AssertionError(f"status file said {first!r}, {second!r} (expected I, R)\n{launched.log_text()}")
    except BaseException:
        launched.terminate()
        raise
    return launched
