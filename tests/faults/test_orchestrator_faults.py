"""Faults of a standalone Orchestrator process (``cogment-gym orchestrator``), killed or stopped
mid-trial, with the environment service on TCP or a unix socket.

The client sees one error type, OrchestratorLostError, whatever gRPC said (UNAVAILABLE,
INTERNAL "Internal error from Core", a closed stream: a killed Orchestrator gave both
EndpointUnreachableError and PeerLostError in one run before); the next trial finds nothing
there: OrchestratorUnreachableError (also an EndpointUnreachableError). The environment service
ends the orphaned trial by itself and goes on serving the others.
"""

from __future__ import annotations

from typing import Any

import pytest

from cogment_gym import CogmentEnv
from cogment_gym.errors import EndpointUnreachableError, OrchestratorLostError, OrchestratorUnreachableError, PeerLostError
from tests.faults.checks import FAST, SILENT, Bystander, Clock
from tests.faults.conftest import TOPOLOGIES, Stack
from tests.faults.stack import env_load
from tests.waiting import wait_until

STANDALONE_TOPOLOGIES = [p for p in TOPOLOGIES if p.id.startswith("standalone")]


def _start(stack: Stack, closing: Any, timeout: float) -> tuple[Any, CogmentEnv, Bystander]:
    """A trial through the Orchestrator process, and one beside it on the same environment
    service through an embedded Orchestrator."""
    service = stack.env({"CartPole-v1": "CartPole-v1"})
    env = closing(CogmentEnv(**stack.where(service), timeout=timeout))
    bystander = Bystander(closing(CogmentEnv(environment=service.endpoint)))
    env.reset(seed=0)
    env.step(0)
    bystander.step(2)
    assert wait_until(lambda: env_load(service.endpoint) == 2, FAST)
    return service, env, bystander


@pytest.mark.parametrize("topology", STANDALONE_TOPOLOGIES, indirect=True)
def test_orchestrator_process_killed_mid_trial(stack: Stack, closing: Any) -> None:
    service, env, bystander = _start(stack, closing, timeout=30)
    orchestrator, trial = stack.orchestrator, env.trial_id
    orchestrator.kill()
    with Clock() as clock, pytest.raises(OrchestratorLostError) as caught:
        env.step(1)
    assert clock.elapsed < FAST
    error = caught.value
    assert type(error) is OrchestratorLostError, f"{type(error).__name__}: {error}"
    assert isinstance(error, PeerLostError) and isinstance(error, ConnectionError) and error.peer == "orchestrator"
    message = str(error)
    assert message.startswith(f"trial {trial!r}: orchestrator at {orchestrator.endpoint} is gone: "), message
    assert "its connection broke" in message and (", while sending the action" in message or ", while waiting for" in message), message
    # The environment service ends the orphaned trial and plays on with the other one.
    assert wait_until(lambda: env_load(service.endpoint) == 1, FAST), "the env service kept the orphaned trial"
    bystander.step(3)
    with Clock() as clock, pytest.raises(OrchestratorUnreachableError) as unreachable:
        env.reset(seed=1)
    assert clock.elapsed < FAST
    assert isinstance(unreachable.value, OrchestratorLostError) and isinstance(unreachable.value, EndpointUnreachableError)
    assert str(unreachable.value).startswith(f"orchestrator at {orchestrator.endpoint} is unreachable ("), str(unreachable.value)
    bystander.finish()
    with Clock() as clock:
        env.close()
    assert clock.elapsed < FAST


@pytest.mark.slow
@pytest.mark.parametrize("topology", [p for p in STANDALONE_TOPOLOGIES if p.id == "standalone-tcp"], indirect=True)
def test_orchestrator_process_stopped_is_found_by_keepalive(stack: Stack, closing: Any) -> None:
    """SIGSTOP: found by the client's keepalive pings, and by the environment service's (a
    server pings its clients): both let go of the trial within the bound."""
    service, env, bystander = _start(stack, closing, timeout=SILENT * 3)
    stack.orchestrator.pause()
    with Clock() as clock, pytest.raises(OrchestratorLostError) as caught:
        env.step(1)
    assert clock.elapsed < SILENT, f"found after {clock.elapsed:.1f} s"
    assert "stopped answering keepalive pings" in str(caught.value)
    with Clock() as clock:
        freed = wait_until(lambda: env_load(service.endpoint) == 1, SILENT)
    assert freed, "the env service kept the trial of the silent Orchestrator"
    bystander.finish()
    stack.orchestrator.resume()
