"""``cogment-gym orchestrator --params FILE`` with ``run``: max_steps is the run's --max-steps,
else the file's, else none; examples/params.yaml is a file the Orchestrator reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterator

import pytest

import cogment_gym
from cogment_gym.orchestrator.params import load_trial_params
from tests.cli.helpers import ROOT, Service, run_cli

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "params.yaml"
STEPS = re.compile(r"(\d+) episodes, (\d+) steps in")
EPISODES = 3


@pytest.fixture(scope="module")
def env_endpoint() -> Iterator[str]:
    with cogment_gym.serve("CartPole-v1") as server:
        yield server.endpoint


def _orchestrator(start: Callable[..., Service], *args: str) -> str:
    process = start("orchestrator", "--lifecycle-port", "0", *args)
    match = re.match(r"orchestrator: lifecycle at (\S+),", process.readline())
    assert match
    return match[1]


def _steps(env_endpoint: str, orchestrator: str, *args: str) -> int:
    result = run_cli("run", "CartPole-v1", "--episodes", str(EPISODES), "--seed", "0", "--environment", env_endpoint,
                     "--orchestrator", orchestrator, *args)
    assert result.returncode == 0, result.stderr
    match = STEPS.search(result.stdout)
    assert match and int(match[1]) == EPISODES, result.stdout
    return int(match[2])


def test_run_max_steps_beats_the_file_which_beats_no_limit(start: Callable[..., Service], env_endpoint: str, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("trial_params:\n  max_steps: 4\n")
    with_file = _orchestrator(start, "--params", str(params))
    # max_steps = M ends a trial after M+1 actions; a random CartPole episode lasts longer than
    # 5 steps (the pole takes 8 or more to fall), so every episode is cut at exactly M+1.
    assert _steps(env_endpoint, with_file) == EPISODES * (4 + 1)                      # the file's
    assert _steps(env_endpoint, with_file, "--max-steps", "2") == EPISODES * (2 + 1)  # the flag's
    assert _steps(env_endpoint, with_file, "--max-steps", "7") == EPISODES * (7 + 1)  # the flag's, above the file's
    without_file = _orchestrator(start)
    assert _steps(env_endpoint, without_file) > EPISODES * (7 + 1)                    # no limit


def test_the_example_params_file_is_what_the_orchestrator_reads(start: Callable[..., Service], env_endpoint: str) -> None:
    params = load_trial_params(EXAMPLE)
    assert params.max_steps == 200 and params.max_inactivity == 60
    assert params.environment.implementation == "CartPole-v1"
    assert [(a.name, a.actor_class, a.endpoint) for a in params.actors] == [("player", "player", "cogment://client")]
    orchestrator = _orchestrator(start, "--params", str(EXAMPLE))
    # Random CartPole episodes stay far below the file's limit of 200: only the run must work.
    assert EPISODES <= _steps(env_endpoint, orchestrator) <= EPISODES * 201
    assert _steps(env_endpoint, orchestrator, "--max-steps", "1") == EPISODES * 2


def test_readme_documents_the_params_file_and_its_precedence() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "examples/params.yaml" in readme
    assert "--max-steps" in readme and "params file" in readme
    assert "CLI flag > file > default" in readme
