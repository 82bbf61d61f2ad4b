"""The official SDK's ``get_datastore()`` lists and reads the trials our datalog recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

import cogment_gym
from cogment_gym.datastore import episodes, serve_datalog
from tests.datastore.conftest import play
from tests.waiting import wait_until

from . import sdk

pytestmark = pytest.mark.network


def test_sdk_datastore_lists_and_reads_recorded_trials(sdk_venv_python: Path, tmp_path: Path) -> None:
    with serve_datalog(tmp_path / "rec") as datalog:
        env = cogment_gym.CogmentEnv("CartPole-v1", datalog=datalog.endpoint)
        try:
            played = play(env, [1, 2, 3])
        finally:
            env.close()
        assert wait_until(lambda: sum(t.complete for t in datalog.store.trials()) == 3, 30)
        recorded = {e.trial_id: e for e in episodes(tmp_path / "rec")}
        order = [t.trial_id for t in datalog.store.trials()]
        proc = sdk.run_sdk_script("sdk_datastore.py", ["--endpoint", datalog.endpoint], timeout=120)
        assert proc.returncode == 0, proc.stderr
        result = sdk.last_json_line(proc.stdout)
        remaining = [t.trial_id for t in datalog.store.trials()]
    assert [t["trial_id"] for t in result["trials"]] == order
    for trial, (_, actions) in zip(result["trials"], played):
        assert trial["state"] == "ENDED" and trial["actors"] == ["player"] and trial["sample_count"] == len(actions) + 1
    assert [t["trial_id"] for t in result["get_trials"]] == order[:1]
    for trial_id in order:
        samples = result["samples"][trial_id]
        episode = recorded[trial_id]
        assert [s["tick_id"] for s in samples] == list(range(len(episode) + 1))
        assert samples[-1]["state"] == "ENDED"
        players = [s["actors"]["player"] for s in samples]
        assert [p["observation_reward"] for p in players[1:]] == episode.rewards  # float64, exactly
        assert [p["terminated"] for p in players[1:]] == episode.terminations
        assert [p["has_action"] for p in players] == [True] * len(episode) + [False]
    assert result["observation_only"] and all(e["has_observation"] and not e["has_action"] for e in result["observation_only"])
    assert result["after_delete"] == order[:-1] == remaining
