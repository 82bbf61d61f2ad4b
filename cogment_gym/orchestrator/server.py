"""The Orchestrator as a gRPC server (standalone, or started by code on port 0)."""

from __future__ import annotations

import logging
import threading
from typing import Sequence

import grpc

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2_grpc
from cogment_gym.orchestrator.orchestrator import Orchestrator
from cogment_gym.orchestrator.services import ClientActorServicer, TrialLifecycleServicer
from cogment_gym.orchestrator.transports import GRPC_OPTIONS
from cogment_gym.protocol.runtime import BackgroundLoop

__all__ = ["OrchestratorServer", "start_orchestrator"]

logger = logging.getLogger(__name__)


class OrchestratorServer:
    """A running Orchestrator serving TrialLifecycleSP and ClientActorSP.

    Attributes:
        lifecycle_endpoint / actor_endpoint: ``grpc://host:port`` (the same when one port serves both).
        orchestrator: the :class:`Orchestrator` (use it only from the server's loop).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        lifecycle_port: int = 0,
        actor_port: int | None = None,
        default_params: common_pb2.TrialParams | None = None,
        pre_trial_hooks: Sequence[str] = (),
        env_timeout: float = 60.0,
    ) -> None:
        self._runtime = BackgroundLoop("cogment-gym-orchestrator")
        self._stopped = threading.Event()
        try:
            self._runtime.run(self._start(host, lifecycle_port, actor_port, default_params, list(pre_trial_hooks), env_timeout), timeout=30)
        except BaseException:
            self._runtime.close()
            raise

    async def _start(self, host: str, lifecycle_port: int, actor_port: int | None, default_params: common_pb2.TrialParams | None, hooks: list[str], env_timeout: float) -> None:
        self.orchestrator = Orchestrator(default_params=default_params, pre_trial_hooks=hooks, env_timeout=env_timeout)
        self._servers: list[grpc.aio.Server] = []
        lifecycle = grpc.aio.server(options=GRPC_OPTIONS)
        orchestrator_pb2_grpc.add_TrialLifecycleSPServicer_to_server(TrialLifecycleServicer(self.orchestrator), lifecycle)
        same = actor_port is None or actor_port == lifecycle_port and lifecycle_port != 0
        if same:
            orchestrator_pb2_grpc.add_ClientActorSPServicer_to_server(ClientActorServicer(self.orchestrator), lifecycle)
        port = lifecycle.add_insecure_port(f"{host}:{lifecycle_port}")
        await lifecycle.start()
        self._servers.append(lifecycle)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]") else host
        self.lifecycle_endpoint = f"grpc://{shown}:{port}"
        self.actor_endpoint = self.lifecycle_endpoint
        if not same:
            actor = grpc.aio.server(options=GRPC_OPTIONS)
            orchestrator_pb2_grpc.add_ClientActorSPServicer_to_server(ClientActorServicer(self.orchestrator), actor)
            aport = actor.add_insecure_port(f"{host}:{actor_port}")
            await actor.start()
            self._servers.append(actor)
            self.actor_endpoint = f"grpc://{shown}:{aport}"
        logger.info("orchestrator: lifecycle at %s, client actors at %s", self.lifecycle_endpoint, self.actor_endpoint)

    def stop(self, grace: float | None = 1.0) -> None:
        """Terminate running trials, stop serving. Idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self._runtime.run(self._stop(grace), timeout=(grace or 0) + 30)
        finally:
            self._runtime.close()

    async def _stop(self, grace: float | None) -> None:
        await self.orchestrator.close()
        for server in self._servers:
            await server.stop(grace)

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def __enter__(self) -> OrchestratorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_orchestrator(**kwargs: object) -> OrchestratorServer:
    """Start an Orchestrator server in a background thread; see :class:`OrchestratorServer`."""
    return OrchestratorServer(**kwargs)  # type: ignore[arg-type]
