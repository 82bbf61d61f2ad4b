"""A Directory as a gRPC server: :class:`DirectoryServer` (a background thread, e.g. port 0 in
tests and notebooks) and :func:`run_directory` (the foreground of ``cogment-gym directory``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Callable

import grpc

from cogment_gym._proto.cogment.api import directory_pb2_grpc
from cogment_gym.directory.service import DirectoryServicer, ServiceTable
from cogment_gym.protocol.serving import GRPC_SERVER_OPTIONS, BackgroundServer, bind_address

__all__ = ["DEFAULT_DIRECTORY_PORT", "DirectoryServer", "run_directory", "serve_directory"]

logger = logging.getLogger(__name__)

#: The port of ``cogment services directory`` when none is given.
DEFAULT_DIRECTORY_PORT = 9005


class DirectoryServer(BackgroundServer):
    """A running Directory (``cogmentAPI.DirectorySP``). Use as a context manager, or call :meth:`stop`.

    Attributes:
        endpoint: where services register and clients inquire, e.g. ``"grpc://127.0.0.1:40123"``.
        table: the registrations (:class:`~cogment_gym.directory.service.ServiceTable`).

    Example:
        >>> from cogment_gym.directory import serve_directory
        >>> with serve_directory() as directory:
        ...     directory.endpoint.startswith("grpc://127.0.0.1:")
        True
    """

    def __init__(self, address: str) -> None:
        self.table = ServiceTable()
        super().__init__(address, thread_name="cogment-gym-directory")

    def _add_services(self, server: grpc.aio.Server) -> None:
        directory_pb2_grpc.add_DirectorySPServicer_to_server(DirectoryServicer(self.table), server)

    def _started(self, endpoint: str) -> None:
        logger.info("directory at %s", endpoint)

    def __repr__(self) -> str:
        return f"DirectoryServer(endpoint={self.endpoint!r}, services={len(self.table)})"


def serve_directory(*, host: str = "127.0.0.1", port: int = 0) -> DirectoryServer:
    """Serve a Directory in a background thread until ``stop()``; port 0 lets the OS choose."""
    return DirectoryServer(f"{host}:{port}")


def run_directory(*, host: str = "127.0.0.1", port: int = DEFAULT_DIRECTORY_PORT, on_ready: Callable[[str], None] | None = None) -> None:
    """Run a Directory in this thread until SIGINT or SIGTERM (main thread only); prints nothing.

    Raises:
        OSError: the port cannot be bound.
    """
    asyncio.run(_run(f"{host}:{port}", on_ready))


async def _run(address: str, on_ready: Callable[[str], None] | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    server = grpc.aio.server(options=GRPC_SERVER_OPTIONS)
    directory_pb2_grpc.add_DirectorySPServicer_to_server(DirectoryServicer(), server)
    try:
        _, endpoint = bind_address(server, address)
        await server.start()
        if on_ready is not None:
            on_ready(endpoint)
        await stop.wait()
    finally:
        await server.stop(1.0)
        for sig in installed:
            loop.remove_signal_handler(sig)
