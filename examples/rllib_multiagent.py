#!/usr/bin/env python3
"""Multi-agent PPO (RLlib, new API stack) on PettingZoo's multiwalker through Cogment trials.

    pip install -e '.[rllib,pettingzoo]'
    python examples/rllib_multiagent.py                 # serves multiwalker_v9 itself (background thread)
    python examples/rllib_multiagent.py --environment grpc://127.0.0.1:9001
        # or: a service of pettingzoo.sisl.multiwalker_v9 with the parallel API, e.g.
        # cogment_gym.serve("pettingzoo.sisl.multiwalker_v9", api="parallel")

Every walker is a Cogment actor of the served game; each env runner (a Ray worker process)
plays all of them as client actors of its trials, through
:class:`~cogment_gym.CogmentParallelEnv` wrapped in RLlib's ``ParallelPettingZooEnv``. One
policy is shared by the three walkers (parameter sharing). Episodes are cut at ``--max-cycles``
steps. Prints the mean episode return (sum over walkers) after each iteration: a short run only
shows the loop working; multiwalker takes millions of steps to learn.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

# Ray starts its processes with fork() + exec() while this process serves gRPC: gRPC's fork
# handlers must be off (before grpc is imported), or a child may abort before its exec.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a clone without installing
    sys.path.insert(0, str(ROOT))

GAME = "pettingzoo.sisl.multiwalker_v9"


def train(
    endpoint: str,
    *,
    iterations: int = 5,
    env_runners: int = 2,
    train_batch_size: int = 1000,
    seed: int = 0,
    report: Any = None,
) -> dict[str, Any]:
    """Run ``iterations`` PPO iterations against the multiwalker service at ``endpoint``
    (served with the parallel API). Ray must be initialised. Returns what was measured."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.utils.metrics import (
        ENV_RUNNER_RESULTS,
        EPISODE_RETURN_MEAN,
        NUM_AGENT_STEPS_SAMPLED_LIFETIME,
        NUM_ENV_STEPS_SAMPLED_LIFETIME,
        NUM_EPISODES_LIFETIME,
    )

    from cogment_gym.integrations.rllib import register_cogment_env

    config = (
        PPOConfig()
        .environment(register_cogment_env("cogment-multiwalker", multi_agent=True), env_config={"environment": endpoint})
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kwargs: "shared")
        .env_runners(num_env_runners=env_runners, num_envs_per_env_runner=1)
        .training(train_batch_size_per_learner=train_batch_size, minibatch_size=min(256, train_batch_size), num_epochs=4)
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    returns: list[float] = []
    env_steps = episodes = 0
    agent_steps: dict[str, int] = {}
    try:
        started = time.perf_counter()
        for iteration in range(1, iterations + 1):
            runners = algo.train()[ENV_RUNNER_RESULTS]
            returns.append(float(runners.get(EPISODE_RETURN_MEAN, math.nan)))
            env_steps = int(runners[NUM_ENV_STEPS_SAMPLED_LIFETIME])
            episodes = int(runners.get(NUM_EPISODES_LIFETIME, 0))
            agent_steps = {str(agent): int(n) for agent, n in runners.get(NUM_AGENT_STEPS_SAMPLED_LIFETIME, {}).items()}
            if report is not None:
                report(iteration, runners)
        train_seconds = time.perf_counter() - started
    finally:
        algo.stop()  # stops the env runners, which close their envs: trials and Orchestrators end
    return {
        "iterations": iterations, "env_steps": env_steps, "agent_steps": agent_steps, "episodes": episodes,
        "returns": returns, "final_return": returns[-1], "train_seconds": train_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--environment", help=f"endpoint of a {GAME} service, parallel API (default: serve one here)")
    parser.add_argument("--iterations", type=int, default=5, help="PPO iterations (default: %(default)s)")
    parser.add_argument("--env-runners", type=int, default=2, help="Ray env runner processes (default: %(default)s)")
    parser.add_argument("--train-batch-size", type=int, default=1000, help="env steps per iteration (default: %(default)s)")
    parser.add_argument("--max-cycles", type=int, default=100, help="episode length limit of the served game (default: %(default)s)")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs Ray may use (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of PPO and of the env resets (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = parser.parse_args(argv)

    import ray
    from ray.job_config import JobConfig

    import cogment_gym

    def report(iteration: int, runners: dict[str, Any]) -> None:
        if not args.json:
            print(f"iteration {iteration:3d}: {int(runners['num_env_steps_sampled_lifetime']):7d} env steps, "
                  f"mean return {runners.get('episode_return_mean', math.nan):8.2f}", flush=True)

    with contextlib.ExitStack() as stack:
        server = None
        if args.environment:
            endpoint = args.environment
        else:
            server = stack.enter_context(cogment_gym.serve(GAME, api="parallel", env_kwargs={"max_cycles": args.max_cycles}))
            endpoint = server.endpoint
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, job_config=JobConfig(code_search_path=[str(ROOT)]))
        stack.callback(ray.shutdown)
        results = train(endpoint, iterations=args.iterations, env_runners=args.env_runners,
                        train_batch_size=args.train_batch_size, seed=args.seed, report=report)
        if server is not None:
            results["trials_served"] = server.servicer.trials_played
    if args.json:
        print(json.dumps(results), flush=True)
    else:
        print(f"{results['env_steps']} env steps ({results['episodes']} episodes; agent steps {results['agent_steps']}) "
              f"in {results['train_seconds']:.1f} s, env at {endpoint}")
        if "trials_served" in results:
            print(f"trials played by the env service: {results['trials_served']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
