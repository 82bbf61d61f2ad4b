"""Official-SDK service actor, class "player", served on 127.0.0.1 (OS-chosen port, ``PORT n``).

Random Discrete(2) policy (see ``_sdk_common.make_random_player``): answers each observation
received while the trial is active with an ``ActionPayload(value=Value(scalar=Tensor(DTYPE_INT64,
[], 8 LE bytes)))`` holding 0 or 1, seeded from ``ActorConfig.settings["seed"]`` when present,
else ``--seed``.

When a trial is over, its summary goes to stdout as ``TRIAL_END <json>`` and is appended to
``--summary-file`` (one JSON object per line).

Usage: sdk_service_actor.py [--summary-file PATH] [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio

import _sdk_common as common
import cog_settings
import cogment


async def main(args: argparse.Namespace) -> None:
    def on_trial_end(summary: dict) -> None:
        common.append_json_line(args.summary_file, summary)
        common.emit("TRIAL_END", summary)

    context = cogment.Context(cog_settings=cog_settings, user_id="cogment_gym_interop_actor")
    context.register_actor(
        impl=common.make_random_player(args.seed, on_trial_end), impl_name="random", actor_classes=["player"]
    )
    await common.serve(context)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary-file", default=None)
    parser.add_argument("--seed", type=int, default=None)
    asyncio.run(main(parser.parse_args()))
