"""What every ``cogment-gym`` command shares: exit codes, argument types, one-line errors,
stop signals, the bind check."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
from typing import Any

import gymnasium as gym

__all__ = [
    "DEFAULT_ENV_PORT",
    "DEFAULT_ORCHESTRATOR_PORT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "StopSignals",
    "UsageError",
    "check_bindable",
    "describe",
    "error",
    "input_errors",
    "json_object",
    "non_negative_int",
    "one_line",
    "port",
    "positive_int",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Cogment's conventional ports: Orchestrator 9000 (lifecycle and client actors), environment 9001.
DEFAULT_ORCHESTRATOR_PORT = 9000
DEFAULT_ENV_PORT = 9001


class UsageError(Exception):
    """Bad input found by the CLI itself: reported in one line, exit code 2."""


# ---------------------------------------------------------------------------------------- argument types


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {value}")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"key\": 1}}', got {text!r}")
    return value


# ---------------------------------------------------------------------------------------- helpers


def error(message: str) -> None:
    print(f"cogment-gym: error: {one_line(message)}", file=sys.stderr, flush=True)


def one_line(message: str) -> str:
    return " ".join(str(message).split()) or "unknown error"


def describe(err: BaseException) -> str:
    text = str(err)
    if isinstance(err, KeyError) and err.args:  # str(KeyError) is the quoted key only
        text = str(err.args[0])
    return text or type(err).__name__


def input_errors() -> tuple[type[BaseException], ...]:
    """What bad input raises while things are set up: reported as a usage error."""
    from cogment_gym.errors import CogmentGymError

    # RuntimeError: grpc reports "Failed to bind to address" with a bare RuntimeError.
    return (CogmentGymError, gym.error.Error, ValueError, TypeError, LookupError, OSError, RuntimeError)


def check_bindable(host: str, port: int) -> None:
    """Fail early, in one line, when ``host:port`` cannot be bound (grpc would log C-core noise)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise UsageError(f"cannot bind {host}:{port}: {err.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(address)
        except OSError as err:
            raise UsageError(f"cannot bind {host}:{port}: {err.strerror or err}") from None


class StopSignals:
    """Sets ``event`` on SIGINT/SIGTERM while active (main thread only); restores the old handlers."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.event.is_set():  # asked twice: stop now
            raise KeyboardInterrupt
        self.event.set()

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
