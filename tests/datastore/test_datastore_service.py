"""TrialDatastoreSP over recorded trials, with our generated stubs (the official SDK reads the
same: tests/interop/test_sdk_datastore.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

import cogment_gym
from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2, trial_datastore_pb2 as ds_pb2, trial_datastore_pb2_grpc as ds_grpc
from cogment_gym.datastore import serve_datalog
from cogment_gym.datastore.samples import stored_sample
from cogment_gym.orchestrator.server import OrchestratorServer
from tests.datastore.conftest import play
from tests.waiting import wait_until

F = ds_pb2.StoredTrialSampleField


@pytest.fixture
def recorded(tmp_path: Path):
    with serve_datalog(tmp_path / "rec") as datalog:
        env = cogment_gym.CogmentEnv("CartPole-v1", datalog=datalog.endpoint)
        try:
            played = play(env, [1, 2, 3])
        finally:
            env.close()
        assert wait_until(lambda: sum(t.complete for t in datalog.store.trials()) == 3, 30)
        with grpc.insecure_channel(datalog.endpoint[len("grpc://"):]) as channel:
            yield datalog, ds_grpc.TrialDatastoreSPStub(channel), played


def test_retrieve_trials_pages_and_filters(recorded) -> None:
    datalog, stub, played = recorded
    ids = [t.trial_id for t in datalog.store.trials()]
    every = stub.RetrieveTrials(ds_pb2.RetrieveTrialsRequest(), timeout=10)
    assert [i.trial_id for i in every.trial_infos] == ids
    assert [i.samples_count for i in every.trial_infos] == [len(a) + 1 for _, a in played]
    assert all(i.last_state == common_pb2.TrialState.ENDED and i.params.environment.implementation == "CartPole-v1" for i in every.trial_infos)
    first = stub.RetrieveTrials(ds_pb2.RetrieveTrialsRequest(trials_count=2), timeout=10)
    rest = stub.RetrieveTrials(ds_pb2.RetrieveTrialsRequest(trials_count=2, trial_handle=first.next_trial_handle), timeout=10)
    assert [i.trial_id for i in first.trial_infos] + [i.trial_id for i in rest.trial_infos] == ids
    picked = stub.RetrieveTrials(ds_pb2.RetrieveTrialsRequest(trial_ids=[ids[2], "unknown"]), timeout=10)
    assert [i.trial_id for i in picked.trial_infos] == [ids[2]]
    none = stub.RetrieveTrials(ds_pb2.RetrieveTrialsRequest(properties={"k": "v"}), timeout=10)
    assert list(none.trial_infos) == []
    with pytest.raises(grpc.RpcError) as raised:
        stub.RetrieveTrials(ds_pb2.RetrieveTrialsRequest(trial_handle="x"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_retrieve_samples_arranges_them_per_actor_and_filters(recorded) -> None:
    datalog, stub, played = recorded
    trial_id = datalog.store.trials()[0].trial_id
    samples = [r.trial_sample for r in stub.RetrieveSamples(ds_pb2.RetrieveSamplesRequest(trial_ids=[trial_id]), timeout=10)]
    assert [s.tick_id for s in samples] == list(range(len(played[0][1]) + 1))
    assert all(s.trial_id == trial_id and len(s.actor_samples) == 1 for s in samples)
    assert all(s.actor_samples[0].HasField("observation") and s.actor_samples[0].HasField("action") for s in samples[:-1])
    assert not samples[-1].actor_samples[0].HasField("action") and samples[-1].state == common_pb2.TrialState.ENDED
    only = [r.trial_sample for r in stub.RetrieveSamples(
        ds_pb2.RetrieveSamplesRequest(trial_ids=[trial_id], selected_sample_fields=[F.STORED_TRIAL_SAMPLE_FIELD_ACTION]), timeout=10)]
    assert not only[0].actor_samples[0].HasField("observation") and only[0].payloads[only[0].actor_samples[0].action]
    assert only[0].payloads[samples[0].actor_samples[0].observation] == b""
    nobody = [r.trial_sample for r in stub.RetrieveSamples(ds_pb2.RetrieveSamplesRequest(trial_ids=[trial_id], actor_names=["x"]), timeout=10)]
    assert len(nobody) == len(samples) and all(len(s.actor_samples) == 0 for s in nobody)
    with pytest.raises(grpc.RpcError) as raised:
        list(stub.RetrieveSamples(ds_pb2.RetrieveSamplesRequest(trial_ids=["unknown"]), timeout=10))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_delete_and_read_only(recorded) -> None:
    datalog, stub, _ = recorded
    ids = [t.trial_id for t in datalog.store.trials()]
    stub.DeleteTrials(ds_pb2.DeleteTrialsRequest(trial_ids=ids[:1]), timeout=10)
    assert [t.trial_id for t in datalog.store.trials()] == ids[1:]
    with pytest.raises(grpc.RpcError) as raised:
        stub.AddTrial(ds_pb2.AddTrialRequest(), metadata=(("trial-id", "t"),), timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED and "read-only" in raised.value.details()
    assert "overall_load" in stub.Status(common_pb2.StatusRequest(names=["overall_load"]), timeout=10).statuses


def test_a_trial_in_flight_is_followed_and_new_trials_are_awaited(tmp_path: Path) -> None:
    with serve_datalog(tmp_path / "rec") as datalog, cogment_gym.serve("CartPole-v1") as server, OrchestratorServer() as orchestrator:
        with grpc.insecure_channel(datalog.endpoint[len("grpc://"):]) as channel:
            stub = ds_grpc.TrialDatastoreSPStub(channel)
            waiting = stub.RetrieveTrials.future(ds_pb2.RetrieveTrialsRequest(trials_count=1, timeout=20_000), timeout=30)
            env = cogment_gym.CogmentEnv(environment=server.endpoint, orchestrator=orchestrator.lifecycle_endpoint, datalog=datalog.endpoint)
            try:
                env.reset(seed=0)
                [info] = waiting.result(30).trial_infos  # answered once the trial exists, not after 20 s
                assert info.trial_id == env.trial_id
                ticks: list[int] = []
                stream = stub.RetrieveSamples(ds_pb2.RetrieveSamplesRequest(trial_ids=[info.trial_id]), timeout=60)
                reader = threading.Thread(target=lambda: ticks.extend(r.trial_sample.tick_id for r in stream))
                reader.start()
                steps, done = 0, False
                while not done:
                    _, _, terminated, truncated, _ = env.step(1)
                    steps += 1
                    done = terminated or truncated
            finally:
                env.close()
            reader.join(30)
            assert not reader.is_alive() and ticks == list(range(steps + 1))


def test_stored_sample_routes_rewards_and_messages() -> None:
    actors = [common_pb2.ActorParams(name="a", actor_class="x"), common_pb2.ActorParams(name="b", actor_class="y")]
    sample = datalog_pb2.DatalogSample()
    sample.info.tick_id = 4
    sample.observations.observations.extend([b"o0", b"o1"])
    sample.observations.actors_map.extend([1, 0])
    sample.actions.add(tick_id=4, content=b"act-a")
    sample.actions.add(tick_id=-2)
    reward = sample.rewards.add(receiver_name="x.*", tick_id=4, value=2.0)
    reward.sources.add(sender_name="b", value=1.0, confidence=1.0)
    reward.sources.add(sender_name="env", value=4.0, confidence=3.0)
    sample.rewards.add(receiver_name="*", tick_id=4).sources.add(sender_name="env", value=-1.0, confidence=1.0)
    sample.messages.add(sender_name="a", receiver_name="b").payload.value = b"hi"
    stored = stored_sample(sample, "t", actors)
    a, b = stored.actor_samples
    assert stored.payloads[a.observation] == b"o1" and stored.payloads[b.observation] == b"o0"
    assert stored.payloads[a.action] == b"act-a" and not b.HasField("action")
    assert a.reward == pytest.approx((1.0 + 12.0 - 1.0) / 5.0) and b.reward == -1.0
    assert [(r.sender, r.reward) for r in a.received_rewards] == [(1, 1.0), (-1, 4.0), (-1, -1.0)]
    assert [(r.receiver, r.reward) for r in b.sent_rewards] == [(0, 1.0)]
    assert [(m.receiver, stored.payloads[m.payload]) for m in a.sent_messages] == [(1, b"hi")]
    assert [m.sender for m in b.received_messages] == [0]
