"""TrialLifecycleSP over gRPC: StartTrial (params, default params, hooks, ids), TerminateTrial,
GetTrialInfo, WatchTrials, Version, Status."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym.orchestrator.server import OrchestratorServer

from .peers import WAIT, ClientActor, Hook, Lifecycle, ScriptedEnv, client, connect, obs_content, orchestrator, run, serving, trial_params

ENDED, RUNNING, PENDING = common_pb2.ENDED, common_pb2.RUNNING, common_pb2.PENDING


def test_start_with_config_uses_default_params_and_hooks_in_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        first = Hook(modify=lambda p: p.properties.__setitem__("first", "1"))
        second = Hook(modify=lambda p: p.properties.__setitem__("second", p.properties["first"] + "2"))
        async with serving(env) as env_endpoint, serving(first) as hook_endpoint, serving(second) as hook2_endpoint:
            params_file = tmp_path / "params.yaml"
            params_file.write_text(
                "trial_params:\n"
                "  properties: {origin: file}\n"
                f"  environment: {{endpoint: '{env_endpoint}'}}\n"
                "  actors:\n"
                "    - {name: p1, actor_class: player, endpoint: 'cogment://client'}\n"
                "  max_steps: 2\n"
            )
            async with orchestrator(default_params=str(params_file), pre_trial_hooks=[hook_endpoint, hook2_endpoint]) as (_, channel):
                lifecycle = Lifecycle(channel)
                trial_id = await lifecycle.start(config=b"my trial config", trial_id="t-hooks", user_id="alice")
                assert trial_id == "t-hooks"
                # Both hooks, in order, with trial-id and user-id; the second sees the first's output.
                assert [c[0]["trial-id"] for c in first.calls + second.calls] == [["t-hooks"], ["t-hooks"]]
                assert [c[0]["user-id"] for c in first.calls + second.calls] == [["alice"], ["alice"]]
                assert first.calls[0][1].trial_config.content == b"my trial config"
                assert first.calls[0][1].max_inactivity == 30  # file default
                assert dict(second.calls[0][1].properties) == {"origin": "file", "first": "1"}
                player = ClientActor(channel, trial_id, name="p1")
                record = await player.finished()
                assert [o.tick_id for o in record.observations] == [0, 1, 2, 3]  # max_steps 2
                assert player.code == grpc.StatusCode.OK
                (info,) = await lifecycle.info(trial_id)
                assert dict(info.properties) == {"origin": "file", "first": "1", "second": "12"}
                # A requested id already used: empty id, no error.
                assert await lifecycle.start(config=b"x", trial_id="t-hooks") == ""

    run(scenario())


def test_hook_failure_fails_start_trial() -> None:
    async def scenario() -> None:
        failing = Hook(fail="no room for this trial")
        async with serving(failing) as hook_endpoint:
            async with orchestrator(default_params=common_pb2.TrialParams(), pre_trial_hooks=[hook_endpoint]) as (_, channel):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await Lifecycle(channel).start(config=b"", trial_id="t-refused")
                assert caught.value.code() == grpc.StatusCode.UNKNOWN
                details = caught.value.details()
                assert details.startswith("TrialLifecycleSP::StartTrial failure: [")
                assert "pre-trial hook" in details and hook_endpoint in details
                assert "FAILED_PRECONDITION: no room for this trial" in details
                assert await Lifecycle(channel).info("t-refused") == []

    run(scenario())


def test_start_trial_errors(orch: OrchestratorServer) -> None:
    async def scenario() -> None:
        async with connect(orch) as channel:
            stub = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel)
            cases = {
                "no actors": orchestrator_pb2.TrialStartRequest(params=trial_params("grpc://127.0.0.1:1", [])),
                "must be unique": orchestrator_pb2.TrialStartRequest(params=trial_params("grpc://127.0.0.1:1", [client("p"), client("p")])),
                "unknown endpoint": orchestrator_pb2.TrialStartRequest(params=trial_params("tcp://nowhere", [client("p")])),
                "named like the environment": orchestrator_pb2.TrialStartRequest(params=trial_params("grpc://127.0.0.1:1", [client("env")])),
            }
            for expected, request in cases.items():
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.StartTrial(request, timeout=WAIT)
                assert caught.value.code() == grpc.StatusCode.UNKNOWN
                assert expected in caught.value.details(), (expected, caught.value.details())

    run(scenario())


def test_terminate_hard_several_ids_and_soft(orch: OrchestratorServer) -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, connect(orch) as channel:
            lifecycle = Lifecycle(channel)
            params = trial_params(env_endpoint, [client("p1")])
            ids = [await lifecycle.start(params) for _ in range(3)]
            players = [ClientActor(channel, t, name="p1", behaviour="never") for t in ids]
            for player in players:
                await player.until(player.record.observations.__len__, "a first observation")
            # Hard: two trials at once (two trial-id metadata entries).
            await lifecycle.terminate(ids[0], ids[1], hard=True)
            for player in players[:2]:
                record = await player.finished()
                assert record.got_end and not record.got_last
                assert "externally requested" in (record.end_details or "")
                assert player.code == grpc.StatusCode.OK
            for trial_id in ids[:2]:
                env_record = await env.trial(trial_id)
                await env.until(lambda: env_record.got_end, "END to the environment")
                assert "externally requested" in (env_record.end_details or "")
                assert await lifecycle.state(trial_id) == ENDED
            assert await lifecycle.state(ids[2]) == RUNNING
            # Soft: takes effect once the current tick's actions are in.
            await lifecycle.terminate(ids[2], hard=False)
            assert await lifecycle.state(ids[2]) == RUNNING
            await players[2].call.write(
                common_pb2.ActorRunTrialOutput(state=common_pb2.NORMAL, action=common_pb2.Action(tick_id=0, content=b"a"))
            )
            record = await players[2].finished()
            assert record.sequence == ["obs 0", "LAST", "obs 1", "END"]
            assert record.end_details == ""
            env_record = await env.trial(ids[2])
            await env.until(lambda: env_record.finished, "the environment to finish")
            assert env_record.last_before == 0 and env_record.got_end and env_record.end_details == ""
            # Unknown ids are ignored; no id at all is an error.
            await lifecycle.terminate("no-such-trial", hard=True)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await lifecycle.terminate(hard=True)
            assert "trial-id" in caught.value.details()

    run(scenario())


def test_get_trial_info(orch: OrchestratorServer) -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, connect(orch) as channel:
            lifecycle = Lifecycle(channel)
            params = trial_params(env_endpoint, [client("p1", "red"), client("p2", "blue")], properties={"k": "v"})
            first = await lifecycle.start(params, trial_id="info-1")
            second = await lifecycle.start(params, trial_id="info-2")
            (pending,) = await lifecycle.info(first, observation=True, actors=True)
            assert pending.state == PENDING and not pending.HasField("latest_observation")
            assert [(a.name, a.actor_class) for a in pending.actors_in_trial] == [("p1", "red"), ("p2", "blue")]
            players = [ClientActor(channel, first, name=n) for n in ("p1", "p2")]
            await players[0].until(lambda: len(players[0].record.observations) >= 3, "three observations")
            await lifecycle.terminate(first, hard=False)  # keeps the trial's tick stable once over
            (info,) = await lifecycle.info(first, observation=True, actors=True)
            assert info.trial_id == first and info.env_name == "env" and dict(info.properties) == {"k": "v"}
            assert info.state in (RUNNING, common_pb2.TERMINATING)
            if info.HasField("latest_observation"):
                latest = info.latest_observation
                assert latest.tick_id == info.tick_id
                assert list(latest.observations) == [obs_content(info.tick_id, "p1"), obs_content(info.tick_id, "p2")]
            assert info.trial_duration > 0
            # Without ids: every trial; unknown ids skipped; without flags: no observation/actors.
            assert {i.trial_id for i in await lifecycle.info()} >= {first, second}
            (only,) = await lifecycle.info("unknown", second)
            assert only.trial_id == second and not only.actors_in_trial and not only.HasField("latest_observation")
            for player in players:
                await player.finished()
            (ended,) = await lifecycle.info(first, observation=True)
            assert ended.state == ENDED and not ended.HasField("latest_observation")
            await lifecycle.terminate(second, hard=True)

    run(scenario())


def test_get_trial_info_latest_observation(orch: OrchestratorServer) -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, connect(orch) as channel:
            lifecycle = Lifecycle(channel)
            trial_id = await lifecycle.start(trial_params(env_endpoint, [client("p1")]))
            player = ClientActor(channel, trial_id, name="p1", behaviour="never")  # stays at tick 0
            await player.until(lambda: player.record.observations, "the first observation")
            (info,) = await lifecycle.info(trial_id, observation=True, actors=True)
            assert info.state == RUNNING and info.tick_id == 0
            assert list(info.latest_observation.observations) == [obs_content(0, "p1")]
            assert list(info.latest_observation.actors_map) == [0]
            assert [a.name for a in info.actors_in_trial] == ["p1"]
            await lifecycle.terminate(trial_id, hard=True)
            await player.finished()

    run(scenario())


def test_watch_trials(orch: OrchestratorServer) -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, connect(orch) as channel:
            lifecycle = Lifecycle(channel)
            stub = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel)
            params = trial_params(env_endpoint, [client("p1")], max_steps=1, properties={"w": "1"})
            existing = await lifecycle.start(params, trial_id="watch-existing")
            everything = stub.WatchTrials(orchestrator_pb2.TrialListRequest())
            only_ended = stub.WatchTrials(orchestrator_pb2.TrialListRequest(filter=[ENDED], full_info=True))
            first = await asyncio.wait_for(everything.read(), WAIT)  # the initial dump
            assert (first.trial_id, first.state) == (existing, PENDING)
            trial_id = await lifecycle.start(params, trial_id="watch-new")
            await (ClientActor(channel, trial_id, name="p1")).finished()
            seen = []
            while (entry := await asyncio.wait_for(everything.read(), WAIT)).trial_id != trial_id or entry.state != ENDED:
                if entry.trial_id == trial_id:
                    seen.append(entry.state)
            seen.append(entry.state)
            assert seen == [common_pb2.INITIALIZING, PENDING, RUNNING, common_pb2.TERMINATING, ENDED]
            ended = await asyncio.wait_for(only_ended.read(), WAIT)
            assert ended.trial_id == "" and ended.info.trial_id == trial_id and ended.info.state == ENDED
            assert dict(ended.info.properties) == {"w": "1"}
            everything.cancel()
            only_ended.cancel()
            await lifecycle.terminate(existing, hard=True)

    run(scenario())


def test_version_and_status(orch: OrchestratorServer) -> None:
    async def scenario() -> None:
        async with connect(orch) as channel:
            for stub in (orchestrator_pb2_grpc.TrialLifecycleSPStub(channel), orchestrator_pb2_grpc.ClientActorSPStub(channel)):
                versions = {v.name: v.version for v in (await stub.Version(common_pb2.VersionRequest(), timeout=WAIT)).versions}
                assert versions["cogment"] == "2.22.0"
                assert dict((await stub.Status(common_pb2.StatusRequest(), timeout=WAIT)).statuses) == {}
                statuses = (await stub.Status(common_pb2.StatusRequest(names=["*"]), timeout=WAIT)).statuses
                assert set(statuses) == {"overall_load"} and float(statuses["overall_load"]) >= 0

    run(scenario())


def test_separate_actor_port() -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, orchestrator(lifecycle_port=0, actor_port=0) as (server, channel):
            assert server.actor_endpoint != server.lifecycle_endpoint
            trial_id = await Lifecycle(channel).start(trial_params(env_endpoint, [client("p1")], max_steps=1))
            with pytest.raises(grpc.aio.AioRpcError) as caught:  # not served on the lifecycle port
                await orchestrator_pb2_grpc.ClientActorSPStub(channel).Version(common_pb2.VersionRequest(), timeout=WAIT)
            assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
            async with grpc.aio.insecure_channel(server.actor_endpoint[len("grpc://"):]) as actor_channel:
                record = await ClientActor(actor_channel, trial_id, name="p1").finished()
            assert [o.tick_id for o in record.observations] == [0, 1, 2]

    run(scenario())
