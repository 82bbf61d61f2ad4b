"""Rewards and messages over gRPC: receiver patterns, confidence-weighted aggregation, delivery
before the next observation, messages to the environment (docs/protocol.md §5)."""

from __future__ import annotations

import pytest

from cogment_gym._proto.cogment.api import environment_pb2

from .peers import (
    ClientActor,
    Lifecycle,
    ScriptedEnv,
    actor_message,
    actor_reward,
    client,
    env_message,
    env_reward,
    message_text,
    orchestrator,
    run,
    serving,
    trial_params,
)


def _env_extra(tick: int, action_set: environment_pb2.ActionSet | None) -> list[environment_pb2.EnvRunTrialOutput]:
    if tick != 0:
        return []
    return [
        env_reward("*", 1.0),
        env_reward("blue.*", 3.0),
        env_reward("blue.b1", 10.0, confidence=2.0),
        env_reward("a1", 5.0, confidence=0.0),  # listed, but no weight in the value
        env_reward("red.b1", 100.0),  # b1 is not red: nobody
        env_reward("*.*", 100.0),  # not a Cogment pattern: nobody
        env_reward("b2", 100.0, tick=7),  # a future tick: dropped
        env_message("*", "hello all"),
    ]


def test_rewards_and_messages_reach_named_and_wildcard_receivers() -> None:
    async def scenario() -> None:
        env = ScriptedEnv(extra=_env_extra)
        async with serving(env) as env_endpoint, orchestrator() as (_, channel):
            params = trial_params(env_endpoint, [client("a1", "red"), client("b1", "blue"), client("b2", "blue")], max_steps=2)
            trial_id = await Lifecycle(channel).start(params)

            def a1_extra(obs: object) -> list[object]:
                if getattr(obs, "tick_id") != 1:
                    return []
                return [actor_reward("b1", 7.0), actor_message("b1", "to b1"), actor_message("env", "to env"), actor_message("blue.*", "to blues")]

            a1 = ClientActor(channel, trial_id, name="a1", before_act=a1_extra)  # type: ignore[arg-type]
            b1 = ClientActor(channel, trial_id, name="b1")
            b2 = ClientActor(channel, trial_id, actor_class="blue")  # joins by class: the free blue slot
            records = {"a1": await a1.finished(), "b1": await b1.finished(), "b2": await b2.finished()}
            assert records["b2"].init is not None and records["b2"].init.actor_name == "b2"

            # Rewards of tick 0 arrive before observation 1, one aggregated Reward per tick.
            values = {name: [(r.tick_id, r.value, len(r.sources)) for r in rec.rewards] for name, rec in records.items()}
            assert values["a1"] == [(0, 1.0, 2)]
            assert values["b1"] == [(0, pytest.approx((1 + 3 + 10 * 2) / 4), 3), (1, 7.0, 1)]
            assert values["b2"] == [(0, 2.0, 2)]
            for name, rec in records.items():
                assert all(r.receiver_name == name for r in rec.rewards)
                assert rec.sequence[:4] == ["obs 0", "message env", "reward 0", "obs 1"], rec.sequence
            b1_tick1 = records["b1"].rewards[1]
            assert [s.sender_name for s in b1_tick1.sources] == ["a1"]  # rewritten to the real sender
            assert {s.sender_name for s in records["b1"].rewards[0].sources} == {"env"}
            assert records["b1"].sequence.index("reward 1") < records["b1"].sequence.index("obs 2")

            # Messages: forwarded at once, tick/sender/receiver rewritten, one copy per recipient.
            def texts(name: str) -> list[tuple[str, str, int]]:
                return [(m.sender_name, message_text(m), m.tick_id) for m in records[name].messages if m.receiver_name == name]

            assert texts("a1") == [("env", "hello all", 0)]
            assert texts("b1") == [("env", "hello all", 0), ("a1", "to b1", 1), ("a1", "to blues", 1)]
            assert texts("b2") == [("env", "hello all", 0), ("a1", "to blues", 1)]
            for name in ("b1", "b2"):
                seq = records[name].sequence
                assert seq.index("obs 1") < seq.index("message a1") < seq.index("obs 2")
            env_record = await env.trial(trial_id)
            assert [(m.sender_name, m.receiver_name, message_text(m), m.tick_id) for m in env_record.messages] == [("a1", "env", "to env", 1)]
            assert env_record.sequence.index("message a1") == env_record.sequence.index("actions 1") - 1  # before the ActionSet

    run(scenario())
