#!/usr/bin/env python3
"""N concurrent trials through one standalone Orchestrator process: how many complete, how many
fail (and how), the wall time, and the peak RSS of each process.

    python benchmarks/load.py                          # N = 100, 300, 1000; 20-step CartPole trials
    python benchmarks/load.py --trials 1000 --steps 50
    python benchmarks/load.py --trials 300 --timeout 120

Three processes per N, started fresh (so that each N's peak RSS is its own):
``cogment-gym serve CartPole-v1`` (the env service, TCP, no same-host socket), ``cogment-gym
orchestrator``, and a client process (this script with ``--client``) that starts N trials at
once (``TrialLifecycleSP.StartTrial``) and plays each as a client actor (``ClientActorSP.RunTrial``,
the facades' ClientSession) until its end (``max_steps``): every trial is in flight at the same
time, on one channel. A trial counts as completed when its final observation came and its
stream ended cleanly; any exception counts as an error, by type. Afterwards the Orchestrator and
the env service must report no trial left (their Status load).

Peak RSS is each process's VmHWM (Linux /proc), read just before it is stopped; CPU s its user +
system time (process start included), which says where the time goes on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from typing import Any

from common import Child, cpu_seconds, machine_facts

import grpc
from gymnasium import spaces

from cogment_gym._proto.cogment.api import common_pb2, environment_pb2_grpc, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import encode
from cogment_gym.envs.session import ClientSession
from cogment_gym.protocol import parse_endpoint
from cogment_gym.protocol.endpoints import CLIENT_ENDPOINT
from cogment_gym.protocol.failures import ORCHESTRATOR
from cogment_gym.protocol.links import GRPC_OPTIONS, Link
from cogment_gym.protocol.metadata import TRIAL_ID

ENV_ID = "CartPole-v1"


# ---------------------------------------------------------------------------------------- client


async def _play(stub: Any, actor: Any, environment: str, index: int, steps: int, timeout: float, actions: list[bytes]) -> int:
    """Start one trial, play it to its end; the steps played."""
    config = env_pb2.EnvConfig(seed=index, omit_reward_messages=True)
    params = common_pb2.TrialParams(
        environment=common_pb2.EnvironmentParams(name="env", endpoint=environment, implementation=ENV_ID,
                                                 config=common_pb2.SerializedMessage(content=config.SerializeToString())),
        actors=[common_pb2.ActorParams(name="player", actor_class="player", endpoint=CLIENT_ENDPOINT)],
        max_steps=steps,
    )
    reply = await stub.StartTrial(orchestrator_pb2.TrialStartRequest(params=params), timeout=timeout)
    call = actor.RunTrial(metadata=((TRIAL_ID, reply.trial_id),))
    session = ClientSession(Link(call, "orchestrator", ORCHESTRATOR), reply.trial_id, timeout)
    played = 0
    try:
        await session.join(actor_name="player")
        while True:
            event = await session.next_event()
            if event.final:
                break
            await session.act(actions[played % 2])
            played += 1
    finally:
        await session.finish()
    return played


async def _client(orchestrator: str, environment: str, trials: int, steps: int, timeout: float) -> dict[str, Any]:
    space = spaces.Discrete(2)
    actions = [env_pb2.ActionPayload(value=encode(space, a)).SerializeToString() for a in (0, 1)]
    async with grpc.aio.insecure_channel(parse_endpoint(orchestrator).grpc_target, options=GRPC_OPTIONS) as channel:
        stub, actor = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel), orchestrator_pb2_grpc.ClientActorSPStub(channel)
        started = time.perf_counter()
        results = await asyncio.gather(*(_play(stub, actor, environment, i, steps, timeout, actions) for i in range(trials)),
                                       return_exceptions=True)
        wall = time.perf_counter() - started
    errors = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
    examples = {type(r).__name__: str(r)[:300] for r in results if isinstance(r, BaseException)}
    return {
        "completed": sum(1 for r in results if not isinstance(r, BaseException)),
        "errors": dict(errors),
        "examples": examples,
        "steps": sum(r for r in results if isinstance(r, int)),
        "wall": wall,
        "rss_mb": _peak_rss_mb("self"),
        "cpu_s": sum(os.times()[:2]),
    }


# ---------------------------------------------------------------------------------------- parent


def _peak_rss_mb(pid: int | str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _load(endpoint: str, stub_class: Any) -> str:
    with grpc.insecure_channel(parse_endpoint(endpoint).grpc_target) as channel:
        reply = stub_class(channel).Status(common_pb2.StatusRequest(names=["*"]), timeout=10)
    return reply.statuses.get("overall_load", "?")


def run_case(trials: int, steps: int, timeout: float) -> dict[str, Any]:
    python = sys.executable
    env = Child([python, "-m", "cogment_gym.cli", "serve", ENV_ID, "--port", "0", "--no-local-socket"])
    try:
        orchestrator = Child([python, "-m", "cogment_gym.cli", "orchestrator", "--lifecycle-port", "0"])
        try:
            env_endpoint = env.line.rsplit(" ", 1)[1]
            orchestrator_endpoint = orchestrator.line.split()[3].rstrip(",")
            client = Child([python, __file__, "--client", "--orchestrator", orchestrator_endpoint, "--environment", env_endpoint,
                            "--trials", str(trials), "--steps", str(steps), "--timeout", str(timeout)])
            try:
                result: dict[str, Any] = json.loads(client.line)
            finally:
                client.stop()
            result["left"] = {"orchestrator": _load(orchestrator_endpoint, orchestrator_pb2_grpc.TrialLifecycleSPStub),
                              "env service": _load(env_endpoint, environment_pb2_grpc.EnvironmentSPStub)}
            result["rss_orchestrator_mb"] = _peak_rss_mb(orchestrator.popen.pid)
            result["rss_env_mb"] = _peak_rss_mb(env.popen.pid)
            result["cpu_orchestrator_s"] = cpu_seconds(orchestrator.popen.pid)
            result["cpu_env_s"] = cpu_seconds(env.popen.pid)
        finally:
            orchestrator.stop()
    finally:
        env.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 300, 1000], help="concurrent trials per case")
    parser.add_argument("--steps", type=int, default=20, help="max_steps of each trial (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=120.0, help="client deadline per RPC and per wait, seconds")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--orchestrator", help=argparse.SUPPRESS)
    parser.add_argument("--environment", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:  # the client process: one JSON line
        result = asyncio.run(_client(args.orchestrator, args.environment, args.trials[0], args.steps, args.timeout))
        print(json.dumps(result), flush=True)
        return

    for fact in machine_facts():
        print(fact)
    print(f"each trial: {ENV_ID}, max_steps={args.steps} (the trial's final observation is tick {args.steps + 1}); all trials started at once\n")
    header = f"{'trials':>7} {'completed':>9} {'errors':>7} {'lost':>5} {'wall s':>7} {'trials/s':>8} {'steps/s':>8}  " \
             f"{'peak RSS MB: client':>19} {'orch':>5} {'env':>5}  {'CPU s: client':>13} {'orch':>5} {'env':>5}  left (orch/env)"
    print(header)
    lost_total = 0
    for trials in args.trials:
        r = run_case(trials, args.steps, args.timeout)
        errors = sum(r["errors"].values())
        lost = trials - r["completed"]
        lost_total += lost
        print(f"{trials:>7} {r['completed']:>9} {errors:>7} {lost:>5} {r['wall']:>7.2f} {trials / r['wall']:>8.1f} {r['steps'] / r['wall']:>8.0f}  "
              f"{r['rss_mb']:>19.0f} {r['rss_orchestrator_mb']:>5.0f} {r['rss_env_mb']:>5.0f}  "
              f"{r['cpu_s']:>13.1f} {r['cpu_orchestrator_s']:>5.1f} {r['cpu_env_s']:>5.1f}  "
              f"{r['left']['orchestrator']}/{r['left']['env service']}", flush=True)
        for name, count in r["errors"].items():
            print(f"        {count} x {name}: {r['examples'][name]}")
    print(f"\n{'PASS' if lost_total == 0 else 'MISS'}: {lost_total} trial(s) lost over {sum(args.trials)}")


if __name__ == "__main__":
    main()
