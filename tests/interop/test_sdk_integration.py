"""The official SDK's integration tests (cogment-py-sdk 2.10.1, tests/test_integration.py) against
OUR Orchestrator, launched as the SDK's harness launches ``cogment services orchestrator``
(launcher.py: same command line, same status FIFO) with ``cogment-gym`` in its place.

The scenarios run in the SDK venv (sdk_scripts/sdk_integration.py: the SDK tests' code paths,
adapted to report what they count); the values asserted here are the SDK tests' own. All three
of its integration tests pass; what is left out: their Prometheus checks (an SDK feature, not the
Orchestrator's), and the SDK's model registry tests (out of scope). Also: the SDK registering
its services in OUR Directory, and our Orchestrator finding them there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import sdk
from .launcher import entry_point, free_port, launch_orchestrator

pytestmark = [pytest.mark.network, pytest.mark.slow]

SCRIPT_TIMEOUT = 90.0

# The SDK test app's params.yaml: its endpoints are the test's port (filled in by the launcher).
PARAMS_YAML = """\
trial_params:
  environment:
    endpoint: <<token_placeholder>>

  actors:
    - name: actor_1
      actor_class: my_actor_class_1
      endpoint: <<token_placeholder>>
      implementation: test

    - name: actor_2
      actor_class: my_actor_class_1
      endpoint: <<token_placeholder>>
      implementation: test
"""


def _run(scenario: str, tmp_path: Path, sdk_venv_python: Path, params: str = PARAMS_YAML, directory: str = "") -> dict:
    app = tmp_path / "app"
    app.mkdir()
    (app / "params.yaml").write_text(params)
    orchestrator_port, test_port = free_port(), free_port()
    environ = {"COGMENT_DIRECTORY_ENDPOINT": directory} if directory else {}
    launched = launch_orchestrator(app, orchestrator_port, test_port, entry_point(tmp_path), environ=environ)
    try:
        proc = sdk.run_sdk_script(
            "sdk_integration.py",
            [scenario, "--orchestrator", f"grpc://localhost:{orchestrator_port}", "--port", str(test_port), "--timeout", str(SCRIPT_TIMEOUT - 30),
             "--directory", directory],
            timeout=SCRIPT_TIMEOUT,
        )
    finally:
        code = launched.terminate()
    log = f"--- orchestrator ---\n{launched.log_text()}\n--- sdk stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, f"{scenario} exited {proc.returncode}\n{proc.stdout}\n{log}"
    assert code == 0 and launched.terminated_status == "T", log
    result = sdk.last_json_line(proc.stdout)
    assert result["errors"] == [], f"{result['errors']}\n{log}"
    return result


def test_environment_controlled_trial(tmp_path: Path, sdk_venv_python: Path) -> None:
    """Rewards and messages from the environment; from the client actor after its action (the
    SDK idiom), to the service actors, every tick including the last; the watch sees every state."""
    r = _run("environment_controlled", tmp_path, sdk_venv_python)
    assert r["states"] == ["INITIALIZING", "PENDING", "RUNNING", "TERMINATING", "ENDED"]  # the SDK test's count == 11111
    assert r["state_trial_ids"] == [r["trial_id"]]
    assert set(r["trial_ids"].values()) == {r["trial_id"]} and set(r["trial_ids"]) == {"environment", "actor_1", "actor_2", "client_1"}
    assert r["environment_call_count"] == 1 and r["environment_tick_count"] == 10
    assert r["agent_call_count"] == 2
    assert r["agent_observation_count"] / r["agent_call_count"] == 10 + 1
    assert r["agent_final_data_count"] == 2
    assert r["had_universal_message"] and r["had_personal_message"]
    assert r["agent_message_count"] == 4
    assert r["total_reward"] == 42.0
    assert r["had_message_from_client"] == 10
    assert r["had_reward_from_client"] == 10  # the one that came out 9 (sent after the last action)
    assert r["client_call_count"] == 1 and r["client_observation_count"] == 10 + 1 and r["client_final_data_count"] == 1
    assert r["client_had_universal_message"] and r["client_had_personal_message"]
    assert r["client_message_count"] == 2 and r["client_total_reward"] == 21.0
    assert r["pre_hook_called_count"] == 1


def test_controller_controlled_trial(tmp_path: Path, sdk_venv_python: Path) -> None:
    r = _run("controller_controlled", tmp_path, sdk_venv_python)
    assert r["hook_calls"] == 1
    assert r["environment_call_count"] == 1 and r["agent_call_count"] == 2
    assert r["environment_tick_count"] > 0
    assert sorted(r["ticks"]) == ["actor_1", "actor_2"]
    assert r["ticks"]["actor_1"] == r["ticks"]["actor_2"]
    assert r["environment_tick_count"] >= r["ticks"]["actor_1"]


def test_actor_order(tmp_path: Path, sdk_venv_python: Path) -> None:
    r = _run("actor_order", tmp_path, sdk_venv_python)
    assert r["ended"] == ["actor_A", "actor_B", "actor_C", "actor_D"]
    assert r["action_sets"] == 4  # ticks 0..3, the environment ends after the fourth


DISCOVERY_PARAMS = """\
trial_params:
  max_steps: 5
  environment:
    endpoint: cogment://discover
    implementation: sdk_env
  actors:
    - name: actor_1
      actor_class: my_actor_class_1
      endpoint: cogment://discover/actor?__actor_class=my_actor_class_1
      implementation: sdk_actor
"""


def test_sdk_services_register_in_our_directory_and_our_orchestrator_finds_them(tmp_path: Path, sdk_venv_python: Path) -> None:
    """The SDK registers its environment, actor and hook in OUR Directory; OUR Orchestrator
    (COGMENT_DIRECTORY_ENDPOINT, as Cogment reads it) registers itself and resolves the params'
    cogment://discover endpoints there; the SDK controller finds the Orchestrator there."""
    from cogment_gym.directory import serve_directory

    with serve_directory() as directory:
        r = _run("discovery", tmp_path, sdk_venv_python, params=DISCOVERY_PARAMS, directory=directory.endpoint)
        entries = [(d.details.type, dict(d.details.properties)) for d in directory.table.entries()]
    assert r["registered"] == 3  # environment, actor (one class), pre-trial hook
    assert r["hook_calls"] == 1
    assert r["env_ticks"] == 5 + 1 and r["actor_observations"] == 5 + 2  # max_steps=5: ActionSets 0..5, final observation 6
    assert entries == []  # the SDK and our Orchestrator both deregistered when they stopped
