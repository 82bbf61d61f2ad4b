"""``cogment-gym run``: random episodes through CogmentEnv, with returns and throughput."""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import time
from typing import Any, TextIO

import gymnasium as gym

from cogment_gym.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    StopSignals,
    UsageError,
    add_security_arguments,
    describe,
    error,
    input_errors,
    non_negative_int,
    positive_int,
    security_from_args,
)
from cogment_gym.cli.progress import Progress

__all__ = ["add_parser", "main"]

logger = logging.getLogger(__name__)


def add_parser(commands: Any) -> None:
    run = commands.add_parser("run", help="run episodes of a random policy through CogmentEnv and report throughput",
                              description="Run episodes with a random policy through CogmentEnv (one episode = one "
                              "Cogment trial). Embedded by default; --environment / --orchestrator use running services.")
    run.add_argument("env_id", metavar="ENV_ID",
                     help="Gymnasium id (with --environment: the implementation served there)")
    run.add_argument("--episodes", type=positive_int, default=20, help="episodes to run (default: %(default)s)")
    run.add_argument("--seed", type=non_negative_int, default=None, help="seed of the first reset and of the policy")
    run.add_argument("--environment", metavar="ENDPOINT", help="environment service, e.g. grpc://127.0.0.1:9001")
    run.add_argument("--orchestrator", metavar="ENDPOINT", help="Orchestrator, e.g. grpc://127.0.0.1:9000 (needs --environment)")
    run.add_argument("--max-steps", type=non_negative_int, default=0, help="Cogment max_steps of each trial: it ends after max_steps+1 actions, as in Cogment (0: no limit)")
    add_security_arguments(run, serves=False, dials=True)
    run.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    from cogment_gym import CogmentEnv

    if args.orchestrator is not None and args.environment is None:
        raise UsageError("--orchestrator needs --environment: a remote orchestrator cannot reach an environment in this process")
    security = security_from_args(args)
    if security is not None and args.environment is None:
        raise UsageError("TLS and token options secure the connections to --environment / --orchestrator; an embedded run has none")
    started = time.perf_counter()
    try:
        if args.environment is not None:
            where = f"environment {args.environment}" + (f", orchestrator {args.orchestrator}" if args.orchestrator else "")
            env = CogmentEnv(environment=args.environment, implementation=args.env_id, orchestrator=args.orchestrator,
                             max_steps=args.max_steps, security=security)
        else:
            where = "embedded"
            env = CogmentEnv(args.env_id, max_steps=args.max_steps)
    except input_errors() as err:
        raise UsageError(f"cannot run {args.env_id}: {describe(err)}") from None
    setup = time.perf_counter() - started
    try:
        with StopSignals() as stop:
            returns, steps, elapsed = _random_episodes(env, args.episodes, args.seed, Progress(args.episodes, sys.stderr), stop.event)
    except Exception as err:  # a trial failed: report it in one line, details in the log
        logger.debug("run failed", exc_info=True)
        error(f"{args.env_id}: {type(err).__name__}: {describe(err)}")
        return EXIT_FAILED
    finally:
        env.close()
    _summary(sys.stdout, args.env_id, where, returns, steps, elapsed, setup)
    return EXIT_INTERRUPTED if len(returns) < args.episodes else EXIT_OK


def _random_episodes(env: gym.Env[Any, Any], episodes: int, seed: int | None, progress: Progress,
                     stop: threading.Event) -> tuple[list[float], int, float]:
    """Run ``episodes`` episodes with uniformly random actions; returns (returns, steps, seconds)."""
    env.action_space.seed(seed)
    returns: list[float] = []
    steps = 0
    started = time.perf_counter()
    for episode in range(episodes):
        if stop.is_set():
            break
        env.reset(seed=seed if episode == 0 else None)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        progress.update(len(returns), steps, time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    progress.close()
    return returns, steps, elapsed


def _summary(out: TextIO, env_id: str, where: str, returns: list[float], steps: int, elapsed: float, setup: float) -> None:
    n = len(returns)
    lines = [f"{env_id} ({where}), random policy: {n} episodes, {steps} steps in {elapsed:.2f} s (setup {setup:.2f} s)"]
    if n:
        mean = math.fsum(returns) / n
        lines.append(f"return: mean {mean:.2f}  min {min(returns):.2f}  max {max(returns):.2f}")
    per_second = 1 / elapsed if elapsed > 0 else float("nan")
    lines.append(f"throughput: {steps * per_second:,.1f} steps/s  {n * per_second:,.2f} episodes/s")
    out.write("\n".join(lines) + "\n")
    out.flush()
