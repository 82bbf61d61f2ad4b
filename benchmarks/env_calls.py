#!/usr/bin/env python3
"""What it costs to run a served env's calls off the event loop, and which hand-over is cheapest.

    python benchmarks/env_calls.py                   # every case, ~1.5 minutes on 2 cores
    python benchmarks/env_calls.py --seconds 3 --rounds 5

An env service runs each env instance's reset/step on a thread of its own (``EnvThread``,
cogment_gym/adapters/env_thread.py), so that a hanging env cannot stall the other trials of the
server. Three ways to run an env call, compared in one run:

  inline     on the event loop itself (``serve(env_threads=False)``; what the service did before)
  executor   ``loop.run_in_executor`` on a one-thread ``ThreadPoolExecutor`` per env instance
  thread     an ``EnvThread`` per env instance: a ``queue.SimpleQueue`` to it, and
             ``loop.call_soon_threadsafe`` back (the default)

Cases: the hand-over alone (a CartPole ``env.step`` called N times from a coroutine); an embedded
``CogmentEnv("CartPole-v1")`` (env, Orchestrator and client in one process: every hand-over is on
the one step's critical path); ``CogmentEnv`` against an env service in another process; and
``CogmentVectorEnv(32)`` as one batched trial of 32 sub-envs on such a service (one hand-over per
tick for the 32). Every case runs in a fresh subprocess, in ``--rounds`` interleaved rounds
(inline, executor, thread, inline, ...); the table gives medians and the cost per step against
inline. The exit code is 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, Child, cpu_seconds, machine_facts, process_tree  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from cogment_gym.adapters import hosting  # noqa: E402
from cogment_gym.adapters.env_thread import EnvThread, InlineCalls, env_thread_name  # noqa: E402

T = TypeVar("T")
MODES = ("inline", "executor", "thread")
CASES = {
    "handoff": "hand-over alone (CartPole env.step from a coroutine)",
    "embedded": "CogmentEnv('CartPole-v1') embedded, 1 trial",
    "served": "CogmentEnv, env service in another process, 1 trial",
    "batched": "CogmentVectorEnv(32), 1 batched trial of 32, env service process",
}


class ExecutorCalls(InlineCalls):
    """The executor option: ``run_in_executor`` on a one-thread pool per env instance (so its
    calls stay on one thread, in order). Deadlines are not modelled: they cost the same timer in
    every option."""

    busy = False

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)

    async def call(self, what: str, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        return self._executor.submit(fn, *args).result()

    def submit(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        self._executor.submit(fn, *args)

    def close(self) -> None:
        super().close()
        self._executor.shutdown(wait=False)

    def join(self, timeout: float | None = None) -> bool:
        self._executor.shutdown(wait=True)
        return True


def use_mode(mode: str) -> None:
    """Make every env instance of this process run its calls the ``mode`` way."""
    makers = {"inline": InlineCalls, "executor": ExecutorCalls, "thread": EnvThread}
    maker = makers[mode]

    def new_calls(self: hosting.EnvPool) -> Any:
        return maker(env_thread_name(self.name))

    hosting.EnvPool.new_calls = new_calls  # type: ignore[method-assign]


def serve_main(mode: str) -> int:
    """``--serve MODE``: serve CartPole with env calls run the ``mode`` way until SIGTERM."""
    import cogment_gym

    use_mode(mode)
    server = cogment_gym.serve("CartPole-v1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(server.endpoint, flush=True)
    stop.wait()
    server.stop(0.5)
    return 0


def handoff_rate(mode: str, seconds: float) -> tuple[int, float]:
    env = gym.make("CartPole-v1")
    env.reset(seed=0)

    def work() -> None:
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            env.reset()

    calls = {"inline": InlineCalls, "executor": ExecutorCalls, "thread": EnvThread}[mode]("bench")

    async def main() -> tuple[int, float]:
        for _ in range(1000):
            await calls.call("step", work)
        n, started = 0, time.perf_counter()
        end = started + seconds
        while True:
            for _ in range(500):
                await calls.call("step", work)
            n += 500
            now = time.perf_counter()
            if now >= end:
                return n, now - started

    try:
        return asyncio.run(main())
    finally:
        calls.close()


def case_main(case: str, mode: str, seconds: float) -> int:
    """``--case CASE MODE SECONDS``: one measurement; prints ``{"steps": n, "seconds": s}``."""
    if case == "handoff":
        cpu0 = cpu_seconds(os.getpid())
        steps, elapsed = handoff_rate(mode, seconds)
        cpu = cpu_seconds(os.getpid()) - cpu0  # (warm-up included: a slight overestimate, alike for all modes)
        print(json.dumps({"steps": steps, "seconds": elapsed, "cpu": cpu * steps / (steps + 1000)}), flush=True)
        return 0
    from cogment_gym import CogmentEnv
    from cogment_gym.envs import CogmentVectorEnv

    service = None
    if case == "embedded":
        use_mode(mode)
        env: Any = CogmentEnv("CartPole-v1")
    else:
        service = Child([sys.executable, str(Path(__file__).resolve()), "--serve", mode])
        if case == "served":
            env = CogmentEnv(environment=service.line)
        else:
            env = CogmentVectorEnv(environment=service.line, num_envs=32, envs_per_trial=32)
    rng = np.random.default_rng(0)
    vector = case == "batched"
    try:
        env.reset(seed=0)

        def step() -> int:
            if vector:
                env.step(rng.integers(0, 2, 32))
                return 32
            _, _, terminated, truncated, _ = env.step(int(rng.integers(0, 2)))
            if terminated or truncated:
                env.reset()
            return 1

        warm = time.perf_counter() + min(1.0, seconds / 2)
        while time.perf_counter() < warm:
            step()
        tree = process_tree(os.getpid())
        cpu0 = sum(cpu_seconds(pid) for pid in tree)
        steps, started = 0, time.perf_counter()
        end = started + seconds
        while True:
            steps += step()
            now = time.perf_counter()
            if now >= end:
                break
        cpu = sum(cpu_seconds(pid) for pid in tree) - cpu0
    finally:
        env.close()
        if service is not None:
            service.stop()
    print(json.dumps({"steps": steps, "seconds": now - started, "cpu": cpu}), flush=True)
    return 0


def run_case(case: str, mode: str, seconds: float, cores: list[int] | None = None) -> tuple[float, float]:
    """Steps per second of one case, and CPU µs per step of all its processes, measured in a
    fresh subprocess (``cores``: it and every process it starts on those cores only)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--case", case, mode, str(seconds)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, preexec_fn=pin)
    if out.returncode != 0:
        raise RuntimeError(f"case {case} {mode} failed ({out.returncode}):\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["steps"] / result["seconds"]), 1e6 * float(result["cpu"]) / result["steps"]


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog="\n\n".join(doc.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="measured wall time per case (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table gives medians (default: %(default)s)")
    parser.add_argument("--cases", default=",".join(CASES), help="which cases (default: %(default)s)")
    parser.add_argument("--cpus", help="run every case (all its processes) on these cores only, e.g. 0 (Linux); "
                        "on a VM, what a hand-over costs depends on whether the two threads share a core")
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--case", nargs=3, metavar=("CASE", "MODE", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve_main(args.serve)
    if args.case:
        return case_main(args.case[0], args.case[1], float(args.case[2]))
    for line in machine_facts():
        print(line)
    cores = sorted({int(c) for c in args.cpus.split(",")}) if args.cpus else None
    print(f"settings: {args.seconds:g} s per case, median of {args.rounds} interleaved rounds"
          + (f", every process on core(s) {args.cpus}" if cores else "") + "\n", flush=True)
    cases = args.cases.split(",")
    rates: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    for round_index in range(args.rounds):
        for case in cases:
            for mode in MODES:
                rate, cpu = run_case(case, mode, args.seconds, cores)
                rates.setdefault((case, mode), []).append(rate)
                cpus.setdefault((case, mode), []).append(cpu)
                print(f"  round {round_index + 1}: {case:<9} {mode:<9} {rate:>10,.0f} steps/s {cpu:8.1f} CPU µs/step",
                      file=sys.stderr, flush=True)
    print("| case | env calls | steps/s | wall µs/step | vs inline | hand-over, wall µs/tick | CPU µs/step | hand-over, CPU µs/tick |\n"
          "|---|---|---:|---:|---:|---:|---:|---:|")
    for case in cases:
        inline, inline_cpu = statistics.median(rates[(case, "inline")]), statistics.median(cpus[(case, "inline")])
        per_tick = 32 if case == "batched" else 1  # a batched tick is 32 env steps and one hand-over
        for mode in MODES:
            rate, cpu = statistics.median(rates[(case, mode)]), statistics.median(cpus[(case, mode)])
            wall = per_tick * (1e6 / rate - 1e6 / inline)
            extra_cpu = per_tick * (cpu - inline_cpu)
            print(f"| {CASES[case]} | {mode} | {rate:,.0f} | {1e6 / rate:.1f} | {rate / inline:.2f}x | "
                  f"{'' if mode == 'inline' else f'{wall:+.0f}'} | {cpu:.1f} | {'' if mode == 'inline' else f'{extra_cpu:+.0f}'} |")
    try:
        print("\nload average at the end: %.2f %.2f %.2f (other work on the machine inflates every number)" % os.getloadavg())
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
