#!/usr/bin/env python3
"""Throughput of cogment_gym's facades against gymnasium's and SB3's vector envs. One table.

    python benchmarks/suite.py                       # every case, ~4 minutes on 2 cores
    python benchmarks/suite.py --quick               # fewer cases, shorter
    python benchmarks/suite.py --seconds 5 --repeat 3
    python benchmarks/suite.py --targets --repeat 3  # issue 11's targets only, ~4 minutes

Groups (one per env and policy):

  CartPole, long episodes   a balancing policy: episodes last the 500-step time limit
  CartPole, short episodes  a random policy: episodes of ~22 steps (trial start costs show)
  Image84                   uint8[84,84,3] observations (a tiny deterministic env of this file),
                            random actions, 500-step episodes

Cases in each group: the env stepped directly; gymnasium SyncVectorEnv(16 and 32); AsyncVectorEnv(N)
for N = 1, 8, 16, 32; SB3 SubprocVecEnv(16) if installed; CogmentEnv (one trial at a time);
CogmentVectorEnv(N) for N = 1, 8, 16, 32 with the env service in another process (this file with
``--serve``) and the Orchestrator embedded; CogmentVectorEnv(32) as batched trials (one trial of 32
sub-envs; four of 8), same service. Clients are given the service's TCP endpoint and, by default,
run their trials over the unix socket the service announces; "TCP only" rows turn that off
(``COGMENT_GYM_LOCAL_SOCKET=0``); "env calls on the loop" rows serve with ``env_threads=False``
(each env's reset/step on the service's event loop, as before env threads: what the hand-over to
an env's own thread costs, per step, is the difference). CogmentVectorEnv(16) with the Orchestrator in a third
process (``cogment-gym orchestrator``), whose CPU time per tick is what "orch CPU/tick" reports.
Floors: N grpc.aio streams to an echo process in lock-step with raw bytes of a step's size (every
request written, then every reply awaited at once), and one stream with the sizes of a batched
trial of 32; after the table, the best a batched trial of 32 could do here (that bare round trip
plus SyncVectorEnv(32)'s own stepping time per tick).

Every case runs in a fresh subprocess (``--case``): it warms up, then steps for ``--seconds``; the
parent samples the resident memory of the case's whole process tree every 50 ms (peak MB) and the
case reports the CPU time of its tree per env step. Vector envs count num_envs steps per vector
step (an autoreset step included: NEXT_STEP for gymnasium's and ours, SB3 resets in the step).
Ratios compare with AsyncVectorEnv of the same group: with 16 envs, and with the same N. The exit
code is 0 whatever the numbers; PASS/MISS lines compare them to the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ECHO_METHOD, ECHO_SERVICE, ROOT, Child, cpu_seconds, machine_facts, process_tree, rss_mb, serve_echo  # noqa: E402

IMAGE_ID = "cogment_gym_bench/Image84-v0"
TARGET_VS_ASYNC = 1.0
TARGET_SHORT = 0.75  # issue 11: one trial per episode, short / long CartPole episodes
TARGET_ORCH_US = 200.0
TARGET_BATCHED_VS_ASYNC = 4.0
TARGET_BATCHED_VS_SYNC = 0.3
# Issue 11: a batched trial of 32 against the best it could do in the same run (one bare round
# trip of its two messages plus SyncVectorEnv(32)'s own stepping time per tick).
TARGET_OF_BOUND = {"cartpole": 0.8, "image": 0.6}
TARGET_SHORT_BATCHED = 0.9  # batched trials of 32, short / long CartPole episodes


# ---------------------------------------------------------------------------------------- the image env


class ImageEnv(gym.Env[np.ndarray, np.int64]):
    """uint8[84,84,3] observations from a seeded bank of 8 frames; deterministic given the seed.

    Reward 1 when the action matches ``t % 4``; terminated after ``episode_length`` steps.
    """

    metadata = {"render_modes": []}

    def __init__(self, episode_length: int = 500, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.episode_length = episode_length
        self.observation_space = spaces.Box(0, 255, (84, 84, 3), np.uint8)
        self.action_space = spaces.Discrete(4)
        self._frames = np.zeros((8, 84, 84, 3), np.uint8)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._frames = self.np_random.integers(0, 256, self._frames.shape, dtype=np.uint8)
        self._t = 0
        return self._frames[0].copy(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        reward = float(int(action) == self._t % 4)
        return self._frames[self._t % 8].copy(), reward, self._t >= self.episode_length, False, {}


gym.register(IMAGE_ID, entry_point=lambda **kwargs: ImageEnv(**kwargs))

ENV_IDS = {"cartpole": "CartPole-v1", "image": IMAGE_ID}


# Bytes of one step between Orchestrator and env (EnvRunTrialInput with the ActionSet; the
# EnvRunTrialOutput with the ObservationSet), measured on real trials of each env.
MESSAGE_SIZES = {"cartpole": (40, 85), "image": (40, 21235)}
# The same for one tick of a batched trial of 32 sub-envs (ActionSet of int64[32]; ObservationSet
# of the batched observation, rewards and flags).
BATCHED_MESSAGE_SIZES = {"cartpole": (289, 911), "image": (289, 677782)}


def serve_main(key: str, inline: bool = False) -> int:
    """``--serve KEY``: serve the env in this process until SIGTERM; print the endpoint first.
    ``inline``: env calls on the service's event loop (``env_threads=False``)."""
    import cogment_gym

    server = cogment_gym.serve({ENV_IDS[key]: ENV_IDS[key]}, env_threads=not inline)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(server.endpoint, flush=True)
    stop.wait()
    server.stop(0.5)
    return 0


# ---------------------------------------------------------------------------------------- cases


def balance(obs: np.ndarray) -> np.ndarray:
    """Push toward where the pole falls: CartPole episodes last their 500 steps."""
    return (obs[..., 2] + 0.5 * obs[..., 3] > 0).astype(np.int64)


class Stepper:
    """Steps one case; ``step()`` returns the env steps it made."""

    processes: dict[str, int]

    def __init__(self, spec: dict[str, Any], stack: contextlib.ExitStack) -> None:
        self.spec = spec
        self.n = spec["n"]
        self.policy = spec["policy"]
        self.rng = np.random.default_rng(0)
        self.processes = {"client": os.getpid()}
        self.stack = stack
        self.obs: Any = None
        self.episodes = 0  # episodes ended (vector steppers count them)

    def actions(self, n: int | None) -> Any:
        if self.policy == "balance":
            return balance(self.obs)
        size = 4 if self.spec["env"] == "image" else 2
        return self.rng.integers(0, size, n) if n is not None else int(self.rng.integers(0, size))

    def step(self) -> int:
        raise NotImplementedError


class SingleStepper(Stepper):
    def __init__(self, spec: dict[str, Any], stack: contextlib.ExitStack, env: gym.Env[Any, Any]) -> None:
        super().__init__(spec, stack)
        self.env = env
        stack.callback(env.close)
        self.obs, _ = env.reset(seed=0)

    def step(self) -> int:
        obs, _, terminated, truncated, _ = self.env.step(self.actions(None))
        self.obs = self.env.reset()[0] if terminated or truncated else obs
        return 1


class VectorStepper(Stepper):
    def __init__(self, spec: dict[str, Any], stack: contextlib.ExitStack, envs: Any) -> None:
        super().__init__(spec, stack)
        self.envs = envs
        stack.callback(envs.close)
        self.obs, _ = envs.reset(seed=0)

    def step(self) -> int:
        self.obs, _, terminations, truncations, _ = self.envs.step(self.actions(self.n))
        self.episodes += int(np.count_nonzero(terminations | truncations))
        return self.n


class SB3Stepper(Stepper):
    def __init__(self, spec: dict[str, Any], stack: contextlib.ExitStack, venv: Any) -> None:
        super().__init__(spec, stack)
        self.venv = venv
        stack.callback(venv.close)
        venv.seed(0)
        self.obs = venv.reset()

    def step(self) -> int:
        self.obs = self.venv.step(self.actions(self.n))[0]
        return self.n


class PingPongStepper(Stepper):
    """The floor of one message each way per step: N grpc.aio bidi streams to an echo process,
    stepped in lock-step (every request written, then every reply read), raw bytes of a step's
    size; no env, no codec, no Cogment protocol. ``batched``: one stream whose round trip counts
    for N steps, with the message sizes of a batched trial of 32."""

    def __init__(self, spec: dict[str, Any], stack: contextlib.ExitStack, batched: bool = False) -> None:
        import grpc

        super().__init__(spec, stack)
        request_size, reply_size = (BATCHED_MESSAGE_SIZES if batched else MESSAGE_SIZES)[spec["env"]]
        self.steps_per_round = self.n
        if batched:
            self.n = 1
        echo = Child([sys.executable, str(Path(__file__).resolve()), "--echo", str(reply_size)])
        stack.callback(echo.stop)
        self.processes["env"] = echo.popen.pid
        self.request = bytes(request_size)
        self.loop = asyncio.new_event_loop()
        stack.callback(self.loop.close)

        async def open_calls() -> tuple[Any, list[Any]]:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{echo.line}")
            calls = [channel.stream_stream(f"/{ECHO_SERVICE}/{ECHO_METHOD}")() for _ in range(self.n)]
            return channel, calls

        self.channel, self.calls = self.loop.run_until_complete(open_calls())
        stack.callback(lambda: self.loop.run_until_complete(self._close()))

    async def _close(self) -> None:
        for call in self.calls:
            call.cancel()
        await self.channel.close()

    async def _round_trips(self) -> None:
        for call in self.calls:
            await call.write(self.request)
        if len(self.calls) == 1:
            await self.calls[0].read()
        else:  # every read pending at once, as the Orchestrator's reader tasks are
            await asyncio.gather(*(call.read() for call in self.calls))

    def step(self) -> int:
        self.loop.run_until_complete(self._round_trips())
        return self.steps_per_round


def make_stepper(spec: dict[str, Any], stack: contextlib.ExitStack) -> Stepper:
    env_id = ENV_IDS[spec["env"]]
    kind, n = spec["kind"], spec["n"]
    if kind == "direct":
        return SingleStepper(spec, stack, gym.make(env_id))
    if kind in ("sync", "async"):
        factories = [lambda: gym.make(env_id) for _ in range(n)]
        vector = gym.vector.SyncVectorEnv(factories) if kind == "sync" else gym.vector.AsyncVectorEnv(factories)
        return VectorStepper(spec, stack, vector)
    if kind == "subproc":
        from stable_baselines3.common.vec_env import SubprocVecEnv

        return SB3Stepper(spec, stack, SubprocVecEnv([lambda: gym.make(env_id) for _ in range(n)]))
    if kind in ("pingpong", "pingpong_batched"):
        return PingPongStepper(spec, stack, batched=kind == "pingpong_batched")
    # cogment cases: the env service in another process
    from cogment_gym import CogmentEnv
    from cogment_gym.envs import CogmentVectorEnv

    serve = [sys.executable, str(Path(__file__).resolve()), "--serve", spec["env"]]
    if kind.endswith("_inline"):  # the service runs env calls on its event loop
        serve.append("--inline")
        kind = kind[: -len("_inline")]
    if kind.endswith("_tcp"):  # the client ignores the service's same-host unix socket
        os.environ["COGMENT_GYM_LOCAL_SOCKET"] = "0"
        kind = kind[: -len("_tcp")]
    service = Child(serve)
    stack.callback(service.stop)
    endpoint = service.line
    processes = {"env": service.popen.pid}
    if kind == "cogment_env":
        stepper: Stepper = SingleStepper(spec, stack, CogmentEnv(environment=endpoint))
    elif kind == "cogment_vector":
        # envs_per_trial=1 said outright: one trial per episode, whatever the default
        stepper = VectorStepper(spec, stack, CogmentVectorEnv(environment=endpoint, num_envs=n, envs_per_trial=1))
    elif kind.startswith("cogment_batched"):  # cogment_batched<K>: trials of K sub-envs
        per_trial = int(kind[len("cogment_batched"):])
        stepper = VectorStepper(spec, stack, CogmentVectorEnv(environment=endpoint, num_envs=n, envs_per_trial=per_trial))
    elif kind == "cogment_vector_orch":
        orchestrator = Child([sys.executable, "-m", "cogment_gym.cli", "orchestrator", "--lifecycle-port", "0"])
        stack.callback(orchestrator.stop)
        match = re.search(r"lifecycle at (\S+),", orchestrator.line)
        if match is None:
            raise RuntimeError(f"unexpected orchestrator line: {orchestrator.line!r}")
        processes["orch"] = orchestrator.popen.pid
        stepper = VectorStepper(spec, stack, CogmentVectorEnv(orchestrator=match.group(1), environment=endpoint, num_envs=n, envs_per_trial=1))
    else:
        raise ValueError(f"unknown case kind {kind!r}")
    stepper.processes.update(processes)
    return stepper


def case_main(spec: dict[str, Any]) -> int:
    """``--case JSON``: run one case in this process; print one JSON line of results."""
    if spec.get("cpus"):  # this process and every one it starts (the env service, the echo) on those cores
        os.sched_setaffinity(0, spec["cpus"])
    with contextlib.ExitStack() as stack:
        stepper = make_stepper(spec, stack)
        deadline = time.perf_counter() + spec["warmup"]
        while time.perf_counter() < deadline:
            stepper.step()
        tree = process_tree(os.getpid())
        per_process = {name: cpu_seconds(pid) for name, pid in stepper.processes.items()}
        cpu0 = sum(cpu_seconds(pid) for pid in tree)
        steps, episodes0 = 0, stepper.episodes
        started = now = time.perf_counter()
        end = started + spec["seconds"]
        while now < end:
            steps += stepper.step()
            now = time.perf_counter()
        elapsed = now - started
        cpu = sum(cpu_seconds(pid) for pid in tree) - cpu0
        per_process = {name: cpu_seconds(pid) - per_process[name] for name, pid in stepper.processes.items()}
    episodes = stepper.episodes - episodes0
    print(json.dumps({"steps": steps, "seconds": elapsed, "cpu": cpu, "per_process": per_process, "episodes": episodes}), flush=True)
    return 0


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Run a case of this file in a subprocess (see :func:`run_case_argv`)."""
    return run_case_argv([sys.executable, str(Path(__file__).resolve()), "--case", json.dumps(spec)])


def run_case_argv(argv: list[str]) -> dict[str, Any]:
    """Run a case in a subprocess that prints its results as the last line of JSON, sampling the
    memory of its process tree; its results plus ``peak_mb``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) as popen:
        peak = 0.0
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.append(popen.communicate()[0]), daemon=True)
        reader.start()
        while reader.is_alive():
            peak = max(peak, rss_mb(process_tree(popen.pid)))
            reader.join(0.05)
        if popen.returncode != 0:
            raise RuntimeError(f"case {shlex.join(argv[2:])} failed (exit code {popen.returncode})")
    result: dict[str, Any] = json.loads(out[0].strip().splitlines()[-1])
    result["peak_mb"] = peak
    return result


# ---------------------------------------------------------------------------------------- the table


GROUPS = [
    ("CartPole, long episodes (balancing policy)", "cartpole", "balance"),
    ("CartPole, short episodes (random policy)", "cartpole", "random"),
    ("Image84 uint8[84,84,3], 500-step episodes", "image", "random"),
]


# ``--targets``: only what issue 11's targets need, per group (env, policy).
TARGET_ROWS: dict[tuple[str, str], list[tuple[str, str, int]]] = {
    ("cartpole", "balance"): [
        ("sync", "gymnasium SyncVectorEnv(32)", 32),
        ("pingpong_batched", "floor: grpc.aio ping-pong, 1 stream, batched-32 sizes", 32),
        ("cogment_batched32", "CogmentVectorEnv(32): 1 batched trial of 32", 32),
        ("cogment_batched32_inline", "CogmentVectorEnv(32): 1 batched trial of 32, env calls on the loop", 32),
        ("cogment_vector", "CogmentVectorEnv(16), one trial per episode", 16),
        ("cogment_vector_inline", "CogmentVectorEnv(16), one trial per episode, env calls on the loop", 16),
        ("cogment_vector_orch", "CogmentVectorEnv(16), one trial per episode, Orchestrator process", 16),
    ],
    ("cartpole", "random"): [
        ("cogment_batched32", "CogmentVectorEnv(32): 1 batched trial of 32", 32),
        ("cogment_batched32_inline", "CogmentVectorEnv(32): 1 batched trial of 32, env calls on the loop", 32),
        ("cogment_vector", "CogmentVectorEnv(16), one trial per episode", 16),
        ("cogment_vector_inline", "CogmentVectorEnv(16), one trial per episode, env calls on the loop", 16),
        ("cogment_vector_orch", "CogmentVectorEnv(16), one trial per episode, Orchestrator process", 16),
    ],
    ("image", "random"): [
        ("sync", "gymnasium SyncVectorEnv(32)", 32),
        ("pingpong_batched", "floor: grpc.aio ping-pong, 1 stream, batched-32 sizes", 32),
        ("cogment_batched32", "CogmentVectorEnv(32): 1 batched trial of 32", 32),
        ("cogment_batched32_inline", "CogmentVectorEnv(32): 1 batched trial of 32, env calls on the loop", 32),
    ],
}


def bound_of(results: dict[tuple[str, str, str, int], dict[str, Any]], env_key: str, policy: str) -> float | None:
    """The best a batched trial of 32 could do in this run: one bare round trip of its two
    messages plus SyncVectorEnv(32)'s own stepping time per tick (steps/s), or None."""
    floor, sync32 = results.get((env_key, policy, "pingpong_batched", 32)), results.get((env_key, policy, "sync", 32))
    if not floor or not sync32:
        return None
    return 32 / (32 / floor["rate"] + 32 / sync32["rate"])


def issue11_lines(results: dict[tuple[str, str, str, int], dict[str, Any]]) -> list[str]:
    """Issue 11's targets as PASS/MISS lines, each with what it is measured against."""
    lines: list[str] = []

    def mark(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    for env_key, name in (("cartpole", "CartPole"), ("image", "Image84")):
        policy = "balance" if env_key == "cartpole" else "random"
        bound, target = bound_of(results, env_key, policy), TARGET_OF_BOUND[env_key]
        if bound is None:
            continue
        for kind, how in (("cogment_batched32", "env threads"), ("cogment_batched32_inline", "env calls on the loop")):
            r = results.get((env_key, policy, kind, 32))
            if r:
                value = r["rate"] / bound
                lines.append(f"{mark(value >= target)} {name} batched trial of 32 ({how}): {r['rate']:,.0f} steps/s = {100 * value:.0f}% "
                             f"of the bound {bound:,.0f} (target >= {100 * target:.0f}%; bound = bare round trip + SyncVectorEnv(32)'s stepping)")
    for kind, what, target in (("cogment_batched32", "batched trial of 32", TARGET_SHORT_BATCHED),
                               ("cogment_batched32_inline", "batched trial of 32, env calls on the loop", TARGET_SHORT_BATCHED),
                               ("cogment_vector", "CogmentVectorEnv(16), one trial per episode", TARGET_SHORT),
                               ("cogment_vector_inline", "CogmentVectorEnv(16), one trial per episode, env calls on the loop", TARGET_SHORT)):
        n = 32 if kind.startswith("cogment_batched") else 16
        short, long_ = results.get(("cartpole", "random", kind, n)), results.get(("cartpole", "balance", kind, n))
        if short and long_:
            value = short["rate"] / long_["rate"]
            lines.append(f"{mark(value >= target)} short / long CartPole episodes, {what}: {value:.2f} "
                         f"({short['rate']:,.0f} / {long_['rate']:,.0f} steps/s; target >= {target})")
    # What a trial's start and end cost, per process: the extra CPU per step of short episodes
    # over long ones, times the steps of a short episode (counted in the run).
    for kind, what in (("cogment_vector", "env threads"), ("cogment_vector_inline", "env calls on the loop"),
                       ("cogment_vector_orch", "Orchestrator process")):
        short, long_ = results.get(("cartpole", "random", kind, 16)), results.get(("cartpole", "balance", kind, 16))
        if short and long_ and short.get("episodes"):
            per_episode = short["steps"] / short["episodes"]
            parts = [f"{name} {1e3 * per_episode * (short['per_process'][name] / short['steps'] - long_['per_process'][name] / long_['steps']):.2f}"
                     for name in short["per_process"]]
            lines.append(f"     trial start + end, CogmentVectorEnv(16) ({what}): CPU ms per trial: {', '.join(parts)} "
                         f"({per_episode:.1f} steps per short episode)")
    return lines


def case_list(quick: bool, has_sb3: bool) -> list[tuple[str, str, int]]:
    """(kind, label, n) of each row of a group."""
    sizes = (1, 16) if quick else (1, 8, 16, 32)
    rows = [("direct", "env stepped directly", 1), ("sync", "gymnasium SyncVectorEnv(16)", 16), ("sync", "gymnasium SyncVectorEnv(32)", 32)]
    rows += [("async", f"gymnasium AsyncVectorEnv({n})", n) for n in sizes]
    if has_sb3:
        rows.append(("subproc", "SB3 SubprocVecEnv(16)", 16))
    rows.append(("cogment_env", "CogmentEnv (1 trial)", 1))
    rows.append(("cogment_env_inline", "CogmentEnv (1 trial), env calls on the loop", 1))
    rows += [("cogment_vector", f"CogmentVectorEnv({n})", n) for n in sizes]
    rows.append(("cogment_vector_inline", "CogmentVectorEnv(16), env calls on the loop", 16))
    rows.append(("cogment_batched32", "CogmentVectorEnv(32): 1 batched trial of 32", 32))
    rows.append(("cogment_batched32_inline", "CogmentVectorEnv(32): 1 batched trial of 32, env calls on the loop", 32))
    if not quick:
        rows.append(("cogment_batched8", "CogmentVectorEnv(32): 4 batched trials of 8", 32))
        rows.append(("cogment_batched32_tcp", "CogmentVectorEnv(32): 1 batched trial of 32, TCP only", 32))
    rows.append(("cogment_vector_tcp", "CogmentVectorEnv(16), TCP only", 16))
    rows.append(("cogment_vector_orch", "CogmentVectorEnv(16), Orchestrator process", 16))
    rows.append(("pingpong", "floor: grpc.aio ping-pong, 16 streams, lock-step", 16))
    rows.append(("pingpong_batched", "floor: grpc.aio ping-pong, 1 stream, batched-32 sizes", 32))
    return rows


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog="\n\n".join(doc.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured wall time per case (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured wall time per case first (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1, help="run every case this many times, report the median (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="N = 1 and 16 only, 1.5 s per case")
    parser.add_argument("--groups", default="0,1,2", help="which groups to run, by index (default: %(default)s)")
    parser.add_argument("--targets", action="store_true", help="only the cases of issue 11's targets (batched trials against their bound, short / long episodes)")
    parser.add_argument("--cpus", help="run every case (its client, env service and Orchestrator processes) on these cores only, "
                        "e.g. 0 or 0,1 (Linux; default: wherever the scheduler puts them)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--inline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--echo", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve_main(args.serve, args.inline)
    if args.echo is not None:
        serve_echo("127.0.0.1:0", args.echo)
        return 0
    if args.case:
        return case_main(json.loads(args.case))
    cpus = sorted({int(c) for c in args.cpus.split(",")}) if args.cpus else []
    if args.quick:
        args.seconds = min(args.seconds, 1.5)
        args.warmup = min(args.warmup, 0.5)
    try:
        import stable_baselines3  # noqa: F401

        has_sb3 = True
    except ImportError:
        has_sb3 = False

    for line in machine_facts():
        print(line)
    print(f"settings: {args.seconds:g} s per case after {args.warmup:g} s warmup, median of {args.repeat}; "
          + (f"every process of a case on core(s) {args.cpus}; " if cpus else "")
          + "env services at grpc://127.0.0.1 (clients use their same-host unix socket unless 'TCP only')\n", flush=True)
    header = ("| case | steps/s | vs Async(16) | vs Async(same N) | CPU µs/step (all processes) | peak MB | notes |\n"
              "|---|---:|---:|---:|---:|---:|---|")
    results: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    lines: list[str] = [header]
    groups = [GROUPS[int(g)] for g in args.groups.split(",")]
    all_rows = case_list(args.quick, has_sb3)

    def rows_of(env_key: str, policy: str) -> list[tuple[str, str, int]]:
        return TARGET_ROWS.get((env_key, policy), []) if args.targets else all_rows

    # Rounds: every case once per round, so that load from elsewhere hits every case alike.
    runs: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    from cogment_gym.cli.progress import Progress

    progress = Progress(args.repeat * sum(len(rows_of(e, p)) for _, e, p in groups), sys.stderr, unit="cases", description="suite")
    started, done, measured = time.perf_counter(), 0, 0
    for round_index in range(args.repeat):
        for title, env_key, policy in groups:
            for kind, label, n in rows_of(env_key, policy):
                spec = {"kind": kind, "env": env_key, "policy": policy, "n": n, "seconds": args.seconds, "warmup": args.warmup}
                if cpus:
                    spec["cpus"] = cpus
                result = run_case(spec)
                runs.setdefault((env_key, policy, kind, n), []).append(result)
                done, measured = done + 1, measured + int(result["steps"])
                progress.update(done, measured, time.perf_counter() - started)
                print(f"  round {round_index + 1}: {title[:24]:<24} {label:<50} {result['steps'] / result['seconds']:>10,.0f} steps/s",
                      file=sys.stderr, flush=True)
    progress.close()
    for key, case_runs in runs.items():
        rates = [r["steps"] / r["seconds"] for r in case_runs]
        middle = case_runs[rates.index(statistics.median_low(rates))]
        middle["rate"] = statistics.median(rates)
        results[key] = middle
    for title, env_key, policy in groups:
        lines.append(f"| **{title}** | | | | | | |")
        base = results.get((env_key, policy, "async", 16))
        for kind, label, n in rows_of(env_key, policy):
            r = results[(env_key, policy, kind, n)]
            same = results.get((env_key, policy, "async", n)) if kind.startswith(("cogment", "pingpong")) or kind in ("async", "sync") else None
            vs16 = f"{r['rate'] / base['rate']:.2f}x" if base else "-"
            vs_same = f"{r['rate'] / same['rate']:.2f}x" if same else ""
            notes = ""
            if kind.startswith(("cogment", "pingpong")):
                parts = [f"{name} {1e6 * seconds / r['steps']:.0f}" for name, seconds in r["per_process"].items()]
                notes = "µs/step: " + ", ".join(parts)
                if kind == "cogment_vector_orch":
                    notes += " (orch = CPU per tick)"
            lines.append(f"| {label} | {r['rate']:,.0f} | {vs16} | {vs_same} | {1e6 * r['cpu'] / r['steps']:.0f} | {r['peak_mb']:.0f} | {notes} |")
    print("\n".join(lines))
    with contextlib.suppress(OSError, AttributeError):
        print("load average at the end: %.2f %.2f %.2f (other work on the machine inflates every number)" % os.getloadavg())
    print()
    for _, env_key, policy in groups:
        ours, theirs = results.get((env_key, policy, "cogment_vector", 16)), results.get((env_key, policy, "async", 16))
        if ours and theirs:
            value = ours["rate"] / theirs["rate"]
            mark = "PASS" if value >= TARGET_VS_ASYNC else "MISS"
            print(f"{mark} {env_key}/{policy}: CogmentVectorEnv(16) / AsyncVectorEnv(16) = {value:.2f} (target >= {TARGET_VS_ASYNC:.1f})")
        batched, async32, sync32 = (results.get((env_key, policy, kind, 32)) for kind in ("cogment_batched32", "async", "sync"))
        if batched and async32 and sync32:
            for name, other, target in (("AsyncVectorEnv(32)", async32, TARGET_BATCHED_VS_ASYNC), ("SyncVectorEnv(32)", sync32, TARGET_BATCHED_VS_SYNC)):
                value = batched["rate"] / other["rate"]
                mark = "PASS" if value >= target else "MISS"
                print(f"{mark} {env_key}/{policy}: batched trial of 32 / {name} = {value:.2f} (target >= {target:g})")
            floor = results.get((env_key, policy, "pingpong_batched", 32))
            if floor:
                # Nothing in lock-step beats one bare round trip plus the env's own stepping time.
                best = 32 / (32 / floor["rate"] + 32 / sync32["rate"])
                print(f"     {env_key}/{policy}: best possible batched trial of 32 here = bare round trip + SyncVectorEnv(32)'s "
                      f"stepping = {best:,.0f} steps/s = {best / async32['rate']:.2f}x AsyncVectorEnv(32), "
                      f"{best / sync32['rate']:.2f}x SyncVectorEnv(32)")
    for _, env_key, policy in groups:
        for kind, n, what in (("cogment_env", 1, "CogmentEnv (1 trial)"), ("cogment_batched32", 32, "batched trial of 32")):
            threaded, inline = results.get((env_key, policy, kind, n)), results.get((env_key, policy, kind + "_inline", n))
            if threaded and inline:
                # The hand-over of each reset/step to the env's own thread, per tick (n env steps).
                cost = n * 1e6 * (1 / threaded["rate"] - 1 / inline["rate"])
                print(f"     {env_key}/{policy}: env calls off the loop, {what}: {threaded['rate'] / inline['rate']:.2f}x the steps/s "
                      f"of env calls on the loop, {cost:+.0f} µs per tick")
    print("\n".join(issue11_lines(results)))
    for key, r in results.items():
        if key[2] == "cogment_vector_orch":
            value = 1e6 * r["per_process"]["orch"] / r["steps"]
            mark = "PASS" if value <= TARGET_ORCH_US else "MISS"
            print(f"{mark} {key[0]}/{key[1]}: Orchestrator CPU per tick = {value:.0f} µs (target <= {TARGET_ORCH_US:.0f} µs; "
                  "its own process, 16 trials, gRPC to client and env)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
