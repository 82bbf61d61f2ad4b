"""Faults of the environment service, injected into real processes (real gRPC, PIDs only) in
every topology: embedded or standalone Orchestrator, environment on TCP or a unix socket.

Whatever the topology, one failure gives one error type: the env raising is an
EnvironmentFailedError, its process killed an EnvironmentLostError (the next trial: its subclass
EnvironmentUnreachableError), its process stopped (silent) an EnvironmentLostError found by
keepalive within the documented bound. Each test also checks how long the error took, that a
trial beside the failing one gives exactly what the env stepped directly gives, and (the suite's
``no_leaks``) that no thread, descriptor, process or temp directory is left behind.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from cogment_gym import CogmentEnv
from cogment_gym.errors import (
    EndpointUnreachableError,
    EnvironmentFailedError,
    EnvironmentLostError,
    EnvironmentTimeoutError,
    EnvironmentUnreachableError,
    PeerLostError,
    PeerTimeoutError,
)
from cogment_gym.protocol.links import SILENT_PEER_BOUND
from tests.faults.checks import FAST, SILENT, Bystander, Clock
from tests.faults.conftest import TOPOLOGIES, Stack, Topology


def test_env_raising_fails_its_trial_only(stack: Stack, closing: Any) -> None:
    service = stack.env({"raising": "tests.faults.envs:raising", "cartpole": "CartPole-v1"})
    env = closing(CogmentEnv(**stack.where(service), implementation="raising", timeout=FAST))
    bystander = Bystander(closing(CogmentEnv(**stack.where(service), implementation="cartpole")))
    env.reset(seed=0)
    env.step(0)
    env.step(1)
    bystander.step(3)
    with Clock() as clock, pytest.raises(EnvironmentFailedError) as caught:
        env.step(0)
    assert clock.elapsed < FAST
    error = caught.value
    assert error.peer == "environment"
    message = str(error)
    assert f"trial {env.trial_id!r}: environment 'raising': InjectedFault: boom (in step 3)" in message
    assert "Remote traceback:" in message and "in _fail" in message
    assert error.failure is not None and error.failure.type == "InjectedFault"  # type: ignore[attr-defined]
    bystander.finish()  # same server, untouched
    env.reset(seed=1)  # a new trial, a new env instance
    env.step(0)


def test_env_process_killed_mid_trial(stack: Stack, closing: Any) -> None:
    service = stack.env({"CartPole-v1": "CartPole-v1"})
    elsewhere = stack.env({"CartPole-v1": "CartPole-v1"})  # the same Orchestrator (standalone), another env service
    env = closing(CogmentEnv(**stack.where(service), timeout=30))
    bystander = Bystander(closing(CogmentEnv(**stack.where(elsewhere))))
    env.reset(seed=0)
    env.step(0)
    bystander.step(2)
    trial = env.trial_id
    service.kill()
    with Clock() as clock, pytest.raises(EnvironmentLostError) as caught:
        env.step(1)
    assert clock.elapsed < FAST
    error = caught.value
    assert type(error) is EnvironmentLostError, f"{type(error).__name__}: {error}"
    assert isinstance(error, PeerLostError) and isinstance(error, ConnectionError)
    assert error.peer == "environment"
    message = str(error)
    assert message.startswith(f"trial {trial!r}: environment 'CartPole-v1' at {service.endpoint} is gone: "), message
    assert "its connection broke" in message and "the trial was waiting for" in message
    # The next trial finds nothing there: the subclass, also an EndpointUnreachableError.
    with Clock() as clock, pytest.raises(EnvironmentUnreachableError) as unreachable:
        env.reset(seed=1)
    assert clock.elapsed < FAST
    assert isinstance(unreachable.value, EnvironmentLostError) and isinstance(unreachable.value, EndpointUnreachableError)
    assert f"environment 'CartPole-v1' at {service.endpoint} is unreachable" in str(unreachable.value)
    with Clock() as clock, pytest.raises(EnvironmentUnreachableError, match=f"environment service at {service.endpoint} is unreachable \\("):
        CogmentEnv(**stack.where(service))
    assert clock.elapsed < FAST
    bystander.finish()
    with Clock() as clock:
        env.close()
    assert clock.elapsed < FAST


SILENT_TOPOLOGIES = [p for p in TOPOLOGIES if p.id in ("embedded-tcp", "standalone-unix")]


@pytest.mark.slow
@pytest.mark.parametrize("topology", SILENT_TOPOLOGIES, indirect=True)
def test_env_process_stopped_is_found_by_keepalive(stack: Stack, topology: Topology, closing: Any) -> None:
    """SIGSTOP: the env's sockets stay open and its kernel still acknowledges TCP, but nothing
    answers: only a keepalive ping finds it, within SILENT_PEER_BOUND (the facade's own
    timeout is longer, so the error says what happened: the environment is gone)."""
    service = stack.env({"CartPole-v1": "CartPole-v1"})
    elsewhere = stack.env({"CartPole-v1": "CartPole-v1"})
    env = closing(CogmentEnv(**stack.where(service), timeout=SILENT_PEER_BOUND * 3))
    bystander = Bystander(closing(CogmentEnv(**stack.where(elsewhere))))
    env.reset(seed=0)
    env.step(0)
    service.pause()
    with Clock() as clock, pytest.raises(EnvironmentLostError) as caught:
        env.step(1)
    assert clock.elapsed < SILENT, f"found after {clock.elapsed:.1f} s"
    assert "stopped answering keepalive pings" in str(caught.value)
    assert f"environment 'CartPole-v1' at {service.endpoint} is gone" in str(caught.value)
    # A hung server (here: stopped) answering no call within the deadline: the timeout type,
    # naming the call (was: PeerLostError "DEADLINE_EXCEEDED").
    with Clock() as clock, pytest.raises(PeerTimeoutError) as hung:
        CogmentEnv(**stack.where(service), timeout=1.0)
    assert clock.elapsed < 1.0 + FAST
    assert str(hung.value).startswith(f"environment service at {service.endpoint} did not answer within 1 s: expected "), str(hung.value)
    bystander.finish()
    service.resume()


STEP_TIMEOUT = 3.0


def test_env_hanging_fails_its_trial_only(stack: Stack, closing: Any) -> None:
    """An env step that never returns: only its trial fails, with the timeout type, once the
    service's step_timeout passed; another trial on the same server steps meanwhile."""
    service = stack.env({"hanging": "cogment_gym.testing:HangingEnv", "cartpole": "CartPole-v1"}, step_timeout=STEP_TIMEOUT)
    env = closing(CogmentEnv(**stack.where(service), implementation="hanging", timeout=STEP_TIMEOUT * 10))
    bystander = Bystander(closing(CogmentEnv(**stack.where(service), implementation="cartpole")))
    env.reset(seed=0, options={"hang": "step"})
    outcome: dict[str, Any] = {}

    def hung_step() -> None:
        started = time.monotonic()
        try:
            env.step(0)
        except Exception as err:  # what the test asserts below
            outcome["error"] = err
        outcome["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=hung_step)
    thread.start()
    try:
        bystander.step(30)  # while the other env hangs on the same server
        assert thread.is_alive(), "the bystander's steps took the whole step_timeout: the hang stalled the server"
    finally:
        thread.join(STEP_TIMEOUT + FAST * 2)
    assert not thread.is_alive()
    error = outcome.get("error")
    assert isinstance(error, EnvironmentTimeoutError), repr(error)
    assert isinstance(error, PeerTimeoutError) and isinstance(error, EnvironmentFailedError) and error.peer == "environment"
    assert outcome["elapsed"] < STEP_TIMEOUT + FAST
    message = str(error)
    assert f"trial {env.trial_id!r}" in message and "env.step()" in message and f"{STEP_TIMEOUT:g} s" in message, message
    bystander.finish()
    env.reset(seed=1)  # a new env instance, no hang asked
    env.step(0)
