"""Official-SDK controller: starts one trial on an orchestrator and waits for it to end.

Uses ``context.get_controller(endpoint=cogment.Endpoint(<lifecycle endpoint>))``, then
``watch_trials()`` (started before the trial, so no state change is missed), ``start_trial(...)``
with ``cogment.TrialParameters``, one ``get_trial_info`` (in case the trial ended before the
watch stream was registered), and waits for the trial's ENDED state.

The trial file (JSON, or YAML when it ends in .yaml / .yml) holds:

    trial_id: my-trial                 # optional: requested trial id
    params:                            # cogmentAPI.TrialParams, protobuf JSON form
      environment: {endpoint: "grpc://127.0.0.1:1234", implementation: counter, name: env}
      actors:
        - {name: p, actor_class: player, endpoint: "cogment://client"}
      max_steps: 100
    environment_config: {seed: "3"}    # optional cogment_gym.v1.EnvConfig (JSON form), set as
                                       # params.environment.config
    actor_configs: {p: {settings: {}}} # optional actor name -> cogment_gym.v1.ActorConfig
    default_actions: {p: {value: {}}}  # optional actor name -> cogment_gym.v1.ActionPayload
    terminate: {hard: false}           # optional: TerminateTrial once the trial is RUNNING
    watch_end: true                    # optional: wait for ENDED from watch_trials itself, even
                                       # when get_trial_info already showed it ENDED

Prints, as its last stdout line, one JSON object: ``{"trial_id", "states": [states of that trial
in the order they happened], "ended": true, "watch_states": [those from watch_trials],
"info_after_start": [the state get_trial_info gave right after the start], "versions": {Version
reply}, "elapsed_s"}`` and exits 0 ("ended_unseen": true when get_trial_info no longer knew the
trial right after its start). On failure it prints ``{"error": ...}`` (and the message on stderr)
and exits 1, or 2 on timeout.

``states`` are those of watch_trials, the one ordered record of the changes; get_trial_info's
answer is a separate call, and its reply may arrive before watch entries of earlier changes (the
watch stream and the call are not ordered with each other): it counts only when the watch never
reported the trial (it ended and was forgotten before the watch began).

Usage: sdk_controller.py --endpoint grpc://127.0.0.1:PORT --trial FILE [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable

import _sdk_common as common
import cog_settings
import cogment
import cogment.api.common_pb2 as common_api
from cogment_gym_v1 import env_pb2
from google.protobuf import json_format


class ControllerFailure(Exception):
    pass


def load_trial_file(path: Path) -> dict:
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)


def build_params(spec: dict) -> cogment.TrialParameters:
    raw = common_api.TrialParams()
    json_format.ParseDict(spec.get("params", {}), raw)
    if spec.get("environment_config") is not None:
        config = json_format.ParseDict(spec["environment_config"], env_pb2.EnvConfig())
        raw.environment.config.content = config.SerializeToString()
    by_name = {actor.name: actor for actor in raw.actors}
    for field, message_type, target in (
        ("actor_configs", env_pb2.ActorConfig, "config"),
        ("default_actions", env_pb2.ActionPayload, "default_action"),
    ):
        for name, value in (spec.get(field) or {}).items():
            if name not in by_name:
                raise ControllerFailure(f"{field}: no actor named {name!r} in params.actors")
            message = json_format.ParseDict(value, message_type())
            getattr(by_name[name], target).content = message.SerializeToString()
    return cogment.TrialParameters(cog_settings, raw_params=raw)


async def run(args: argparse.Namespace, result: dict) -> None:
    spec = load_trial_file(Path(args.trial))
    params = build_params(spec)
    terminate = spec.get("terminate")

    context = cogment.Context(cog_settings=cog_settings, user_id="cogment_gym_interop_controller")
    controller = context.get_controller(endpoint=cogment.Endpoint(args.endpoint))

    try:
        result["versions"] = await controller.get_remote_versions()
    except Exception as exc:  # noqa: BLE001 - recorded, not fatal
        result["versions_error"] = f"{type(exc).__name__}: {exc}"

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

    watch_task = asyncio.create_task(watch())
    try:
        trial_id = await controller.start_trial(trial_id_requested=spec.get("trial_id"), trial_params=params)
        if not trial_id:
            raise ControllerFailure(f"the orchestrator refused to start the trial (requested id {spec.get('trial_id')!r})")
        result["trial_id"] = trial_id
        states: list[str] = result.setdefault("states", [])

        try:
            infos = await controller.get_trial_info([trial_id])
            result["info_after_start"] = [info.state.name for info in infos if info.trial_id == trial_id]
        except Exception as exc:  # noqa: BLE001 - recorded; the watch decides
            result["info_after_start_error"] = f"{type(exc).__name__}: {exc}"
        after_start = result.get("info_after_start")
        if after_start == []:
            # Unknown right after it started: it has already ended and been forgotten.
            result["ended_unseen"] = True

        terminated = False
        consumed = 0
        watch_states: list[str] = result.setdefault("watch_states", [])
        watch_end = bool(spec.get("watch_end", False))

        def scan() -> None:
            nonlocal consumed
            for seen_id, state in seen[consumed:]:
                if seen_id == trial_id:
                    watch_states.append(state)
            consumed = len(seen)
            # Not "info state, then watch states": the info reply is not ordered with the watch.
            states[:] = watch_states if watch_states else ["ENDED"] if result.get("ended_unseen") else []

        while True:
            changed.clear()
            over = watch_over
            scan()
            if "ENDED" in (watch_states if watch_end else states):
                break
            if over:
                raise ControllerFailure(f"watch_trials stream ended before trial [{trial_id}] ended; states {states}")
            if terminate is not None and not terminated and "RUNNING" in states:
                hard = bool(terminate.get("hard", False))
                await controller.terminate_trial([trial_id], hard=hard)
                terminated = True
                result["terminate_requested"] = {"hard": hard}
                continue
            await changed.wait()
        result["ended"] = True
    finally:
        await stop_watching(watch_task)


async def stop_watching(watch_task: asyncio.Task) -> None:
    """Cancel a watch_trials task and wait for it (whatever it ended with)."""
    watch_task.cancel()
    try:
        await watch_task
    except (asyncio.CancelledError, Exception):  # noqa: BLE001
        pass


async def run_and_report(
    script: str, run: Callable[[argparse.Namespace, dict], Awaitable[None]], args: argparse.Namespace, result: dict,
    timed_out: Callable[[dict], str],
) -> int:
    """Run ``run(args, result)`` within ``args.timeout``; print ``result`` as one JSON line (with
    ``error`` and ``elapsed_s``); exit code 0, 1 (failure) or 2 (timeout)."""
    started = time.monotonic()
    code = 0
    try:
        await asyncio.wait_for(run(args, result), timeout=args.timeout)
    except asyncio.TimeoutError:
        result["error"] = timed_out(result)
        code = 2
    except ControllerFailure as exc:
        result["error"] = str(exc)
        code = 1
    except Exception as exc:  # noqa: BLE001 - reported, with a non-zero exit
        common.log.exception("%s failed", script)
        result["error"] = f"{type(exc).__name__}: {exc}"
        code = 1
    result["elapsed_s"] = round(time.monotonic() - started, 3)
    if code:
        print(f"{script}: {result['error']}", file=sys.stderr)
    print(json.dumps(result, sort_keys=True), flush=True)
    return code


def parse_args(doc: str | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="grpc://host:port of the orchestrator's TrialLifecycleSP")
    parser.add_argument("--trial", required=True, help="trial file (JSON or YAML)")
    parser.add_argument("--timeout", type=float, default=60.0)
    return parser.parse_args()


async def main(args: argparse.Namespace) -> int:
    return await run_and_report(
        "sdk_controller", run, args, {"ended": False},
        lambda result: f"trial {result.get('trial_id')} did not end within {args.timeout}s",
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args(__doc__))))
