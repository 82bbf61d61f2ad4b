"""The Orchestrator as a gRPC server: started by code on port 0 (:class:`OrchestratorServer`, in a
background thread) or run in the foreground by the CLI (:func:`run_orchestrator`)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import threading
from typing import Any, Callable, Mapping, Sequence, Union

import grpc

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2_grpc
from cogment_gym.orchestrator.admission import EndpointPolicy
from cogment_gym.orchestrator.orchestrator import Orchestrator
from cogment_gym.orchestrator.params import load_trial_params
from cogment_gym.orchestrator.services import ClientActorServicer, TrialLifecycleServicer
from cogment_gym.orchestrator.transports import Connector
from cogment_gym.protocol.links import GRPC_OPTIONS
from cogment_gym.protocol.runtime import BackgroundLoop
from cogment_gym.protocol.security import NO_SECURITY, Security, bind, new_server

__all__ = ["DirectorySettings", "OrchestratorServer", "run_orchestrator", "start_orchestrator"]

logger = logging.getLogger(__name__)

DefaultParams = Union[common_pb2.TrialParams, str, "os.PathLike[str]", None]


def _default_params(default_params: DefaultParams) -> common_pb2.TrialParams | None:
    """Params given as such, or read from a params file path."""
    if default_params is None or isinstance(default_params, common_pb2.TrialParams):
        return default_params
    if isinstance(default_params, (str, os.PathLike)):
        return load_trial_params(default_params)
    raise TypeError(f"default_params must be TrialParams or a params file path, got {type(default_params).__name__}")


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclasses.dataclass(frozen=True)
class DirectorySettings:
    """The Cogment Directory an Orchestrator uses (as ``cogment services orchestrator --directory_*``).

    Attributes:
        endpoint: ``grpc://host:port`` of the directory.
        token: its ``authentication-token`` ("" : none).
        register: register the Orchestrator there (``TRIAL_LIFE_CYCLE_SERVICE`` and
            ``CLIENT_ACTOR_CONNECTION_SERVICE``), deregistered when it stops.
        registration_host: the host registered (default: the one bound, 127.0.0.1 for all interfaces).
        properties: registered with both services.
    """

    endpoint: str
    token: str = ""
    register: bool = True
    registration_host: str = ""
    properties: Mapping[str, str] = dataclasses.field(default_factory=dict)


def _new_orchestrator(
    params: common_pb2.TrialParams | None, hooks: list[str], env_timeout: float, component_security: Security,
    directory: DirectorySettings | None = None,
) -> Orchestrator:
    client = None
    if directory is not None:
        from cogment_gym.protocol.directory import DirectoryClient

        client = DirectoryClient(directory.endpoint, token=directory.token)
    return Orchestrator(default_params=params, pre_trial_hooks=hooks, env_timeout=env_timeout, connector=Connector(component_security),
                        directory=client)


def _policy(allowed_endpoints: Sequence[str] | None, allow_local_endpoints: bool) -> EndpointPolicy:
    return EndpointPolicy(allow_local=allow_local_endpoints, allowed=tuple(allowed_endpoints) if allowed_endpoints is not None else None)


class _Serving:
    """The gRPC servers of one Orchestrator, in the running loop."""

    def __init__(self, orchestrator: Orchestrator, security: Security = NO_SECURITY, policy: EndpointPolicy | None = None,
                 directory: DirectorySettings | None = None) -> None:
        self.orchestrator = orchestrator
        self.security = security
        self.policy = policy or EndpointPolicy()
        self.servers: list[grpc.aio.Server] = []
        self.lifecycle_endpoint = ""
        self.actor_endpoint = ""
        self.directory = directory
        self.registrations: list[Any] = []

    async def _register(self) -> None:
        from cogment_gym.protocol.directory import ServiceType, register_all

        client, settings = self.orchestrator.directory, self.directory
        if client is None or settings is None or not settings.register:
            return
        for endpoint, service in ((self.lifecycle_endpoint, "TRIAL_LIFE_CYCLE_SERVICE"), (self.actor_endpoint, "CLIENT_ACTOR_CONNECTION_SERVICE")):
            host, _, port = endpoint[len("grpc://"):].rpartition(":")
            self.registrations += await register_all(client, [(ServiceType.Value(service), settings.properties)],
                                                     settings.registration_host or host.strip("[]"), int(port), ssl=self.security.serves_tls)
        logger.info("orchestrator registered in the directory at %s", settings.endpoint)

    async def start(self, host: str, lifecycle_port: int, actor_port: int | None) -> None:
        """Bind and start. One server for both services when ``actor_port`` is None or equal to a
        non-zero ``lifecycle_port`` (as Cogment does), else two (both 0: two OS-chosen ports)."""
        try:
            lifecycle = new_server(self.security, GRPC_OPTIONS)
            self.servers.append(lifecycle)
            orchestrator_pb2_grpc.add_TrialLifecycleSPServicer_to_server(TrialLifecycleServicer(self.orchestrator, self.policy), lifecycle)
            same = actor_port is None or (actor_port == lifecycle_port and lifecycle_port != 0)
            if same:
                orchestrator_pb2_grpc.add_ClientActorSPServicer_to_server(ClientActorServicer(self.orchestrator), lifecycle)
            port = _bind(lifecycle, host, lifecycle_port, self.security)
            await lifecycle.start()
            shown = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]", "") else host
            self.lifecycle_endpoint = self.actor_endpoint = f"grpc://{shown}:{port}"
            if not same:
                actor = new_server(self.security, GRPC_OPTIONS)
                self.servers.append(actor)
                orchestrator_pb2_grpc.add_ClientActorSPServicer_to_server(ClientActorServicer(self.orchestrator), actor)
                aport = _bind(actor, host, actor_port or 0, self.security)
                await actor.start()
                self.actor_endpoint = f"grpc://{shown}:{aport}"
            await self._register()
        except BaseException:
            await self.stop(0)
            raise
        logger.info("orchestrator: lifecycle at %s, client actors at %s (%s)", self.lifecycle_endpoint, self.actor_endpoint,
                    self.security.describe(server=True))
        if host not in _LOOPBACK:  # reachable from the network: say what is left open
            if not self.security.checks_calls and not self.security.requires_client_cert:
                logger.warning("orchestrator bound to %s without a token or client certificates: any peer that reaches "
                               "it can start, list and terminate trials (docs/security.md)", host)
            if not self.policy.restricts:
                logger.warning("orchestrator bound to %s without an endpoint allow-list: trials started over gRPC "
                               "may make it dial any grpc:// or unix: endpoint (docs/security.md)", host)

    async def stop(self, grace: float | None) -> None:
        client = self.orchestrator.directory
        try:
            if client is not None and self.registrations:
                from cogment_gym.protocol.directory import deregister_all

                registrations, self.registrations = self.registrations, []
                await deregister_all(client, registrations)
            await self.orchestrator.close()
            for server in self.servers:
                await server.stop(grace)
        finally:
            if client is not None:
                await client.close()


def _bind(server: grpc.aio.Server, host: str, port: int, security: Security) -> int:
    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    bound = bind(server, address, security)
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
        security: how both ports serve (TLS, client certificates, a token checked on every
            call) and, unless ``component_security`` is given, how environments, service
            actors, datalogs and hooks are dialed: one identity for both, as the Cogment
            Orchestrator's ``--private_key`` / ``--root_cert`` / ``--trust_chain``.
        component_security: how components are dialed, when not as ``security``.
        allowed_endpoints: exact endpoints or patterns (``grpc://10.0.0.*:9001``, a host
            pattern ``*.internal``, ``unix:///run/cogment/*``) that trials started over gRPC
            may name; None (default): any ``grpc://`` or ``unix:`` endpoint, as Cogment. The
            default params' endpoints always pass (see :mod:`cogment_gym.orchestrator.admission`).
        allow_local_endpoints: let trials started over gRPC name ``local://`` components of
            this process (default: refused).
        directory: a Cogment Directory (:class:`DirectorySettings`, or its ``grpc://`` endpoint):
            ``cogment://discover`` endpoints of trial params and hooks are resolved there, and
            the Orchestrator registers itself there.

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
        security: Security | None = None,
        component_security: Security | None = None,
        allowed_endpoints: Sequence[str] | None = None,
        allow_local_endpoints: bool = False,
        directory: DirectorySettings | str | None = None,
    ) -> None:
        settings = DirectorySettings(directory) if isinstance(directory, str) else directory
        params = _default_params(default_params)
        hooks = list(pre_trial_hooks)
        security = security or NO_SECURITY
        outgoing = component_security or security
        policy = _policy(allowed_endpoints, allow_local_endpoints)
        self._runtime = BackgroundLoop("cogment-gym-orchestrator")
        self._stopped = threading.Event()
        try:
            self._serving = self._runtime.run(
                self._start(host, lifecycle_port, actor_port, params, hooks, env_timeout, security, outgoing, policy, settings), timeout=60
            )
        except BaseException:
            self._runtime.close()
            raise
        self.orchestrator = self._serving.orchestrator
        self.lifecycle_endpoint = self._serving.lifecycle_endpoint
        self.actor_endpoint = self._serving.actor_endpoint

    @staticmethod
    async def _start(
        host: str, lifecycle_port: int, actor_port: int | None, params: common_pb2.TrialParams | None, hooks: list[str],
        env_timeout: float, security: Security, outgoing: Security, policy: EndpointPolicy, directory: DirectorySettings | None = None,
    ) -> _Serving:
        serving = _Serving(_new_orchestrator(params, hooks, env_timeout, outgoing, directory), security, policy, directory)
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
    host: str = "127.0.0.1",
    lifecycle_port: int = 9000,
    actor_port: int | None = None,
    params_file: str | os.PathLike[str] | None = None,
    pre_trial_hooks: Sequence[str] = (),
    on_ready: Callable[[str, str], None] | None = None,
    env_timeout: float = 60.0,
    security: Security | None = None,
    component_security: Security | None = None,
    allowed_endpoints: Sequence[str] | None = None,
    directory: DirectorySettings | None = None,
) -> None:
    """Run an Orchestrator in this thread until SIGINT or SIGTERM; prints nothing.

    Args:
        host, lifecycle_port, actor_port: where to serve (see :class:`OrchestratorServer`);
            ``host`` defaults to 127.0.0.1 (this machine only), give ``"0.0.0.0"`` to serve
            the network (then see docs/security.md).
        security, component_security, allowed_endpoints: as for :class:`OrchestratorServer`
            (``local://`` endpoints are always refused: this process registers none).
        params_file: Cogment params file whose ``trial_params`` are the default params.
        pre_trial_hooks: ``grpc://`` endpoints of TrialHooksSP services, called in order.
        on_ready: called once serving with ``(lifecycle_endpoint, actor_endpoint)`` (bound
            ports, useful with port 0).
        directory: a Cogment Directory to resolve endpoints in and register with.

    Signals are caught only when called from the main thread; from another thread the function
    runs until the process ends. Running trials are hard-terminated on the way out.

    Raises:
        TrialParamsError: the params file is invalid. OSError: a port cannot be bound.
    """
    params = load_trial_params(params_file) if params_file is not None else None
    hooks = list(pre_trial_hooks)
    security = security or NO_SECURITY
    serving = _Serving(_new_orchestrator(params, hooks, env_timeout, component_security or security, directory), security,
                       _policy(allowed_endpoints, False), directory)
    asyncio.run(_run(serving, host, lifecycle_port, actor_port, on_ready))


async def _run(
    serving: _Serving,
    host: str,
    lifecycle_port: int,
    actor_port: int | None,
    on_ready: Callable[[str, str], None] | None,
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
