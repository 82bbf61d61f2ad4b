#!/usr/bin/env python3
"""Train PPO (Stable-Baselines3) on CartPole through Cogment trials, the env in another process.

    pip install -e '.[sb3]'
    python examples/sb3_ppo_cartpole.py                     # serves CartPole itself, in a subprocess
    python examples/sb3_ppo_cartpole.py --environment grpc://127.0.0.1:9001   # or: cogment-gym serve CartPole-v1

The env service runs in another process (``cogment-gym serve CartPole-v1 --port 0``, started here
unless ``--environment`` names one); this process runs the Orchestrator (embedded) and 8 trials
at once through :class:`cogment_gym.integrations.sb3.CogmentVecEnv`. Hyperparameters are
rl-zoo's for CartPole-v1 PPO (n_envs 8, n_steps 32, batch 256, 20 epochs, gamma 0.98, GAE 0.8,
linear schedules from lr 1e-3 and clip 0.2). Prints the mean return of ``--eval-episodes``
deterministic episodes (also through the bridge) and exits 0 if it reaches ``--target``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a clone without installing
    sys.path.insert(0, str(ROOT))


@contextlib.contextmanager
def served_cartpole() -> Iterator[str]:
    """``cogment-gym serve CartPole-v1 --port 0`` in a subprocess; yields its endpoint."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen(
        [sys.executable, "-m", "cogment_gym.cli", "serve", "CartPole-v1", "--port", "0"],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()  # "serving CartPole-v1 at grpc://127.0.0.1:PORT"
        if not line.startswith("serving "):
            raise RuntimeError(f"the env service did not start (exit code {process.poll()}): {line!r}")
        yield line.rsplit(" ", 1)[-1]
    finally:
        process.terminate()  # SIGTERM: the CLI stops serving and exits 0
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def linear(start: float) -> Callable[[float], float]:
    return lambda progress_remaining: progress_remaining * start


def train(endpoint: str, timesteps: int, seed: int, eval_episodes: int, envs_per_trial: int = 1) -> dict[str, float]:
    import numpy as np
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecMonitor

    from cogment_gym.integrations.sb3 import CogmentVecEnv

    torch.set_num_threads(1)  # a 64x64 MLP: threads cost more than they bring, and leave the env a core
    venv = VecMonitor(CogmentVecEnv(environment=endpoint, num_envs=8, envs_per_trial=envs_per_trial))
    eval_env = VecMonitor(CogmentVecEnv(environment=endpoint, num_envs=4))
    try:
        model = PPO(
            "MlpPolicy", venv, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
            learning_rate=linear(1e-3), clip_range=linear(0.2), seed=seed, device="cpu", verbose=0,
        )
        started = time.perf_counter()
        model.learn(total_timesteps=timesteps)
        train_seconds = time.perf_counter() - started
        eval_env.seed(seed + 1000)
        returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True, return_episode_rewards=True)
    finally:
        venv.close()
        eval_env.close()
    episode_returns = np.asarray(returns, dtype=np.float64)
    return {"mean_return": float(episode_returns.mean()), "std_return": float(episode_returns.std()), "train_seconds": train_seconds,
            "timesteps": float(model.num_timesteps), "steps_per_second": model.num_timesteps / train_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--environment", help="endpoint of a CartPole-v1 env service (default: serve one in a subprocess)")
    parser.add_argument("--timesteps", type=int, default=100_000, help="training steps (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of PPO and of the env resets (default: %(default)s)")
    parser.add_argument("--eval-episodes", type=int, default=20, help="evaluation episodes (default: %(default)s)")
    parser.add_argument("--target", type=float, default=475.0, help="mean return to reach (default: %(default)s)")
    parser.add_argument("--envs-per-trial", type=int, default=1, choices=(1, 2, 4, 8),
                        help="training sub-envs per Cogment trial: 1 = one episode per trial, 8 = one batched trial (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        endpoint = args.environment or stack.enter_context(served_cartpole())
        results = train(endpoint, args.timesteps, args.seed, args.eval_episodes, args.envs_per_trial)
    results["target"] = args.target
    if args.json:
        print(json.dumps(results), flush=True)
    else:
        print(f"trained {results['timesteps']:.0f} steps in {results['train_seconds']:.1f} s "
              f"({results['steps_per_second']:.0f} steps/s, env at {endpoint})")
        print(f"mean return over {args.eval_episodes} episodes: {results['mean_return']:.1f} +/- {results['std_return']:.1f} "
              f"(target {args.target:g})")
    return 0 if results["mean_return"] >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
