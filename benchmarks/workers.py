#!/usr/bin/env python3
"""CartPole steps/s of ``CogmentVectorEnv(environment=endpoints, num_envs=16)`` against env
services in K worker processes (``cogment_gym.EnvWorkers``), K = 1 and K = 2, in one run.

    python benchmarks/workers.py                        # K = 1 and 2, 16 sub-envs, ~30 s of stepping
    python benchmarks/workers.py --workers 1 2 3 --num-envs 32 --seconds 60
    python benchmarks/workers.py --busy-us 300         # each env step also burns 300 us of CPU

Every case has its env in other processes (K = 1 is one worker process, not this process); the
client and its embedded Orchestrator run here. All cases are started first, then measured in
``--rounds`` slices interleaved (1, 2, 1, 2, ...) so that load from elsewhere on the machine hits
every case alike. The policy balances the pole (episodes last CartPole's 500 steps); a vector step
counts num_envs env steps (NEXT_STEP autoresets included). Also reported: CPU seconds per 1000 env
steps of this process and of the workers (from /proc, Linux), which tell where the time goes.

``--busy-us N`` serves ``cogment_gym_bench/BusyCartPole-v1`` instead: CartPole whose steps also
spin N microseconds (an env whose own CPU cost dominates, where more workers pay off first). It is
registered here with an entry point in this file, and the workers get the registration.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a clone without installing
    sys.path.insert(0, str(ROOT))

from cogment_gym.adapters.workers import EnvWorkers  # noqa: E402
from cogment_gym.envs import CogmentVectorEnv  # noqa: E402

ENV_ID = "CartPole-v1"
BUSY_ENV_ID = "cogment_gym_bench/BusyCartPole-v1"


class BusyStep(gym.Wrapper[Any, Any, Any, Any]):
    """Spins ``busy_us`` microseconds of CPU in every step."""

    def __init__(self, env: gym.Env[Any, Any], busy_us: float) -> None:
        super().__init__(env)
        self.busy_s = busy_us / 1e6

    def step(self, action: Any) -> Any:
        until = time.perf_counter() + self.busy_s
        while time.perf_counter() < until:
            pass
        return self.env.step(action)


def make_busy_cartpole(busy_us: float = 0.0, **kwargs: Any) -> gym.Env[Any, Any]:
    """The entry point of ``BUSY_ENV_ID`` (imported by the workers as ``workers:make_busy_cartpole``)."""
    return BusyStep(gym.make(ENV_ID, **kwargs), busy_us)


def policy(obs: np.ndarray) -> np.ndarray:
    """Push toward where each pole falls: keeps CartPole up until its 500-step limit."""
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Case:
    workers: int
    server: EnvWorkers
    envs: CogmentVectorEnv
    obs: Any = None
    steps: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0
    worker_cpu: float = 0.0
    rates: list[float] = field(default_factory=list)

    def run(self, seconds: float) -> None:
        pids = self.server.pids
        cpu0, wcpu0 = cpu_seconds(os.getpid()), sum(cpu_seconds(p) for p in pids)
        steps, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            self.obs, *_ = self.envs.step(policy(self.obs))
            steps += self.envs.num_envs
        self.steps += steps
        self.seconds += elapsed
        self.rates.append(steps / elapsed)
        self.client_cpu += cpu_seconds(os.getpid()) - cpu0
        self.worker_cpu += sum(cpu_seconds(p) for p in pids) - wcpu0

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare (default: 1 2)")
    parser.add_argument("--num-envs", type=int, default=16, help="sub-envs of the vector env (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=30.0, help="stepping time of all slices of one case (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=6, help="slices per case, interleaved (default: %(default)s)")
    parser.add_argument("--busy-us", type=float, default=0.0, help="CPU microseconds each env step also spins (default: 0, plain CartPole)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of stepping before measuring (default: %(default)s)")
    args = parser.parse_args()

    env_id = ENV_ID
    if args.busy_us > 0:
        env_id = BUSY_ENV_ID
        # sys.path[0] is this file's folder, and the workers get this process's sys.path.
        gym.register(BUSY_ENV_ID, entry_point=f"{Path(__file__).stem}:make_busy_cartpole", max_episode_steps=500,
                     kwargs={"busy_us": args.busy_us})
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores; "
          f"{env_id}{f' ({args.busy_us:g} us of CPU per step)' if args.busy_us else ''}, balancing policy, "
          f"CogmentVectorEnv(num_envs={args.num_envs}), embedded Orchestrator")
    with contextlib.ExitStack() as stack:
        cases: list[Case] = []
        for k in args.workers:
            started = time.perf_counter()
            server = stack.enter_context(EnvWorkers(env_id, workers=k))
            # One trial per sub-env, as this benchmark always measured (the default is batched trials now).
            envs = CogmentVectorEnv(environment=server.endpoints, num_envs=args.num_envs, envs_per_trial=1)
            stack.callback(envs.close)
            case = Case(k, server, envs)
            case.obs, _ = envs.reset(seed=0)
            print(f"  workers={k}: started in {time.perf_counter() - started:.1f} s at {', '.join(server.endpoints)}")
            case.run(args.warmup)
            case.steps = 0
            case.seconds = case.client_cpu = case.worker_cpu = 0.0
            case.rates.clear()
            cases.append(case)
        for _ in range(args.rounds):
            for case in cases:
                case.run(args.seconds / args.rounds)

    base = cases[0].rate
    print()
    print(f"{'workers':>7} {'steps/s':>9} {'min..max of slices':>20} {'vs first':>8} {'client CPU':>11} {'workers CPU':>12}")
    for case in cases:
        per_k = 1000 / case.steps if case.steps else 0.0
        spread = f"{min(case.rates):,.0f}..{max(case.rates):,.0f}"
        print(f"{case.workers:>7} {case.rate:>9,.0f} {spread:>20} {case.rate / base:>7.2f}x "
              f"{case.client_cpu * per_k:>9.3f} s {case.worker_cpu * per_k:>10.3f} s")
    print("(CPU columns: seconds per 1000 env steps, this process / all workers together)")
    if len(cases) > 1:
        print(f"ratio workers={cases[-1].workers} / workers={cases[0].workers}: {cases[-1].rate / base:.2f} "
              f"(median of slices: {statistics.median(cases[-1].rates) / statistics.median(cases[0].rates):.2f})")


if __name__ == "__main__":
    main()
