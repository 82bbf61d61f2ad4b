"""Datalog over gRPC (DatalogSP.RunTrialDatalog): params first, one sample per tick, buffering,
out-of-sync rewards, exclude_fields, and a failing datalog that must not hurt the trial."""

from __future__ import annotations

import logging

import pytest

from cogment_gym._proto.cogment.api import common_pb2, environment_pb2

from .peers import (
    ClientActor,
    Datalog,
    Lifecycle,
    ScriptedActor,
    ScriptedEnv,
    action_content,
    client,
    env_message,
    env_reward,
    obs_content,
    orchestrator,
    run,
    service,
    serving,
    trial_params,
)

RUNNING, TERMINATING, ENDED = common_pb2.RUNNING, common_pb2.TERMINATING, common_pb2.ENDED


def _extra(tick: int, action_set: environment_pb2.ActionSet | None) -> list[environment_pb2.EnvRunTrialOutput]:
    if tick == 0:
        return [env_reward("*", 2.0), env_message("p2", "psst")]
    if tick == 2:
        return [env_reward("p1", 1.0, tick=1), env_reward("p1", 1.0, tick=0)]  # past ticks
    return []


def test_samples_per_tick() -> None:
    async def scenario() -> None:
        env, datalog = ScriptedEnv(extra=_extra), Datalog()
        async with serving(env) as env_endpoint, serving(datalog) as datalog_endpoint, orchestrator() as (_, channel):
            params = trial_params(env_endpoint, [client("p1"), client("p2")], max_steps=2)
            params.datalog.endpoint = datalog_endpoint
            params.datalog.exclude_fields.append("nonsense")  # unknown: a warning, ignored
            trial_id = await Lifecycle(channel).start(params, user_id="bob")
            for name in ("p1", "p2"):
                ClientActor(channel, trial_id, name=name)
            stream = await datalog.stream(trial_id)
            await datalog.until(lambda: stream.closed, "the datalog stream to close")

            assert stream.metadata["trial-id"] == [trial_id] and stream.metadata["user-id"] == ["bob"]
            first = stream.messages[0]
            assert first.HasField("trial_params")
            assert first.trial_params.environment.name == "env"  # defaulted, as Cogment sends it
            assert first.trial_params.datalog.endpoint == datalog_endpoint
            assert len(stream.messages) == 1 + len(stream.samples)
            # Past-tick rewards: with 2 buffered ticks only the current sample is in memory, so
            # they travel alone, as out-of-sync samples.
            lone = [s for s in stream.samples if s.info.out_of_sync]
            assert [[(r.tick_id, r.receiver_name) for r in s.rewards] for s in lone] == [[(1, "p1")], [(0, "p1")]]
            assert all(s.info.special_events == ["Out of sync reward"] for s in lone)
            samples = [s for s in stream.samples if not s.info.out_of_sync]
            assert [s.info.tick_id for s in samples] == [0, 1, 2, 3]  # max_steps 2: final tick 3
            assert [s.info.state for s in samples] == [RUNNING, RUNNING, TERMINATING, ENDED]
            timestamps = [s.info.timestamp for s in samples]
            assert timestamps == sorted(timestamps) and timestamps[0] > 0
            for sample in samples:
                tick = sample.info.tick_id
                assert list(sample.observations.observations) == [obs_content(tick, "p1"), obs_content(tick, "p2")]
                if tick < 3:
                    assert [(a.tick_id, a.content) for a in sample.actions] == [(tick, action_content(tick, n)) for n in ("p1", "p2")]
                else:  # the final tick has no actions: placeholders
                    assert [(a.tick_id, a.content) for a in sample.actions] == [(-2, b""), (-2, b"")]
                assert not sample.default_actors and not sample.unavailable_actors
            assert [(r.receiver_name, r.value) for r in samples[0].rewards] == [("*", 2.0)]  # as sent
            assert [(m.sender_name, m.receiver_name) for m in samples[0].messages] == [("env", "p2")]
            assert not samples[1].rewards and not samples[2].rewards
            assert "Maximum number of steps reached" in samples[2].info.special_events

    run(scenario())


def test_buffered_ticks_out_of_sync_and_exclude_fields() -> None:
    async def scenario() -> None:
        env, datalog = ScriptedEnv(extra=_extra), Datalog()
        async with serving(env) as env_endpoint, serving(datalog) as datalog_endpoint, orchestrator() as (_, channel):
            params = trial_params(env_endpoint, [client("p1"), client("p2")], max_steps=3, nb_buffered_ticks=3)
            params.datalog.endpoint = datalog_endpoint
            params.datalog.exclude_fields.extend(["Observations", "MESSAGES"])
            trial_id = await Lifecycle(channel).start(params)
            for name in ("p1", "p2"):
                ClientActor(channel, trial_id, name=name)
            stream = await datalog.stream(trial_id)
            await datalog.until(lambda: stream.closed, "the datalog stream to close")
            samples = stream.samples
            regular = [s for s in samples if not s.info.out_of_sync]
            (lone,) = [s for s in samples if s.info.out_of_sync]
            assert [s.info.tick_id for s in regular] == [0, 1, 2, 3, 4]
            assert all(not s.HasField("observations") and not s.messages for s in samples)
            assert [s.info.state for s in regular] == [RUNNING, RUNNING, TERMINATING, ENDED, ENDED]  # 3 buffered: flushed late
            # At tick 2, sample 1 was still in memory; sample 0 was not: an out-of-sync sample.
            assert [(r.tick_id, r.value) for r in regular[1].rewards] == [(1, 1.0)]
            assert lone.info.special_events == ["Out of sync reward"] and [r.tick_id for r in lone.rewards] == [0]

    run(scenario())


def test_hard_end_is_logged() -> None:
    async def scenario() -> None:
        env, datalog = ScriptedEnv(), Datalog()
        async with serving(env) as env_endpoint, serving(datalog) as datalog_endpoint, orchestrator() as (_, channel):
            params = trial_params(env_endpoint, [client("p1")])
            params.datalog.endpoint = datalog_endpoint
            lifecycle = Lifecycle(channel)
            trial_id = await lifecycle.start(params)
            player = ClientActor(channel, trial_id, name="p1", behaviour="never")
            await player.until(lambda: player.record.observations, "the first observation")
            await lifecycle.terminate(trial_id, hard=False)  # cannot take effect: no action comes
            await lifecycle.terminate(trial_id, hard=True)
            stream = await datalog.stream(trial_id)
            await datalog.until(lambda: stream.closed, "the datalog stream to close")
            (sample,) = stream.samples
            assert sample.info.state == ENDED
            events = list(sample.info.special_events)
            assert events[0] == "End requested"
            assert events[1].startswith("Forced termination: ") and "externally requested" in events[1]

    run(scenario())


@pytest.mark.parametrize("kind", ["aborting", "unreachable"])
def test_failing_datalog_does_not_hurt_the_trial(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        env, datalog = ScriptedEnv(), Datalog(fail="disk full")
        async with serving(env) as env_endpoint, serving(datalog) as datalog_endpoint, orchestrator() as (_, channel):
            params = trial_params(env_endpoint, [client("p1")], max_steps=3)
            params.datalog.endpoint = datalog_endpoint if kind == "aborting" else "grpc://127.0.0.1:1"
            trial_id = await Lifecycle(channel).start(params)
            record = await ClientActor(channel, trial_id, name="p1").finished()
            assert record.sequence == ["obs 0", "obs 1", "obs 2", "obs 3", "LAST", "obs 4", "END"]
            assert record.end_details == ""
            if kind == "aborting":
                stream = await datalog.stream(trial_id)
                await datalog.until(lambda: stream.closed, "the datalog stream to close")
                assert stream.messages[0].HasField("trial_params")

    with caplog.at_level(logging.WARNING, logger="cogment_gym.orchestrator.datalog"):
        run(scenario())
    assert any("the trial goes on without its datalog" in r.getMessage() for r in caplog.records)


def test_default_and_unavailable_actors_are_logged() -> None:
    async def scenario() -> None:
        env, datalog, actors = ScriptedEnv(), Datalog(), ScriptedActor({"lazy": "never", "idle": "never"})
        async with serving(env, datalog, actors) as endpoint, orchestrator() as (_, channel):
            lazy = service("lazy", endpoint, response_timeout=0.1, optional=True, default_action=common_pb2.SerializedMessage(content=b"noop"))
            idle = service("idle", endpoint, response_timeout=0.1, optional=True)
            params = trial_params(endpoint, [client("p1"), lazy, idle], max_steps=1)
            params.datalog.endpoint = endpoint
            trial_id = await Lifecycle(channel).start(params)
            await ClientActor(channel, trial_id, name="p1").finished()
            stream = await datalog.stream(trial_id)
            await datalog.until(lambda: stream.closed, "the datalog stream to close")
            samples = stream.samples
            assert [s.info.tick_id for s in samples] == [0, 1, 2]
            for sample in samples[:2]:
                assert list(sample.default_actors) == [1] and list(sample.unavailable_actors) == [2]
                assert [a.tick_id for a in sample.actions] == [sample.info.tick_id, -2, -2]
            assert not samples[2].default_actors and not samples[2].unavailable_actors

    run(scenario())
