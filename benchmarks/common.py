"""What the benchmark scripts share: the repository on sys.path, child processes that print one
line when ready, the memory and CPU time of process trees, a raw-bytes gRPC echo server (the
floor of one message each way), and the facts every report starts with."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import queue
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a clone without installing
    sys.path.insert(0, str(ROOT))

# cogment_gym first: it sets its gRPC core settings (cogment_gym/_grpc_tuning.py) before grpc is
# imported, so that the raw-gRPC floors here run with the same settings as the product.
import cogment_gym  # noqa: E402,F401
import grpc  # noqa: E402

READY_DEADLINE = 60.0
ECHO_SERVICE, ECHO_METHOD = "cogment_gym.bench.Echo", "PingPong"


# ---------------------------------------------------------------------------------------- processes


class Child:
    """A subprocess that prints one line when ready; stopped with SIGTERM to its PID."""

    def __init__(self, argv: list[str]) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.popen.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            self.line = lines.get(timeout=READY_DEADLINE).strip()
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"{shlex.join(argv)} printed nothing within {READY_DEADLINE} s") from None
        if not self.line:
            code = self.popen.wait(10)
            raise RuntimeError(f"{shlex.join(argv)} exited ({code}) without printing")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()


@contextlib.contextmanager
def child(argv: list[str]) -> Iterator[Child]:
    process = Child(argv)
    try:
        yield process
    finally:
        process.stop()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def process_tree(root: int) -> list[int]:
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of one process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------- echo server


def serve_echo(address: str, reply_size: int) -> None:
    """Answer every request on the echo method with ``reply_size`` bytes. Prints the bound port
    on stdout, then serves until SIGTERM/SIGINT."""
    reply = bytes(reply_size)

    async def ping_pong(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        while True:
            request = await context.read()
            if request is grpc.aio.EOF:
                return
            await context.write(reply)

    async def main() -> None:
        server = grpc.aio.server()
        handler = grpc.stream_stream_rpc_method_handler(ping_pong)  # no (de)serializers: raw bytes
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(ECHO_SERVICE, {ECHO_METHOD: handler}),))
        port = server.add_insecure_port(address)
        await server.start()
        print(port, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop(0.5)

    asyncio.run(main())


# ---------------------------------------------------------------------------------------- report


def machine_facts() -> list[str]:
    """What the figures depend on: the command, the machine and its load, the versions."""
    import google.protobuf
    import grpc
    import gymnasium as gym
    import numpy as np

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = ", " + line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ""
    with contextlib.suppress(OSError, AttributeError):
        load = ", load average %.2f %.2f %.2f" % os.getloadavg()
    return [
        f"command: {shlex.join(['python', os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])}",
        f"machine: {platform.platform()}, {os.cpu_count()} cores ({usable} usable){cpu}{load}",
        f"python {platform.python_version()} ({platform.python_implementation()}), grpcio {grpc.__version__}, "
        f"protobuf {google.protobuf.__version__}, gymnasium {gym.__version__}, numpy {np.__version__}",
    ]
