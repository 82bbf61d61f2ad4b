"""``serve()``: host Gymnasium environments as a Cogment environment service."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Mapping

import grpc

from cogment_gym._proto.cogment.api import environment_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2_grpc
from cogment_gym.adapters.hosting import EnvHost, EnvSource
from cogment_gym.adapters.service import EnvironmentServicer, EnvSpecServicer
from cogment_gym.protocol.runtime import BackgroundLoop

__all__ = ["EnvServer", "serve", "serve_forever"]

logger = logging.getLogger(__name__)

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
]


class EnvServer:
    """A running environment service. Use as a context manager, or call :meth:`stop`.

    Attributes:
        endpoint: where Orchestrators reach it, e.g. ``"grpc://127.0.0.1:40123"``.
        port: the bound TCP port (0 for a unix socket).
        host: the hosted implementations.
    """

    def __init__(self, host: EnvHost, address: str, *, servicer_options: Mapping[str, Any] | None = None) -> None:
        self.host = host
        self._runtime = BackgroundLoop("cogment-gym-env-server")
        self._stopped = threading.Event()
        try:
            self.port, self.endpoint = self._runtime.run(self._start(address, dict(servicer_options or {})), timeout=30)
        except BaseException:
            self._runtime.close()
            raise

    async def _start(self, address: str, options: dict[str, Any]) -> tuple[int, str]:
        self._server = grpc.aio.server(options=GRPC_OPTIONS)
        self.servicer = EnvironmentServicer(self.host, **options)
        environment_pb2_grpc.add_EnvironmentSPServicer_to_server(self.servicer, self._server)
        env_pb2_grpc.add_EnvSpecSPServicer_to_server(EnvSpecServicer(self.host), self._server)
        try:
            port = self._server.add_insecure_port(address)
        except RuntimeError as err:  # grpcio reports a failed bind this way
            raise OSError(f"could not bind {address}: {err}") from None
        if address.startswith("unix:"):
            endpoint = "unix://" + address[len("unix:"):]
        else:
            if port == 0:
                raise OSError(f"could not bind {address}")
            host = address.rpartition(":")[0].strip("[]") or "127.0.0.1"
            endpoint = f"grpc://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        await self._server.start()
        logger.info("serving %s at %s", list(self.host.implementations), endpoint)
        return port, endpoint

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving (running trials get ``grace`` seconds) and close every env. Idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self._runtime.run(self._server.stop(grace), timeout=(grace or 0) + 10)
        finally:
            self._runtime.close()
            self.host.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` is called (from another thread or a signal)."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> EnvServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EnvServer({list(self.host.implementations)}, endpoint={self.endpoint!r})"


def serve(
    env: EnvSource | Mapping[str, EnvSource],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    unix_socket: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    api: str | None = None,
    max_agents: int | None = None,
    **servicer_options: Any,
) -> EnvServer:
    """Serve Gymnasium or PettingZoo environments as a Cogment environment service
    (``cogmentAPI.EnvironmentSP``).

    Returns at once; the server runs in a background thread until ``stop()``.

    Args:
        env: a Gymnasium id (``"CartPole-v1"``), an env factory, or a mapping of implementation
            names to those (one server hosting several environments). PettingZoo environments
            too: a module path (``"pettingzoo.classic.connect_four_v3"``) or a factory of
            ``AECEnv`` / ``ParallelEnv`` instances; each agent is one Cogment actor named by its
            agent id (see ``docs/architecture.md``, "Multi-agent").
        host, port: TCP address to bind; port 0 lets the OS choose (see ``.endpoint``).
        unix_socket: bind this unix socket path instead of TCP.
        env_kwargs: keyword arguments for ``gym.make`` or the factory.
        api: PettingZoo environments: ``"aec"`` or ``"parallel"`` (converted with PettingZoo's
            wrappers if the environment has the other API); default: a module's ``env()`` (AEC),
            a factory's own API.
        max_agents: PettingZoo environments without ``possible_agents``: how many agent slots.
        servicer_options: ``init_timeout``, ``idle_timeout``, ``end_timeout`` (seconds).

    Example:
        >>> with serve("CartPole-v1") as server:
        ...     server.endpoint.startswith("grpc://127.0.0.1:")
        True
    """
    env_host = EnvHost(env, env_kwargs, api=api, max_agents=max_agents)
    address = f"unix:{os.path.abspath(unix_socket)}" if unix_socket else f"{host}:{port}"
    try:
        return EnvServer(env_host, address, servicer_options=servicer_options)
    except BaseException:
        env_host.close()
        raise


def serve_forever(env: EnvSource | Mapping[str, EnvSource], **kwargs: Any) -> None:
    """Like :func:`serve`, but blocks until SIGINT/SIGTERM."""
    server = serve(env, **kwargs)
    previous = {}

    def _stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.stop, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _stop)
    try:
        server.wait()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
