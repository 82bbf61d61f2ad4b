"""Official-SDK controller against a secured orchestrator: TLS endpoint, token in the Context's metadata.

``cogment.Context(..., metadata=GrpcMetadata())`` with ``authentication-token: <token>`` (when
``--token``), ``context.get_controller(endpoint)`` on an SSL endpoint (``--root-cert``, and a
client certificate with ``--private-key`` / ``--cert-chain``). Then, each step recorded rather
than fatal: ``get_remote_versions()``, ``start_trial(trial_params)`` (the params of ``--trial``,
a JSON ``cogmentAPI.TrialParams``), ``get_trial_info`` until the trial is ENDED (polled: the
SDK's ``watch_trials`` sends no metadata), one ``watch_trials()`` item, ``terminate_trial`` of an
unknown id.

Prints one JSON object: ``{"versions" | "versions_error", "trial_id" | "start_error", "states",
"watch" | "watch_error", "terminate" | "terminate_error", "elapsed_s"}``; errors are
``"<grpc status name>: <details>"``. Exit code 0 unless the script itself fails (2 on timeout).

Usage: sdk_secure_controller.py --endpoint grpc://127.0.0.1:PORT --trial FILE [--token T]
                                [--root-cert PEM [--private-key PEM --cert-chain PEM]] [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import _sdk_common as common
import cog_settings
import cogment
import cogment.api.common_pb2 as common_api
import grpc
from google.protobuf import json_format

# The trial is polled this often (the SDK's watch_trials cannot carry the token).
POLL_INTERVAL = 0.05


def _error(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


async def run(args: argparse.Namespace, result: dict) -> None:
    metadata = cogment.GrpcMetadata()
    if args.token:
        metadata.add("authentication-token", args.token)
    context = cogment.Context(cog_settings=cog_settings, user_id="cogment_gym_secure_controller", metadata=metadata)
    controller = context.get_controller(endpoint=common.endpoint(args))
    try:
        result["versions"] = await controller.get_remote_versions()
    except Exception as exc:  # noqa: BLE001 - recorded
        result["versions_error"] = _error(exc)
    raw = json_format.ParseDict(json.loads(Path(args.trial).read_text()), common_api.TrialParams())
    try:
        trial_id = await controller.start_trial(trial_params=cogment.TrialParameters(cog_settings, raw_params=raw))
    except Exception as exc:  # noqa: BLE001 - recorded
        result["start_error"] = _error(exc)
        trial_id = None
    if trial_id:
        result["trial_id"] = trial_id
        states: list[str] = result.setdefault("states", [])
        while "ENDED" not in states:
            infos = await controller.get_trial_info([trial_id])
            for info in infos:
                if not states or states[-1] != info.state.name:
                    states.append(info.state.name)
            if "ENDED" not in states:
                await asyncio.sleep(POLL_INTERVAL)
    try:
        async for info in controller.watch_trials():
            result["watch"] = info.state.name
            break
    except Exception as exc:  # noqa: BLE001 - recorded
        result["watch_error"] = _error(exc)
    try:
        await controller.terminate_trial(["no-such-trial"], hard=True)
        result["terminate"] = "ok"
    except Exception as exc:  # noqa: BLE001 - recorded
        result["terminate_error"] = _error(exc)


async def main(args: argparse.Namespace) -> int:
    result: dict = {}
    started = time.monotonic()
    code = 0
    try:
        await asyncio.wait_for(run(args, result), timeout=args.timeout)
    except asyncio.TimeoutError:
        result["error"] = f"not done within {args.timeout}s"
        code = 2
    result["elapsed_s"] = round(time.monotonic() - started, 3)
    print(json.dumps(result, sort_keys=True), flush=True)
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="grpc://host:port of the orchestrator's TrialLifecycleSP")
    parser.add_argument("--trial", required=True, help="JSON file of a cogmentAPI.TrialParams")
    parser.add_argument("--token", default="", help="sent as 'authentication-token' metadata")
    parser.add_argument("--timeout", type=float, default=60.0)
    common.add_tls_arguments(parser)
    sys.exit(asyncio.run(main(parser.parse_args())))
