"""Limits and availability over gRPC: max_steps, max_inactivity, initial_connection_timeout,
response_timeout, optional actors and default actions, crashing actors."""

from __future__ import annotations

import time

import grpc
import pytest

import cogment_gym
from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym.envs import CogmentEnv
from cogment_gym.errors import PeerLostError, PeerTimeoutError
from cogment_gym.orchestrator.server import OrchestratorServer
from cogment_gym.protocol import Failure

from .peers import (
    ClientActor,
    Lifecycle,
    ScriptedActor,
    ScriptedEnv,
    action_content,
    client,
    orchestrator,
    run,
    service,
    serving,
    trial_params,
)


def test_max_steps_tick_semantics() -> None:
    """max_steps M: ActionSets 0..M, LAST before ActionSet M, final observation M+1 (Cogment's
    semantics, docs/protocol.md §4.3)."""

    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, orchestrator() as (_, channel):
            trial_id = await Lifecycle(channel).start(trial_params(env_endpoint, [client("p1")], max_steps=3))
            player = ClientActor(channel, trial_id, name="p1")
            record = await player.finished()
            assert record.sequence == ["obs 0", "obs 1", "obs 2", "obs 3", "LAST", "obs 4", "END"]
            assert record.end_details == "" and player.code == grpc.StatusCode.OK
            env_record = await env.trial(trial_id)
            await env.until(lambda: env_record.finished, "the environment to finish")
            assert [a.tick_id for a in env_record.action_sets] == [0, 1, 2, 3]
            assert env_record.last_before == 3
            assert env_record.got_end and env_record.end_details == ""

    run(scenario())


def test_max_steps_truncates_a_gym_episode() -> None:
    with cogment_gym.serve("CartPole-v1") as env_server, OrchestratorServer() as orch:
        env = CogmentEnv(orchestrator=orch.lifecycle_endpoint, environment=env_server.endpoint, max_steps=4)
        try:
            env.reset(seed=0)
            results = [env.step(i % 2) for i in range(5)]  # max_steps 4: 5 steps, the last after LAST
            assert [r[3] for r in results] == [False, False, False, False, True]
            assert not any(r[2] for r in results)
        finally:
            env.close()


def test_max_inactivity_reclaims_a_trial_whose_actor_never_acts() -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, orchestrator() as (_, channel):
            lifecycle = Lifecycle(channel)
            trial_id = await lifecycle.start(trial_params(env_endpoint, [client("p1")], max_inactivity=1))
            player = ClientActor(channel, trial_id, name="p1", behaviour="never")
            await player.until(lambda: player.record.observations, "the first observation")
            started = time.monotonic()
            record = await player.finished()
            elapsed = time.monotonic() - started
            assert 0.5 < elapsed < 1 + 1.5, elapsed  # max_inactivity + sweep interval + margin
            assert record.got_end and "inactive for too long" in (record.end_details or "")
            assert player.code == grpc.StatusCode.OK
            assert "inactive for too long" in ((await env.trial(trial_id)).end_details or "")
            assert await lifecycle.state(trial_id) == common_pb2.ENDED

    run(scenario())


def test_max_inactivity_reclaims_a_trial_nobody_joins() -> None:
    async def scenario() -> None:
        async with orchestrator() as (_, channel):
            lifecycle = Lifecycle(channel)
            trial_id = await lifecycle.start(trial_params("grpc://127.0.0.1:1", [client("p1")], max_inactivity=1))
            await lifecycle.wait_state(trial_id, common_pb2.ENDED, timeout=3.0)

    run(scenario())


def test_required_service_actor_response_timeout_ends_the_trial() -> None:
    async def scenario() -> None:
        env, actors = ScriptedEnv(), ScriptedActor({"slow": "late@2"})
        async with serving(env) as env_endpoint, serving(actors) as actor_endpoint, orchestrator() as (_, channel):
            params = trial_params(env_endpoint, [client("p1"), service("slow", actor_endpoint, response_timeout=0.3)])
            trial_id = await Lifecycle(channel).start(params)
            player = ClientActor(channel, trial_id, name="p1")
            record = await player.finished()
            assert [o.tick_id for o in record.observations] == [0, 1, 2]
            assert record.got_end and not record.got_last
            failure = Failure.from_details(record.end_details or "")
            assert failure.kind == "timeout"
            assert "required actors ['slow'] unavailable at tick 2" in failure.message
            assert "response_timeout of 0.3 s" in failure.message
            assert isinstance(failure.to_exception(), PeerTimeoutError)
            assert player.code == grpc.StatusCode.OK
            slow = actors.trials[(trial_id, "slow")]
            await actors.until(lambda: slow.finished, "the slow actor to finish")
            assert slow.got_end and "unavailable at tick 2" in (slow.end_details or "")
            env_record = await env.trial(trial_id)
            assert [a.tick_id for a in env_record.action_sets] == [0, 1]

    run(scenario())


def test_optional_actor_with_default_action_on_response_timeout() -> None:
    async def scenario() -> None:
        env, actors = ScriptedEnv(), ScriptedActor({"slow": "late@1"})
        async with serving(env) as env_endpoint, serving(actors) as actor_endpoint, orchestrator() as (_, channel):
            slow = service("slow", actor_endpoint, response_timeout=0.3, optional=True, default_action=common_pb2.SerializedMessage(content=b"default"))
            trial_id = await Lifecycle(channel).start(trial_params(env_endpoint, [client("p1"), slow], max_steps=3))
            await ClientActor(channel, trial_id, name="p1").finished()
            env_record = await env.trial(trial_id)
            await env.until(lambda: env_record.finished, "the environment to finish")
            sets = env_record.action_sets
            assert [a.tick_id for a in sets] == [0, 1, 2, 3]
            assert list(sets[0].actions) == [action_content(0, "p1"), action_content(0, "slow")]
            for action_set in sets[1:]:  # answers arrive a tick late: dropped, default used
                assert list(action_set.actions) == [action_content(action_set.tick_id, "p1"), b"default"]
                assert list(action_set.unavailable_actors) == []
            assert env_record.end_details == ""

    run(scenario())


def test_lagging_optional_actor_does_not_hold_up_the_end() -> None:
    """An actor whose response_timeout expired is waited for (LAST_ACK, end of its call) for at
    most one response_timeout more, not Cogment's 30 s + our 10 s close."""

    async def scenario() -> None:
        env, actors = ScriptedEnv(), ScriptedActor({"mute": "mute"})
        async with serving(env) as env_endpoint, serving(actors) as actor_endpoint, orchestrator() as (_, channel):
            mute = service("mute", actor_endpoint, response_timeout=0.2, optional=True, default_action=common_pb2.SerializedMessage(content=b"default"))
            trial_id = await Lifecycle(channel).start(trial_params(env_endpoint, [client("p1"), mute], max_steps=2))
            started = time.monotonic()
            record = await ClientActor(channel, trial_id, name="p1").finished()
            env_record = await env.trial(trial_id)
            await env.until(lambda: env_record.finished, "the environment to finish")
            elapsed = time.monotonic() - started
            assert record.got_end and env_record.end_details == ""
            assert [list(a.actions)[1] for a in env_record.action_sets] == [b"default"] * 3
            assert elapsed < 5.0, f"the trial took {elapsed:.1f} s to end"

    run(scenario())


def test_optional_actor_without_default_action_is_unavailable() -> None:
    async def scenario() -> None:
        env, actors = ScriptedEnv(), ScriptedActor({"idle": "never", "gone": "crash@1"})
        async with serving(env) as env_endpoint, serving(actors) as actor_endpoint, orchestrator() as (_, channel):
            params = trial_params(
                env_endpoint,
                [
                    service("idle", actor_endpoint, response_timeout=0.1, optional=True),
                    client("p1"),
                    service("gone", actor_endpoint, optional=True),
                ],
                max_steps=2,
            )
            trial_id = await Lifecycle(channel).start(params)
            await ClientActor(channel, trial_id, name="p1").finished()
            env_record = await env.trial(trial_id)
            await env.until(lambda: env_record.finished, "the environment to finish")
            sets = env_record.action_sets
            assert list(sets[0].unavailable_actors) == [0]
            assert list(sets[0].actions) == [b"", action_content(0, "p1"), action_content(0, "gone")]
            for action_set in sets[1:]:  # "gone" crashed at tick 1: disengaged for good
                assert list(action_set.unavailable_actors) == [0, 2]
                assert list(action_set.actions) == [b"", action_content(action_set.tick_id, "p1"), b""]
            assert env_record.end_details == ""

    run(scenario())


def test_required_service_actor_that_crashes_ends_the_trial() -> None:
    async def scenario() -> None:
        env, actors = ScriptedEnv(), ScriptedActor({"fragile": "crash@1"})
        async with serving(env) as env_endpoint, serving(actors) as actor_endpoint, orchestrator() as (_, channel):
            trial_id = await Lifecycle(channel).start(trial_params(env_endpoint, [client("p1"), service("fragile", actor_endpoint)]))
            record = await ClientActor(channel, trial_id, name="p1").finished()
            failure = Failure.from_details(record.end_details or "")
            assert failure.kind == "peer_lost" and "required actor 'fragile' is gone" in failure.message
            assert "scripted actor fragile crashed" in failure.message  # the actor's RPC error travels
            assert isinstance(failure.to_exception(), PeerLostError)

    run(scenario())


@pytest.mark.parametrize("optional", [False, True])
def test_initial_connection_timeout(optional: bool) -> None:
    async def scenario() -> None:
        env, actors = ScriptedEnv(), ScriptedActor({"mute": "noinit"})
        async with serving(env) as env_endpoint, serving(actors) as actor_endpoint, orchestrator() as (_, channel):
            params = trial_params(
                env_endpoint,
                [client("p1"), service("mute", actor_endpoint, initial_connection_timeout=0.3, optional=optional)],
                max_steps=1,
            )
            trial_id = await Lifecycle(channel).start(params)
            record = await ClientActor(channel, trial_id, name="p1").finished()
            if optional:
                assert [o.tick_id for o in record.observations] == [0, 1, 2] and record.end_details == ""
                env_record = await env.trial(trial_id)
                assert all(list(s.unavailable_actors) == [1] for s in env_record.action_sets)
            else:
                assert not record.observations
                failure = Failure.from_details(record.end_details or "")
                assert "failed to initialize required actor 'mute'" in failure.message
                assert "did not answer its init within 0.3 s" in failure.message
                assert trial_id not in env.trials  # the environment is contacted once actors are in
            mute = actors.trials[(trial_id, "mute")]
            await actors.until(lambda: mute.finished, "the mute actor's stream to end")
            assert mute.got_end and "did not answer its init within 0.3 s" in (mute.end_details or "")

    run(scenario())


def test_client_actor_that_never_joins() -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, orchestrator() as (_, channel):
            lifecycle = Lifecycle(channel)
            params = trial_params(env_endpoint, [client("p1"), client("late", initial_connection_timeout=0.2, optional=True)], max_steps=1)
            trial_id = await lifecycle.start(params)
            record = await ClientActor(channel, trial_id, name="p1").finished()
            assert [o.tick_id for o in record.observations] == [0, 1, 2]
            late = ClientActor(channel, trial_id, name="late")
            await late.finished()
            assert late.code == grpc.StatusCode.UNKNOWN
            assert late.details is not None and late.details.startswith("ClientActorSP::RunTrial failure: [")
            required = await lifecycle.start(trial_params(env_endpoint, [client("p1", initial_connection_timeout=0.2)]))
            await lifecycle.wait_state(required, common_pb2.ENDED)

    run(scenario())
