#!/usr/bin/env python3
"""Train PPO (RLlib, new API stack) on CartPole through Cogment trials, with 2 env runners.

    pip install -e '.[rllib]'
    python examples/rllib_ppo_cartpole.py                      # serves CartPole itself (background thread)
    python examples/rllib_ppo_cartpole.py --environment grpc://127.0.0.1:9001   # or: cogment-gym serve CartPole-v1

The env service is ``cogment_gym.serve("CartPole-v1")`` in this process (or the one that
``--environment`` names). Each RLlib env runner is a Ray worker process that builds, from the
``env_config`` (an endpoint string), a :class:`~cogment_gym.envs.CogmentVectorEnv` with its own
embedded Orchestrator, and plays ``--envs-per-runner`` trials at once against the service
(``--vectorize-mode sync`` instead gives RLlib one :class:`~cogment_gym.CogmentEnv` per sub-env).
Hyperparameters follow RLlib's tuned CartPole PPO example (lr 3e-4, 6 epochs, value loss
coefficient 0.01, one hidden layer of 32, shared value layers), with smaller batches. Prints
the mean episode return after each iteration; exits 0 if the last one reaches ``--target``.
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


def train(
    endpoint: str,
    *,
    iterations: int = 20,
    env_runners: int = 2,
    envs_per_runner: int = 4,
    train_batch_size: int = 2000,
    vectorize_mode: str = "vector_entry_point",
    seed: int = 0,
    report: Any = None,
) -> dict[str, Any]:
    """Run ``iterations`` PPO iterations against the CartPole service at ``endpoint``.

    Ray must be initialised (``ray.init``). ``report(iteration, results)`` is called after each
    iteration if given. Returns what was measured: env steps sampled, episodes, the mean return
    after each iteration, train time.
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.utils.metrics import (
        ENV_RUNNER_RESULTS,
        EPISODE_RETURN_MEAN,
        NUM_ENV_STEPS_SAMPLED_LIFETIME,
        NUM_EPISODES_LIFETIME,
    )

    from cogment_gym.integrations.rllib import register_cogment_env

    config = (
        PPOConfig()
        .environment(register_cogment_env("cogment-cartpole"), env_config={"environment": endpoint})
        .env_runners(
            num_env_runners=env_runners,
            num_envs_per_env_runner=envs_per_runner,
            gym_env_vectorize_mode=vectorize_mode,
        )
        .training(
            lr=3e-4, num_epochs=6, vf_loss_coeff=0.01,
            train_batch_size_per_learner=train_batch_size, minibatch_size=min(128, train_batch_size),
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[32], fcnet_activation="linear", vf_share_layers=True))
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    returns: list[float] = []
    env_steps = episodes = 0
    try:
        started = time.perf_counter()
        for iteration in range(1, iterations + 1):
            results = algo.train()
            runners = results[ENV_RUNNER_RESULTS]
            returns.append(float(runners.get(EPISODE_RETURN_MEAN, math.nan)))
            env_steps = int(runners[NUM_ENV_STEPS_SAMPLED_LIFETIME])
            episodes = int(runners.get(NUM_EPISODES_LIFETIME, 0))
            if report is not None:
                report(iteration, runners)
        train_seconds = time.perf_counter() - started
    finally:
        algo.stop()  # stops the env runners, which close their envs: trials and Orchestrators end
    return {
        "iterations": iterations, "env_steps": env_steps, "episodes": episodes, "returns": returns,
        "final_return": returns[-1], "train_seconds": train_seconds, "steps_per_second": env_steps / train_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--environment", help="endpoint of a CartPole-v1 env service (default: serve one here)")
    parser.add_argument("--iterations", type=int, default=20, help="PPO iterations (default: %(default)s)")
    parser.add_argument("--env-runners", type=int, default=2, help="Ray env runner processes (default: %(default)s)")
    parser.add_argument("--envs-per-runner", type=int, default=4, help="trials in flight per env runner (default: %(default)s)")
    parser.add_argument("--train-batch-size", type=int, default=2000, help="env steps per iteration (default: %(default)s)")
    parser.add_argument("--vectorize-mode", choices=["vector_entry_point", "sync"], default="vector_entry_point",
                        help="one CogmentVectorEnv per runner, or RLlib's SyncVectorEnv of CogmentEnvs (default: %(default)s)")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs Ray may use (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of PPO and of the env resets (default: %(default)s)")
    parser.add_argument("--target", type=float, default=150.0, help="mean return to reach (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = parser.parse_args(argv)

    import ray
    from ray.job_config import JobConfig

    import cogment_gym

    def report(iteration: int, runners: dict[str, Any]) -> None:
        if not args.json:
            print(f"iteration {iteration:3d}: {int(runners['num_env_steps_sampled_lifetime']):7d} env steps, "
                  f"mean return {runners.get('episode_return_mean', math.nan):6.1f}", flush=True)

    with contextlib.ExitStack() as stack:
        server = None
        if args.environment:
            endpoint = args.environment
        else:
            server = stack.enter_context(cogment_gym.serve("CartPole-v1"))
            endpoint = server.endpoint
        # The env runners are new processes: they import cogment_gym from ROOT too.
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, job_config=JobConfig(code_search_path=[str(ROOT)]))
        stack.callback(ray.shutdown)
        results = train(
            endpoint, iterations=args.iterations, env_runners=args.env_runners, envs_per_runner=args.envs_per_runner,
            train_batch_size=args.train_batch_size, vectorize_mode=args.vectorize_mode, seed=args.seed, report=report,
        )
        if server is not None:
            results["trials_served"] = server.servicer.trials_played
    results["target"] = args.target
    if args.json:
        print(json.dumps(results), flush=True)
    else:
        print(f"{results['env_steps']} env steps ({results['episodes']} episodes) in {results['train_seconds']:.1f} s "
              f"({results['steps_per_second']:.0f} steps/s, env at {endpoint})")
        if "trials_served" in results:
            print(f"trials played by the env service: {results['trials_served']}")
        print(f"mean return of the last iteration: {results['final_return']:.1f} (target {args.target:g})")
    return 0 if results["final_return"] >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
