"""Every actor stream is processed as data arrives (docs/protocol.md §2.3, §5): what an actor sends
after its action (the SDK idiom "do_action, then add_reward / send_message") keeps the tick it was
sent in and is delivered before the next observation, at the last tick too; messages are
forwarded at once, between actors and to the environment; what is sent before END is delivered.

Each scenario runs against the embedded Orchestrator (``Orchestrator`` in this loop, components
reached through in-process calls) and the standalone one (``OrchestratorServer`` over gRPC).
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Callable

import pytest

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2
from cogment_gym.orchestrator import Orchestrator
from cogment_gym.protocol import LocalCall

from .peers import (
    ActorTrial,
    ClientActor,
    Lifecycle,
    Recorder,
    ScriptedActor,
    ScriptedEnv,
    actor_message,
    actor_reward,
    client,
    message_text,
    orchestrator,
    run,
    service,
    serving,
    trial_params,
)

KINDS = ["embedded", "standalone"]


class Stack:
    """An Orchestrator with a scripted environment and service actors, embedded or standalone."""

    env_endpoint: str
    actor_endpoint: str

    async def start(self, params: common_pb2.TrialParams) -> str:
        raise NotImplementedError

    def client(self, trial_id: str, name: str, **kwargs: Any) -> ClientActor:
        raise NotImplementedError


class _Embedded(Stack):
    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch

    async def start(self, params: common_pb2.TrialParams) -> str:
        return await self.orch.start_trial(orchestrator_pb2.TrialStartRequest(params=params))

    def client(self, trial_id: str, name: str, **kwargs: Any) -> ClientActor:
        orch = self.orch
        call = LocalCall(lambda _requests, context: orch.join(context), (("trial-id", trial_id),), "orchestrator")
        return ClientActor(None, trial_id, name=name, call=call, **kwargs)  # type: ignore[arg-type]


class _Standalone(Stack):
    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.lifecycle = Lifecycle(channel)

    async def start(self, params: common_pb2.TrialParams) -> str:
        return await self.lifecycle.start(params)

    def client(self, trial_id: str, name: str, **kwargs: Any) -> ClientActor:
        return ClientActor(self.channel, trial_id, name=name, **kwargs)


@contextlib.asynccontextmanager
async def stack(kind: str, env: ScriptedEnv, actors: ScriptedActor) -> AsyncIterator[Stack]:
    built: Stack
    if kind == "embedded":
        orch = Orchestrator()
        built = _Embedded(orch)
        built.env_endpoint = orch.connector.add_local_environment("env", env.RunTrial)
        built.actor_endpoint = orch.connector.add_local_actor("actors", actors.RunTrial)
        try:
            yield built
        finally:
            await orch.close()
    else:
        async with serving(env, actors) as endpoint, orchestrator() as (_, channel):
            built = _Standalone(channel)
            built.env_endpoint = built.actor_endpoint = endpoint
            yield built


def before(record: ActorTrial, first: str, second: str) -> bool:
    """``first`` came before ``second`` in what the actor received."""
    return record.sequence.index(first) < record.sequence.index(second)


def after_action(*outputs: Callable[[int], Any]) -> Callable[[common_pb2.Observation], list[Any]]:
    return lambda obs: [make(obs.tick_id) for make in outputs]


# max_steps=3: ActionSets 0..3 (the last after LAST), final observation 4. end_after=3: the
# environment ends with observation 3 (ActionSets 0..2).
ENDINGS = {"max_steps": ({"max_steps": 3}, {}, 4), "env": ({}, {"end_after": 3}, 3)}


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("kind", KINDS)
def test_what_actors_send_after_their_action_keeps_its_tick_and_comes_before_the_next_observation(kind: str, ending: str) -> None:
    params_fields, env_fields, final = ENDINGS[ending]

    async def scenario() -> None:
        # receiver -> (its recorder, the texts it must have got before the env answers a tick)
        peers: dict[str, tuple[Recorder, Callable[[], ActorTrial | None], Callable[[int], list[str]]]] = {}

        async def after_everyone_was_forwarded(tick: int) -> None:
            # Streams are not ordered with each other over gRPC, and neither are they with the
            # Orchestrator's C++ reader threads: the environment answers once the Orchestrator
            # forwarded the message each actor sends last after its action, so everything sent
            # before it was taken too. A message not forwarded while the Orchestrator waits for
            # the environment makes this time out.
            for recorder, record, texts in peers.values():
                await recorder.until(
                    lambda: (r := record()) is not None and set(texts(tick)) <= {message_text(m) for m in r.messages},
                    f"the messages sent after the actions of tick {tick}",
                )

        env = ScriptedEnv(**env_fields, before_answer=after_everyone_was_forwarded)
        actors = ScriptedActor(after_act={"s1": after_action(lambda t: actor_reward("a1", 100.0), lambda t: actor_message("a1", f"s1@{t}"))})
        async with stack(kind, env, actors) as components:
            params = trial_params(components.env_endpoint, [client("a1"), client("a2"), service("s1", components.actor_endpoint)], **params_fields)
            trial_id = await components.start(params)
            a1 = components.client(trial_id, "a1", after_act=after_action(
                lambda t: actor_reward("a2", 10.0 + t),
                lambda t: actor_message("env", f"a1->env@{t}"),
                lambda t: actor_reward("s1", float(t), confidence=0.5),
                lambda t: actor_message("a2", f"a1@{t}"),
            ))
            a2 = components.client(trial_id, "a2", after_act=after_action(lambda t: actor_reward("a1", 20.0 + t), lambda t: actor_message("s1", f"a2@{t}")))
            peers["a1"] = (a1, lambda: a1.record, lambda t: [f"s1@{t}"])
            peers["a2"] = (a2, lambda: a2.record, lambda t: [f"a1@{t}"])
            peers["s1"] = (actors, lambda: actors.trials.get((trial_id, "s1")), lambda t: [f"a2@{t}"])
            records = {"a1": await a1.finished(), "a2": await a2.finished()}
            records["s1"] = await actors.until(lambda: (r := actors.trials.get((trial_id, "s1"))) and r.finished and r, "s1 to finish")
            env_record = await env.trial(trial_id)
            await env.until(lambda: env_record.finished, "the environment to finish")

        ticks = list(range(final))  # the ticks whose action was followed by the extras
        for name, record in records.items():
            assert record.got_end and not record.end_details, (name, record.end_details)
            assert [o.tick_id for o in record.observations] == list(range(final + 1)), name

        # Stamped with the tick they were sent in; the last one too (sent after the last action).
        a2 = records["a2"]
        assert [(r.tick_id, r.value, [s.sender_name for s in r.sources]) for r in a2.rewards] == [(t, 10.0 + t, ["a1"]) for t in ticks]
        # Delivered before the next observation (after the observation it answers).
        for t in ticks:
            assert before(a2, f"obs {t}", f"reward {t}") and before(a2, f"reward {t}", f"obs {t + 1}"), a2.sequence
        # From two senders, one Reward per tick: the confidence-weighted mean (equal confidences).
        a1 = records["a1"]
        assert [(r.tick_id, r.value) for r in a1.rewards] == [(t, (20.0 + t + 100.0) / 2) for t in ticks]
        assert all(sorted(s.sender_name for s in r.sources) == ["a2", "s1"] for r in a1.rewards)
        s1 = records["s1"]
        assert [(r.tick_id, r.value) for r in s1.rewards] == [(t, float(t)) for t in ticks]
        assert [s.confidence for r in s1.rewards for s in r.sources] == [0.5] * len(ticks)

        # Messages: forwarded at once, with the tick they were sent in, before the next observation.
        assert [(m.sender_name, message_text(m), m.tick_id) for m in a2.messages] == [("a1", f"a1@{t}", t) for t in ticks]
        assert [(m.sender_name, message_text(m), m.tick_id) for m in a1.messages] == [("s1", f"s1@{t}", t) for t in ticks]
        assert [(m.sender_name, message_text(m), m.tick_id) for m in s1.messages] == [("a2", f"a2@{t}", t) for t in ticks]
        for t in ticks:
            position = [i for i, item in enumerate(a2.sequence) if item == "message a1"][t]
            assert a2.sequence.index(f"obs {t}") < position < a2.sequence.index(f"obs {t + 1}"), a2.sequence
        # And to the environment, the last one included (sent after the final ActionSet).
        assert [(m.sender_name, message_text(m), m.tick_id) for m in env_record.messages] == [("a1", f"a1->env@{t}", t) for t in ticks]
        assert env_record.sequence[-1] == "END"

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_what_actors_send_after_the_final_observation_is_delivered_before_end(kind: str) -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        actors = ScriptedActor(before_ack={"s1": after_action(lambda t: actor_message("a2", "s1 says bye"))})
        async with stack(kind, env, actors) as components:
            params = trial_params(components.env_endpoint, [client("a1"), client("a2"), service("s1", components.actor_endpoint)], max_steps=1)
            trial_id = await components.start(params)
            a1 = components.client(trial_id, "a1", before_ack=after_action(lambda t: actor_message("a2", "a1 says bye"), lambda t: actor_reward("a2", 7.0)))
            a2 = components.client(trial_id, "a2")
            await a1.finished()
            record = await a2.finished()

        final = 2  # max_steps=1: ActionSets 0 and 1, final observation 2
        assert [o.tick_id for o in record.observations] == [0, 1, final]
        assert sorted(message_text(m) for m in record.messages) == ["a1 says bye", "s1 says bye"]
        assert all(m.tick_id == final for m in record.messages)
        # The reward sent after the final observation (its tick) comes before END.
        assert [(r.tick_id, r.value) for r in record.rewards] == [(final, 7.0)]
        assert record.sequence[-1] == "END", record.sequence
        assert before(record, f"obs {final}", f"reward {final}")
        assert record.sequence.count("message a1") == 1 and record.sequence.count("message s1") == 1
        assert before(record, f"obs {final}", "message a1") and before(record, f"obs {final}", "message s1")

    run(scenario())
