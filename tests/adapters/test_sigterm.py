"""A process serving envs that gets SIGTERM leaves no same-host socket directory behind: a plain
``serve()`` script, ``serve_forever``, ``cogment-gym serve`` (also with an env call hanging).
Real processes, signalled by their PID."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

import cogment_gym
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.errors import TrialFailedError
from cogment_gym.protocol import parse_endpoint
from cogment_gym.testing import HANGING_ENV_ID
from tests.children import Child

WAIT = 30.0

PLAIN = r"""
import sys
import cogment_gym
server = cogment_gym.serve("CartPole-v1")
print(server.endpoint, flush=True)
sys.stdin.read()
"""

FOREVER = r"""
import cogment_gym.adapters.server as server_module
serve = server_module.serve

def announcing_serve(*args, **kwargs):
    server = serve(*args, **kwargs)
    print(server.endpoint, flush=True)
    return server

server_module.serve = announcing_serve
server_module.serve_forever("CartPole-v1")
"""

CLI = r"""
import sys
import cogment_gym.testing  # registers cogment_gym/Hanging-v0
from cogment_gym.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _socket_directory(endpoint: str) -> Path:
    """The directory of the same-host socket the service at ``endpoint`` announces."""
    with grpc.insecure_channel(parse_endpoint(endpoint).grpc_target) as channel:
        spec = env_pb2_grpc.EnvSpecSPStub(channel).GetSpec(env_pb2.GetSpecRequest(), timeout=WAIT)
    assert spec.local_endpoint.startswith("unix:"), spec.local_endpoint
    directory = Path(parse_endpoint(spec.local_endpoint).address).parent
    assert directory.is_dir()
    return directory


def _terminate(child: Child) -> int:
    child.process.send_signal(signal.SIGTERM)  # this child only, by its PID
    try:
        return child.process.wait(WAIT)
    finally:
        child.stop()


@pytest.mark.parametrize("script", [PLAIN, FOREVER], ids=["serve", "serve_forever"])
def test_sigterm_removes_the_socket_directory(script: str) -> None:
    child = Child(script, what="the serving process")
    directory = _socket_directory(child.first_line)
    code = _terminate(child)
    # A plain script keeps SIGTERM's meaning (the process is killed by it); serve_forever stops
    # and exits (or is killed so, when the signal comes before it installed its handler).
    assert code in ((-signal.SIGTERM,) if script is PLAIN else (0, -signal.SIGTERM)), child.stderr()
    assert not directory.exists()


def test_cli_serve_exits_on_sigterm_within_its_grace_with_a_call_hanging_and_cleans_up() -> None:
    child = Child(CLI, ["serve", HANGING_ENV_ID, "--port", "0", "--step-timeout", "30"], what="cogment-gym serve")
    endpoint = child.first_line.rpartition(" at ")[2]
    directory = _socket_directory(endpoint)
    env = cogment_gym.CogmentEnv(environment=endpoint, timeout=60)
    outcome: list[BaseException | None] = []
    entered = threading.Event()

    def hang() -> None:
        try:
            env.reset(options={"hang": "step"})
            entered.set()
            env.step(0)  # blocks for good in the service (its gate never opens there)
            outcome.append(None)
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=hang, daemon=True)
    thread.start()
    try:
        assert entered.wait(WAIT)
        # The step is on its way; the service may take a moment to start it: its trial count says so.
        assert _wait_trials(endpoint, 1)
        started = time.monotonic()
        code = _terminate(child)
        elapsed = time.monotonic() - started
        assert code == 0, child.stderr()
        assert elapsed < 1.0 + 10.0, f"the service took {elapsed:.1f} s to stop"  # stop(1 s grace) + the interpreter's exit
        assert not directory.exists()
        thread.join(WAIT)
        assert outcome and isinstance(outcome[0], TrialFailedError), outcome
    finally:
        env.close()


def _wait_trials(endpoint: str, count: int) -> bool:
    from cogment_gym._proto.cogment.api import common_pb2, environment_pb2_grpc

    deadline = time.monotonic() + WAIT
    with grpc.insecure_channel(parse_endpoint(endpoint).grpc_target) as channel:
        stub = environment_pb2_grpc.EnvironmentSPStub(channel)
        while time.monotonic() < deadline:
            reply = stub.Status(common_pb2.StatusRequest(names=["overall_load"]), timeout=WAIT)
            if float(reply.statuses["overall_load"]) >= count:
                return True
            time.sleep(0.01)
    return False


def test_a_server_started_outside_the_main_thread_leaves_sigterm_alone() -> None:
    before = signal.getsignal(signal.SIGTERM)
    servers: list[cogment_gym.EnvServer] = []
    thread = threading.Thread(target=lambda: servers.append(cogment_gym.serve("CartPole-v1")))
    thread.start()
    thread.join(WAIT)
    try:
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        servers[0].stop()


@pytest.mark.skipif(signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, reason="SIGTERM is handled by the test runner")
def test_the_sigterm_handler_lives_as_long_as_the_servers_with_a_socket() -> None:
    first, second = cogment_gym.serve("CartPole-v1"), cogment_gym.serve("CartPole-v1")
    try:
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        first.stop()
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the second still has its socket
    finally:
        first.stop()
        second.stop()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with cogment_gym.serve("CartPole-v1", local_socket=False):
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # no socket directory: nothing to do


def test_cli_serve_step_timeout_fails_the_hung_trial_only() -> None:
    from cogment_gym.errors import EnvironmentTimeoutError

    child = Child(CLI, ["serve", HANGING_ENV_ID, "--port", "0", "--step-timeout", "0.5"], what="cogment-gym serve")
    endpoint = child.first_line.rpartition(" at ")[2]
    try:
        hung, other = cogment_gym.CogmentEnv(environment=endpoint), cogment_gym.CogmentEnv(environment=endpoint)
        try:
            hung.reset(options={"hang": "step"})
            with pytest.raises(EnvironmentTimeoutError, match=r"env\.step\(\).*0\.5 s"):
                hung.step(0)
            other.reset()
            for _ in range(10):
                other.step(0)
        finally:
            hung.close()
            other.close()
        assert _terminate(child) == 0, child.stderr()
    finally:
        child.stop()
