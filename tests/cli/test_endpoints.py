"""One rule for every endpoint given to ``cogment-gym run``: a bad or unreachable one exits 2 with
one line "cannot run X: <role> at E ...: expected ...", never gRPC's own text or an exception
class; a trial failing later exits 1 with one line, its summary."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import cogment_gym
from cogment_gym.cli import main
from cogment_gym.orchestrator.server import OrchestratorServer
from cogment_gym.testing.envs import RaisingEnv
from tests.cli.helpers import error_line, run_cli

pytestmark = pytest.mark.slow

RAW_GRPC = ("UNIMPLEMENTED", "Method not found", "StatusCode", "failed to connect to all addresses", "Error:")


@pytest.fixture(scope="module")
def env_endpoint() -> Iterator[str]:
    with cogment_gym.serve("CartPole-v1") as server:
        yield server.endpoint


@pytest.fixture(scope="module")
def orchestrator_endpoint() -> Iterator[str]:
    with OrchestratorServer(lifecycle_port=0) as server:
        yield server.lifecycle_endpoint


def _usage_error(*args: str) -> str:
    result = run_cli("run", "CartPole-v1", "--episodes", "1", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    line = error_line(result.stderr)
    assert line.startswith("cogment-gym: error: cannot run CartPole-v1: "), line
    for raw in RAW_GRPC:
        assert raw not in line, line
    return line


def test_an_environment_service_given_as_the_orchestrator(env_endpoint: str) -> None:
    line = _usage_error("--environment", env_endpoint, "--orchestrator", env_endpoint)
    assert f"orchestrator at {env_endpoint} answers, but not as a Cogment Orchestrator (cogmentAPI.TrialLifecycleSP)" in line


def test_an_orchestrator_where_nothing_listens(env_endpoint: str) -> None:
    line = _usage_error("--environment", env_endpoint, "--orchestrator", "grpc://127.0.0.1:1")
    assert "orchestrator at grpc://127.0.0.1:1 is unreachable (connection refused): expected a Cogment Orchestrator" in line


def test_an_orchestrator_on_a_missing_unix_socket(env_endpoint: str, tmp_path: Path) -> None:
    socket = f"unix://{tmp_path / 'none.sock'}"
    line = _usage_error("--environment", env_endpoint, "--orchestrator", socket)
    assert f"orchestrator at {socket} is unreachable" in line


@pytest.mark.parametrize("role", ["environment", "orchestrator"])
@pytest.mark.parametrize("text", ["http://127.0.0.1:9000", "grpc://127.0.0.1", "cogment://client"])
def test_a_string_that_is_no_endpoint(env_endpoint: str, role: str, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--environment", text] if role == "environment" else ["--environment", env_endpoint, "--orchestrator", text]
    assert main(["run", "CartPole-v1", *args]) == 2  # in this process: the subprocess cases are above
    line = error_line(capsys.readouterr().err)
    assert line == f"cogment-gym: error: cannot run CartPole-v1: {role} at {text} is not an endpoint: expected grpc://host:port or unix:///path"


def test_a_pre_trial_hook_that_is_no_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["orchestrator", "--lifecycle-port", "0", "--pre-trial-hooks", "http://127.0.0.1:1"]) == 2
    line = error_line(capsys.readouterr().err)
    assert line == ("cogment-gym: error: cannot start the orchestrator: pre-trial hook at http://127.0.0.1:1 is not an endpoint: "
                    "expected grpc://host:port or unix:///path")


def test_an_orchestrator_given_as_the_environment(orchestrator_endpoint: str) -> None:
    line = _usage_error("--environment", orchestrator_endpoint)
    assert f"environment service at {orchestrator_endpoint} does not describe its spaces" in line


def test_an_environment_where_nothing_listens() -> None:
    line = _usage_error("--environment", "grpc://127.0.0.1:1")
    assert "environment service at grpc://127.0.0.1:1 is unreachable (connection refused)" in line


def test_good_endpoints_run(env_endpoint: str, orchestrator_endpoint: str) -> None:
    result = run_cli("run", "CartPole-v1", "--episodes", "2", "--environment", env_endpoint, "--orchestrator", orchestrator_endpoint)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_failing_trial_is_one_line_without_the_remote_traceback() -> None:
    with cogment_gym.serve({"raising": lambda: RaisingEnv(raise_on_step=2)}) as server:
        result = run_cli("run", "raising", "--environment", server.endpoint, "--episodes", "1")
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith("cogment-gym: error: raising failed: trial "), line
    assert line.endswith("environment 'raising': InjectedFault: injected fault (in step 2)"), line
    assert "Remote traceback" not in result.stderr
