"""A gRPC server started from sync code: a ``grpc.aio`` server in a :class:`BackgroundLoop`,
bound to ``host:port`` or ``unix:/path`` (over TLS, checking a token, as its
:class:`~cogment_gym.protocol.security.Security` says), stopped once, waited on, used as a
context manager."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Callable, Mapping, Sequence, TypeVar

import grpc

from cogment_gym.protocol.links import KEEPALIVE_OPTIONS
from cogment_gym.protocol.runtime import BackgroundLoop
from cogment_gym.protocol.security import NO_SECURITY, Security, bind, new_server

logger = logging.getLogger(__name__)

__all__ = ["GRPC_SERVER_OPTIONS", "BackgroundServer", "bind_address", "serve_until_signal"]

_S = TypeVar("_S", bound="BackgroundServer")

GRPC_SERVER_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
    # Pings to clients that went silent, and the policy that accepts our clients' pings
    # (protocol/links.py says why and what bound they give).
    *KEEPALIVE_OPTIONS,
]


def bind_address(server: grpc.aio.Server, address: str, security: Security = NO_SECURITY) -> tuple[int, str]:
    """Bind ``address`` (``host:port`` or ``unix:/path``; over TLS when ``security`` has a key
    pair); returns the bound port (0 for a unix socket) and the endpoint clients reach it at.
    A failed bind raises OSError, unusable TLS files SecuritySettingsError."""
    try:
        port = bind(server, address, security)
    except RuntimeError as err:  # grpcio reports a failed bind this way
        raise OSError(f"could not bind {address}: {err}") from None
    if address.startswith("unix:"):
        return port, "unix://" + address[len("unix:"):]
    if port == 0:
        raise OSError(f"could not bind {address}")
    host = address.rpartition(":")[0].strip("[]") or "127.0.0.1"
    return port, f"grpc://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"


class BackgroundServer:
    """A running ``grpc.aio`` server in a background thread. Subclasses add their services in
    :meth:`_add_services` (called in the server's loop) and may act in :meth:`_started` and
    :meth:`_stopped_serving`; those that can register in a Cogment Directory say what in
    :meth:`_directory_services`.

    Attributes:
        endpoint: where clients reach it, e.g. ``"grpc://127.0.0.1:40123"``.
        port: the bound TCP port (0 for a unix socket).
        security: how it serves (TLS, client certificates, token).
        registrations: what it registered in the directory it was given (removed by ``stop()``).
    """

    port: int
    endpoint: str

    def __init__(self, address: str, *, thread_name: str, security: Security = NO_SECURITY, directory: str | None = None,
                 directory_token: str = "", registration_host: str | None = None) -> None:
        self.security = security
        self._runtime = BackgroundLoop(thread_name)
        self._stopped = threading.Event()
        self._directory: Any = None
        self.registrations: Sequence[Any] = ()
        try:
            self.port, self.endpoint = self._runtime.run(self._start(address), timeout=30)
            if directory:
                self._runtime.run(self._register(directory, directory_token, registration_host), timeout=60)
        except BaseException:
            if self._directory is not None:
                self._runtime.run(self._directory.close(), timeout=10)
            try:
                self._runtime.run(self._server.stop(0), timeout=10)
            except Exception:  # never started
                pass
            self._runtime.close()
            raise

    def _directory_services(self) -> list[tuple[int, Mapping[str, str]]]:
        """What to register in a directory: ``(ServiceType, properties)`` each at this address."""
        return []

    async def _register(self, directory: str, token: str, host: str | None) -> None:
        from cogment_gym.protocol.directory import DirectoryClient, register_all

        if not self.port:
            raise ValueError(f"{self.endpoint}: a unix socket cannot be registered in a Cogment directory (it knows host:port only)")
        self._directory = DirectoryClient(directory, token=token)
        shown = host or self.endpoint[len("grpc://"):].rpartition(":")[0].strip("[]")
        self.registrations = await register_all(self._directory, self._directory_services(), shown, self.port, ssl=self.security.serves_tls)
        logger.info("%s registered in the directory at %s as %s", self.endpoint, directory, [r.service_id for r in self.registrations])

    async def _deregister(self) -> None:
        from cogment_gym.protocol.directory import deregister_all

        directory, self._directory = self._directory, None
        if directory is not None:
            try:
                await deregister_all(directory, self.registrations)
            finally:
                await directory.close()

    def _add_services(self, server: grpc.aio.Server) -> None:
        raise NotImplementedError

    def _bind_more(self, server: grpc.aio.Server, endpoint: str) -> None:
        """Called in the server's loop after ``endpoint`` is bound, before serving: bind more."""

    def _started(self, endpoint: str) -> None:
        """Called in the server's loop once it serves at ``endpoint``."""

    def _stopped_serving(self) -> None:
        """Called once, after the server and its loop stopped (also when that failed)."""

    async def _start(self, address: str) -> tuple[int, str]:
        self._server = new_server(self.security, GRPC_SERVER_OPTIONS)
        self._add_services(self._server)
        port, endpoint = bind_address(self._server, address, self.security)
        self._bind_more(self._server, endpoint)
        await self._server.start()
        self._started(endpoint)
        return port, endpoint

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving (running trials get ``grace`` seconds). Idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            if self._directory is not None:  # first: nobody should be sent here any more
                self._runtime.run(self._deregister(), timeout=30)
            self._runtime.run(self._server.stop(grace), timeout=(grace or 0) + 10)
        finally:
            self._runtime.close()
            self._stopped_serving()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` is called (from another thread or a signal)."""
        return self._stopped.wait(timeout)

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_until_signal(server: BackgroundServer, on_ready: Callable[[], None] | None = None) -> None:
    """Block until ``server`` is stopped, by SIGINT/SIGTERM (handled while it serves, in the main
    thread) or otherwise; then stop it. ``on_ready`` (e.g. printing the endpoint) is called once
    the signal handlers are in place, so whoever waits for it may signal the process at once."""

    def _stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.stop, daemon=True).start()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _stop)
    try:
        if on_ready is not None:
            on_ready()
        server.wait()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
