"""Official-SDK controller calls other than a plain start: versions, trial info, actors,
duplicate trial ids, termination.

With ``context.get_controller(endpoint=cogment.Endpoint(<lifecycle endpoint>))``:

1. ``get_remote_versions()``;
2. ``watch_trials()``, then ``start_trial(...)`` of the trial described by the trial file (same
   format as for ``sdk_controller.py``, whose ``build_params`` is used), and a wait until the
   watch shows the trial in state ``wait_state`` (trial file; default ``RUNNING``);
3. ``get_trial_info([id])``, ``get_trial_info([])`` (every trial), ``get_trial_info([<unknown
   id>])``, ``get_actors(id)``;
4. ``start_trial`` again with the same requested id (Cogment answers an empty trial id);
5. ``terminate_trial([id], hard=<terminate.hard of the trial file, default false>)``, and a wait
   for ENDED on the watch; then ``get_trial_info([id])`` again.

Prints, as its last stdout line, one JSON object with what each call returned (see ``run``) and
exits 0; on failure ``{"error": ...}`` and exit 1 (2 on ``--timeout``).

Usage: sdk_lifecycle.py --endpoint grpc://127.0.0.1:PORT --trial FILE [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import cog_settings
import cogment
from sdk_controller import ControllerFailure, build_params, load_trial_file, parse_args, run_and_report, stop_watching

UNKNOWN_TRIAL_ID = "no-such-trial-for-sdk-lifecycle"


def info_dict(info) -> dict:
    return {
        "trial_id": info.trial_id,
        "state": info.state.name,
        "env_name": info.env_name,
        "tick_id": info.tick_id,
        "duration": info.duration,
        "properties": dict(info.properties) if info.properties is not None else None,
    }


async def run(args: argparse.Namespace, result: dict) -> None:
    spec = load_trial_file(Path(args.trial))
    params = build_params(spec)
    wait_state = spec.get("wait_state", "RUNNING")
    hard = bool((spec.get("terminate") or {}).get("hard", False))

    context = cogment.Context(cog_settings=cog_settings, user_id="cogment_gym_interop_lifecycle")
    controller = context.get_controller(endpoint=cogment.Endpoint(args.endpoint))
    result["versions"] = await controller.get_remote_versions()

    seen: list[tuple[str, str]] = []
    changed = asyncio.Event()
    watch_over = False

    async def watch() -> None:
        nonlocal watch_over
        try:
            async for info in controller.watch_trials():
                seen.append((info.trial_id, info.state.name))
                changed.set()
        finally:
            watch_over = True
            changed.set()

    async def wait_for_state(trial_id: str, state: str) -> list[str]:
        while True:
            changed.clear()
            over = watch_over
            states = [s for tid, s in seen if tid == trial_id]
            if state in states:
                return states
            if "ENDED" in states:
                raise ControllerFailure(f"trial [{trial_id}] ended before reaching {state}; states {states}")
            if over:
                raise ControllerFailure(f"watch_trials ended before trial [{trial_id}] reached {state}; states {states}")
            await changed.wait()

    watch_task = asyncio.create_task(watch())
    try:
        trial_id = await controller.start_trial(trial_id_requested=spec.get("trial_id"), trial_params=params)
        if not trial_id:
            raise ControllerFailure(f"the orchestrator refused to start the trial (requested id {spec.get('trial_id')!r})")
        result["trial_id"] = trial_id
        await wait_for_state(trial_id, wait_state)

        infos = await controller.get_trial_info([trial_id])
        result["info"] = [info_dict(info) for info in infos]
        result["all_trial_ids"] = sorted(info.trial_id for info in await controller.get_trial_info([]))
        result["unknown_info"] = [info_dict(info) for info in await controller.get_trial_info([UNKNOWN_TRIAL_ID])]
        result["actors"] = [[actor.actor_name, actor.actor_class_name] for actor in await controller.get_actors(trial_id)]

        result["duplicate_start"] = await controller.start_trial(trial_id_requested=trial_id, trial_params=params)

        await controller.terminate_trial([trial_id], hard=hard)
        result["terminate_requested"] = {"hard": hard}
        result["states"] = await wait_for_state(trial_id, "ENDED")
        result["info_after_end"] = [info_dict(info) for info in await controller.get_trial_info([trial_id])]
    finally:
        await stop_watching(watch_task)


async def main(args: argparse.Namespace) -> int:
    return await run_and_report(
        "sdk_lifecycle", run, args, {}, lambda result: f"not done within {args.timeout}s (trial {result.get('trial_id')})"
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(__doc__))))
