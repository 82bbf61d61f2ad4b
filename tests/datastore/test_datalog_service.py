"""The datalog service: what Orchestrators stream is recorded, durably; the in-process recorder;
a datalog process killed mid-run leaves every finished trial readable."""

from __future__ import annotations

import logging
import pathlib
import warnings
from pathlib import Path

import grpc
import gymnasium as gym
import numpy as np
import pytest

import cogment_gym
from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2, datalog_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.datastore import IncompleteTrialWarning, TrialRecorder, TrialStore, episodes, serve_datalog
from cogment_gym.orchestrator.server import OrchestratorServer
from cogment_gym.protocol.metadata import TRIAL_STARTED
from tests.datastore.conftest import play
from tests.waiting import wait_until


def _check_exact(recorded: list, played: list[tuple[int, list]]) -> None:
    """Every recorded step equals CartPole stepped directly with the same seed and actions."""
    assert [(e.seed, [int(a) for a in e.actions]) for e in recorded] == played
    direct = gym.make("CartPole-v1")
    for episode in recorded:
        obs, info = direct.reset(seed=episode.seed)
        assert np.array_equal(obs, episode.observations[0]) and info == episode.infos[0]
        for t, (_, action, reward, terminated, truncated, step_info) in enumerate(episode.steps()):
            obs, r, te, tr, i = direct.step(action)
            assert np.array_equal(obs, episode.observations[t + 1]) and obs.dtype == episode.observations[t + 1].dtype
            assert (r, te, tr, i) == (reward, terminated, truncated, step_info)


def test_a_served_datalog_records_trials_of_the_embedded_orchestrator(tmp_path: Path) -> None:
    with serve_datalog(tmp_path / "rec") as datalog:
        assert datalog.endpoint.startswith("grpc://127.0.0.1:")
        env = cogment_gym.CogmentEnv("CartPole-v1", datalog=datalog.endpoint)
        try:
            played = play(env, [3, 4])
        finally:
            env.close()
        assert wait_until(lambda: sum(t.complete for t in datalog.store.trials()) == 2)
    stored = TrialStore(tmp_path / "rec").trials()
    assert [t.samples for t in stored] == [len(a) + 1 for _, a in played]
    for trial in stored:
        assert trial.params.datalog.endpoint == datalog.endpoint
        config = env_pb2.ActorConfig.FromString(trial.params.actors[0].config.content)  # the spaces travel
        assert config.HasField("observation_space") and config.HasField("action_space")
    _check_exact(list(episodes(tmp_path / "rec")), played)


def test_the_in_process_recorder_needs_no_port(tmp_path: Path) -> None:
    recorder = TrialRecorder(tmp_path / "rec")
    env = cogment_gym.CogmentEnv("CartPole-v1", datalog=recorder)
    try:
        played = play(env, [11, 12, 13])
        assert env._connection.datalog_endpoint == "local://datalog"
    finally:
        env.close()
    _check_exact(list(episodes(tmp_path / "rec")), played)
    env = cogment_gym.CogmentEnv("CartPole-v1", datalog=pathlib.Path(tmp_path / "other"))  # a Path makes a recorder
    try:
        play(env, [1])
    finally:
        env.close()
    assert [t.complete for t in TrialStore(tmp_path / "other").trials()] == [True]


def test_datalog_option_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="give a pathlib.Path to record into a directory"):
        cogment_gym.CogmentEnv("CartPole-v1", datalog=str(tmp_path))
    with pytest.raises(TypeError, match="datalog must be"):
        cogment_gym.CogmentEnv("CartPole-v1", datalog=3)
    with cogment_gym.serve("CartPole-v1") as server, pytest.raises(TypeError, match="remote orchestrator cannot reach a recorder"):
        cogment_gym.CogmentEnv(environment=server.endpoint, orchestrator="grpc://127.0.0.1:1", datalog=tmp_path)


def test_stream_without_trial_id_or_params_is_refused(tmp_path: Path) -> None:
    with serve_datalog(tmp_path) as datalog:
        with grpc.insecure_channel(datalog.endpoint[len("grpc://"):]) as channel:
            stub = datalog_pb2_grpc.DatalogSPStub(channel)
            with pytest.raises(grpc.RpcError) as raised:
                list(stub.RunTrialDatalog(iter([datalog_pb2.RunTrialDatalogInput(trial_params=common_pb2.TrialParams())]), timeout=10))
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "trial-id" in raised.value.details()
            with pytest.raises(grpc.RpcError) as raised:
                list(stub.RunTrialDatalog(iter([datalog_pb2.RunTrialDatalogInput(sample=datalog_pb2.DatalogSample())]),
                                          metadata=(("trial-id", "t"),), timeout=10))
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "first message must be the trial params" in raised.value.details()
            reply = stub.Status(common_pb2.StatusRequest(names=["*"]), timeout=10)
            assert "overall_load" in reply.statuses
    assert TrialStore(tmp_path).trials() == []


def test_trials_are_listed_by_when_they_started_not_when_their_streams_arrived(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An Orchestrator may open the datalog streams of consecutive trials late and at once (the
    first trials on a new channel): ours names each trial's start in the stream's metadata, and
    the files are stamped and listed by it. Without it (other Orchestrators), by arrival."""
    ended = datalog_pb2.DatalogSample()
    ended.info.state = common_pb2.TrialState.ENDED

    def stream(trial_id: str, *started: str) -> None:
        messages = [datalog_pb2.RunTrialDatalogInput(trial_params=common_pb2.TrialParams()), datalog_pb2.RunTrialDatalogInput(sample=ended)]
        metadata = (("trial-id", trial_id), *((TRIAL_STARTED, value) for value in started))
        list(stub.RunTrialDatalog(iter(messages), metadata=metadata, timeout=10))

    with serve_datalog(tmp_path) as datalog:
        with grpc.insecure_channel(datalog.endpoint[len("grpc://"):]) as channel:
            stub = datalog_pb2_grpc.DatalogSPStub(channel)
            stream("second", str(11 * 10**17))  # arrives first, started later (2004)
            stream("first", str(10**18))  # (2001)
            stream("unstamped")  # stamped on arrival: now, after both
            with caplog.at_level(logging.WARNING, logger="cogment_gym.datastore"):
                stream("malformed", "soon")
        assert wait_until(lambda: sum(t.complete for t in datalog.store.trials()) == 4)
    listed = TrialStore(tmp_path).trials()
    assert [t.trial_id for t in listed][:2] == ["first", "second"]
    assert [t.started for t in listed][:2] == [10**18, 11 * 10**17]
    assert {t.trial_id for t in listed[2:]} == {"unstamped", "malformed"} and all(t.started > 11 * 10**17 for t in listed[2:])
    assert "malformed cogment-gym-trial-started metadata value 'soon'" in caplog.text, caplog.text


@pytest.mark.slow
def test_killing_the_datalog_process_mid_run_leaves_finished_trials_readable(tmp_path: Path, datalog_process) -> None:
    out = tmp_path / "recorded"
    datalog = datalog_process(out)
    store = TrialStore(out)
    with cogment_gym.serve("CartPole-v1") as server, OrchestratorServer() as orchestrator:
        env = cogment_gym.CogmentEnv(environment=server.endpoint, orchestrator=orchestrator.lifecycle_endpoint, datalog=datalog.endpoint)
        try:
            played = play(env, [21, 22, 23])
            assert wait_until(lambda: sum(t.complete for t in store.trials()) == 3, 30)
            env.reset(seed=24)  # a trial in flight when the datalog dies
            for _ in range(3):
                env.step(0)
            assert wait_until(lambda: len(store.trials()) == 4 and store.trials()[-1].samples >= 3, 30)
            datalog.kill()
            done = False
            while not done:  # the trial goes on without its datalog
                _, _, terminated, truncated, _ = env.step(1)
                done = terminated or truncated
        finally:
            env.close()
    listed = store.trials()
    assert [t.status for t in listed] == ["complete"] * 3 + ["in flight or interrupted"]
    with pytest.warns(IncompleteTrialWarning, match=rf"skipping trial {listed[3].trial_id} \(.*\): in flight or interrupted"):
        recorded = list(episodes(out))
    _check_exact(recorded, played)


@pytest.mark.slow
def test_datalog_process_stops_on_sigterm_and_ends_streams_in_flight(tmp_path: Path, datalog_process) -> None:
    out = tmp_path / "recorded"
    datalog = datalog_process(out)
    store = TrialStore(out)
    # A standalone Orchestrator: an embedded one sends only while the facade's loop runs (in step()).
    with cogment_gym.serve("CartPole-v1") as server, OrchestratorServer() as orchestrator:
        env = cogment_gym.CogmentEnv(environment=server.endpoint, orchestrator=orchestrator.lifecycle_endpoint, datalog=datalog.endpoint)
        try:
            env.reset(seed=1)
            env.step(0)
            assert wait_until(lambda: len(store.trials()) == 1 and store.trials()[0].samples >= 1, 30)
            assert datalog.terminate() == 0
            env.step(0)  # the trial does not depend on its datalog
        finally:
            env.close()
    [trial] = store.trials()
    assert trial.status.startswith("stream failed: the stream "), trial.status
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert list(episodes(out)) == []
    assert any(issubclass(w.category, IncompleteTrialWarning) for w in caught)


def test_cli_datalog_refuses_a_file_as_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cogment_gym.cli import main

    (tmp_path / "file").write_text("x")
    assert main(["datalog", "--out", str(tmp_path / "file"), "--port", "0"]) == 2
    assert "is not a directory" in capsys.readouterr().err
