"""Optional packages not installed: the CLI and the Python API name the extra to install.

Each test hides the package in a child interpreter (a finder that reports it missing, as when it
is not installed) instead of uninstalling it.
"""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import error_line, run_cli, run_python

CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"
PETTINGZOO_HINT = "pip install 'cogment-gym[pettingzoo]'"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_pettingzoo_path_without_pettingzoo_names_the_extra(command: str) -> None:
    result = run_cli(command, CONNECT_FOUR, *(["--port", "0"] if command == "serve" else []), hide=["pettingzoo"])
    assert result.returncode == 2, result.stdout + result.stderr
    line = error_line(result.stderr)
    assert f"'{CONNECT_FOUR}' is a PettingZoo environment" in line
    assert "PettingZoo, which is not installed" in line
    assert line.endswith(PETTINGZOO_HINT), line
    assert "doesn't exist" not in line


def test_export_minari_without_minari_names_the_extra(tmp_path: object) -> None:
    result = run_cli("export-minari", str(tmp_path), "--dataset-id", "cogment/x-v0", hide=["minari"])
    assert result.returncode == 2, result.stdout + result.stderr
    line = error_line(result.stderr)
    assert line == "cogment-gym: error: export-minari needs Minari, which is not installed: pip install 'cogment-gym[minari]'"


def test_gymnasium_ids_do_not_need_the_extras() -> None:
    result = run_cli("run", "CartPole-v1", "--episodes", "1", hide=["pettingzoo", "stable_baselines3", "ray", "torch", "minari"])
    assert result.returncode == 0, result.stderr


def test_a_missing_pettingzoo_module_is_no_missing_extra() -> None:
    result = run_cli("run", "pettingzoo.classic.connect_four_v99")
    assert result.returncode == 2
    line = error_line(result.stderr)
    assert "connect_four_v99" in line and "pip install" not in line


# Statements that need an extra, by the packages hidden for them: (statement, extra, what the message says).
PYTHON_CASES: dict[str, list[tuple[str, str, str]]] = {
    "pettingzoo": [
        ("import cogment_gym; cogment_gym.CogmentAECEnv", "pettingzoo", "CogmentAECEnv and CogmentParallelEnv"),
        (f"import cogment_gym; cogment_gym.CogmentEnv({CONNECT_FOUR!r})", "pettingzoo", CONNECT_FOUR),
        (f"import cogment_gym; cogment_gym.serve({CONNECT_FOUR!r})", "pettingzoo", CONNECT_FOUR),
    ],
    "stable_baselines3": [("import cogment_gym.integrations.sb3", "sb3", "Stable-Baselines3, which is not installed")],
    "torch": [("import cogment_gym.integrations.sb3", "sb3", "Stable-Baselines3 with its dependencies ('torch' is not installed)")],
    "ray,minari": [
        ("import cogment_gym.integrations.rllib", "rllib", "Ray RLlib, which is not installed"),
        ("from cogment_gym.integrations.minari import export_minari; export_minari('.', 'cogment/x-v0')", "minari",
         "the Minari export needs Minari, which is not installed"),
    ],
}

CHILD = """
import json
from cogment_gym.errors import MissingExtraError
for statement in json.loads({statements!r}):
    try:
        exec(statement)
    except MissingExtraError as err:
        print(json.dumps([isinstance(err, ImportError), err.extra, str(err)]))
    else:
        print(json.dumps([False, "", "no error"]))
"""


@pytest.mark.parametrize("hidden", list(PYTHON_CASES))
def test_python_raises_missing_extra_error_naming_the_extra(hidden: str) -> None:
    cases = PYTHON_CASES[hidden]
    result = run_python(CHILD.format(statements=json.dumps([statement for statement, _, _ in cases])), hide=hidden.split(","))
    assert result.returncode == 0, result.stderr
    outcomes = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outcomes) == len(cases), result.stdout
    for (statement, extra, fragment), (is_import_error, named, message) in zip(cases, outcomes):
        assert is_import_error and named == extra, (statement, message)
        assert fragment in message, message
        assert message.endswith(f"pip install 'cogment-gym[{extra}]'"), message
