"""cogment_gym's gRPC core settings: in place when cogment_gym is imported first, never over a
choice of the user's, never too late to matter. Each case runs in a fresh interpreter, since the
setting is about what happens before ``grpc`` is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cogment_gym import _grpc_tuning
from tests.children import REPO_ROOT

REPORT = "import json, os, sys; print(json.dumps([os.environ.get('GRPC_EXPERIMENTS'), 'grpc' in sys.modules]))"


def run_fresh(code: str, **env_changes: str | None) -> list:
    env = {k: v for k, v in os.environ.items() if k not in ("GRPC_EXPERIMENTS", "COGMENT_GYM_GRPC_TUNING")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    for name, value in env_changes.items():
        if value is not None:
            env[name] = value
    done = subprocess.run([sys.executable, "-c", f"{code}\n{REPORT}"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


needs_known_grpcio = pytest.mark.skipif(
    not (_grpc_tuning._KNOWN_VERSIONS[0] <= (_grpc_tuning._grpcio_version() or (0, 0)) <= _grpc_tuning._KNOWN_VERSIONS[1]),
    reason="the installed grpcio is outside the versions the setting was measured on",
)


@needs_known_grpcio
def test_importing_cogment_gym_first_sets_the_experiments_before_grpc_loads() -> None:
    assert run_fresh("import cogment_gym") == [_grpc_tuning.TUNED_EXPERIMENTS, True]


@needs_known_grpcio
def test_grpc_knows_the_experiments_it_is_given() -> None:
    """gRPC logs "Unknown experiment" on stderr for a name it does not know: it must not here."""
    code = "import cogment_gym, grpc\ngrpc.insecure_channel('127.0.0.1:1').close()"
    env = {k: v for k, v in os.environ.items() if k not in ("GRPC_EXPERIMENTS", "COGMENT_GYM_GRPC_TUNING")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Unknown experiment" not in done.stderr, done.stderr
    bogus = dict(env, GRPC_EXPERIMENTS="-no_such_experiment_of_cogment_gym")  # the check can fail
    done = subprocess.run([sys.executable, "-c", code], env=bogus, capture_output=True, text=True, timeout=120)
    assert "Unknown experiment" in done.stderr


@needs_known_grpcio
def test_the_setting_is_inherited_by_child_processes() -> None:
    code = (
        "import cogment_gym, subprocess, sys\n"
        "child = subprocess.run([sys.executable, '-c', 'import os; print(os.environ.get(\"GRPC_EXPERIMENTS\"))'],"
        " capture_output=True, text=True, timeout=60)\n"
        "print(child.stdout.strip())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GRPC_EXPERIMENTS", "COGMENT_GYM_GRPC_TUNING")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[0] == _grpc_tuning.TUNED_EXPERIMENTS


@pytest.mark.parametrize("value", ["", "-event_engine_client", "event_engine_dns"])
def test_a_user_setting_is_left_as_it_is(value: str) -> None:
    assert run_fresh("import cogment_gym", GRPC_EXPERIMENTS=value) == [value, True]


def test_opting_out_leaves_grpc_defaults() -> None:
    assert run_fresh("import cogment_gym", COGMENT_GYM_GRPC_TUNING="0") == [None, True]


def test_grpc_imported_before_cogment_gym_is_not_changed_too_late() -> None:
    assert run_fresh("import grpc\nimport cogment_gym") == [None, True]


def test_apply_reports_whether_it_set_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    # In this (pytest) process grpc is already imported: apply() must refuse, whatever the env.
    monkeypatch.delenv("GRPC_EXPERIMENTS", raising=False)
    assert "grpc" in sys.modules
    assert _grpc_tuning.apply() is False
    assert "GRPC_EXPERIMENTS" not in os.environ
    monkeypatch.setenv("GRPC_EXPERIMENTS", _grpc_tuning.TUNED_EXPERIMENTS)
    assert _grpc_tuning.applied()
