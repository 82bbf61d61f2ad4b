"""The processes of a fault test, each acted on by its PID only: an environment service, a
standalone Orchestrator (``cogment-gym orchestrator``), a service actor, a client; and probes of
what a server holds (its load, its trials) over real gRPC.

Every process prints one line when ready; :meth:`Process.kill` sends SIGKILL, :meth:`pause` /
:meth:`resume` SIGSTOP / SIGCONT (a process that is there but silent: a network cut as its peers
see it), :meth:`stop` ends it for good (resumed first) and releases what the test held of it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from typing import Any

import grpc

from cogment_gym._proto.cogment.api import common_pb2, environment_pb2_grpc, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym.protocol import parse_endpoint
from tests.children import Child

__all__ = ["ActorProcess", "ClientProcess", "EnvProcess", "OrchestratorProcess", "Process", "env_load", "orchestrator_trials"]

# Environment sources by name for the service process: a Gymnasium id, or "module:attribute" (a
# factory importable in the child).
ENV_SCRIPT = r"""
import importlib, json, sys
import cogment_gym

config = json.loads(sys.argv[1])

def source(spec):
    if ":" not in spec:
        return spec
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)

sources = {name: source(spec) for name, spec in config["envs"].items()}
options = dict(config.get("options", {}))
if config.get("unix"):
    server = cogment_gym.serve(sources, unix_socket=config["unix"], **options)
else:
    server = cogment_gym.serve(sources, port=0, local_socket=False, **options)
print(server.endpoint, flush=True)
sys.stdin.read()
server.stop()
"""

ORCHESTRATOR_SCRIPT = r"""
import sys
from cogment_gym.cli import main
sys.exit(main(["orchestrator", "--lifecycle-port", "0"]))
"""

# A service actor: "slow" sleeps argv[1] seconds before each move (in its worker thread), "fast"
# plays at once; both play the first legal move.
ACTOR_SCRIPT = r"""
import sys, time
import numpy as np
from cogment_gym.actors import serve_actor

delay = float(sys.argv[1])

def first_legal(observation):
    return int(np.flatnonzero(observation["action_mask"])[0])

def slow(observation, context):
    time.sleep(delay)
    return first_legal(observation)

def fast(observation, context):
    return first_legal(observation)

server = serve_actor({"slow": slow, "fast": fast})
print(server.endpoint, flush=True)
sys.stdin.read()
server.stop()
"""

# A client: a CogmentEnv (keyword arguments in argv[1]) that resets, steps a few times, prints
# the trial id, then waits to be killed.
CLIENT_SCRIPT = r"""
import json, sys
from cogment_gym import CogmentEnv

kwargs = json.loads(sys.argv[1])
env = CogmentEnv(**kwargs)
env.reset(seed=0)
for _ in range(3):
    env.step(0)
print(env.trial_id, flush=True)
sys.stdin.read()
env.close()
"""


class Process(Child):
    """A child of the test process, ready once it printed its first line."""

    paused = False

    def pause(self) -> None:
        """SIGSTOP: the process stays, its sockets stay open, it answers nothing."""
        os.kill(self.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused and self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        self.resume()
        super().stop()
        if self.process.stdin is not None:  # left open when the process had ended already
            self.process.stdin.close()
        self._log.close()


class EnvProcess(Process):
    """``cogment_gym.serve(envs)`` in a child: on a unix socket at ``unix`` (a path), else on TCP
    port 0 without its same-host socket (so that TCP is what its clients use)."""

    def __init__(self, envs: dict[str, str], *, unix: str = "", options: dict[str, Any] | None = None) -> None:
        config = {"envs": envs, "unix": unix, "options": options or {}}
        super().__init__(ENV_SCRIPT, [json.dumps(config)], what="the env service process")
        self.endpoint = self.first_line
        if not self.endpoint.startswith(("grpc://", "unix://")):
            self.stop()
            raise RuntimeError(f"the env service process did not start: {self.endpoint!r}\n{self.stderr()}")

    def stop(self) -> None:
        super().stop()
        if self.endpoint.startswith("unix://"):  # killed, it could not remove its socket
            path = parse_endpoint(self.endpoint).address
            if os.path.exists(path):
                os.unlink(path)


class OrchestratorProcess(Process):
    """``cogment-gym orchestrator --lifecycle-port 0``; stopped by SIGTERM (its PID)."""

    def __init__(self) -> None:
        super().__init__(ORCHESTRATOR_SCRIPT, what="the orchestrator process")
        words = self.first_line.split()
        if not self.first_line.startswith("orchestrator: lifecycle at"):
            self.stop()
            raise RuntimeError(f"the orchestrator did not start: {self.first_line!r}\n{self.stderr()}")
        self.endpoint = words[3].rstrip(",")

    def stop(self) -> None:
        self.resume()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        super().stop()


class ActorProcess(Process):
    """``serve_actor({"slow": ..., "fast": ...})``: "slow" takes ``delay`` s per move."""

    def __init__(self, delay: float) -> None:
        super().__init__(ACTOR_SCRIPT, [str(delay)], what="the actor process")
        self.endpoint = self.first_line


class ClientProcess(Process):
    """A CogmentEnv in a child, mid-episode once started: ``trial_id`` is its trial."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(CLIENT_SCRIPT, [json.dumps(kwargs)], what="the client process")
        self.trial_id = self.first_line


def _channel(endpoint: str) -> grpc.Channel:
    return grpc.insecure_channel(parse_endpoint(endpoint).grpc_target)


def env_load(endpoint: str, timeout: float = 5.0) -> int:
    """Trials an environment service is playing (its Status ``overall_load``)."""
    with _channel(endpoint) as channel:
        reply = environment_pb2_grpc.EnvironmentSPStub(channel).Status(common_pb2.StatusRequest(names=["*"]), timeout=timeout)
    return int(float(reply.statuses["overall_load"]))


def orchestrator_trials(endpoint: str, timeout: float = 5.0) -> dict[str, int]:
    """State of every trial an Orchestrator knows, by trial id."""
    with _channel(endpoint) as channel:
        reply = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel).GetTrialInfo(orchestrator_pb2.TrialInfoRequest(), timeout=timeout)
    return {info.trial_id: info.state for info in reply.trial}


def socket_dir() -> str:
    """A short private directory for unix sockets (their paths are limited to ~100 bytes)."""
    return tempfile.mkdtemp(prefix="cgf-")
