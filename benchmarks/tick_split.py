#!/usr/bin/env python3
"""Where one tick of a batched trial goes: CPU per tick of each thread of the client and of the
env service, and the env servicer's share by phase.

    python benchmarks/tick_split.py                         # CartPole, 1 batched trial of 32
    python benchmarks/tick_split.py --env image --inline    # Image84, env calls on the loop

The env service runs in another process (this file with ``--serve``), its servicer wrapped to
time (thread CPU) each phase of ``_play``: the read of the ActionSet (the await, so the loop's
work meanwhile counts too), the action's decoding, the env call (awaited: the hand-over to the
env's thread and back, or the call itself with ``--inline``), the step on the env's thread, the
ObservationSet's assembly. In the client, the caller's thread is split the same way: thread
CPU of every event-loop callback, by the task it steps (the facade's step, the embedded
Orchestrator's trial, the gRPC reader tasks, gRPC's completions), and the rest (the facade's
code outside the loop: encoding the actions, decoding and joining the observations, the
policy, the loop's own select), of which the facade's encoding and decoding are timed. Threads are listed by their OS thread id with their share of CPU
per tick (Python does not name OS threads: in the client the busiest is the caller's thread
(facade, embedded Orchestrator, gRPC reader task), the other one gRPC's poller; in the env
service: the event loop, the env thread (unless ``--inline``) and gRPC's poller).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Child, machine_facts  # noqa: E402

SERVICE_REPORT = "tick_split_env.json"


def serve(key: str, inline: bool, report: str) -> int:
    """``--serve``: the env service with its servicer's phases timed; writes them at SIGTERM."""
    import suite

    import cogment_gym
    from cogment_gym.adapters import batched_trial, service

    spent: collections.Counter[str] = collections.Counter()
    ticks = [0]
    clock = time.thread_time_ns
    servicer = service.EnvironmentServicer
    read, env_call, build = servicer._read, servicer._env_call, service._observation_set
    decode, step = batched_trial.BatchedGymTrial.decode_action, batched_trial.BatchedGymTrial.step

    async def timed_read(self: Any, *args: Any) -> Any:
        started = clock()
        try:
            return await read(self, *args)
        finally:
            spent["read the ActionSet (await)"] += clock() - started

    async def timed_env_call(self: Any, *args: Any) -> Any:
        started = clock()
        try:
            return await env_call(self, *args)
        finally:
            spent["env call (await, loop thread)"] += clock() - started
            ticks[0] += 1

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            started = clock()
            try:
                return fn(*args)
            finally:
                spent[name] += clock() - started
        return wrapper

    setattr(servicer, "_read", timed_read)
    setattr(servicer, "_env_call", timed_env_call)
    setattr(service, "_observation_set", timed("ObservationSet assembly", build))
    setattr(batched_trial.BatchedGymTrial, "decode_action", timed("action decoding", decode))
    setattr(batched_trial.BatchedGymTrial, "step", timed("32 steps + payload (env's thread)", step))
    server = cogment_gym.serve({suite.ENV_IDS[key]: suite.ENV_IDS[key]}, env_threads=not inline)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(server.endpoint, flush=True)
    stop.wait()
    Path(report).write_text(json.dumps({"ticks": ticks[0], "spent_ns": dict(spent)}))
    server.stop(0.5)
    return 0


OWNERS = {
    "CogmentVectorEnv._step": "facade: the step's task",
    "Trial._main": "embedded Orchestrator: the trial's task",
    "_pump": "gRPC reader task",
}


def time_callbacks() -> collections.Counter[str]:
    """Thread CPU of every event-loop callback in this process, by the task it steps."""
    import asyncio
    from asyncio import events

    spent: collections.Counter[str] = collections.Counter()
    run = events.Handle._run
    clock = time.thread_time_ns

    def timed_run(handle: Any) -> None:
        started = clock()
        run(handle)
        owner = getattr(handle._callback, "__self__", None)
        if isinstance(owner, asyncio.Task):
            name = owner.get_coro().__qualname__  # type: ignore[union-attr]
            name = OWNERS.get(name, f"task {name}")
        else:
            name = "gRPC completions and other callbacks"
        spent[name] += clock() - started

    setattr(events.Handle, "_run", timed_run)
    return spent


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of ``pid``."""
    out = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--env", choices=("cartpole", "image"), default="cartpole")
    parser.add_argument("--inline", action="store_true", help="env calls on the service's event loop (env_threads=False)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.inline, args.report)
    import suite

    from cogment_gym.envs.vector.batched import BatchedVectorEnv as CogmentVectorEnv

    callbacks = time_callbacks()
    facade: collections.Counter[str] = collections.Counter()
    for method, label in (("_contents", "facade: encoding the actions"), ("_collect", "facade: decoding, joining observations")):
        original = getattr(CogmentVectorEnv, method)

        def timed_method(self: Any, *a: Any, _original: Any = original, _label: str = label) -> Any:
            started = time.thread_time_ns()
            try:
                return _original(self, *a)
            finally:
                facade[_label] += time.thread_time_ns() - started

        setattr(CogmentVectorEnv, method, timed_method)
    report = Path(os.environ.get("TMPDIR", "/tmp")) / f"{SERVICE_REPORT}.{os.getpid()}"
    argv_serve = [sys.executable, str(Path(__file__).resolve()), "--serve", args.env, "--report", str(report)]
    if args.inline:
        argv_serve.append("--inline")
    for line in machine_facts():
        print(line)
    service = Child(argv_serve)
    rng = np.random.default_rng(0)
    try:
        envs = CogmentVectorEnv(environment=service.line, num_envs=32, envs_per_trial=32)
        try:
            obs, _ = envs.reset(seed=0)

            def act() -> Any:
                return suite.balance(obs) if args.env == "cartpole" else rng.integers(0, 4, 32)

            for _ in range(200):
                obs = envs.step(act())[0]
            pids = {"client": os.getpid(), "env": service.popen.pid}
            before = {who: thread_cpu(pid) for who, pid in pids.items()}
            callbacks.clear()
            facade.clear()
            main_cpu = time.thread_time()
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < args.seconds:
                obs = envs.step(act())[0]
                count += 1
            elapsed = time.perf_counter() - started
            main_cpu = time.thread_time() - main_cpu
            after = {who: thread_cpu(pid) for who, pid in pids.items()}
            split = dict(callbacks)
            outside = dict(facade)
        finally:
            envs.close()
    finally:
        service.stop()
    print(f"\n{args.env}, 1 batched trial of 32, {'env calls on the loop' if args.inline else 'env threads'}: "
          f"{32 * count / elapsed:,.0f} steps/s, {1e6 * elapsed / count:.0f} µs per tick")
    for who in pids:
        total = 0.0
        rows = []
        for tid, seconds in after[who].items():
            spent = 1e6 * (seconds - before[who].get(tid, 0.0)) / count
            total += spent
            if spent >= 1:
                rows.append(f"thread {tid} {spent:.0f}")
        print(f"  {who}: {total:.0f} µs CPU per tick ({', '.join(rows)})")
    print("  client, caller's thread CPU per tick by owner:")
    in_loop = 0.0
    for name, ns in sorted(split.items(), key=lambda item: -item[1]):
        in_loop += ns / 1e9
        if ns / 1e3 / count >= 1:
            print(f"    {name:<34} {ns / 1e3 / count:6.0f} µs")
    rest = main_cpu - in_loop
    for name, ns in outside.items():
        rest -= ns / 1e9
        print(f"    {name:<34} {ns / 1e3 / count:6.0f} µs")
    print(f"    {'the rest (loop machinery, policy)':<34} {1e6 * rest / count:6.0f} µs")
    if report.exists():
        data = json.loads(report.read_text())
        report.unlink()
        n = max(data["ticks"], 1)
        print("  env servicer, thread CPU per tick by phase:")
        for name, ns in data["spent_ns"].items():
            print(f"    {name:<34} {ns / 1e3 / n:6.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
