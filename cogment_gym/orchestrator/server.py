"""The Orchestrator as a gRPC server: started by code on port 0 (:class:`OrchestratorServer`, in a
background thread) or run in the foreground by the CLI (:func:`run_orchestrator`)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Callable, Sequence, Union

import grpc

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2_grpc
from cogment_gym.orchestrator.orchestrator import Orchestrator
from cogment_gym.orchestrator.params import load_trial_params
from cogment_gym.orchestrator.services import ClientActorServicer, TrialLifecycleServicer
from cogment_gym.protocol.links import GRPC_OPTIONS
from cogment_gym.protocol.runtime import BackgroundLoop

__all__ = ["OrchestratorServer", "run_orchestrator", "start_orchestrator"]

logger = logging.getLogger(__name__)

DefaultParams = Union[common_pb2.TrialParams, str, "os.PathLike[str]", None]


def _default_params(default_params: DefaultParams) -> common_pb2.TrialParams | None:
    """Params given as such, or read from a params file path."""
    if default_params is None or isinstance(default_params, common_pb2.TrialParams):
        return default_params
    if isinstance(default_params, (str, os.PathLike)):
        return load_trial_params(default_params)
    raise TypeError(f"default_params must be TrialParams or a params file path, got {type(default_params).__name__}")


class _Serving:
    """The gRPC servers of one Orchestrator, in the running loop."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.servers: list[grpc.aio.Server] = []
        self.lifecycle_endpoint = ""
        self.actor_endpoint = ""

    async def start(self, host: str, lifecycle_port: int, actor_port: int | None) -> None:
        """Bind and start. One server for both services when ``actor_port`` is None or equal to a
        non-zero ``lifecycle_port`` (as Cogment does), else two (both 0: two OS-chosen ports)."""
        try:
            lifecycle = grpc.aio.server(options=GRPC_OPTIONS)
            self.servers.append(lifecycle)
            orchestrator_pb2_grpc.add_TrialLifecycleSPServicer_to_server(TrialLifecycleServicer(self.orchestrator), lifecycle)
            same = actor_port is None or (actor_port == lifecycle_port and lifecycle_port != 0)
            if same:
                orchestrator_pb2_grpc.add_ClientActorSPServicer_to_server(ClientActorServicer(self.orchestrator), lifecycle)
            port = _bind(lifecycle, host, lifecycle_port)
            await lifecycle.start()
            shown = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]", "") else host
            self.lifecycle_endpoint = self.actor_endpoint = f"grpc://{shown}:{port}"
            if not same:
                actor = grpc.aio.server(options=GRPC_OPTIONS)
                self.servers.append(actor)
                orchestrator_pb2_grpc.add_ClientActorSPServicer_to_server(ClientActorServicer(self.orchestrator), actor)
                aport = _bind(actor, host, actor_port or 0)
                await actor.start()
                self.actor_endpoint = f"grpc://{shown}:{aport}"
        except BaseException:
            await self.stop(0)
            raise
        logger.info("orchestrator: lifecycle at %s, client actors at %s", self.lifecycle_endpoint, self.actor_endpoint)

    async def stop(self, grace: float | None) -> None:
        await self.orchestrator.close()
        for server in self.servers:
            await server.stop(grace)


def _bind(server: grpc.aio.Server, host: str, port: int) -> int:
    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"could not bind {address}")
    return bound


class OrchestratorServer:
    """A running Orchestrator serving TrialLifecycleSP and ClientActorSP (background thread).

    Args:
        host: address to bind.
        lifecycle_port: TrialLifecycleSP port (0: chosen by the OS).
        actor_port: ClientActorSP port; None, or equal to a non-zero ``lifecycle_port``: the same
            server; otherwise a second server (``actor_port=0``: a second OS-chosen port).
        default_params: ``TrialParams`` or the path of a Cogment params file, used when
            StartTrial carries no params.
        pre_trial_hooks: ``grpc://`` endpoints of TrialHooksSP services, called in order.
        env_timeout: seconds to wait for an environment's answer.

    Attributes:
        lifecycle_endpoint / actor_endpoint: ``grpc://host:port`` (the same when one port serves both).
        orchestrator: the :class:`Orchestrator` (use it only from the server's loop).

    Example:
        >>> with OrchestratorServer() as server:
        ...     server.lifecycle_endpoint.startswith("grpc://127.0.0.1:")
        True
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        lifecycle_port: int = 0,
        actor_port: int | None = None,
        default_params: DefaultParams = None,
        pre_trial_hooks: Sequence[str] = (),
        env_timeout: float = 60.0,
    ) -> None:
        params = _default_params(default_params)
        hooks = list(pre_trial_hooks)
        self._runtime = BackgroundLoop("cogment-gym-orchestrator")
        self._stopped = threading.Event()
        try:
            self._serving = self._runtime.run(self._start(host, lifecycle_port, actor_port, params, hooks, env_timeout), timeout=30)
        except BaseException:
            self._runtime.close()
            raise
        self.orchestrator = self._serving.orchestrator
        self.lifecycle_endpoint = self._serving.lifecycle_endpoint
        self.actor_endpoint = self._serving.actor_endpoint

    @staticmethod
    async def _start(host: str, lifecycle_port: int, actor_port: int | None, params: common_pb2.TrialParams | None, hooks: list[str], env_timeout: float) -> _Serving:
        serving = _Serving(Orchestrator(default_params=params, pre_trial_hooks=hooks, env_timeout=env_timeout))
        await serving.start(host, lifecycle_port, actor_port)
        return serving

    def stop(self, grace: float | None = 1.0) -> None:
        """Terminate running trials, stop serving. Idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self._runtime.run(self._serving.stop(grace), timeout=(grace or 0) + 30)
        finally:
            self._runtime.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` was called; False on timeout."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> OrchestratorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"OrchestratorServer(lifecycle={self.lifecycle_endpoint!r}, actor={self.actor_endpoint!r})"


def start_orchestrator(**kwargs: object) -> OrchestratorServer:
    """Start an Orchestrator server in a background thread; see :class:`OrchestratorServer`."""
    return OrchestratorServer(**kwargs)  # type: ignore[arg-type]


def run_orchestrator(
    *,
    host: str = "0.0.0.0",
    lifecycle_port: int = 9000,
    actor_port: int | None = None,
    params_file: str | os.PathLike[str] | None = None,
    pre_trial_hooks: Sequence[str] = (),
    on_ready: Callable[[str, str], None] | None = None,
    env_timeout: float = 60.0,
) -> None:
    """Run an Orchestrator in this thread until SIGINT or SIGTERM; prints nothing.

    Args:
        host, lifecycle_port, actor_port: where to serve (see :class:`OrchestratorServer`).
        params_file: Cogment params file whose ``trial_params`` are the default params.
        pre_trial_hooks: ``grpc://`` endpoints of TrialHooksSP services, called in order.
        on_ready: called once serving with ``(lifecycle_endpoint, actor_endpoint)`` (bound
            ports, useful with port 0).

    Signals are caught only when called from the main thread; from another thread the function
    runs until the process ends. Running trials are hard-terminated on the way out.

    Raises:
        TrialParamsError: the params file is invalid. OSError: a port cannot be bound.
    """
    params = load_trial_params(params_file) if params_file is not None else None
    hooks = list(pre_trial_hooks)
    asyncio.run(_run(host, lifecycle_port, actor_port, params, hooks, on_ready, env_timeout))


async def _run(
    host: str,
    lifecycle_port: int,
    actor_port: int | None,
    params: common_pb2.TrialParams | None,
    hooks: list[str],
    on_ready: Callable[[str, str], None] | None,
    env_timeout: float,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # platforms without loop signal handlers
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    serving = _Serving(Orchestrator(default_params=params, pre_trial_hooks=hooks, env_timeout=env_timeout))
    try:
        await serving.start(host, lifecycle_port, actor_port)
        if on_ready is not None:
            on_ready(serving.lifecycle_endpoint, serving.actor_endpoint)
        await stop.wait()
        logger.info("orchestrator: stopping")
    finally:
        await serving.stop(1.0)
        for sig in installed:
            loop.remove_signal_handler(sig)
