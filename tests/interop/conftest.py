"""Fixtures of the interop tests (official Cogment Python SDK 2.10.1 in its own venv)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from . import sdk


@pytest.fixture(scope="session")
def sdk_venv_python() -> Path:
    """The SDK venv's interpreter; builds the venv on first use (needs the package registry)."""
    return sdk.sdk_python()


@pytest.fixture
def start_sdk(sdk_venv_python: Path, tmp_path: Path) -> Iterator[Callable[..., sdk.SdkProcess]]:
    """Factory: ``start_sdk("sdk_env.py", "--steps", "3")`` -> a started :class:`sdk.SdkProcess`.

    Every process started is stopped (by PID) at teardown; its log (stderr) is printed then, so
    that pytest shows it for failing tests.
    """
    started: list[sdk.SdkProcess] = []

    def start(script: str, *args: str, deadline: float = 60.0) -> sdk.SdkProcess:
        process = sdk.start_sdk_server(script, args, deadline=deadline, log_dir=tmp_path)
        started.append(process)
        return process

    yield start

    for process in reversed(started):
        code = process.stop()
        sys.stdout.write(f"\n--- {process.name} (pid {process.pid}, port {process.port}, exit {code}) stderr ---\n")
        sys.stdout.write(process.stderr_text())


@pytest.fixture
def orchestrator():
    """OUR Orchestrator (``OrchestratorServer``) on 127.0.0.1, OS-chosen port; stopped at teardown."""
    from cogment_gym.orchestrator.server import OrchestratorServer

    server = OrchestratorServer()
    yield server
    server.stop()


@pytest.fixture
def cartpole_server():
    """OUR served CartPole-v1 (``cogment_gym.serve``); its single actor is "player" of class "player"."""
    import cogment_gym

    with cogment_gym.serve("CartPole-v1") as server:
        yield server


@pytest.fixture
def trial_file(tmp_path: Path) -> Callable[[dict], Path]:
    """Factory: writes a trial file (JSON) for sdk_controller.py / sdk_lifecycle.py; returns its path."""
    import json
    import itertools

    counter = itertools.count()

    def write(spec: dict) -> Path:
        path = tmp_path / f"trial-{next(counter)}.json"
        path.write_text(json.dumps(spec, indent=2))
        return path

    return write
