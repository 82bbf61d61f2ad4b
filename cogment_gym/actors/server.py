"""``serve_actor()``: Python policies as a Cogment service actor (``cogmentAPI.ServiceActorSP``)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Mapping

import grpc

from cogment_gym._proto.cogment.api import agent_pb2_grpc
from cogment_gym.actors.policy import Policy
from cogment_gym.actors.service import ServiceActorServicer
from cogment_gym.protocol.runtime import BackgroundLoop

__all__ = ["ActorServer", "serve_actor", "serve_actor_forever"]

logger = logging.getLogger(__name__)

GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
]


class ActorServer:
    """A running service actor server. Use as a context manager, or call :meth:`stop`.

    Attributes:
        endpoint: where Orchestrators reach it, e.g. ``"grpc://127.0.0.1:40123"``; give it as
            the ``endpoint`` of an actor in the trial parameters.
        port: the bound TCP port (0 for a unix socket).
        servicer: the :class:`ServiceActorServicer` (``active_trials``, ``trials_played``).
    """

    def __init__(self, servicer: ServiceActorServicer, address: str) -> None:
        self.servicer = servicer
        self._runtime = BackgroundLoop("cogment-gym-actor-server")
        self._stopped = threading.Event()
        try:
            self.port, self.endpoint = self._runtime.run(self._start(address), timeout=30)
        except BaseException:
            self._runtime.close()
            raise

    async def _start(self, address: str) -> tuple[int, str]:
        self._server = grpc.aio.server(options=GRPC_OPTIONS)
        agent_pb2_grpc.add_ServiceActorSPServicer_to_server(self.servicer, self._server)
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
        logger.info("serving policies %s at %s", list(self.servicer.policies), endpoint)
        return port, endpoint

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving (running trials get ``grace`` seconds). Idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self._runtime.run(self._server.stop(grace), timeout=(grace or 0) + 10)
        finally:
            self._runtime.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` is called (from another thread or a signal)."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> ActorServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ActorServer({list(self.servicer.policies)}, endpoint={self.endpoint!r})"


def serve_actor(
    policy: Policy | Mapping[str, Policy],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    unix_socket: str | None = None,
    actor_classes: list[str] | None = None,
    spaces: Mapping[str, tuple[Any, Any]] | None = None,
    environment: str | None = None,
    env_implementation: str = "",
    run_in_thread: bool = True,
    **servicer_options: Any,
) -> ActorServer:
    """Serve a Python policy as a Cogment service actor; returns at once (a background thread
    serves until ``stop()``).

    The policy gets the same decoded numpy values and spaces as the facades. Its spaces come, in
    this order, from the payloads (agent slots), from the trial's ``ActorConfig`` (the facades
    copy the agent's spaces from the environment's spec there), from ``spaces``, or from the spec
    of the cogment_gym environment server at ``environment``.

    Args:
        policy: ``policy(observation, context) -> action`` (plain or async; ``context`` is an
            :class:`~cogment_gym.actors.ActorContext`), or a
            :class:`~cogment_gym.actors.TrialPolicy` subclass (one instance per trial), or a
            mapping of implementation names to those (the trial's actor ``implementation``
            chooses; the first one by default).
        host, port: TCP address to bind; port 0 lets the OS choose (see ``.endpoint``).
        unix_socket: bind this unix socket path instead of TCP.
        actor_classes: serve only these actor classes (None: any).
        spaces: actor name or class -> (observation_space, action_space).
        environment, env_implementation: a cogment_gym environment server to take spaces from.
        run_in_thread: call plain policies in a worker thread (default), so that a slow one does
            not hold up other trials.
        servicer_options: ``init_timeout``, ``idle_timeout`` (seconds), ``strict``.

    Example:
        >>> from cogment_gym.actors import serve_actor
        >>> def first_legal(observation, context):
        ...     return int(context.action_mask.argmax())
        >>> with serve_actor(first_legal) as server:
        ...     server.endpoint.startswith("grpc://127.0.0.1:")
        True
    """
    policies = dict(policy) if isinstance(policy, Mapping) else {getattr(policy, "__name__", "policy"): policy}
    servicer = ServiceActorServicer(
        policies, actor_classes=actor_classes, spaces=spaces, environment=environment,
        env_implementation=env_implementation, run_in_thread=run_in_thread, **servicer_options,
    )
    address = f"unix:{os.path.abspath(unix_socket)}" if unix_socket else f"{host}:{port}"
    return ActorServer(servicer, address)


def serve_actor_forever(policy: Policy | Mapping[str, Policy], **kwargs: Any) -> None:
    """Like :func:`serve_actor`, but blocks until SIGINT/SIGTERM."""
    server = serve_actor(policy, **kwargs)

    def _stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.stop, daemon=True).start()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _stop)
    try:
        server.wait()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
