"""``cogment-gym run``: random episodes through CogmentEnv, with returns and throughput."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import time
from typing import Any, TextIO

import gymnasium as gym
import numpy as np

from cogment_gym.cli import seats
from cogment_gym.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    SignalFlag,
    StopSignals,
    UsageError,
    add_security_arguments,
    describe,
    endpoint_arg,
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
    run.add_argument("--max-steps", type=non_negative_int, default=0, help="Cogment max_steps of each trial: it ends after max_steps+1 actions, as in Cogment (default 0: no "
                     "limit, or with --orchestrator the one of its --params file)")
    seats.add_run_arguments(run)
    add_security_arguments(run, serves=False, dials=True)
    run.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    if args.orchestrator is not None and args.environment is None:
        raise UsageError("--orchestrator needs --environment: a remote orchestrator cannot reach an environment in this process")
    security = security_from_args(args)
    if security is not None and args.environment is None:
        raise UsageError("TLS and token options secure the connections to --environment / --orchestrator; an embedded run has none")
    with contextlib.ExitStack() as cleanup:
        return _run(args, security, cleanup)


def _run(args: argparse.Namespace, security: Any, cleanup: contextlib.ExitStack) -> int:
    from cogment_gym import CogmentEnv

    bad_input: tuple[type[BaseException], ...] = (UsageError, *input_errors())
    started = time.perf_counter()
    seat_returns = seats.SeatReturns(args.seed)
    try:
        for role, endpoint in (("environment", args.environment), ("orchestrator", args.orchestrator)):
            if endpoint is not None:
                endpoint_arg(role, endpoint)
        services = seats.check_service_actors(args.service_actor, args.agent)
        seats.probe_service_actors(services, security)
        # The other seats of a multi-agent game (ignored by single-agent envs); a remote
        # Orchestrator reaches them served on this host.
        others: Any = seats.seat_policy(args.others, seat_returns)
        if args.orchestrator is not None:
            others = cleanup.enter_context(seats.serve_seats(others, args.environment, security)).endpoint
        players = dict(agent=args.agent, service_actors=services or None, others=others)
        if args.environment is not None:
            where = f"environment {args.environment}" + (f", orchestrator {args.orchestrator}" if args.orchestrator else "")
            env = CogmentEnv(environment=args.environment, implementation=args.env_id, orchestrator=args.orchestrator,
                             max_steps=args.max_steps, security=security, **players)
        else:
            where = "embedded"
            env = CogmentEnv(args.env_id, max_steps=args.max_steps, **players)
    except bad_input as err:
        raise UsageError(f"cannot run {args.env_id}: {describe(err)}") from None
    setup = time.perf_counter() - started
    trials: list[str] = []
    try:
        with StopSignals() as stop:
            returns, steps, elapsed = _random_episodes(env, args.episodes, args.seed, Progress(args.episodes, sys.stderr), stop.event, trials)
    except Exception as err:  # a trial failed: report it in one line, details in the log
        logger.debug("run failed: %s", err, exc_info=True)
        error(f"{args.env_id} failed: {describe(err)}")
        return EXIT_FAILED
    finally:
        env.close()
    per_agent = None
    if env.agent is not None:
        order = [env.agent, *env.other_agents]
        in_process = [name for name in env.other_agents if name not in services]
        per_agent = seats.return_lines((env.agent, returns), seat_returns.collect(trials, len(in_process)),
                                       seats.describe_seats(env.agent, order, services, args.others), order)
    _summary(sys.stdout, args.env_id, where, returns, steps, elapsed, setup, per_agent)
    return EXIT_INTERRUPTED if len(returns) < args.episodes else EXIT_OK


def _random_episodes(env: gym.Env[Any, Any], episodes: int, seed: int | None, progress: Progress,
                     stop: SignalFlag, trials: list[str]) -> tuple[list[float], int, float]:
    """Run ``episodes`` episodes with uniformly random (legal) actions; returns (returns, steps,
    seconds) and appends each episode's trial id to ``trials``."""
    space = env.action_space
    space.seed(seed)
    returns: list[float] = []
    steps = 0
    started = time.perf_counter()
    for episode in range(episodes):
        if stop.is_set():
            break
        obs, info = env.reset(seed=seed if episode == 0 else None)
        total, done = 0.0, False
        while not done:
            mask = seats.legal_mask(obs, info) if isinstance(space, gym.spaces.Discrete) else None
            action = space.sample() if mask is None else space.sample(mask=np.asarray(mask, dtype=np.int8))
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        trials.append(getattr(env, "trial_id", ""))
        progress.update(len(returns), steps, time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    progress.close()
    return returns, steps, elapsed


def _summary(out: TextIO, env_id: str, where: str, returns: list[float], steps: int, elapsed: float, setup: float,
             per_agent: list[str] | None = None) -> None:
    n = len(returns)
    lines = [f"{env_id} ({where}), random policy: {n} episodes, {steps} steps in {elapsed:.2f} s (setup {setup:.2f} s)"]
    if per_agent is not None:  # a multi-agent game: steps are this run's agent's
        lines.extend(per_agent)
    elif n:
        mean = math.fsum(returns) / n
        lines.append(f"return: mean {mean:.2f}  min {min(returns):.2f}  max {max(returns):.2f}")
    per_second = 1 / elapsed if elapsed > 0 else float("nan")
    lines.append(f"throughput: {steps * per_second:,.1f} steps/s  {n * per_second:,.2f} episodes/s")
    out.write("\n".join(lines) + "\n")
    out.flush()
