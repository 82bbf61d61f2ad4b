"""``serve_actor()``: Python policies as a Cogment service actor (``cogmentAPI.ServiceActorSP``)."""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

import grpc

from cogment_gym._proto.cogment.api import agent_pb2_grpc
from cogment_gym.actors.policy import Policy
from cogment_gym.actors.service import ServiceActorServicer
from cogment_gym.protocol.security import NO_SECURITY, Security
from cogment_gym.protocol.serving import GRPC_SERVER_OPTIONS, BackgroundServer, serve_until_signal

__all__ = ["ActorServer", "serve_actor", "serve_actor_forever"]

logger = logging.getLogger(__name__)

GRPC_OPTIONS = GRPC_SERVER_OPTIONS


class ActorServer(BackgroundServer):
    """A running service actor server. Use as a context manager, or call :meth:`stop`.

    Attributes:
        endpoint: where Orchestrators reach it, e.g. ``"grpc://127.0.0.1:40123"``; give it as
            the ``endpoint`` of an actor in the trial parameters.
        port: the bound TCP port (0 for a unix socket).
        servicer: the :class:`ServiceActorServicer` (``active_trials``, ``trials_played``).
    """

    def __init__(self, servicer: ServiceActorServicer, address: str, *, security: Security = NO_SECURITY, directory: str | None = None,
                 directory_token: str = "") -> None:
        self.servicer = servicer
        super().__init__(address, thread_name="cogment-gym-actor-server", security=security, directory=directory, directory_token=directory_token)

    def _directory_services(self) -> list[tuple[int, Mapping[str, str]]]:
        """One actor registration per policy (``__implementation``) and actor class
        (``__actor_class``, when ``actor_classes`` was given), as the SDK does."""
        from cogment_gym.protocol.directory import ACTOR_CLASS_PROPERTY, IMPLEMENTATION_PROPERTY, ServiceType

        actor = ServiceType.Value("ACTOR_SERVICE")
        classes = sorted(self.servicer.actor_classes or ())
        services: list[tuple[int, Mapping[str, str]]] = []
        for name in self.servicer.policies:
            if classes:
                services.extend((actor, {ACTOR_CLASS_PROPERTY: cls, IMPLEMENTATION_PROPERTY: name}) for cls in classes)
            else:
                services.append((actor, {IMPLEMENTATION_PROPERTY: name}))
        return services

    def _add_services(self, server: grpc.aio.Server) -> None:
        agent_pb2_grpc.add_ServiceActorSPServicer_to_server(self.servicer, server)

    def _started(self, endpoint: str) -> None:
        logger.info("serving policies %s at %s", list(self.servicer.policies), endpoint)

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
    security: Security | None = None,
    directory: str | None = None,
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
        security: TLS, client certificates (mTLS) and a token required on every call
            (:class:`~cogment_gym.protocol.security.Security`; default: plaintext, no token); the
            same settings dial ``environment``. See ``docs/security.md``.
        directory: ``grpc://`` endpoint of a Cogment Directory to register in (an actor service
            per policy, ``__implementation``, and per class of ``actor_classes``,
            ``__actor_class``); deregistered by ``stop()``.
        servicer_options: ``init_timeout``, ``idle_timeout``, ``end_timeout`` (seconds), ``strict``.

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
        env_implementation=env_implementation, run_in_thread=run_in_thread, security=security or NO_SECURITY,
        **servicer_options,
    )
    address = f"unix:{os.path.abspath(unix_socket)}" if unix_socket else f"{host}:{port}"
    return ActorServer(servicer, address, security=security or NO_SECURITY, directory=directory)


def serve_actor_forever(policy: Policy | Mapping[str, Policy], **kwargs: Any) -> None:
    """Like :func:`serve_actor`, but blocks until SIGINT/SIGTERM."""
    serve_until_signal(serve_actor(policy, **kwargs))
