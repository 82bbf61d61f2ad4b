#!/usr/bin/env python3
"""CartPole through cogment_gym, against the floors it cannot beat. One run prints one table.

    python benchmarks/cartpole_grpc.py                       # all cases, TCP on 127.0.0.1
    python benchmarks/cartpole_grpc.py --unix-socket         # env service and echo on unix sockets
    python benchmarks/cartpole_grpc.py --loop background     # CogmentEnv's event loop in a thread
    python benchmarks/cartpole_grpc.py --profile client.prof # also cProfile case (c)

Cases (the same balancing policy everywhere, so episodes last 500 steps unless capped):

  (a)  CartPole stepped directly (gymnasium, this process);
  (b)  a bare grpc.aio bidi ping-pong with another process (this script with ``--echo-server``):
       raw bytes through generic method handlers, one request of the size of what the Orchestrator
       sends the environment per CartPole step, one reply of the size of what the environment
       answers per step; the client loop runs freely;
  (b') the same round trips, each driven from synchronous code by ``run_until_complete`` (what
       CogmentEnv does per step with its caller-thread loop);
  (c)  CogmentEnv(environment=<endpoint>) with ``cogment-gym serve CartPole-v1`` in another process;
  (d)  the same with 20-step trials (Cogment max_steps=19): what starting trials costs;
  (e)  CogmentEnv("CartPole-v1") embedded, no other process.

Every case is warmed up, then measured in ``--rounds`` slices interleaved with the other cases
(a, b, b', c, d, e, a, b, ...) for ``--seconds`` of wall time in all, so that load from elsewhere on
the machine hits every case alike. Targets: (c)/(b) >= 0.85 (the bridge adds at most 15% to a bare
round trip) and (d)/(c) >= 0.67 (docs/DESIGN: short episodes may lose at most a third). The exit
code is 0 whatever the numbers; PASS/MISS lines compare them to the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ECHO_METHOD, ECHO_SERVICE, child, machine_facts, serve_echo  # noqa: E402

SHORT_EPISODE = 20
TARGET_BRIDGE = 0.85
TARGET_SHORT = 2 / 3


# ---------------------------------------------------------------------------------------- cases


def policy(obs: np.ndarray) -> int:
    """Push toward where the pole falls: keeps CartPole up until its 500-step limit."""
    return int(obs[2] + 0.5 * obs[3] > 0)


@dataclass
class Sample:
    steps: int = 0
    episodes: int = 0
    seconds: float = 0.0
    lengths: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.steps / self.seconds if self.seconds else float("nan")

    def add(self, other: Sample) -> None:
        self.steps += other.steps
        self.episodes += other.episodes
        self.seconds += other.seconds
        self.lengths += other.lengths


class Case:
    """One row of the table. ``step`` does one env step (or one round trip) and says whether an
    episode ended; ``measure`` runs it for a wall time."""

    def __init__(self, key: str, name: str) -> None:
        self.key, self.name = key, name
        self.total = Sample()
        self.rounds: list[float] = []
        self.profiler: cProfile.Profile | None = None

    def step(self) -> bool:
        raise NotImplementedError

    def measure(self, seconds: float) -> Sample:
        sample = Sample()
        if self.profiler is not None:
            self.profiler.enable()
        started = now = time.perf_counter()
        end = started + seconds
        while now < end:
            if self.step():
                sample.episodes += 1
            sample.steps += 1
            now = time.perf_counter()
        sample.seconds = now - started
        if self.profiler is not None:
            self.profiler.disable()
        sample.lengths = self.take_lengths()
        return sample

    def take_lengths(self) -> list[int]:
        return []

    def close(self) -> None:
        pass


class EnvCase(Case):
    """Steps a Gymnasium env (direct or CogmentEnv) with :func:`policy`, resetting at episode end.
    A reset counts in the time of the step that ended the episode."""

    def __init__(self, key: str, name: str, env: gym.Env[Any, Any]) -> None:
        super().__init__(key, name)
        self.env = env
        self.obs, _ = env.reset(seed=0)
        self.length = 0
        self.lengths: list[int] = []

    def step(self) -> bool:
        obs, _, terminated, truncated, _ = self.env.step(policy(self.obs))
        self.length += 1
        if terminated or truncated:
            self.lengths.append(self.length)
            self.length = 0
            obs, _ = self.env.reset()
        self.obs = obs
        return bool(terminated or truncated)

    def take_lengths(self) -> list[int]:
        lengths, self.lengths = self.lengths, []
        return lengths

    def close(self) -> None:
        self.env.close()


class PingPong:
    """One echo stream, on a loop of its own."""

    def __init__(self, target: str, request_size: int) -> None:
        self.request = bytes(request_size)
        self.loop = asyncio.new_event_loop()
        self.channel, self.call = self.loop.run_until_complete(self._open(target))

    async def _open(self, target: str) -> tuple[grpc.aio.Channel, Any]:  # a channel belongs to the loop it is made on
        channel = grpc.aio.insecure_channel(target)
        call = channel.stream_stream(f"/{ECHO_SERVICE}/{ECHO_METHOD}")()  # no (de)serializers: raw bytes
        await call.write(self.request)
        await call.read()
        return channel, call

    async def round_trip(self) -> None:
        await self.call.write(self.request)
        await self.call.read()

    async def round_trips(self, seconds: float) -> Sample:
        started = now = time.perf_counter()
        end = started + seconds
        n = 0
        while now < end:
            await self.call.write(self.request)
            await self.call.read()
            n += 1
            now = time.perf_counter()
        return Sample(n, 0, now - started)

    def close(self) -> None:
        async def finish() -> None:  # half-close and wait for the status: nothing left for a closed loop
            await self.call.done_writing()
            while await self.call.read() is not grpc.aio.EOF:
                pass
            await self.call.code()
            await self.channel.close()

        try:
            self.loop.run_until_complete(finish())
        finally:
            self.loop.close()


class AsyncPingPong(Case):
    def __init__(self, key: str, name: str, ping_pong: PingPong) -> None:
        super().__init__(key, name)
        self.ping_pong = ping_pong

    def measure(self, seconds: float) -> Sample:
        return self.ping_pong.loop.run_until_complete(self.ping_pong.round_trips(seconds))


class DrivenPingPong(Case):
    def __init__(self, key: str, name: str, ping_pong: PingPong) -> None:
        super().__init__(key, name)
        self.ping_pong = ping_pong

    def step(self) -> bool:
        self.ping_pong.loop.run_until_complete(self.ping_pong.round_trip())
        return False


# ---------------------------------------------------------------------------------------- setup


def step_sizes() -> tuple[int, int]:
    """Bytes the Orchestrator sends the environment per CartPole step, and bytes it gets back
    (reward and observation set), measured on a real trial in this process."""
    import cogment_gym
    from cogment_gym.protocol import links

    sent: list[int] = []
    received: list[int] = []
    original_write, original_read = links.Link.write, links.Link.read

    async def write(self: Any, message: Any) -> None:
        if type(message).__name__ == "EnvRunTrialInput" and message.HasField("action_set"):
            sent.append(message.ByteSize())
        await original_write(self, message)

    async def read(self: Any) -> Any:
        message = await original_read(self)
        if type(message).__name__ == "EnvRunTrialOutput" and message.WhichOneof("data") in ("observation_set", "reward"):
            received.append(message.ByteSize())
        return message

    links.Link.write, links.Link.read = write, read  # type: ignore[method-assign]
    try:
        with cogment_gym.serve("CartPole-v1") as server:
            case = EnvCase("probe", "probe", cogment_gym.CogmentEnv(environment=server.endpoint))
            try:
                for _ in range(200):
                    case.step()
            finally:
                case.close()
    finally:
        links.Link.write, links.Link.read = original_write, original_read  # type: ignore[method-assign]
    return round(statistics.mean(sent)), round(sum(received) / len(sent))


def use_loop(kind: str) -> None:
    """Where CogmentEnv runs its event loop: the caller's thread (what make_runner() picks) or a
    background thread."""
    if kind == "caller":
        return
    from cogment_gym.envs import cogment_env
    from cogment_gym.protocol.runtime import BackgroundLoop

    cogment_env.make_runner = lambda: BackgroundLoop("cogment-gym-client")  # type: ignore[assignment]


# ---------------------------------------------------------------------------------------- report


def verdict(name: str, value: float, spread: tuple[float, float], target: float, note: str) -> str:
    mark = "PASS" if value >= target else "MISS"
    return f"{mark} {name} = {value:.2f} (rounds {spread[0]:.2f}..{spread[1]:.2f}; target >= {target:.2f}: {note})"


def ratio(cases: dict[str, Case], top: str, bottom: str) -> tuple[float, tuple[float, float]]:
    """Overall ratio of two cases' rates, and its range over the rounds."""
    per_round = [t / b for t, b in zip(cases[top].rounds, cases[bottom].rounds)]
    return cases[top].total.rate / cases[bottom].total.rate, (min(per_round), max(per_round))


def print_table(cases: dict[str, Case]) -> None:
    width = max(len(case.name) for case in cases.values())
    direct = cases["a"].total.rate
    print(f"{'case':<{width}}  {'steps/s':>9}  {'spread':>6}  {'episodes/s':>10}  {'steps/ep':>8}  {'us/step':>8}  {'vs (a)':>7}")
    for case in cases.values():
        total = case.total
        median = statistics.median(case.rounds)
        spread = f"{(max(case.rounds) - min(case.rounds)) / median:6.0%}" if median else f"{'-':>6}"
        episodes = f"{total.episodes / total.seconds:10.1f}" if total.episodes else f"{'-':>10}"
        per_episode = f"{statistics.mean(total.lengths):8.0f}" if total.lengths else f"{'-':>8}"
        print(f"{case.name:<{width}}  {total.rate:9,.0f}  {spread}  {episodes}  {per_episode}  "
              f"{1e6 / total.rate:8.1f}  {total.rate / direct:7.3f}")
    print("(b) and (b') count round trips: one per CartPole step is the floor for (c). "
          "spread: (max-min)/median of the per-round rates.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0], epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured wall time per case, all rounds together (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved slices per case (default: %(default)s)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured wall time per case first (default: %(default)s)")
    parser.add_argument("--loop", choices=("caller", "background"), default="caller",
                        help="where CogmentEnv runs its event loop (default: %(default)s, what make_runner() picks)")
    parser.add_argument("--unix-socket", action="store_true", help="env service and echo server on unix sockets instead of TCP")
    parser.add_argument("--profile", metavar="FILE", help="cProfile case (c): top functions to stderr, stats to FILE")
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--address", default="127.0.0.1:0", help=argparse.SUPPRESS)
    parser.add_argument("--reply-size", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_server:
        serve_echo(args.address, args.reply_size)
        return 0
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be >= 1 and --seconds > 0")

    from cogment_gym import CogmentEnv

    use_loop(args.loop)
    for line in machine_facts():
        print(line)
    transport = "unix socket" if args.unix_socket else "TCP 127.0.0.1"
    if not args.unix_socket:  # TCP means TCP: not the unix socket a TCP service also announces
        os.environ["COGMENT_GYM_LOCAL_SOCKET"] = "0"
    print(f"settings: {args.seconds:g} s per case in {args.rounds} interleaved rounds, after {args.warmup:g} s warmup; "
          f"transport {transport}; CogmentEnv loop: {args.loop}", flush=True)

    request_size, reply_size = step_sizes()
    print(f"one CartPole step between Orchestrator and env: {request_size} B sent, {reply_size} B back "
          "(reward and observation set)\n", flush=True)

    cases: dict[str, Case] = {}
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="cogment-gym-bench-") as tmp:
        def add(case: Case) -> None:
            stack.callback(case.close)
            cases[case.key] = case

        add(EnvCase("a", "(a)  gymnasium CartPole, stepped directly", gym.make("CartPole-v1")))

        echo_address = f"unix:{tmp}/echo.sock" if args.unix_socket else "127.0.0.1:0"
        echo = stack.enter_context(child([sys.executable, __file__, "--echo-server", "--address", echo_address,
                                          "--reply-size", str(reply_size)]))
        ping_pong = PingPong(echo_address if args.unix_socket else f"127.0.0.1:{echo.line}", request_size)
        stack.callback(ping_pong.close)
        kind = "unix" if args.unix_socket else "tcp"
        cases["b"] = AsyncPingPong("b", f"(b)  grpc.aio ping-pong, 2 processes ({kind})", ping_pong)
        cases["b'"] = DrivenPingPong("b'", "(b') same, run_until_complete per round trip", ping_pong)

        serve = [sys.executable, "-m", "cogment_gym.cli", "serve", "CartPole-v1"]
        serve += ["--unix-socket", f"{tmp}/env.sock"] if args.unix_socket else ["--port", "0"]
        endpoint = stack.enter_context(child(serve)).line.rsplit(" ", 1)[-1]
        add(EnvCase("c", f"(c)  CogmentEnv -> env process ({kind}), 500-step episodes", CogmentEnv(environment=endpoint)))
        add(EnvCase("d", f"(d)  same, {SHORT_EPISODE}-step trials (max_steps={SHORT_EPISODE - 1})",
                    CogmentEnv(environment=endpoint, max_steps=SHORT_EPISODE - 1)))
        add(EnvCase("e", "(e)  CogmentEnv('CartPole-v1') embedded", CogmentEnv("CartPole-v1")))

        for case in cases.values():
            case.measure(args.warmup)
        if args.profile:
            cases["c"].profiler = cProfile.Profile()
        from cogment_gym.cli.progress import Progress

        progress = Progress(args.rounds * len(cases), sys.stderr, unit="cases", description="measuring")
        started, measured = time.perf_counter(), 0
        for _ in range(args.rounds):
            for case in cases.values():
                sample = case.measure(args.seconds / args.rounds)
                case.total.add(sample)
                case.rounds.append(sample.rate)
                measured += sample.steps
                progress.update(sum(len(c.rounds) for c in cases.values()), measured, time.perf_counter() - started)
        progress.close()

    print_table(cases)
    bridge, bridge_rounds = ratio(cases, "c", "b")
    driven, _ = ratio(cases, "c", "b'")
    short, short_rounds = ratio(cases, "d", "c")
    embedded, _ = ratio(cases, "e", "c")
    print(f"ratios: (c)/(b) = {bridge:.2f}   (c)/(b') = {driven:.2f}   (d)/(c) = {short:.2f}   (e)/(c) = {embedded:.2f}")
    print(verdict("(c)/(b)", bridge, bridge_rounds, TARGET_BRIDGE, "the bridge adds at most 15% to a bare gRPC round trip"))
    print(verdict("(d)/(c)", short, short_rounds, TARGET_SHORT, f"{SHORT_EPISODE}-step trials keep two thirds of the steps/s"))

    profiler = cases["c"].profiler
    if profiler is not None:
        profiler.dump_stats(args.profile)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        print(f"\ncProfile of case (c), top 25 by own time (all data in {args.profile}):\n{text.getvalue()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
