"""The Cogment Directory, from its clients' side: registering services and resolving
``cogment://discover`` endpoints (Cogment 2.x, ``cogmentAPI.DirectorySP``).

Every component that looks services up or registers itself goes through :class:`DirectoryClient`:
the Orchestrator (trial params, pre-trial hooks, its own registration), ``serve()`` /
``serve_actor()`` (their registration) and the facades (an Orchestrator or environment given as
``cogment://discover...``).

Discovery endpoints, as the Cogment Orchestrator reads them (case-insensitive, no spaces)::

    cogment://discover                          the service of the context (an actor of the
    cogment://discover?prop=value&...           trial, its environment, its datalog...) with
                                                the context's properties added
    cogment://discover/<path>?prop=value&...    a service of that type: actor, environment,
                                                datalog, prehook, lifecycle, actservice,
                                                datastore, modelregistry, directory
    cogment://discover/service?__id=<id>        one registration by id

Properties narrow the inquiry (every one must match); ``__authentication-token`` is sent as the
``authentication-token`` metadata instead. For an actor the context adds ``__actor_class`` and
``__implementation``, for the environment ``__implementation`` (when they are set). The first
service the directory answers with is used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import Iterable, Mapping, Sequence

import grpc

from cogment_gym._proto.cogment.api import directory_pb2, directory_pb2_grpc
from cogment_gym.errors import DirectoryError, EndpointUnreachableError
from cogment_gym.protocol.endpoints import CLIENT_ENDPOINT, EndpointError, parse_endpoint
from cogment_gym.protocol.links import GRPC_OPTIONS

__all__ = [
    "ACTOR_CLASS_PROPERTY",
    "AUTHENTICATION_METADATA",
    "AUTHENTICATION_TOKEN_PROPERTY",
    "DIRECTORY_ENDPOINT_ENV",
    "DIRECTORY_TOKEN_ENV",
    "DISCOVER_ENDPOINT",
    "IMPLEMENTATION_PROPERTY",
    "SERVICE_ID_PROPERTY",
    "Discovery",
    "DirectoryClient",
    "DirectoryError",
    "Registration",
    "ServiceType",
    "deregister_all",
    "is_discovery",
    "parse_discovery",
    "register_all",
    "resolve_with_default_directory",
]

logger = logging.getLogger(__name__)

ServiceType = directory_pb2.ServiceType

DISCOVER_ENDPOINT = "cogment://discover"
ACTOR_CLASS_PROPERTY = "__actor_class"
IMPLEMENTATION_PROPERTY = "__implementation"
SERVICE_ID_PROPERTY = "__id"
AUTHENTICATION_TOKEN_PROPERTY = "__authentication-token"
AUTHENTICATION_METADATA = "authentication-token"
#: Where Cogment components (and ours) read the directory endpoint and token by default.
DIRECTORY_ENDPOINT_ENV = "COGMENT_DIRECTORY_ENDPOINT"
DIRECTORY_TOKEN_ENV = "COGMENT_DIRECTORY_AUTHENTICATION_TOKEN"

# Characters Cogment forbids in property names and values of discovery endpoints.
_FORBIDDEN = set("%?&=;:/+,#@[] ")

_PATHS: dict[str, int] = {
    "actor": directory_pb2.ACTOR_SERVICE,
    "environment": directory_pb2.ENVIRONMENT_SERVICE,
    "datalog": directory_pb2.DATALOG_SERVICE,
    "prehook": directory_pb2.PRE_HOOK_SERVICE,
    "lifecycle": directory_pb2.TRIAL_LIFE_CYCLE_SERVICE,
    "actservice": directory_pb2.CLIENT_ACTOR_CONNECTION_SERVICE,
    "datastore": directory_pb2.DATASTORE_SERVICE,
    "modelregistry": directory_pb2.MODEL_REGISTRY_SERVICE,
    "directory": directory_pb2.DIRECTORY_SERVICE,
}

# Seconds one directory call may take.
DIRECTORY_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True)
class Discovery:
    """A parsed ``cogment://discover`` endpoint.

    Attributes:
        service_type: the ``ServiceType`` its path names; UNKNOWN_SERVICE for a context endpoint
            (no path: the context says what is looked for) and for ``service?__id=``.
        service_id: the registration asked for by id (``/service?__id=<id>``), else None.
        properties: what the inquiry requires (the authentication token excluded).
        token: the ``__authentication-token`` property, or "".
    """

    text: str
    service_type: int
    service_id: int | None
    properties: Mapping[str, str]
    token: str

    @property
    def is_context(self) -> bool:
        """No path: the context (an actor, the environment...) says what is looked for."""
        return self.service_type == directory_pb2.UNKNOWN_SERVICE and self.service_id is None


def is_discovery(endpoint: str) -> bool:
    """``cogment://discover`` and its variants (any case)."""
    lowered = endpoint.lower()
    return lowered == DISCOVER_ENDPOINT or lowered.startswith((DISCOVER_ENDPOINT + "/", DISCOVER_ENDPOINT + "?"))


def parse_discovery(endpoint: str) -> Discovery:
    """Parse a ``cogment://discover`` endpoint.

    Raises:
        EndpointError: not a discovery endpoint, or a malformed one.

    Example:
        >>> parse_discovery("cogment://discover/actor?__actor_class=player").properties
        {'__actor_class': 'player'}
    """
    if not is_discovery(endpoint) or any(c.isspace() for c in endpoint):
        raise EndpointError(f"{endpoint!r} is not a discovery endpoint such as 'cogment://discover/environment?__implementation=CartPole-v1'")
    rest = endpoint[len(DISCOVER_ENDPOINT):]
    path, _, query = rest.partition("?")
    path = path.strip("/").lower()
    properties: dict[str, str] = {}
    for item in query.split("&") if query else ():
        name, sep, value = item.partition("=")
        if not name or not sep:
            raise EndpointError(f"endpoint {endpoint!r}: property {item!r} must be written name=value")
        properties[name] = value
    token = properties.pop(AUTHENTICATION_TOKEN_PROPERTY, "")
    if not path:
        return Discovery(endpoint, directory_pb2.UNKNOWN_SERVICE, None, properties, token)
    if path == "service":
        extra = set(properties) - {SERVICE_ID_PROPERTY}
        if extra:
            raise EndpointError(f"endpoint {endpoint!r}: a service path takes only {SERVICE_ID_PROPERTY!r} (and the token), got {sorted(extra)}")
        text = properties.get(SERVICE_ID_PROPERTY, "")
        if not text.isdigit():
            raise EndpointError(f"endpoint {endpoint!r}: a service path needs {SERVICE_ID_PROPERTY}=<number>, got {text!r}")
        return Discovery(endpoint, directory_pb2.UNKNOWN_SERVICE, int(text), {}, token)
    if path not in _PATHS:
        raise EndpointError(f"endpoint {endpoint!r}: unknown path {path!r}; expected one of service, {', '.join(_PATHS)}")
    return Discovery(endpoint, _PATHS[path], None, properties, token)


@dataclasses.dataclass(frozen=True)
class Registration:
    """A service registered in a directory (what deregistering it takes)."""

    service_id: int
    secret: str
    service_type: int
    host: str
    port: int


def _endpoint_of(data: directory_pb2.FullServiceData, looked_for: str) -> str:
    endpoint = data.endpoint
    if endpoint.protocol in (directory_pb2.ServiceEndpoint.GRPC, directory_pb2.ServiceEndpoint.GRPC_SSL):
        # TLS is a setting of the component that dials, not of the endpoint (as in Cogment).
        if not endpoint.host or endpoint.port == 0:
            raise DirectoryError(f"the directory answered {looked_for} with an endpoint lacking host or port: {endpoint.host!r}:{endpoint.port}")
        host = f"[{endpoint.host}]" if ":" in endpoint.host and not endpoint.host.startswith("[") else endpoint.host
        return f"grpc://{host}:{endpoint.port}"
    if endpoint.protocol == directory_pb2.ServiceEndpoint.COGMENT and endpoint.host == "client":
        return CLIENT_ENDPOINT
    raise DirectoryError(f"the directory answered {looked_for} with an endpoint of unknown protocol {endpoint.protocol}")


class DirectoryClient:
    """Talks to one ``DirectorySP`` service. Use from one event loop; :meth:`close` when done.

    Args:
        endpoint: ``grpc://host:port`` (or ``unix:``) of the directory.
        token: the ``authentication-token`` sent with every call ("" : none).
        timeout: seconds each call may take.

    Example:
        >>> client = DirectoryClient("grpc://127.0.0.1:9005")               # doctest: +SKIP
        >>> await client.resolve("cogment://discover/environment")           # doctest: +SKIP
        'grpc://127.0.0.1:9001'
    """

    def __init__(self, endpoint: str, *, token: str = "", timeout: float = DIRECTORY_TIMEOUT) -> None:
        self.endpoint = endpoint
        self.token = token
        self.timeout = timeout
        self._target = parse_endpoint(endpoint).grpc_target  # validates
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> directory_pb2_grpc.DirectorySPStub:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self._target, options=GRPC_OPTIONS)
        return directory_pb2_grpc.DirectorySPStub(self._channel)

    def _metadata(self, token: str = "") -> tuple[tuple[str, str], ...]:
        token = token or self.token
        return ((AUTHENTICATION_METADATA, token),) if token else ()

    def _failed(self, err: grpc.aio.AioRpcError, what: str) -> Exception:
        if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return EndpointUnreachableError(f"directory at {self.endpoint} is unreachable ({what}): {err.details()}")
        return DirectoryError(f"directory at {self.endpoint} failed ({what}): {err.code().name}: {err.details()}")

    async def register(
        self, service_type: int, host: str, port: int, properties: Mapping[str, str] | None = None, *, permanent: bool = False, ssl: bool = False
    ) -> Registration:
        """Register a gRPC service at ``host:port`` (``ssl``: it serves TLS).

        Raises:
            DirectoryError: the directory refused it. EndpointUnreachableError: no directory there.
        """
        request = directory_pb2.RegisterRequest(
            endpoint=directory_pb2.ServiceEndpoint(
                protocol=directory_pb2.ServiceEndpoint.GRPC_SSL if ssl else directory_pb2.ServiceEndpoint.GRPC, host=host, port=port
            ),
            details=directory_pb2.ServiceDetails(type=service_type, properties=dict(properties or {})),  # type: ignore[arg-type]
            permanent=permanent,
        )
        what = f"registering {directory_pb2.ServiceType.Name(service_type)} at {host}:{port}"  # type: ignore[arg-type]
        call = self._stub().Register(metadata=self._metadata(), timeout=self.timeout)
        try:
            await call.write(request)
            await call.done_writing()
            reply = await call.read()
        except grpc.aio.AioRpcError as err:
            raise self._failed(err, what) from None
        finally:
            call.cancel()
        if reply is grpc.aio.EOF:
            raise DirectoryError(f"directory at {self.endpoint} did not answer ({what})")
        if reply.status != directory_pb2.RegisterReply.OK:
            raise DirectoryError(f"directory at {self.endpoint} refused {what}: {reply.error_msg or 'no reason given'}")
        logger.debug("registered %s as service %d", what, reply.service_id)
        return Registration(reply.service_id, reply.secret, service_type, host, port)

    async def deregister(self, registration: Registration) -> None:
        """Remove a registration.

        Raises:
            DirectoryError: refused. EndpointUnreachableError: no directory there.
        """
        what = f"deregistering service {registration.service_id}"
        call = self._stub().Deregister(metadata=self._metadata(), timeout=self.timeout)
        try:
            await call.write(directory_pb2.DeregisterRequest(service_id=registration.service_id, secret=registration.secret))
            await call.done_writing()
            reply = await call.read()
        except grpc.aio.AioRpcError as err:
            raise self._failed(err, what) from None
        finally:
            call.cancel()
        if reply is grpc.aio.EOF or reply.status != directory_pb2.DeregisterReply.OK:
            reason = "no answer" if reply is grpc.aio.EOF else reply.error_msg or "no reason given"
            raise DirectoryError(f"directory at {self.endpoint} refused {what}: {reason}")

    async def inquire(self, request: directory_pb2.InquireRequest, *, token: str = "") -> list[directory_pb2.FullServiceData]:
        """Every registration the directory has for ``request``."""
        found: list[directory_pb2.FullServiceData] = []
        try:
            async for reply in self._stub().Inquire(request, metadata=self._metadata(token), timeout=self.timeout):
                found.append(reply.data)
        except grpc.aio.AioRpcError as err:
            raise self._failed(err, "inquiring") from None
        return found

    async def resolve(self, endpoint: str, *, context_type: int = directory_pb2.UNKNOWN_SERVICE, context: Mapping[str, str] | None = None) -> str:
        """The ``grpc://`` (or ``cogment://client``) endpoint a discovery endpoint stands for;
        any other endpoint is returned as it is.

        Args:
            endpoint: e.g. ``"cogment://discover/environment?__implementation=CartPole-v1"``.
            context_type: what a context endpoint (``cogment://discover?...``) looks for.
            context: properties the context adds (only to context endpoints), e.g. the actor's
                ``__actor_class`` and ``__implementation``; empty values are left out.

        Raises:
            DirectoryError: no such service, or a context endpoint without a context.
            EndpointError: a malformed endpoint.
        """
        if not is_discovery(endpoint):
            return endpoint
        discovery = parse_discovery(endpoint)
        request = directory_pb2.InquireRequest()
        if discovery.service_id is not None:
            request.service_id = discovery.service_id
        else:
            service_type = discovery.service_type
            properties = dict(discovery.properties)
            if discovery.is_context:
                if context_type == directory_pb2.UNKNOWN_SERVICE:
                    raise DirectoryError(f"endpoint {endpoint!r} has no path and nothing says what it looks for; give e.g. 'cogment://discover/environment'")
                service_type = context_type
                for name, value in (context or {}).items():
                    if value and name not in properties:
                        properties[name] = value
            for name, value in properties.items():
                if _FORBIDDEN & set(name) or _FORBIDDEN & set(value):
                    raise EndpointError(f"endpoint {endpoint!r}: property {name}={value!r} holds a character Cogment forbids ({''.join(sorted(_FORBIDDEN))})")
            request.details.type = service_type  # type: ignore[assignment]
            request.details.properties.update(properties)
        found = await self.inquire(request, token=discovery.token)
        looked_for = _describe(request)
        if not found:
            raise DirectoryError(f"no service in the directory at {self.endpoint} for {endpoint!r} ({looked_for})")
        resolved = _endpoint_of(found[0], repr(endpoint))
        logger.debug("%s -> %s (%s)", endpoint, resolved, looked_for)
        return resolved

    async def close(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()


def _describe(request: directory_pb2.InquireRequest) -> str:
    if request.WhichOneof("inquiry") == "service_id":
        return f"service id {request.service_id}"
    props = ", ".join(f"{k}={v}" for k, v in sorted(request.details.properties.items()))
    return f"{directory_pb2.ServiceType.Name(request.details.type)}" + (f" with {props}" if props else "")


async def register_all(
    client: DirectoryClient, services: Iterable[tuple[int, Mapping[str, str]]], host: str, port: int, *, ssl: bool = False
) -> list[Registration]:
    """Register every ``(service_type, properties)`` at ``host:port``; on a failure the ones
    already made are removed again and the error is raised."""
    done: list[Registration] = []
    try:
        for service_type, properties in services:
            done.append(await client.register(service_type, host, port, properties, ssl=ssl))
    except BaseException:
        await deregister_all(client, done)
        raise
    return done


async def deregister_all(client: DirectoryClient, registrations: Sequence[Registration]) -> None:
    """Best effort: a directory that is gone by now has nothing left to forget."""
    for registration in registrations:
        try:
            await asyncio.wait_for(client.deregister(registration), client.timeout)
        except (Exception, asyncio.TimeoutError) as err:
            logger.info("could not deregister service %d from %s: %s", registration.service_id, client.endpoint, err)


async def resolve_with_default_directory(endpoint: str, service_type: str, context: Mapping[str, str] | None = None) -> str:
    """``endpoint`` resolved through the directory of ``COGMENT_DIRECTORY_ENDPOINT`` (token:
    ``COGMENT_DIRECTORY_AUTHENTICATION_TOKEN``), as the SDK's clients find it; any endpoint that
    is not ``cogment://discover...`` is returned as it is.

    Args:
        service_type: what a context endpoint looks for, a ``ServiceType`` name such as
            ``"ENVIRONMENT_SERVICE"``.

    Raises:
        DirectoryError: no directory configured, or no such service in it.
    """
    if not is_discovery(endpoint):
        return endpoint
    directory = os.environ.get(DIRECTORY_ENDPOINT_ENV, "")
    if not directory:
        raise DirectoryError(f"endpoint {endpoint!r} is found through a Cogment Directory: set {DIRECTORY_ENDPOINT_ENV}=grpc://host:port")
    client = DirectoryClient(directory, token=os.environ.get(DIRECTORY_TOKEN_ENV, ""))
    try:
        return await client.resolve(endpoint, context_type=ServiceType.Value(service_type), context=context)
    finally:
        await client.close()
