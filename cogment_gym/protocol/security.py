"""TLS, mutual TLS and a shared token for every gRPC server and channel of the package.

This is the only module that knows gRPC's credential APIs. A :class:`Security` says how one
component talks, as the Cogment Orchestrator's three options do (``--private_key``,
``--root_cert``, ``--trust_chain``): its own identity (``private_key`` + ``cert_chain``), the
certificate authorities it trusts (``root_cert``), and an optional shared token. Servers take
what concerns serving, channels what concerns dialing; a component that does both (the
Orchestrator) takes one object for both, as Cogment does.

- :func:`new_server` builds a ``grpc.aio`` server that checks the token on every RPC (a server
  interceptor, installed only when a token or an ``authorize`` callback is set: nothing is
  paid otherwise; a stream pays it once, when it opens).
- :func:`bind` binds an address, over TLS when the settings have a key pair.
- :func:`new_channel` dials a target, over TLS when the settings ask for it.
- :attr:`Security.call_metadata` is what a client adds to the metadata of every call it makes
  (streams included): Cogment's ``authentication-token`` key, the key the official SDK's
  Directory uses (send it with ``cogment.Context(metadata=...)``, see ``docs/security.md``).

Endpoints keep Cogment's names (``grpc://host:port``): like Cogment, TLS is a setting of the
component, not a scheme of the endpoint.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence, Union

import grpc

from cogment_gym.errors import SecuritySettingsError

__all__ = [
    "AUTHORIZATION_KEY",
    "Authorizer",
    "NO_SECURITY",
    "Security",
    "TOKEN_KEY",
    "bind",
    "new_channel",
    "new_server",
    "presented_token",
]

logger = logging.getLogger(__name__)

# The metadata key of the token: Cogment's (the official SDK sends the Directory's token under it).
TOKEN_KEY = "authentication-token"
# Also accepted by servers, as ``Bearer <token>`` (what generic gRPC tools and proxies send).
AUTHORIZATION_KEY = "authorization"

# Seconds a refused streaming call waits for the client's first message before failing.
_REFUSAL_READ_TIMEOUT = 1.0

PathLike = Union[str, "os.PathLike[str]"]
#: ``authorize(token, method) -> bool`` (or an awaitable of it): ``token`` is what the caller
#: presented (None: nothing), ``method`` the full RPC name (``/cogmentAPI.TrialLifecycleSP/StartTrial``).
Authorizer = Callable[[Union[str, None], str], Union[bool, Awaitable[bool]]]


def _path(value: PathLike | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        text = os.fspath(value)
    except TypeError:
        raise SecuritySettingsError(f"{what} must be the path of a PEM file, got {value!r}") from None
    if not isinstance(text, str) or not text:
        raise SecuritySettingsError(f"{what} must be the path of a PEM file, got {value!r}")
    return text


@dataclass(frozen=True)
class Security:
    """How a component secures its gRPC connections; every field is optional (the default,
    :data:`NO_SECURITY`, is plaintext without a token, as Cogment's default).

    Args:
        private_key: PEM file of this component's private key (Cogment: ``--private_key``).
            With ``cert_chain``, a server serves TLS with it, and a client presents it when the
            server asks for a client certificate (mTLS).
        cert_chain: PEM file of this component's certificate chain (Cogment: ``--trust_chain``).
        root_cert: PEM file of the certificate authorities this component trusts (Cogment:
            ``--root_cert``). A client verifies servers with it (None: the system's roots);
            a TLS server verifies client certificates with it (see ``require_client_cert``).
        require_client_cert: server side. None (default): as Cogment, a TLS server with a
            ``root_cert`` requires every client to present a certificate signed by it (mTLS);
            False: TLS without client certificates (``root_cert`` then serves dialing only);
            True: the same as None, but ``root_cert`` must be given.
        tls: client side. None (default): TLS when any PEM file is given; True: TLS even
            without files (the server's certificate is checked against the system's roots);
            False: plaintext.
        server_name: client side: the name the server's certificate must carry, when it is
            not the host of the endpoint (default for a unix socket: "localhost").
        token: a shared secret. Clients send it with every call (metadata
            ``authentication-token``); servers refuse every call without it with
            ``UNAUTHENTICATED``. Printable ASCII. It is all-or-nothing: whoever has it may call
            every method (use ``authorize`` for per-method rights).
        authorize: server side, instead of comparing with ``token``: ``authorize(token,
            method)`` (plain or async; ``token`` is what the caller sent, None when nothing)
            returns True to let the call through. It runs on the server's event loop for every
            RPC: keep it quick. An exception refuses the call. With ``workers=K`` it must
            pickle (a module-level function).

    Example:
        >>> Security(token="s3cret").call_metadata
        (('authentication-token', 's3cret'),)
        >>> Security(private_key="server.key", cert_chain="server.pem", root_cert="ca.pem").describe(server=True)
        'TLS with client certificates (mTLS)'
    """

    private_key: PathLike | None = None
    cert_chain: PathLike | None = None
    root_cert: PathLike | None = None
    require_client_cert: bool | None = None
    tls: bool | None = None
    server_name: str | None = None
    token: str | None = field(default=None, repr=False)
    authorize: Authorizer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("private_key", "cert_chain", "root_cert"):
            object.__setattr__(self, name, _path(getattr(self, name), name))
        if (self.private_key is None) != (self.cert_chain is None):
            given, missing = ("private_key", "cert_chain") if self.private_key is not None else ("cert_chain", "private_key")
            raise SecuritySettingsError(f"{given} is given without {missing}: a TLS identity needs both the key and its certificate chain")
        if self.require_client_cert is True and (self.root_cert is None or self.private_key is None):
            raise SecuritySettingsError(
                "require_client_cert=True needs private_key and cert_chain (a TLS server) and root_cert "
                "(the authority client certificates must be signed by)"
            )
        if self.token is not None:
            if not isinstance(self.token, str) or not self.token:
                raise SecuritySettingsError(f"token must be a non-empty str, got {self.token!r:.20}")
            if any(not 0x20 < ord(c) < 0x7F for c in self.token):
                raise SecuritySettingsError("token must be printable ASCII without spaces (gRPC metadata carries nothing else)")
        if self.authorize is not None and not callable(self.authorize):
            raise SecuritySettingsError(f"authorize must be callable(token, method) -> bool, got {self.authorize!r}")
        if self.server_name is not None and (not isinstance(self.server_name, str) or not self.server_name):
            raise SecuritySettingsError(f"server_name must be a non-empty str, got {self.server_name!r}")
        metadata = ((TOKEN_KEY, self.token),) if self.token is not None else ()
        object.__setattr__(self, "_metadata", metadata)

    # ------------------------------------------------------------------ what it means

    @property
    def serves_tls(self) -> bool:
        """A server with these settings serves TLS (it has a key pair)."""
        return self.private_key is not None

    @property
    def requires_client_cert(self) -> bool:
        """A TLS server with these settings refuses clients without a valid certificate."""
        if not self.serves_tls or self.require_client_cert is False:
            return False
        return self.root_cert is not None

    @property
    def dials_tls(self) -> bool:
        """A channel with these settings uses TLS."""
        if self.tls is not None:
            return self.tls
        return self.private_key is not None or self.root_cert is not None

    @property
    def checks_calls(self) -> bool:
        """A server with these settings checks a token on every call."""
        return self.token is not None or self.authorize is not None

    @property
    def call_metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata a client adds to every call (the token; empty without one)."""
        return self._metadata  # type: ignore[attr-defined,no-any-return]

    def check_files(self) -> None:
        """Read every PEM file given; SecuritySettingsError if one is unreadable or not PEM."""
        _read_pem(self.private_key, "private key")
        _read_pem(self.cert_chain, "certificate chain")
        _read_pem(self.root_cert, "root certificate")

    def describe(self, *, server: bool) -> str:
        """One line for logs: what a server (or a client) with these settings does."""
        if server:
            words = ["TLS with client certificates (mTLS)" if self.requires_client_cert else "TLS" if self.serves_tls else "plaintext"]
            if self.checks_calls:
                words.append("token checked on every call")
        else:
            words = [("mTLS" if self.private_key else "TLS") if self.dials_tls else "plaintext"]
            if self.token is not None:
                words.append("token sent")
        return ", ".join(words)


NO_SECURITY = Security()


# ---------------------------------------------------------------------------------------- files


def _read_pem(given: PathLike | None, what: str) -> bytes | None:
    if given is None:
        return None
    path = os.fspath(given)
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as err:
        raise SecuritySettingsError(f"cannot read the {what} file {path!r}: {err.strerror or err}") from None
    if b"-----BEGIN " not in data:
        raise SecuritySettingsError(f"the {what} file {path!r} is not PEM (expected a '-----BEGIN ...' block)")
    if what == "private key" and b"PRIVATE KEY-----" not in data:
        raise SecuritySettingsError(f"the private key file {path!r} holds no PEM private key (expected '-----BEGIN ... PRIVATE KEY-----')")
    return data


def _server_credentials(security: Security) -> grpc.ServerCredentials:
    key = _read_pem(security.private_key, "private key")
    chain = _read_pem(security.cert_chain, "certificate chain")
    root = _read_pem(security.root_cert, "root certificate") if security.requires_client_cert else None
    return grpc.ssl_server_credentials([(key, chain)], root_certificates=root, require_client_auth=root is not None)


def _channel_credentials(security: Security) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=_read_pem(security.root_cert, "root certificate"),
        private_key=_read_pem(security.private_key, "private key"),
        certificate_chain=_read_pem(security.cert_chain, "certificate chain"),
    )


# ---------------------------------------------------------------------------------------- servers


def presented_token(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    """The token a call carries: ``authentication-token``, else ``authorization: Bearer <token>``."""
    bearer = None
    for item in metadata or ():
        key, value = item[0], item[1]
        if isinstance(value, bytes):
            continue
        if key == TOKEN_KEY:
            return str(value)
        if key == AUTHORIZATION_KEY and bearer is None:
            scheme, _, credentials = str(value).partition(" ")
            if scheme.lower() == "bearer" and credentials:
                bearer = credentials.strip()
    return bearer


class _TokenCheck(grpc.aio.ServerInterceptor):
    """Refuses every call whose token is missing or wrong, before its handler runs: a refused
    call reaches no servicer, so no trial is started, joined or touched."""

    def __init__(self, security: Security) -> None:
        self._expected = security.token.encode() if security.token is not None else None
        self._authorize = security.authorize

    async def _allowed(self, token: str | None, method: str) -> bool:
        if self._authorize is not None:
            try:
                verdict = self._authorize(token, method)
                if inspect.isawaitable(verdict):
                    verdict = await verdict
            except Exception:  # a failing check refuses: never let a call through by accident
                logger.exception("authorize(...) raised for %s: the call is refused", method)
                return False
            return verdict is True
        return token is not None and self._expected is not None and hmac.compare_digest(token.encode(), self._expected)

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        method = details.method
        token = presented_token(details.invocation_metadata)
        if await self._allowed(token, method):
            return handler
        if token is None:
            message = (f"{method}: this server requires a token: send it in the {TOKEN_KEY!r} metadata of every call "
                       "(cogment_gym: Security(token=...); the Cogment SDK: Context(metadata=...))")
        else:
            message = f"{method}: the token sent in the metadata was refused"
        logger.info("refused a call to %s: %s", method, "no token" if token is None else "wrong token")
        return _refusal(handler, message)


def _refusal(handler: Any, message: str) -> Any:
    """A handler of the same kind as ``handler`` that fails the call with UNAUTHENTICATED at once
    (a streaming call is refused without reading a message)."""
    if handler is None:  # no such method: UNIMPLEMENTED tells nothing more than a refusal
        return None

    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if handler.request_streaming:
            # Take the client's first message before failing the call (bounded: a client may
            # wait for the server first): a grpc.aio client whose first write races with the
            # end of its call can report INTERNAL "Internal error from Core" instead of the status.
            try:
                await asyncio.wait_for(context.read(), _REFUSAL_READ_TIMEOUT)
            except (asyncio.TimeoutError, Exception):
                pass
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    make = kinds[(bool(handler.request_streaming), bool(handler.response_streaming))]
    return make(refuse, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)


def new_server(security: Security, options: Sequence[tuple[str, Any]]) -> grpc.aio.Server:
    """A ``grpc.aio`` server; with a token or ``authorize``, every call is checked first."""
    interceptors = [_TokenCheck(security)] if security.checks_calls else None
    return grpc.aio.server(options=list(options), interceptors=interceptors)


def bind(server: grpc.aio.Server, address: str, security: Security) -> int:
    """Bind ``address`` (``host:port`` or ``unix:/path``), over TLS when ``security`` has a key
    pair; returns the bound port (what grpc returns: 0 when the bind failed, for TCP).

    Raises:
        SecuritySettingsError: a PEM file cannot be read.
        RuntimeError: grpc refused the address (as ``add_insecure_port`` does).
    """
    if not security.serves_tls:
        return int(server.add_insecure_port(address))
    return int(server.add_secure_port(address, _server_credentials(security)))


# ---------------------------------------------------------------------------------------- channels


def new_channel(target: str, security: Security, options: Sequence[tuple[str, Any]]) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel to ``target`` (``host:port`` or ``unix:/path``), over TLS when
    ``security`` asks for it. The token is not attached here: callers add
    :attr:`Security.call_metadata` to each call (a client interceptor would cost every message
    of a stream an extra task and queue in grpc.aio)."""
    if not security.dials_tls:
        return grpc.aio.insecure_channel(target, options=list(options))
    settings = list(options)
    # gRPC names a unix socket by its path; a certificate for this host names "localhost".
    name = security.server_name or ("localhost" if target.startswith("unix:") else None)
    if name is not None:
        settings.append(("grpc.ssl_target_name_override", name))
    return grpc.aio.secure_channel(target, _channel_credentials(security), options=settings)
