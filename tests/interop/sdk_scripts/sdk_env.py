"""Official-SDK environment "counter", served on 127.0.0.1 (OS-chosen port, printed as ``PORT n``).

Every actor (class "player") gets the same observation: an ``ObservationPayload`` whose value is
the number of steps done so far, as ``Value(scalar=Tensor(DTYPE_INT64, [], 8 LE bytes))``
(0 in the initial observation), with reward 1.0 per step (also sent as a Cogment reward to "*"),
``terminated`` once ``steps`` steps are done, and ``info = {"last_action": <the action value of
the first actor, as received>}``. When terminated, the environment ends the trial itself with
``session.end(...)``.

``steps`` comes from ``EnvConfig.options["steps"]`` (an int) when present, else ``--steps``.
When ``EnvConfig.options["truncate_on_end"]`` is true, the observations answering the
orchestrator's end of the trial (event type ENDING: max_steps, soft TerminateTrial) are marked
``truncated`` (Gymnasium's flag for an episode cut short from outside); by default they are not.

When a trial is over, a line ``TRIAL_END <json>`` goes to stdout (and to ``--summary-file``, one
JSON object per line): trial id, steps, the SDK event types seen, how it ended (and whether LAST
was exchanged, whether the RPC was cancelled).

Usage: sdk_env.py [--steps N] [--summary-file PATH]
"""

from __future__ import annotations

import argparse
import asyncio

import _sdk_common as common
import cog_settings
import cogment
from cogment_gym_v1 import env_pb2

ARGS: argparse.Namespace


def observation(count: int, reward: float, terminated: bool, last_action=None, truncated: bool = False) -> env_pb2.ObservationPayload:
    obs = env_pb2.ObservationPayload(
        value=common.int64_scalar(count), reward=reward, terminated=terminated, truncated=truncated and not terminated
    )
    if last_action is not None:
        obs.info.CopyFrom(common.dict_value({"last_action": last_action}))
    return obs


async def counter_environment(session: "cogment.environment.EnvironmentSession") -> None:
    trial_id = session.get_trial_id()
    steps = ARGS.steps
    truncate_on_end = False
    config = session.config
    if config is not None and config.HasField("options"):
        configured = common.dict_get_int(config.options, "steps")
        if configured is not None:
            steps = configured
        flag = common.dict_get(config.options, "truncate_on_end")
        if flag is not None:
            truncate_on_end = flag.WhichOneof("kind") == "bool_value" and flag.bool_value
    actors = [(a.actor_name, a.actor_class_name) for a in session.get_active_actors()]
    common.log.info("trial [%s]: counter env for %d steps, actors %s, config %s", trial_id, steps, actors, config)

    count = 0
    ended_by_env = False
    event_types: list[str] = []
    actions: list[list] = []
    saw_final = False

    session.start([("*", observation(0, 0.0, steps <= 0))])
    if steps <= 0:
        session.end([("*", observation(0, 0.0, True))])
        ended_by_env = True

    async for event in session.all_events():
        event_types.append(event.type.name)
        if event.type == cogment.EventType.FINAL:
            saw_final = True
            continue
        if not event.actions or ended_by_env:
            continue
        tick_actions = []
        for recv in event.actions:
            if recv.action is None:  # unavailable actor
                tick_actions.append(None)
            else:
                tick_actions.append(common.decode_int64_scalar(recv.action.value))
        actions.append(tick_actions)
        first = next((recv.action.value for recv in event.actions if recv.action is not None), None)

        count += 1
        terminated = count >= steps
        obs = observation(count, 1.0, terminated, first, truncated=truncate_on_end and event.type == cogment.EventType.ENDING)
        session.add_reward(value=1.0, confidence=1.0, to=["*"])
        if terminated:
            session.end([("*", obs)])
            ended_by_env = True
        else:
            # After the orchestrator's LAST (event type ENDING), this also sends LAST_ACK.
            session.produce_observations([("*", obs)])

    if saw_final:
        how = "env" if ended_by_env else "orchestrator"
    else:
        how = "hard"  # END without LAST/LAST_ACK, or the stream went away
    summary = {
        "trial_id": trial_id,
        "steps_done": count,
        "steps": steps,
        "ended_by": how,
        "event_types": event_types,
        "actions": actions,
        # LAST was exchanged (sent by this env, or received: an ENDING event).
        "last_exchanged": ended_by_env or "ENDING" in event_types,
        # The SDK's RunTrial handler was cancelled (the caller cancelled the RPC): the SDK then
        # cancels this coroutine and its all_events() swallows the CancelledError.
        "rpc_cancelled": common.task_cancelled(),
    }
    common.append_json_line(ARGS.summary_file, summary)
    common.emit("TRIAL_END", summary)


async def main() -> None:
    context = cogment.Context(cog_settings=cog_settings, user_id="cogment_gym_interop_env")
    context.register_environment(impl=counter_environment, impl_name="counter")
    await common.serve(context)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--summary-file", default=None)
    ARGS = parser.parse_args()
    asyncio.run(main())
