"""A client process (a CogmentEnv) killed or stopped mid-trial: the trial ends within the bound,
the environment service lets go of it, other trials on the same services play on.

With a standalone Orchestrator (here in the test process, so that the test reads the failure it
reports in-band to the trial's other peers), the trial fails with PeerLostError naming the client
actor; with the Orchestrator embedded in the client, both die together and the environment
service sees its stream break.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from cogment_gym import CogmentEnv
from cogment_gym.errors import PeerLostError
from cogment_gym.orchestrator.server import OrchestratorServer
from cogment_gym.orchestrator.trial import Trial
from tests.faults.checks import FAST, SILENT, Bystander, Clock
from tests.faults.conftest import STANDALONE, TOPOLOGIES, Stack, Topology
from tests.faults.stack import ClientProcess, EnvProcess, env_load
from tests.waiting import wait_until


class Clients:
    """The client process of a test, and the Orchestrator it uses (None: embedded in it)."""

    def __init__(self, stack: Stack, topology: Topology) -> None:
        self.stack = stack
        self.orchestrator = OrchestratorServer(lifecycle_port=0) if topology.orchestrator == STANDALONE else None
        self.process: ClientProcess | None = None

    def where(self, service: EnvProcess) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"environment": service.endpoint}
        if self.orchestrator is not None:
            kwargs["orchestrator"] = self.orchestrator.lifecycle_endpoint
        return kwargs

    def start(self, service: EnvProcess) -> ClientProcess:
        self.process = ClientProcess(**self.where(service), timeout=60)
        return self.process

    def trial(self, trial_id: str) -> Trial:
        assert self.orchestrator is not None
        return self.orchestrator.orchestrator.trials[trial_id]

    def close(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self.orchestrator is not None:
            self.orchestrator.stop()
            # Dropped too: grpc.aio keeps its poller thread while a server object lives.
            self.orchestrator = None


@pytest.fixture
def clients(stack: Stack, topology: Topology) -> Iterator[Clients]:
    started = Clients(stack, topology)
    try:
        yield started
    finally:
        started.close()


def _start(stack: Stack, clients: Clients, closing: Any) -> tuple[EnvProcess, ClientProcess, Bystander]:
    service = stack.env({"CartPole-v1": "CartPole-v1"})
    bystander = Bystander(closing(CogmentEnv(**clients.where(service))))  # same env service, same Orchestrator
    client = clients.start(service)
    bystander.step(2)
    assert wait_until(lambda: env_load(service.endpoint) == 2, FAST)
    return service, client, bystander


def _reported(clients: Clients, trial_id: str, within: float) -> PeerLostError:
    """The failure the standalone Orchestrator reported for the client's trial, once it ended."""
    trial = clients.trial(trial_id)
    assert wait_until(lambda: trial.done, within), f"trial {trial_id} still {trial.state.name}"
    assert trial.failure is not None
    error = trial.failure.to_exception()
    assert type(error) is PeerLostError, f"{type(error).__name__}: {error}"
    assert error.peer == "actor"
    assert f"trial {trial_id!r}: required actor 'player' is gone: " in str(error), str(error)
    return error


def test_client_process_killed_mid_trial(stack: Stack, clients: Clients, topology: Topology, closing: Any) -> None:
    service, client, bystander = _start(stack, clients, closing)
    client.kill()
    with Clock() as clock:
        freed = wait_until(lambda: env_load(service.endpoint) == 1, FAST)
    assert freed, "the env service kept the trial of the killed client"
    if clients.orchestrator is not None:
        _reported(clients, client.trial_id, FAST)
    assert clock.elapsed < FAST
    bystander.finish()


@pytest.mark.slow
@pytest.mark.parametrize("topology", [p for p in TOPOLOGIES if p.id in ("standalone-tcp", "embedded-unix")], indirect=True)
def test_client_process_stopped_is_found_by_keepalive(stack: Stack, clients: Clients, topology: Topology, closing: Any) -> None:
    """SIGSTOP: the servers the client talks to (the Orchestrator, or the environment service
    when the Orchestrator is embedded in the client) ping it and let go of its trial."""
    service, client, bystander = _start(stack, clients, closing)
    client.pause()
    with Clock() as clock:
        freed = wait_until(lambda: env_load(service.endpoint) == 1, SILENT)
    assert freed, f"the env service kept the trial of the silent client for {clock.elapsed:.1f} s"
    if clients.orchestrator is not None:  # the server side gets no status: its stream just ends
        _reported(clients, client.trial_id, SILENT)
    bystander.finish()
    client.resume()
