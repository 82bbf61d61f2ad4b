"""Fixtures of the CLI tests: long-running commands ended at teardown."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from tests.cli.helpers import Service


@pytest.fixture
def start() -> Iterator[Callable[..., Service]]:
    """``start(*cli_args)`` -> a running ``cogment-gym`` command, killed (by PID) at teardown."""
    started: list[Service] = []

    def _start(*args: str) -> Service:
        service = Service.cli(*args)
        started.append(service)
        return service

    yield _start
    for service in started:
        service.kill()
