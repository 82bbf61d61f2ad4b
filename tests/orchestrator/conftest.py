"""Fixtures of the Orchestrator tests: an OrchestratorServer on 127.0.0.1 port 0 per test."""

from __future__ import annotations

from typing import Iterator

import pytest

from cogment_gym.orchestrator.server import OrchestratorServer


@pytest.fixture
def orch() -> Iterator[OrchestratorServer]:
    server = OrchestratorServer()
    try:
        yield server
    finally:
        server.stop()
