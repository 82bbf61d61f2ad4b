"""What every ``cogment-gym`` command shares: exit codes, argument types, one-line errors,
stop signals, the bind check, the TLS and token options."""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

import gymnasium as gym

if TYPE_CHECKING:
    from cogment_gym.protocol.security import Security

__all__ = [
    "DEFAULT_ENV_PORT",
    "DEFAULT_ORCHESTRATOR_PORT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "SignalFlag",
    "StopSignals",
    "TOKEN_ENV",
    "UsageError",
    "add_security_arguments",
    "check_bindable",
    "describe",
    "endpoint_arg",
    "error",
    "input_errors",
    "json_object",
    "non_negative_int",
    "one_line",
    "port",
    "positive_float",
    "positive_int",
    "security_from_args",
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


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
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
    """The one-line part of an error's message: without a remote traceback (``-vv`` logs it)."""
    text = str(err)
    if isinstance(err, KeyError) and err.args:  # str(KeyError) is the quoted key only
        text = str(err.args[0])
    text = text.split("\n\nRemote traceback:", 1)[0]
    return text or type(err).__name__


def input_errors() -> tuple[type[BaseException], ...]:
    """What bad input raises while things are set up: reported as a usage error."""
    from cogment_gym.errors import CogmentGymError

    # RuntimeError: grpc reports "Failed to bind to address" with a bare RuntimeError.
    return (CogmentGymError, gym.error.Error, ValueError, TypeError, LookupError, OSError, RuntimeError)


def endpoint_arg(role: str, text: str) -> str:
    """``text`` if it is an endpoint the CLI reaches over gRPC (``grpc://host:port``,
    ``unix:///path``); else UsageError "<role> at <text> is not an endpoint: expected ..."."""
    from cogment_gym.protocol import parse_endpoint
    from cogment_gym.protocol.endpoints import EndpointError

    try:
        scheme = parse_endpoint(text).scheme
    except EndpointError as err:
        if text.startswith("cogment://discover"):
            raise UsageError(f"{role} at {text}: {err}") from None
        scheme = ""
    if scheme not in ("grpc", "unix"):
        raise UsageError(f"{role} at {text} is not an endpoint: expected grpc://host:port or unix:///path")
    return text


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


class SignalFlag:
    """Set by a signal handler, waited on by the main thread, with no lock on either side.

    A handler that calls ``threading.Event.set()`` can deadlock: handlers run in the main
    thread, between two bytecodes, and the main thread may be inside ``Event.wait()`` holding
    the event's lock at that moment (it did once, under load: ``serve`` outlived its SIGTERM).
    Here the handler sets a bool and writes a byte to a pipe; :meth:`wait` is a ``select`` on
    the pipe (PEP 475 retries it after the handler ran, and the byte is there by then).
    """

    def __init__(self) -> None:
        self._set = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def set(self) -> None:
        self._set = True
        try:
            os.write(self._write, b"\0")
        except (BlockingIOError, OSError):  # full (already woken) or closed
            pass

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None = None) -> bool:
        """True once set; False when ``timeout`` seconds passed first."""
        if not self._set and self._read >= 0:
            select.select([self._read], [], [], timeout)
        return self._set

    def close(self) -> None:
        for fd in (self._read, self._write):
            if fd >= 0:
                os.close(fd)
        self._read = self._write = -1


class StopSignals:
    """Sets ``event`` (a :class:`SignalFlag`) on SIGINT/SIGTERM while active (main thread only);
    restores the old handlers."""

    def __init__(self) -> None:
        self.event = SignalFlag()
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
        self.event.close()


# ---------------------------------------------------------------------------------------- TLS and token

# Read when no --token-file is given: a token on the command line would show in `ps`.
TOKEN_ENV = "COGMENT_GYM_TOKEN"


def add_security_arguments(parser: argparse.ArgumentParser, *, serves: bool, dials: bool) -> None:
    """The TLS and token options of a command that serves and/or dials, in one group. The TLS
    file options also take the Cogment Orchestrator's spellings (``--private_key``,
    ``--trust_chain``, ``--root_cert``). Read back with :func:`security_from_args`."""
    parser.set_defaults(security_role=(serves, dials))
    group = parser.add_argument_group("security (TLS, mTLS, token; see docs/security.md)")
    me = "this service's" if serves else "the client's"
    group.add_argument("--private-key", "--private_key", dest="private_key", metavar="PEM",
                       help=f"{me} private key: with --cert-chain, " + ("serve TLS" if serves else "present a client certificate (mTLS)"))
    group.add_argument("--cert-chain", "--trust_chain", dest="cert_chain", metavar="PEM", help=f"{me} certificate chain")
    if serves and dials:
        root_help = "trusted certificate authorities: client certificates must be signed by them (mTLS, unless --no-client-cert), and so must the certificates of the components dialed"
    elif serves:
        root_help = "trusted certificate authorities: clients must present a certificate signed by them (mTLS, unless --no-client-cert)"
    else:
        root_help = "trusted certificate authorities the server's certificate must be signed by (default with --tls: the system's)"
    group.add_argument("--root-cert", "--root_cert", dest="root_cert", metavar="PEM", help=root_help)
    if serves:
        group.add_argument("--no-client-cert", dest="require_client_cert", action="store_const", const=False, default=None,
                           help="serve TLS without asking clients for a certificate" + (" (--root-cert then only checks the components dialed)" if dials else ""))
    if dials:
        if not serves:
            group.add_argument("--tls", action="store_const", const=True, default=None,
                               help="use TLS even without PEM files (the server's certificate checked against the system's authorities)")
        group.add_argument("--server-name", metavar="NAME", help="the name the certificates of the servers dialed must carry, when not their endpoint's host")
    verb = "required on every call" if serves and not dials else "required on every call and sent with every call made" if serves else "sent with every call"
    group.add_argument("--token-file", metavar="FILE",
                       help=f"a shared token, {verb} (the first line of FILE; default: ${TOKEN_ENV} if set, else no token)")


def security_from_args(args: argparse.Namespace) -> Security | None:
    """The :class:`~cogment_gym.protocol.security.Security` the options of
    :func:`add_security_arguments` describe (its PEM files read once to check them), or None
    when none was given. Bad files or values: :class:`UsageError`."""
    from cogment_gym.protocol.security import Security, SecuritySettingsError

    token = None
    token_file = getattr(args, "token_file", None)
    if token_file is not None:
        try:
            with open(token_file, encoding="utf-8") as file:
                token = file.readline().strip()
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"cannot read the token file {token_file!r}: {getattr(err, 'strerror', None) or err}") from None
        if not token:
            raise UsageError(f"the token file {token_file!r} is empty (expected the token on its first line)")
    elif os.environ.get(TOKEN_ENV):
        token = os.environ[TOKEN_ENV].strip()
    fields: dict[str, Any] = {
        "private_key": getattr(args, "private_key", None),
        "cert_chain": getattr(args, "cert_chain", None),
        "root_cert": getattr(args, "root_cert", None),
        "require_client_cert": getattr(args, "require_client_cert", None),
        "tls": getattr(args, "tls", None),
        "server_name": getattr(args, "server_name", None),
        "token": token,
    }
    if all(value is None for value in fields.values()):
        return None
    serves_only = getattr(args, "security_role", (False, False)) == (True, False)
    if serves_only and fields["private_key"] is None and (fields["root_cert"] is not None or fields["require_client_cert"] is not None):
        raise UsageError("--root-cert / --no-client-cert concern the client certificates of a TLS server: give --private-key "
                         "and --cert-chain too (without them the service would serve plaintext)")
    try:
        security = Security(**fields)
        security.check_files()
    except SecuritySettingsError as err:
        raise UsageError(str(err).replace("private_key", "--private-key").replace("cert_chain", "--cert-chain")
                         .replace("root_cert", "--root-cert")) from None
    return security
