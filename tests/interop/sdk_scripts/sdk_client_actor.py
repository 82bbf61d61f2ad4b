"""Official-SDK client actor: joins a running trial through an orchestrator's ClientActorSP.

Uses ``context.join_trial(trial_id, cogment.Endpoint(<endpoint>), actor_name=... | actor_class=...)``
with the random Discrete(2) "player" of ``_sdk_common.make_random_player`` (seeded from
``ActorConfig.settings["seed"]`` when present, else ``--seed``).

Prints, as its last stdout line, one JSON object: ``{"joined": true, ...summary...}`` (see
``make_random_player``), and exits 0 once the trial is over for it. Exits 1 with ``{"joined":
false, "error": ...}`` when it could not join (the SDK's join_trial returned without running the
actor, or raised), 2 on ``--timeout``.

Usage: sdk_client_actor.py --endpoint grpc://127.0.0.1:PORT --trial-id ID
                           (--actor-name NAME | --actor-class CLASS) [--seed N] [--timeout S]
                           [--root-cert PEM [--private-key PEM --cert-chain PEM]]

With ``--root-cert``, the endpoint is an SSL one (``cogment.Endpoint(url, use_ssl=True)`` and
``set_from_files``), with a client key and certificate when given (mTLS).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import _sdk_common as common
import cog_settings
import cogment


async def main(args: argparse.Namespace) -> int:
    summaries: list[dict] = []
    context = cogment.Context(cog_settings=cog_settings, user_id="cogment_gym_interop_client")
    context.register_actor(
        impl=common.make_random_player(args.seed, summaries.append), impl_name="random", actor_classes=["player"]
    )
    started = time.monotonic()
    try:
        await asyncio.wait_for(
            context.join_trial(
                trial_id=args.trial_id,
                endpoint=common.endpoint(args),
                actor_name=args.actor_name,
                actor_class=args.actor_class,
            ),
            timeout=args.timeout,
        )
    except asyncio.TimeoutError:
        message = f"trial [{args.trial_id}] not over for the client actor within {args.timeout}s"
        print(message, file=sys.stderr)
        print(json.dumps({"joined": bool(summaries), "error": message, "timeout": True}), flush=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - reported, with a non-zero exit
        common.log.exception("join_trial failed")
        message = f"join_trial failed: {type(exc).__name__}: {exc}"
        print(message, file=sys.stderr)
        print(json.dumps({"joined": bool(summaries), "error": message}), flush=True)
        return 1
    if not summaries:
        message = f"could not join trial [{args.trial_id}] (join_trial returned without running the actor)"
        print(message, file=sys.stderr)
        print(json.dumps({"joined": False, "error": message}), flush=True)
        return 1
    result = {"joined": True, "elapsed_s": round(time.monotonic() - started, 3), **summaries[-1]}
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="grpc://host:port of the orchestrator's ClientActorSP")
    parser.add_argument("--trial-id", required=True)
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--actor-name")
    who.add_argument("--actor-class")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=60.0)
    common.add_tls_arguments(parser)
    sys.exit(asyncio.run(main(parser.parse_args())))
