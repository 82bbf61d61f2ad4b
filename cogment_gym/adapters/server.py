"""``serve()``: host Gymnasium environments as a Cogment environment service."""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
import weakref
from typing import Any, Literal, Mapping, overload

import grpc

from cogment_gym._proto.cogment_gym.v1 import env_pb2_grpc
from cogment_gym.adapters.hosting import EnvHost, EnvSource
from cogment_gym.adapters.service import EnvironmentServicer, EnvSpecServicer, add_environment_servicer, check_step_timeout
from cogment_gym.adapters.sockets import SOCKET_DIR_PREFIX, SOCKET_NAME, track_socket_directory, untrack_socket_directory
from cogment_gym.adapters.workers import EnvWorkers
from cogment_gym.protocol.security import NO_SECURITY, Security
from cogment_gym.protocol.serving import GRPC_SERVER_OPTIONS, BackgroundServer, bind_address, serve_until_signal

__all__ = ["EnvServer", "serve", "serve_forever"]

logger = logging.getLogger(__name__)

GRPC_OPTIONS = GRPC_SERVER_OPTIONS

class EnvServer(BackgroundServer):
    """A running environment service. Use as a context manager, or call :meth:`stop`.

    Attributes:
        endpoint: where Orchestrators reach it, e.g. ``"grpc://127.0.0.1:40123"``.
        port: the bound TCP port (0 for a unix socket).
        host: the hosted implementations.
        local_endpoint: the same service on a unix socket of a private temporary directory
            (``"unix:///tmp/cogment-gym-.../env.sock"``), or ``""``; announced in the spec
            (``EnvSpec.local_endpoint``) so that clients on this host can use it. Never with TLS:
            the socket would let same-host clients past the certificate checks.
        security: how it serves (TLS, client certificates, token); see :func:`serve`.
    """

    servicer: EnvironmentServicer

    def __init__(
        self, host: EnvHost, address: str, *, servicer_options: Mapping[str, Any] | None = None, local_socket: bool = True,
        security: Security = NO_SECURITY, directory: str | None = None, directory_token: str = "",
    ) -> None:
        self.host = host
        self._servicer_options = dict(servicer_options or {})
        self._local_socket = local_socket
        self._socket_cleanup: weakref.finalize | None = None
        self.local_endpoint = ""
        self._socket_directory = ""
        self.service_id = uuid.uuid4().hex
        if security.root_cert is not None and not security.serves_tls:  # an env server dials nothing
            logger.warning("serve(): security has a root_cert but no private_key/cert_chain: the service serves plaintext "
                           "and checks no client certificate")
        super().__init__(address, thread_name="cogment-gym-env-server", security=security, directory=directory, directory_token=directory_token)
        if self._socket_directory:  # here, in the caller's thread: a signal handler may be set only in the main one
            track_socket_directory(self._socket_directory)

    def _directory_services(self) -> list[tuple[int, Mapping[str, str]]]:
        """One environment registration per implementation (``__implementation``), as the SDK does."""
        from cogment_gym.protocol.directory import IMPLEMENTATION_PROPERTY, ServiceType

        return [(ServiceType.Value("ENVIRONMENT_SERVICE"), {IMPLEMENTATION_PROPERTY: name}) for name in self.host.implementations]

    def _add_services(self, server: grpc.aio.Server) -> None:
        self.servicer = EnvironmentServicer(self.host, **self._servicer_options)
        self._spec_servicer = EnvSpecServicer(self.host, service_id=self.service_id)
        add_environment_servicer(self.servicer, server)
        env_pb2_grpc.add_EnvSpecSPServicer_to_server(self._spec_servicer, server)

    def _bind_more(self, server: grpc.aio.Server, endpoint: str) -> None:
        """With ``local_socket``, a TCP service also listens on a unix socket: loopback TCP costs
        a trial's messages 5-13% more than a unix socket on the same host (docs/performance.md)."""
        if not self._local_socket or not endpoint.startswith("grpc://"):
            return
        if self.security.serves_tls:  # a plaintext socket beside TLS would skip the certificate checks
            logger.info("no same-host unix socket for %s: it serves TLS", endpoint)
            return
        try:
            directory = tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX)  # private (0700): only this user connects
        except OSError as err:  # the fast path is optional: TCP serves everyone anyway
            logger.info("no same-host unix socket for %s: %s", endpoint, err)
            return
        # Removed by stop(), or when this server is collected or the interpreter exits without
        # it, or by SIGTERM (see track_socket_directory, called once this server runs).
        self._socket_cleanup = weakref.finalize(self, untrack_socket_directory, directory)
        try:
            _, local = bind_address(server, f"unix:{os.path.join(directory, SOCKET_NAME)}", self.security)
        except OSError as err:
            logger.info("no same-host unix socket for %s: %s", endpoint, err)
            self._socket_cleanup()
            return
        self.local_endpoint = self._spec_servicer.local_endpoint = local
        self._socket_directory = directory

    def _started(self, endpoint: str) -> None:
        logger.info("serving %s at %s", list(self.host.implementations), endpoint)

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving (running trials get ``grace`` seconds) and close every env. Idempotent."""
        super().stop(grace)

    def _stopped_serving(self) -> None:
        self.host.close()
        if self._socket_cleanup is not None:
            self._socket_cleanup()

    def __repr__(self) -> str:
        return f"EnvServer({list(self.host.implementations)}, endpoint={self.endpoint!r})"


@overload
def serve(
    env: EnvSource | Mapping[str, EnvSource],
    *,
    host: str = ...,
    port: int = ...,
    unix_socket: str | None = ...,
    env_kwargs: Mapping[str, Any] | None = ...,
    api: str | None = ...,
    max_agents: int | None = ...,
    local_socket: bool = ...,
    security: Security | None = ...,
    step_timeout: float | None = ...,
    env_threads: bool = ...,
    workers: Literal[1] = ...,
    directory: str | None = ...,
    **servicer_options: Any,
) -> EnvServer: ...


@overload
def serve(
    env: EnvSource | Mapping[str, EnvSource],
    *,
    host: str = ...,
    port: int = ...,
    unix_socket: str | None = ...,
    env_kwargs: Mapping[str, Any] | None = ...,
    api: str | None = ...,
    max_agents: int | None = ...,
    local_socket: bool = ...,
    security: Security | None = ...,
    step_timeout: float | None = ...,
    env_threads: bool = ...,
    workers: int,
    directory: str | None = ...,
    **servicer_options: Any,
) -> EnvServer | EnvWorkers: ...


def serve(
    env: EnvSource | Mapping[str, EnvSource],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    unix_socket: str | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    api: str | None = None,
    max_agents: int | None = None,
    local_socket: bool = True,
    security: Security | None = None,
    step_timeout: float | None = None,
    env_threads: bool = True,
    workers: int = 1,
    directory: str | None = None,
    **servicer_options: Any,
) -> EnvServer | EnvWorkers:
    """Serve Gymnasium or PettingZoo environments as a Cogment environment service
    (``cogmentAPI.EnvironmentSP``).

    Returns at once; the server runs in a background thread until ``stop()`` (``workers=1``), or
    in ``workers`` processes, one endpoint each (``workers > 1``).

    Args:
        env: a Gymnasium id (``"CartPole-v1"``), an env factory, or a mapping of implementation
            names to those (one server hosting several environments). PettingZoo environments
            too: a module path (``"pettingzoo.classic.connect_four_v3"``) or a factory of
            ``AECEnv`` / ``ParallelEnv`` instances; each agent is one Cogment actor named by its
            agent id (see ``docs/architecture.md``, "Multi-agent").
        host, port: TCP address to bind; port 0 lets the OS choose (see ``.endpoint``). With
            ``workers > 1``, worker ``i`` binds ``port + i`` (port 0: each its own free port).
        unix_socket: bind this unix socket path instead of TCP. With ``workers > 1``, worker
            ``i`` binds ``<stem>-<i><suffix>`` next to it (``/tmp/env.sock`` -> ``/tmp/env-0.sock``).
        env_kwargs: keyword arguments for ``gym.make`` or the factory.
        api: PettingZoo environments: ``"aec"`` or ``"parallel"`` (converted with PettingZoo's
            wrappers if the environment has the other API); default: a module's ``env()`` (AEC),
            a factory's own API.
        max_agents: PettingZoo environments without ``possible_agents``: how many agent slots.
        local_socket: a TCP service also listens on a unix socket in a private temporary
            directory, announced in its spec (``EnvSpec.local_endpoint``, with a ``service_id``):
            clients on the same host with an embedded Orchestrator then run their trials over it
            (5-13% faster than loopback TCP here, for observation messages up to 64 KiB; larger
            ones stay on TCP). Remote clients and Orchestrators are not
            affected. ``False``: TCP only. A TLS server offers no such socket. The socket's
            directory is removed by ``stop()``, at the interpreter's exit, and on SIGTERM too:
            in a process whose SIGTERM has its default action, ``serve()`` (called in the main
            thread) sets a handler that removes the directories of the running servers, then
            lets SIGTERM end the process as it would have (a handler of the application's, such
            as ``serve_forever``'s, is left alone).
        security: TLS, client certificates (mTLS) and a token required on every call
            (:class:`~cogment_gym.protocol.security.Security`; default: plaintext, no token).
            See ``docs/security.md``.
        step_timeout: seconds each env ``reset`` / ``step`` (render included) may take; past it
            only that trial fails, with :class:`~cogment_gym.errors.EnvironmentTimeoutError`
            on the client (naming the env, the call, the trial and the deadline), and that env
            instance is abandoned, never reused. None (default): no deadline, as Cogment. Making
            a new env instance has no deadline (some take long to start).
        env_threads: every env instance lives on a thread of its own, where it is made,
            stepped and closed (default): a slow or hanging env holds up its own trial only,
            and ``stop(grace)`` returns within ``grace`` (plus a bounded margin) even when an
            env hangs. ``False``: env calls run on the server's event loop, which saves the
            hand-over (a few tens of µs per reset / step here; docs/performance.md) but lets one
            hanging env stall every trial of the server; ``step_timeout`` then cannot be used.
        workers: how many processes serve the environments (default 1: this process, in a
            thread; returns an :class:`EnvServer`). With ``workers > 1`` it returns an
            :class:`~cogment_gym.adapters.workers.EnvWorkers`: K processes (``multiprocessing``
            "spawn"), each serving every implementation on its own endpoint, listed in
            ``.endpoints`` (``.endpoint`` is the first); the source must then pickle (an id, a
            module path, a module-level factory). Clients spread trials over the workers with
            ``CogmentVectorEnv(environment=server.endpoints, num_envs=N)``: sub-env ``i`` plays
            on ``endpoints[i % K]``. A worker failing to start raises
            :class:`~cogment_gym.errors.WorkerStartError` (the others are stopped);
            workers exit when this process does, even if it is killed.
        directory: ``grpc://`` endpoint of a Cogment Directory to register in (one environment
            service per implementation, property ``__implementation``), so that trial params
            can say ``cogment://discover``; deregistered by ``stop()``. ``workers=1`` only.
        servicer_options: ``init_timeout``, ``idle_timeout``, ``end_timeout`` (seconds; see
            :class:`~cogment_gym.adapters.service.EnvironmentServicer`).

    Example:
        >>> with serve("CartPole-v1") as server:
        ...     server.endpoint.startswith("grpc://127.0.0.1:")
        True
        >>> from cogment_gym.envs import CogmentVectorEnv
        >>> with serve("CartPole-v1", workers=2) as server:      # doctest: +SKIP
        ...     envs = CogmentVectorEnv(environment=server.endpoints, num_envs=8)
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    check_step_timeout(step_timeout, env_threads=env_threads)
    if step_timeout is not None:
        servicer_options["step_timeout"] = step_timeout
    if workers > 1:
        if directory:
            raise ValueError("serve(directory=...) registers one process; with workers > 1, register each endpoint yourself")
        return EnvWorkers(env, workers=workers, host=host, port=port, unix_socket=unix_socket, env_kwargs=env_kwargs,
                          api=api, max_agents=max_agents, local_socket=local_socket, security=security, env_threads=env_threads,
                          **servicer_options)
    env_host = EnvHost(env, env_kwargs, api=api, max_agents=max_agents, env_threads=env_threads)
    address = f"unix:{os.path.abspath(unix_socket)}" if unix_socket else f"{host}:{port}"
    try:
        return EnvServer(env_host, address, servicer_options=servicer_options, local_socket=local_socket,
                         security=security or NO_SECURITY, directory=directory)
    except BaseException:
        env_host.close()
        raise


def serve_forever(env: EnvSource | Mapping[str, EnvSource], **kwargs: Any) -> None:
    """Like :func:`serve`, but blocks until SIGINT/SIGTERM."""
    serve_until_signal(serve(env, **kwargs))
