"""Failures end trials cleanly: END with details to every peer, links closed, client-actor RPCs
return, and the Orchestrator keeps serving."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import grpc
import gymnasium as gym
import pytest

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym.envs import CogmentEnv
from cogment_gym.errors import EnvironmentFailedError
from cogment_gym.protocol import Failure

from .peers import (
    ClientActor,
    Lifecycle,
    ScriptedActor,
    ScriptedEnv,
    actor_message,
    client,
    message_text,
    orchestrator,
    run,
    service,
    serving,
    trial_params,
)


def test_client_actor_disconnecting_ends_the_trial() -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, orchestrator() as (_, channel):
            lifecycle = Lifecycle(channel)
            trial_id = await lifecycle.start(trial_params(env_endpoint, [client("p1"), client("p2")]))
            p1 = ClientActor(channel, trial_id, name="p1")
            p2 = ClientActor(channel, trial_id, name="p2", behaviour="never")
            await p2.until(lambda: p2.record.observations, "p2's first observation")
            p2.cancel()
            record = await p1.finished()
            failure = Failure.from_details(record.end_details or "")
            assert failure.kind == "peer_lost" and "required actor 'p2' is gone" in failure.message
            assert p1.code == grpc.StatusCode.OK
            env_record = await env.trial(trial_id)
            await env.until(lambda: env_record.finished, "the environment stream to end")
            assert "required actor 'p2' is gone" in (env_record.end_details or "")
            await lifecycle.wait_state(trial_id, common_pb2.ENDED)

    run(scenario())


def test_environment_crash_reaches_the_actors() -> None:
    async def scenario() -> None:
        env, actors = ScriptedEnv(crash_at=1), ScriptedActor()
        async with serving(env) as env_endpoint, serving(actors) as actor_endpoint, orchestrator() as (_, channel):
            trial_id = await Lifecycle(channel).start(trial_params(env_endpoint, [client("p1"), service("s1", actor_endpoint)]))
            player = ClientActor(channel, trial_id, name="p1")
            record = await player.finished()
            assert [o.tick_id for o in record.observations] == [0, 1]
            failure = Failure.from_details(record.end_details or "")
            assert failure.kind == "peer_lost" and "scripted environment crash at tick 1" in failure.message
            assert player.code == grpc.StatusCode.OK
            s1 = actors.trials[(trial_id, "s1")]
            await actors.until(lambda: s1.finished, "the service actor to finish")
            assert s1.got_end and "scripted environment crash" in (s1.end_details or "")

    run(scenario())


def test_environment_that_stops_answering_times_out() -> None:
    async def scenario() -> None:
        env = ScriptedEnv(hang_at=2)
        async with serving(env) as env_endpoint, orchestrator(env_timeout=0.3) as (_, channel):
            trial_id = await Lifecycle(channel).start(trial_params(env_endpoint, [client("p1")]))
            record = await ClientActor(channel, trial_id, name="p1").finished()
            failure = Failure.from_details(record.end_details or "")
            assert failure.kind == "timeout" and "no answer within 0.3 s" in failure.message
            assert "observations from environment" in failure.message
            env_record = await env.trial(trial_id)
            await env.until(lambda: env_record.finished, "the environment's call to be cancelled")

    run(scenario())


def test_unreachable_required_service_actor() -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, orchestrator() as (_, channel):
            lifecycle = Lifecycle(channel)
            params = trial_params(env_endpoint, [client("p1"), service("ghost", "grpc://127.0.0.1:1")])
            trial_id = await lifecycle.start(params)
            player = ClientActor(channel, trial_id, name="p1")
            record = await player.finished()
            if record.init is not None:  # joined before the trial failed: told by END
                failure = Failure.from_details(record.end_details or "")
                assert failure.kind == "unreachable"
                reason = failure.message
            else:  # the trial failed first: the join is refused with the reason
                assert player.code == grpc.StatusCode.UNKNOWN
                reason = player.details or ""
            assert "failed to initialize required actor 'ghost'" in reason and "unreachable" in reason
            assert trial_id not in env.trials
            await lifecycle.wait_state(trial_id, common_pb2.ENDED)
            # The orchestrator keeps serving.
            assert await lifecycle.start(trial_params(env_endpoint, [client("p1")])) != ""

    run(scenario())


def test_join_after_the_end_is_refused() -> None:
    async def scenario() -> None:
        async with orchestrator() as (_, channel):
            lifecycle = Lifecycle(channel)
            trial_id = await lifecycle.start(trial_params("grpc://127.0.0.1:1", [client("p1")]))
            await lifecycle.terminate(trial_id, hard=True)
            await lifecycle.wait_state(trial_id, common_pb2.ENDED)
            late = ClientActor(channel, trial_id, name="p1")
            await late.finished()
            assert late.code == grpc.StatusCode.UNKNOWN and "has ended: " in (late.details or "")
            assert "externally requested" in (late.details or "")
            unknown = ClientActor(channel, "no-such-trial", name="p1")
            await unknown.finished()
            assert unknown.code == grpc.StatusCode.UNKNOWN and "unknown trial" in (unknown.details or "")

    run(scenario())


class _Flaky(gym.Env):  # type: ignore[type-arg]
    """Breaks at its second step."""

    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)

    def __init__(self) -> None:
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.steps = 0
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        self.steps += 1
        if self.steps == 2:
            raise ValueError("flaky env broke")
        return 1, 0.0, False, False, {}


def test_embedded_env_failure_is_raised_with_the_remote_error() -> None:
    env = CogmentEnv(_Flaky)
    try:
        env.reset()
        env.step(0)
        with pytest.raises(EnvironmentFailedError, match="flaky env broke"):
            env.step(0)
        env.reset()  # a new trial works
        env.step(1)
    finally:
        env.close()


def test_concurrent_trials_with_cross_talk() -> None:
    """Many trials at once, every actor messaging everyone every tick (concurrent writes to one
    stream are serialised), each trial ends cleanly and nothing leaks between trials."""

    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, orchestrator() as (_, channel):
            lifecycle = Lifecycle(channel)
            names = ("a", "b", "c")
            params = trial_params(env_endpoint, [client(n) for n in names], max_steps=5)
            ids = [await lifecycle.start(params) for _ in range(8)]

            def chatter(name: str) -> Callable[[common_pb2.Observation], list[common_pb2.ActorRunTrialOutput]]:
                return lambda obs: [actor_message("*", f"{name}@{obs.tick_id}")]

            players = [ClientActor(channel, t, name=n, before_act=chatter(n)) for t in ids for n in names]
            for player in players:
                record = await player.finished()
                assert record.end_details == "" and player.code == grpc.StatusCode.OK
                assert [o.tick_id for o in record.observations] == list(range(7))
                texts = sorted(message_text(m) for m in record.messages)
                assert texts == sorted(f"{n}@{t}" for n in names for t in range(6))
                assert all(m.receiver_name == player.name for m in record.messages)

    run(scenario())


def test_end_reaches_a_component_that_reads_it_late() -> None:
    """After END the Orchestrator half-closes and lets the component end its call (bounded), so a
    busy component still reads END; client actors are released meanwhile."""

    async def scenario() -> None:
        gate = asyncio.Event()
        env, actors = ScriptedEnv(), ScriptedActor(gates={"busy": gate})
        async with serving(env) as env_endpoint, serving(actors) as actor_endpoint, orchestrator() as (_, channel):
            lifecycle = Lifecycle(channel)
            trial_id = await lifecycle.start(trial_params(env_endpoint, [client("p1"), service("busy", actor_endpoint)], max_steps=1))
            player = ClientActor(channel, trial_id, name="p1")
            record = await player.finished()  # not held back by the busy actor
            assert record.sequence[-2:] == ["obs 2", "END"] and player.code == grpc.StatusCode.OK
            busy = await actors.until(lambda: actors.trials.get((trial_id, "busy")), "the busy actor")
            assert not busy.got_end and await lifecycle.state(trial_id) == common_pb2.TERMINATING
            gate.set()
            await actors.until(lambda: busy.finished, "the busy actor to finish")
            assert busy.got_end and busy.end_details == "" and busy.sequence[-2:] == ["LAST_ACK", "END"]
            await lifecycle.wait_state(trial_id, common_pb2.ENDED)

    run(scenario())
