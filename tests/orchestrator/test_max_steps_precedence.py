"""A trial's max_steps: the StartTrial params' when they set one, else the default params'
(a params file's), else none; params from a config-only StartTrial are the file's."""

from __future__ import annotations

import grpc
import pytest

from cogment_gym._proto.cogment.api import common_pb2

from .peers import ClientActor, Lifecycle, ScriptedEnv, client, orchestrator, run, serving, trial_params


def _observation_ticks(record: object) -> list[int]:
    return [int(entry.split()[1]) for entry in record.sequence if entry.startswith("obs ")]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "default_steps, requested_steps, expected_last_tick",
    [
        (2, 0, 3),     # the request asks for no limit: the default params' max_steps 2
        (2, 4, 5),     # the request's own wins, above the default
        (5, 1, 2),     # ... and below it
    ],
    ids=["file", "request-above", "request-below"],
)
def test_full_params_take_the_default_max_steps_only_when_they_set_none(default_steps: int, requested_steps: int, expected_last_tick: int) -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        defaults = common_pb2.TrialParams(max_steps=default_steps, properties={"from": "file"})
        async with serving(env) as env_endpoint, orchestrator(default_params=defaults) as (server, channel):
            lifecycle = Lifecycle(channel)
            trial_id = await lifecycle.start(trial_params(env_endpoint, [client("p1")], max_steps=requested_steps))
            player = ClientActor(channel, trial_id, name="p1")
            record = await player.finished()
            assert player.code == grpc.StatusCode.OK
            # max_steps M: the final observation is tick M+1.
            assert _observation_ticks(record) == list(range(expected_last_tick + 1))
            (info,) = await lifecycle.info(trial_id)
            assert dict(info.properties) == {}  # only max_steps comes from the defaults

    run(scenario())


def test_without_default_params_a_request_without_max_steps_has_no_limit() -> None:
    async def scenario() -> None:
        env = ScriptedEnv()
        async with serving(env) as env_endpoint, orchestrator() as (server, channel):
            trial_id = await Lifecycle(channel).start(trial_params(env_endpoint, [client("p1")]))
            assert server.orchestrator.trials[trial_id].params.max_steps == 0
            await Lifecycle(channel).terminate(trial_id, hard=True)

    run(scenario())
