#!/usr/bin/env python3
"""Does a hanging env slow down the other trials of its server? (issue 9, point 1)

    python benchmarks/hang.py                        # 3 rounds of 3 s, ~1 minute on 2 cores
    python benchmarks/hang.py --hung 8 --seconds 5 --rounds 5

One env service process serves two implementations, ``cartpole`` (CartPole-v1) and ``hanging``
(``cogment_gym.testing.HangingEnv``, whose ``env.step`` blocks forever once asked to). A
bystander ``CogmentEnv`` plays CartPole trials against it and counts steps per second:

  alone      nothing else on the server
  beside     ``--hung`` other trials of the same server are stuck inside ``env.step`` (no
             ``step_timeout``: they never come back) while the bystander plays

Each measurement runs a fresh service process (a hung env call cannot be undone, so "alone" never
follows "beside" on one server), the hung trials' client in a process of its own and the
bystander in another, the same in both cases, in interleaved rounds;
the table gives medians and the ratio beside / alone (1.0 is full speed). At the end the service
gets SIGTERM with its calls still hung: the seconds it took to exit are printed too (``stop()``
abandons hung calls after its grace period). The exit code is 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Child, machine_facts  # noqa: E402

STOP_GRACE = 1.0  # seconds the service's stop() gives hung calls before abandoning them


def serve_main() -> int:
    """``--serve``: serve both implementations until SIGTERM, then stop within STOP_GRACE."""
    import cogment_gym
    from cogment_gym.testing import HangingEnv

    server = cogment_gym.serve({"cartpole": "CartPole-v1", "hanging": HangingEnv})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(server.endpoint, flush=True)
    stop.wait()
    server.stop(STOP_GRACE)
    return 0


def hanger_main(endpoint: str, hung: int) -> None:
    """``--hanger``: start ``hung`` trials and leave each stuck in ``env.step``; prints ``ready``
    and waits for SIGTERM (its facades' threads never return, so it exits at once then)."""
    from cogment_gym import CogmentEnv

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    for _ in range(hung):
        stuck = CogmentEnv(environment=endpoint, implementation="hanging", timeout=3600.0)
        stuck.reset(seed=0, options={"hang": "step"})
        started = threading.Event()

        def hang(env: Any = stuck, started: threading.Event = started) -> None:
            started.set()
            env.step(0)

        threading.Thread(target=hang, daemon=True).start()
        started.wait()
    print("ready", flush=True)
    threading.Event().wait()


def client_main(endpoint: str, seconds: float) -> None:
    """``--client``: time the bystander; prints one JSON line."""
    from cogment_gym import CogmentEnv

    env = CogmentEnv(environment=endpoint, implementation="cartpole")
    env.reset(seed=0)
    # The hung steps are in flight once their first action reached the service; a second of
    # bystander warm-up covers that.
    t, warm = 0, time.perf_counter() + min(1.0, seconds / 2)

    def step() -> None:
        nonlocal t
        _, _, terminated, truncated, _ = env.step(t % 2)
        t += 1
        if terminated or truncated:
            env.reset()

    while time.perf_counter() < warm:
        step()
    steps, started_at = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        now = time.perf_counter()
        if now >= started_at + seconds:
            break
    env.close()
    print(json.dumps({"steps": steps, "seconds": now - started_at}), flush=True)


def measure(hung: int, seconds: float) -> tuple[float, float]:
    """(bystander steps/s, seconds the service took to exit on SIGTERM) for one fresh pair."""
    script = str(Path(__file__).resolve())
    service = Child([sys.executable, script, "--serve"])
    hanger = None
    try:
        # The hung trials' client is a process of its own: the bystander's process is the same
        # in both cases, so what differs is the service only.
        if hung:
            hanger = Child([sys.executable, script, "--hanger", service.line, str(hung)])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        out = subprocess.run(
            [sys.executable, script, "--client", service.line, str(seconds)],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120 + seconds,
        )
        if out.returncode != 0 or not out.stdout.strip():
            raise RuntimeError(f"client exited {out.returncode}: {out.stderr[-2000:]}")
        figures = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        started = time.monotonic()
        service.stop()  # its calls still hung: stop() abandons them after its grace
        exit_seconds = time.monotonic() - started
        if hanger is not None:
            hanger.stop()
    return figures["steps"] / figures["seconds"], exit_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hung", type=int, default=4, help="trials stuck in env.step beside the bystander (default 4)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", nargs=2, metavar=("ENDPOINT", "SECONDS"), help=argparse.SUPPRESS)
    parser.add_argument("--hanger", nargs=2, metavar=("ENDPOINT", "HUNG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve_main()
    if args.client:
        client_main(args.client[0], float(args.client[1]))
        return 0
    if args.hanger:
        hanger_main(args.hanger[0], int(args.hanger[1]))
        return 0
    for line in machine_facts():
        print(line)
    rates: dict[str, list[float]] = {"alone": [], "beside": []}
    exits: list[float] = []
    for r in range(args.rounds):
        for case, hung in (("alone", 0), ("beside", args.hung)):
            rate, exit_seconds = measure(hung, args.seconds)
            rates[case].append(rate)
            if hung:
                exits.append(exit_seconds)
            print(f"round {r + 1}: {case:6s} {rate:8.0f} steps/s", flush=True)
    alone, beside = statistics.median(rates["alone"]), statistics.median(rates["beside"])
    print()
    print("| bystander CogmentEnv(CartPole) on the env service | steps/s (median) |")
    print("|---|---|")
    print(f"| alone on its server | {alone:.0f} |")
    print(f"| beside {args.hung} trials hung in env.step | {beside:.0f} |")
    print(f"ratio beside / alone: {beside / alone:.2f} (1.0: full speed)")
    print(f"service exit on SIGTERM with {args.hung} calls hung: {max(exits):.2f} s at most (stop grace {STOP_GRACE:g} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
