"""Official-SDK service actor playing one seat of a PettingZoo game served by cogment_gym
(class "player", implementation "first_legal"), following cogment_gym's multi-agent wire
contract (protos/cogment_gym/v1/env.proto): it moves only when its payload says
AGENT_STATUS_ACTING and its agent is not done, taking the first legal action of the dict
observation's ``action_mask``; otherwise it sends an empty ActionPayload (off-turn, dead step).

Each finished trial is reported as ``TRIAL_END <json>``: the statuses seen, the moves made, the
agent's final cumulative reward and flags, the SDK event types.

Served on 127.0.0.1 (OS-chosen port, ``PORT n``).
"""

from __future__ import annotations

import asyncio

import _sdk_common as common
import cog_settings
import cogment
from cogment_gym_v1 import env_pb2


def first_legal(payload: env_pb2.ObservationPayload) -> int:
    mask = common.dict_get(payload.value, "action_mask")
    if mask is None:
        raise ValueError("the observation has no action_mask")
    return common.decode_tensor(mask.array).index(1)


async def player(session) -> None:
    summary = {
        "trial_id": session.get_trial_id(), "actor_name": session.name, "actor_class": session.actor_class,
        "statuses": [], "moves": [], "agents_seen": [], "final": None, "event_types": [], "has_spaces": False,
    }
    config = session.config
    summary["has_spaces"] = config is not None and config.HasField("action_space")
    session.start()
    async for event in session.all_events():
        summary["event_types"].append(event.type.name)
        if event.observation is None:
            continue
        payload = event.observation.observation
        summary["statuses"].append(env_pb2.AgentStatus.Name(payload.status))
        if payload.agent:
            summary["agents_seen"].append(payload.agent)
            summary["final"] = [payload.cumulative_reward, payload.terminated, payload.truncated]
        if event.type != cogment.EventType.ACTIVE:
            continue
        if payload.status == env_pb2.AGENT_STATUS_ACTING and not (payload.terminated or payload.truncated):
            move = first_legal(payload)
            summary["moves"].append(move)
            session.do_action(env_pb2.ActionPayload(value=common.int64_scalar(move)))
        else:
            session.do_action(env_pb2.ActionPayload())  # no action: off-turn, or the dead step's None
    common.emit("TRIAL_END", summary)


async def main() -> None:
    context = cogment.Context(cog_settings=cog_settings, user_id="cogment_gym_interop_pettingzoo")
    context.register_actor(impl=player, impl_name="first_legal", actor_classes=["player"])
    await common.serve(context)


if __name__ == "__main__":
    asyncio.run(main())
