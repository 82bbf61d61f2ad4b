#!/usr/bin/env python3
"""Where and how the event loop runs: asyncio vs uvloop, TCP vs unix socket, the caller's thread
vs a background thread; and gRPC's default engine vs cogment_gym's gRPC setting. Two tables.

    python benchmarks/event_loops.py              # ~4 minutes on 2 cores
    python benchmarks/event_loops.py --seconds 2 --warmup 0.5 --repeat 3   # ~3 minutes

Workloads (CartPole, env service in another process, Orchestrator embedded in the client):

  1 trial     CogmentEnv, one step per message round trip (latency-bound)
  16 trials   CogmentVectorEnv(16): one trial per sub-env, 16 round trips in flight per step
  batched 32  CogmentVectorEnv(32, envs_per_trial=32): one trial, 32 sub-envs per message

Variants: the loop implementation of both processes (``asyncio``'s default loop or ``uvloop``,
set as the event loop policy before anything starts); the transport between the embedded
Orchestrator and the env service (TCP 127.0.0.1 or a unix socket); where the client's loop runs
(``caller``: the thread calling step(), cogment_gym's default; ``background``: a loop thread the
caller hands each call to, what happens inside Jupyter); the gRPC core setting of both processes
(``tuned``: GRPC_EXPERIMENTS unset, so importing cogment_gym sets it to
``-event_engine_client,-event_engine_listener``, cogment_gym/_grpc_tuning.py, the default;
``default``: GRPC_EXPERIMENTS="" so cogment_gym leaves gRPC's own defaults). The case reports the
GRPC_EXPERIMENTS its client and env service started with, and a mismatch stops the run. Every
case runs in a fresh process pair, after a warm-up, cases interleaved in rounds; ratios are to the
default (asyncio, TCP, caller, tuned) of the same workload, same run. The second table puts the
two gRPC settings side by side (asyncio, TCP, caller): tuned / default > 1 is what the setting gains.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Child, cpu_seconds  # noqa: E402
from suite import run_case_argv  # noqa: E402

from cogment_gym._grpc_tuning import TUNED_EXPERIMENTS  # noqa: E402

# (loop, transport, client loop, gRPC setting); the first is the default every ratio is to
VARIANTS = [
    ("asyncio", "tcp", "caller", "tuned"),
    ("asyncio", "tcp", "caller", "default"),
    ("uvloop", "tcp", "caller", "tuned"),
    ("asyncio", "unix", "caller", "tuned"),
    ("uvloop", "unix", "caller", "tuned"),
    ("asyncio", "tcp", "background", "tuned"),
]
WORKLOADS = [("1 trial", 1, 1), ("16 trials", 16, 1), ("batched 32", 32, 32)]
# GRPC_EXPERIMENTS both processes of a case must start with, by gRPC setting
EXPECTED_EXPERIMENTS = {"tuned": TUNED_EXPERIMENTS, "default": ""}


def use_loop(kind: str) -> None:
    if kind == "uvloop":
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@contextlib.contextmanager
def grpc_setting(setting: str) -> Iterator[None]:
    """os.environ as the case processes started meanwhile inherit it: GRPC_EXPERIMENTS removed
    (``tuned``: importing cogment_gym sets its own) or empty (``default``: cogment_gym leaves a set
    value alone, and gRPC reads "" as its defaults); restored afterwards."""
    saved = os.environ.pop("GRPC_EXPERIMENTS", None)
    if setting == "default":
        os.environ["GRPC_EXPERIMENTS"] = ""
    try:
        yield
    finally:
        os.environ.pop("GRPC_EXPERIMENTS", None)
        if saved is not None:
            os.environ["GRPC_EXPERIMENTS"] = saved


def started_with(pid: int, name: str) -> str | None:
    """The value of ``name`` in the environment process ``pid`` was started with (None: unset)."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        for entry in f.read().split(b"\0"):
            key, _, value = entry.partition(b"=")
            if key == name.encode():
                return value.decode()
    return None


def serve_main(loop: str, unix_socket: str | None) -> int:
    import signal
    import threading

    use_loop(loop)
    import cogment_gym

    server = cogment_gym.serve("CartPole-v1", unix_socket=unix_socket)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(server.endpoint, flush=True)
    stop.wait()
    server.stop(0.5)
    return 0


def case_main(spec: dict[str, Any]) -> int:
    use_loop(spec["loop"])
    from cogment_gym.envs import CogmentEnv, CogmentVectorEnv
    from cogment_gym.protocol import runtime

    if spec["where"] == "background":  # as make_runner does when the caller already runs a loop
        patched = lambda: runtime.BackgroundLoop("cogment-gym-client")  # noqa: E731
        import cogment_gym.envs.cogment_env as cogment_env_module
        import cogment_gym.envs.vector.base as vector_module

        cogment_env_module.make_runner = patched  # type: ignore[attr-defined]
        vector_module.make_runner = patched  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        serve = [sys.executable, str(Path(__file__).resolve()), "--serve", spec["loop"]]
        if spec["transport"] == "unix":
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="cogment-gym-loops-"))
            serve += ["--unix-socket", f"{directory}/env.sock"]
        else:  # TCP means TCP: not the unix socket a TCP service also announces to same-host clients
            os.environ["COGMENT_GYM_LOCAL_SOCKET"] = "0"
        service = Child(serve)
        stack.callback(service.stop)
        n, per_trial = spec["n"], spec["per_trial"]
        if n == 1:
            env = CogmentEnv(environment=service.line)
            stack.callback(env.close)
            obs, _ = env.reset(seed=0)

            def step() -> int:
                nonlocal obs
                obs, _, terminated, truncated, _ = env.step(int(obs[2] > 0))
                if terminated or truncated:
                    obs, _ = env.reset()
                return 1
        else:
            envs = CogmentVectorEnv(environment=service.line, num_envs=n, envs_per_trial=per_trial)
            stack.callback(envs.close)
            batch, _ = envs.reset(seed=0)

            def step() -> int:
                nonlocal batch
                batch = envs.step((batch[:, 2] > 0).astype(np.int64))[0]
                return n

        deadline = time.perf_counter() + spec["warmup"]
        while time.perf_counter() < deadline:
            step()
        pids = {"client": os.getpid(), "env": service.popen.pid}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < spec["seconds"]:
            steps += step()
        elapsed = time.perf_counter() - started
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        # what gRPC read at import: this process's after cogment_gym's, the service's as started
        experiments = {"client": os.environ.get("GRPC_EXPERIMENTS"), "env": started_with(service.popen.pid, "GRPC_EXPERIMENTS")}
    print(json.dumps({"steps": steps, "seconds": elapsed, "cpu": cpu, "grpc_experiments": experiments}), flush=True)
    return 0


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median rate (the upper one of an even count)."""
    return sorted(runs, key=lambda r: r["steps"] / r["seconds"])[len(runs) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the median is reported (default: %(default)s)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--unix-socket", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve_main(args.serve, args.unix_socket)
    if args.case:
        return case_main(json.loads(args.case))
    try:
        import uvloop  # noqa: F401
    except ImportError:
        print("uvloop is not installed (pip install uvloop): its rows are skipped", file=sys.stderr)
        variants = [v for v in VARIANTS if v[0] != "uvloop"]
    else:
        variants = VARIANTS
    print(f"command: python benchmarks/event_loops.py {' '.join(argv or sys.argv[1:])}".rstrip())
    rates: dict[tuple[str, tuple[str, str, str, str]], list[dict[str, Any]]] = {}
    for _ in range(args.repeat):  # rounds: load from elsewhere hits every case alike
        for label, n, per_trial in WORKLOADS:
            for variant in variants:
                loop, transport, where, setting = variant
                spec = {"loop": loop, "transport": transport, "where": where, "n": n, "per_trial": per_trial,
                        "seconds": args.seconds, "warmup": args.warmup}
                with grpc_setting(setting):
                    result = run_case_argv([sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(spec)])
                expected = EXPECTED_EXPERIMENTS[setting]
                if any(value != expected for value in result["grpc_experiments"].values()):
                    raise RuntimeError(f"{'/'.join(variant)}: processes started with GRPC_EXPERIMENTS {result['grpc_experiments']}, "
                                       f"not {expected!r} (grpcio outside the versions cogment_gym tunes, or COGMENT_GYM_GRPC_TUNING=0?)")
                rates.setdefault((label, variant), []).append(result)
                print(f"  {label:<11} {'/'.join(variant):<32} {result['steps'] / result['seconds']:>9,.0f} steps/s", file=sys.stderr, flush=True)
    print("\n| workload | loop | transport | client loop | gRPC | steps/s | vs default | client µs/step | env µs/step |")
    print("|---|---|---|---|---|---:|---:|---:|---:|")
    for label, _, _ in WORKLOADS:
        base = None
        for variant in variants:
            r = median_run(rates[(label, variant)])
            rate = r["steps"] / r["seconds"]
            base = base or rate
            client, env = (1e6 * r["cpu"][name] / r["steps"] for name in ("client", "env"))
            print(f"| {label} | {' | '.join(variant)} | {rate:,.0f} | {rate / base:.2f}x | {client:.0f} | {env:.0f} |")
    print(f"\ngRPC setting (asyncio, tcp, caller): default = GRPC_EXPERIMENTS=\"\", tuned = cogment_gym's {TUNED_EXPERIMENTS}\n")
    print("| workload | default steps/s | tuned steps/s | tuned / default | client µs/step default → tuned | env µs/step default → tuned |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, _, _ in WORKLOADS:
        default, tuned = (median_run(rates[(label, ("asyncio", "tcp", "caller", setting))]) for setting in ("default", "tuned"))
        rate_default, rate_tuned = (r["steps"] / r["seconds"] for r in (default, tuned))
        cpu = {name: " → ".join(f"{1e6 * r['cpu'][name] / r['steps']:.0f}" for r in (default, tuned)) for name in ("client", "env")}
        print(f"| {label} | {rate_default:,.0f} | {rate_tuned:,.0f} | {rate_tuned / rate_default:.2f}x | {cpu['client']} | {cpu['env']} |")
    with contextlib.suppress(OSError, AttributeError):
        print("\nload average at the end: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    sys.exit(main())
