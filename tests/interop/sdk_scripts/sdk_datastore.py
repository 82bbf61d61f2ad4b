"""Official-SDK datastore client: lists and reads recorded trials.

With ``context.get_datastore(endpoint=cogment.Endpoint(<endpoint>))``:

1. ``all_trials(bundle_size=2)`` (pages of 2) and ``get_trials(ids=[<first>])``;
2. ``all_samples(<every trial>)``: per trial, per sample, each actor's observation (parsed as
   ``cogment_gym.v1.ObservationPayload`` through cog_settings: its reward and flags), whether it
   has an action, and its aggregated reward;
3. ``all_samples`` of the first trial with ``fields=[OBSERVATION]``: whether actions are left out;
4. ``delete_trials([<last>])``, then ``all_trials()`` again.

Prints one JSON line (see ``run``) and exits 0; on failure ``{"error": ...}`` and exit 1.

Usage: sdk_datastore.py --endpoint grpc://127.0.0.1:PORT [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import cog_settings
import cogment
from cogment.datastore import DatastoreFields
from sdk_controller import run_and_report


def trial_dict(info) -> dict:
    return {
        "trial_id": info.trial_id,
        "state": info.trial_state.name,
        "user_id": info.user_id,
        "sample_count": info.sample_count,
        "actors": [actor.name for actor in info.parameters.actors],
    }


async def run(args: argparse.Namespace, result: dict) -> None:
    context = cogment.Context(cog_settings=cog_settings, user_id="cogment_gym_interop_datastore")
    datastore = context.get_datastore(endpoint=cogment.Endpoint(args.endpoint))
    infos = [info async for info in datastore.all_trials(bundle_size=2)]
    result["trials"] = [trial_dict(info) for info in infos]
    result["get_trials"] = [trial_dict(info) for info in await datastore.get_trials(ids=[infos[0].trial_id])]
    samples: dict[str, list] = {}
    async for sample in datastore.all_samples(infos):
        entry = {"tick_id": sample.tick_id, "state": sample.trial_state.name, "actors": {}}
        for name, data in sample.actors_data.items():
            observation = data.observation
            entry["actors"][name] = {
                "reward": data.reward,
                "has_action": data.action_serialized is not None,
                "observation_reward": observation.reward if observation is not None else None,
                "terminated": observation.terminated if observation is not None else None,
                "truncated": observation.truncated if observation is not None else None,
            }
        samples.setdefault(sample.trial_id, []).append(entry)
    result["samples"] = samples
    filtered = []
    async for sample in datastore.all_samples(infos[:1], fields=[DatastoreFields.OBSERVATION]):
        for data in sample.actors_data.values():
            filtered.append({"has_observation": data.observation_serialized is not None, "has_action": data.action_serialized is not None})
    result["observation_only"] = filtered
    await datastore.delete_trials([infos[-1].trial_id])
    result["after_delete"] = [info.trial_id async for info in datastore.all_trials()]


def parse_args(doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="grpc://host:port of a TrialDatastoreSP")
    parser.add_argument("--timeout", type=float, default=60.0)
    return parser.parse_args()


async def main(args: argparse.Namespace) -> int:
    return await run_and_report("sdk_datastore", run, args, {}, lambda result: f"no answer within {args.timeout}s")


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(__doc__))))
