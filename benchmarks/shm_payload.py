#!/usr/bin/env python3
"""Prototype: large observations through shared memory between two processes of one host, against
the same bytes in the gRPC message. Decides whether a same-host shared-memory payload path is
worth building (issue 11: kept only if it wins >= 1.3x).

    python benchmarks/shm_payload.py                  # 677 kB replies (a batched Image84 tick), 3 rounds
    python benchmarks/shm_payload.py --bytes 21168    # one Image84 observation

A grpc.aio bidi stream in lock-step, as a batched trial's tick: the client writes a 289-byte
request, the server answers with the observation of ``--bytes`` bytes, one way or the other:

  grpc   the bytes in the reply (what a batched trial sends today);
  shm    the server writes them into a shared-memory block (``multiprocessing.shared_memory``,
         one slot per tick of a 2-slot ring) and replies with 16 bytes (slot, length); the client
         copies them out into a fresh numpy array (it must hand out an array that the next
         tick cannot overwrite), so both variants end with the bytes in a new array.

No env, no codec, no Cogment protocol: the transport's share of a tick only, the most such a path
could win. Both processes keep large buffers (``cogment_gym.protocol.memory``), as the env
service and the embedded Orchestrator do for messages of this size. Prints steps/s (32 steps per round trip) and the CPU per round trip of both processes.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import struct
import sys
import time
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Child, cpu_seconds, machine_facts  # noqa: E402

import grpc  # noqa: E402  (after common: cogment_gym's gRPC settings)
from cogment_gym.protocol.memory import keep_large_buffers  # noqa: E402

SERVICE, METHOD = "cogment_gym.bench.Shm", "Tick"
REQUEST = bytes(289)
SLOTS = 2
STEPS_PER_ROUND = 32  # a batched trial of 32


def serve(mode: str, size: int) -> None:
    """The server: answers every request; prints its port (and the shared block's name)."""
    keep_large_buffers()  # as the env service does for messages of this size
    data = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)
    block = shared_memory.SharedMemory(create=True, size=size * SLOTS) if mode == "shm" else None

    async def tick(request_iterator: object, context: grpc.aio.ServicerContext) -> None:
        slot = 0
        while True:
            request = await context.read()
            if request is grpc.aio.EOF:
                return
            frame = data.tobytes()  # the observation as the env makes it each tick
            if block is None or block.buf is None:
                await context.write(frame)
            else:
                block.buf[slot * size : slot * size + size] = frame
                await context.write(struct.pack("<QQ", slot, size))
                slot = (slot + 1) % SLOTS

    async def main() -> None:
        server = grpc.aio.server(options=[("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)])
        handler = grpc.stream_stream_rpc_method_handler(tick)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {METHOD: handler}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(f"{port} {block.name if block is not None else '-'}", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)  # then unlink the block
        await stop.wait()
        await server.stop(0.5)

    try:
        asyncio.run(main())
    finally:
        if block is not None:
            block.close()
            block.unlink()


def measure(mode: str, size: int, seconds: float) -> tuple[float, float, float]:
    """(steps/s, client CPU µs per round trip, server CPU µs per round trip)."""
    server = Child([sys.executable, str(Path(__file__).resolve()), "--serve", mode, "--bytes", str(size)])
    try:
        port, name = server.line.split()
        block = shared_memory.SharedMemory(name=name) if mode == "shm" else None
        if block is not None:  # the server owns (and unlinks) it
            resource_tracker.unregister(block._name, "shared_memory")  # type: ignore[attr-defined]

        async def run() -> tuple[float, float, float]:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 << 20)])
            call = channel.stream_stream(f"/{SERVICE}/{METHOD}")()

            async def round_trip() -> np.ndarray:
                await call.write(REQUEST)
                reply = await call.read()
                if block is None or block.buf is None:
                    return np.frombuffer(reply, np.uint8).copy()
                slot, length = struct.unpack("<QQ", reply)
                return np.array(block.buf[slot * size : slot * size + length], dtype=np.uint8)

            for _ in range(50):
                await round_trip()
            count, cpu0, server0, started = 0, time.process_time(), cpu_seconds(server.popen.pid), time.perf_counter()
            while time.perf_counter() - started < seconds:
                await round_trip()
                count += 1
            elapsed = time.perf_counter() - started
            client_us = 1e6 * (time.process_time() - cpu0) / count
            server_us = 1e6 * (cpu_seconds(server.popen.pid) - server0) / count
            call.cancel()
            await channel.close()
            return STEPS_PER_ROUND * count / elapsed, client_us, server_us

        try:
            return asyncio.run(run())
        finally:
            if block is not None:
                block.close()
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=677782, help="observation bytes per tick (default: a batched Image84 tick)")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.bytes)
        return 0
    keep_large_buffers()  # as the embedded Orchestrator does for messages of this size
    for line in machine_facts():
        print(line)
    runs: dict[str, list[tuple[float, float, float]]] = {"grpc": [], "shm": []}
    for _ in range(args.rounds):  # interleaved: load from elsewhere hits both alike
        for mode in runs:
            runs[mode].append(measure(mode, args.bytes, args.seconds))
    print(f"\n{args.bytes:,} bytes per reply, {args.rounds} interleaved rounds of {args.seconds:g} s (median)")
    medians = {}
    for mode, results in runs.items():
        rate = statistics.median(r[0] for r in results)
        medians[mode] = rate
        print(f"  {mode:<5} {rate:>10,.0f} steps/s   client {statistics.median(r[1] for r in results):6.0f} µs   "
              f"server {statistics.median(r[2] for r in results):6.0f} µs CPU per round trip   "
              f"(rounds: {', '.join(f'{r[0]:,.0f}' for r in results)})")
    gain = medians["shm"] / medians["grpc"]
    print(f"{'PASS' if gain >= 1.3 else 'MISS'} shared memory / gRPC bytes = {gain:.2f}x (target >= 1.3x; the transport's share only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
