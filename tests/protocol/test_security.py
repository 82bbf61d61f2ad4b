"""``protocol/security.py``: settings, TLS / mTLS servers and channels, the token check on every
RPC kind, over real gRPC on 127.0.0.1 (port 0) and a unix socket, with certificates made at
test time (``tests/pki.py``)."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import grpc
import pytest

from cogment_gym.errors import SecuritySettingsError
from cogment_gym.protocol.security import (
    NO_SECURITY,
    TOKEN_KEY,
    Security,
    bind,
    new_channel,
    new_server,
    presented_token,
)
from tests.pki import Pki

SERVICE = "test.Echo"


class Echo:
    """One method of each RPC kind; counts the calls that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    async def unary(self, request: bytes, context: Any) -> bytes:
        self.calls += 1
        return request

    async def server_stream(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        self.calls += 1
        for _ in range(2):
            yield request

    async def client_stream(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        self.calls += 1
        return b"".join([r async for r in requests])

    async def bidi(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        self.calls += 1
        async for request in requests:
            yield request

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self.bidi),
        })


async def _serve(security: Security, address: str = "127.0.0.1:0") -> tuple[grpc.aio.Server, Echo, str]:
    echo = Echo()
    server = new_server(security, [])
    server.add_generic_rpc_handlers((echo.handler(),))
    port = bind(server, address, security)
    await server.start()
    target = address if address.startswith("unix:") else f"127.0.0.1:{port}"
    return server, echo, target


async def _each_kind(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Call every method once (streams written and read as cogment_gym's own clients do); its
    reply, or the status code and details it failed with."""
    async def client_stream() -> Any:
        call = channel.stream_unary(f"/{SERVICE}/ClientStream")(metadata=metadata, timeout=10)
        return await _written(call, [b"a", b"b"], lambda: call)

    async def bidi() -> Any:
        call = channel.stream_stream(f"/{SERVICE}/Bidi")(metadata=metadata, timeout=10)
        return await _written(call, [b"a", b"b"], lambda: _collect(call))

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "unary": lambda: channel.unary_unary(f"/{SERVICE}/Unary")(b"x", metadata=metadata, timeout=10),
        "server_stream": lambda: _collect(channel.unary_stream(f"/{SERVICE}/ServerStream")(b"x", metadata=metadata, timeout=10)),
        "client_stream": client_stream,
        "bidi": bidi,
    }
    out: dict[str, Any] = {}
    for name, call in calls.items():
        try:
            out[name] = await call()
        except grpc.aio.AioRpcError as err:
            out[name] = (err.code(), err.details())
    return out


async def _written(call: Any, messages: list[bytes], result: Callable[[], Awaitable[Any]]) -> Any:
    try:
        for message in messages:
            await call.write(message)
        await call.done_writing()
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):  # the call is over: its status says why
        code = await call.code()
        return code, await call.details()
    return await result()


async def _collect(call: Any) -> list[bytes]:
    return [item async for item in call]


def _run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


async def _call_once(target: str, server_security: Security, client_security: Security, metadata: tuple[tuple[str, str], ...] | None = None) -> Any:
    server, echo, where = await _serve(server_security, target)
    try:
        async with new_channel(where, client_security, []) as channel:
            try:
                reply = await channel.unary_unary(f"/{SERVICE}/Unary")(
                    b"ping", metadata=client_security.call_metadata if metadata is None else metadata, timeout=10
                )
            except grpc.aio.AioRpcError as err:
                return err.code(), echo.calls
            return reply, echo.calls
    finally:
        await server.stop(0)


OK = {"unary": b"x", "server_stream": [b"x", b"x"], "client_stream": b"ab", "bidi": [b"a", b"b"]}


# ---------------------------------------------------------------------------------------- settings


def test_settings_refuse_half_a_key_pair_and_unusable_values(pki: Pki) -> None:
    with pytest.raises(SecuritySettingsError, match="private_key is given without cert_chain"):
        Security(private_key=pki.server_key)
    with pytest.raises(SecuritySettingsError, match="cert_chain is given without private_key"):
        Security(cert_chain=pki.server_cert)
    with pytest.raises(SecuritySettingsError, match="require_client_cert=True needs"):
        Security(private_key=pki.server_key, cert_chain=pki.server_cert, require_client_cert=True)
    with pytest.raises(SecuritySettingsError, match="printable ASCII"):
        Security(token="two words")
    with pytest.raises(SecuritySettingsError, match="non-empty"):
        Security(token="")
    with pytest.raises(SecuritySettingsError, match="callable"):
        Security(authorize="yes")  # type: ignore[arg-type]
    with pytest.raises(SecuritySettingsError, match="path of a PEM file"):
        Security(root_cert=3)  # type: ignore[arg-type]


def test_files_are_checked_with_errors_that_name_them(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(SecuritySettingsError, match=f"cannot read the root certificate file '{missing}'"):
        Security(root_cert=missing).check_files()
    text = tmp_path / "notes.txt"
    text.write_text("not a certificate")
    with pytest.raises(SecuritySettingsError, match="is not PEM"):
        Security(root_cert=text).check_files()
    with pytest.raises(SecuritySettingsError, match="holds no PEM private key"):
        Security(private_key=pki.server_cert, cert_chain=pki.server_cert).check_files()
    Security(private_key=pki.server_key, cert_chain=pki.server_cert, root_cert=pki.ca).check_files()


def test_settings_say_what_they_do_and_keep_the_token_out_of_their_repr(pki: Pki) -> None:
    assert NO_SECURITY.describe(server=True) == "plaintext" and NO_SECURITY.call_metadata == ()
    assert not NO_SECURITY.dials_tls and not NO_SECURITY.serves_tls and not NO_SECURITY.checks_calls
    server = pki.server(token="s3cret")
    assert server.serves_tls and server.requires_client_cert and server.checks_calls and server.dials_tls
    assert server.describe(server=True) == "TLS with client certificates (mTLS), token checked on every call"
    assert pki.server(mtls=False).describe(server=True) == "TLS"
    assert not pki.server(mtls=False).requires_client_cert
    assert pki.client().describe(server=False) == "mTLS" and pki.client(cert=False, token="t").describe(server=False) == "TLS, token sent"
    assert Security(tls=True).dials_tls and not Security(root_cert=pki.ca, tls=False).dials_tls
    assert Security(token="s3cret").call_metadata == ((TOKEN_KEY, "s3cret"),)
    assert "s3cret" not in repr(server)
    # Workers get their settings by pickle.
    assert pickle.loads(pickle.dumps(server)) == server
    assert pickle.loads(pickle.dumps(server)).call_metadata == server.call_metadata


def test_presented_token_reads_cogments_key_or_a_bearer_authorization() -> None:
    assert presented_token(None) is None
    assert presented_token([("trial-id", "t")]) is None
    assert presented_token([(TOKEN_KEY, "a")]) == "a"
    assert presented_token([("authorization", "Bearer b")]) == "b"
    assert presented_token([("authorization", "bearer  b ")]) == "b"
    assert presented_token([("authorization", "Basic dXNlcjpwdw==")]) is None
    assert presented_token([("authorization", "Bearer b"), (TOKEN_KEY, "a")]) == "a"


# ---------------------------------------------------------------------------------------- tokens


def test_a_token_is_checked_on_every_rpc_kind_before_the_handler_runs() -> None:
    async def scenario() -> None:
        server, echo, target = await _serve(Security(token="s3cret"))
        try:
            async with new_channel(target, NO_SECURITY, []) as channel:
                missing = await _each_kind(channel, ())
                wrong = await _each_kind(channel, ((TOKEN_KEY, "guess"),))
                assert echo.calls == 0  # no refused call reached a handler
                for name in OK:
                    assert missing[name][0] == grpc.StatusCode.UNAUTHENTICATED, (name, missing[name])
                    assert "requires a token" in missing[name][1] and TOKEN_KEY in missing[name][1]
                    assert "Context(metadata=...)" in missing[name][1]
                    assert wrong[name][0] == grpc.StatusCode.UNAUTHENTICATED, (name, wrong[name])
                    assert wrong[name][1].endswith("the token sent in the metadata was refused")
                    assert "guess" not in wrong[name][1]
                assert await _each_kind(channel, ((TOKEN_KEY, "s3cret"),)) == OK
                assert await _each_kind(channel, (("authorization", "Bearer s3cret"),)) == OK
                assert echo.calls == 8
                with pytest.raises(grpc.aio.AioRpcError) as err:  # no such method: nothing told
                    await channel.unary_unary(f"/{SERVICE}/Nothing")(b"x", metadata=((TOKEN_KEY, "s3cret"),), timeout=10)
                assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        finally:
            await server.stop(0)

    _run(scenario())


def test_authorize_gives_per_method_rights_and_refuses_when_it_fails() -> None:
    seen: list[tuple[str | None, str]] = []

    async def authorize(token: str | None, method: str) -> bool:
        seen.append((token, method))
        if token == "crash":
            raise RuntimeError("the check itself failed")
        if token == "admin":
            return True
        return token == "monitor" and method.endswith("/Unary")  # read-only rights, say

    async def scenario() -> None:
        server, echo, target = await _serve(Security(authorize=authorize))
        try:
            async with new_channel(target, NO_SECURITY, []) as channel:
                assert await _each_kind(channel, ((TOKEN_KEY, "admin"),)) == OK
                monitor = await _each_kind(channel, ((TOKEN_KEY, "monitor"),))
                assert monitor["unary"] == b"x"
                assert all(monitor[k][0] == grpc.StatusCode.UNAUTHENTICATED for k in ("server_stream", "client_stream", "bidi"))
                crash = await _each_kind(channel, ((TOKEN_KEY, "crash"),))
                assert all(v[0] == grpc.StatusCode.UNAUTHENTICATED for v in crash.values())
                none = await _each_kind(channel, ())
                assert all(v[0] == grpc.StatusCode.UNAUTHENTICATED for v in none.values())
                assert echo.calls == 5
        finally:
            await server.stop(0)

    _run(scenario())
    assert (None, f"/{SERVICE}/Unary") in seen and ("monitor", f"/{SERVICE}/Bidi") in seen


def test_a_sync_authorize_works_too() -> None:
    result = _run(_call_once("127.0.0.1:0", Security(authorize=lambda token, method: token == "ok"), Security(token="ok")))
    assert result == (b"ping", 1)
    result = _run(_call_once("127.0.0.1:0", Security(authorize=lambda token, method: token == "ok"), Security(token="no")))
    assert result == (grpc.StatusCode.UNAUTHENTICATED, 0)


# ---------------------------------------------------------------------------------------- TLS


def test_tls_serves_a_client_that_trusts_the_ca_and_refuses_a_plaintext_one(pki: Pki) -> None:
    server = pki.server(mtls=False)
    assert _run(_call_once("127.0.0.1:0", server, pki.client(cert=False))) == (b"ping", 1)
    assert _run(_call_once("127.0.0.1:0", server, NO_SECURITY)) == (grpc.StatusCode.UNAVAILABLE, 0)
    # A TLS client of a plaintext server fails too: nothing falls back to plaintext.
    assert _run(_call_once("127.0.0.1:0", NO_SECURITY, pki.client(cert=False))) == (grpc.StatusCode.UNAVAILABLE, 0)


def test_a_client_refuses_a_server_whose_certificate_another_ca_signed(pki: Pki) -> None:
    impostor = Security(private_key=pki.other_server_key, cert_chain=pki.other_server_cert)
    assert _run(_call_once("127.0.0.1:0", impostor, pki.client(cert=False))) == (grpc.StatusCode.UNAVAILABLE, 0)


def test_the_server_name_is_checked_and_can_be_overridden(pki: Pki) -> None:
    server = pki.server(mtls=False)
    # The certificate names "localhost" and 127.0.0.1; "localhost" is right, another name is not.
    assert _run(_call_once("127.0.0.1:0", server, Security(root_cert=pki.ca, server_name="localhost"))) == (b"ping", 1)
    assert _run(_call_once("127.0.0.1:0", server, Security(root_cert=pki.ca, server_name="elsewhere.example"))) == (grpc.StatusCode.UNAVAILABLE, 0)


def test_tls_over_a_unix_socket(pki: Pki, tmp_path: Path) -> None:
    """A unix socket's name is "localhost", which the server certificate carries."""
    target = f"unix:{tmp_path / 'tls.sock'}"
    assert _run(_call_once(target, pki.server(), pki.client())) == (b"ping", 1)
    assert _run(_call_once(target, pki.server(), NO_SECURITY)) == (grpc.StatusCode.UNAVAILABLE, 0)


def test_mtls_refuses_clients_without_a_valid_certificate(pki: Pki) -> None:
    server = pki.server()
    assert _run(_call_once("127.0.0.1:0", server, pki.client())) == (b"ping", 1)
    assert _run(_call_once("127.0.0.1:0", server, pki.client(cert=False))) == (grpc.StatusCode.UNAVAILABLE, 0)
    assert _run(_call_once("127.0.0.1:0", server, pki.outsider())) == (grpc.StatusCode.UNAVAILABLE, 0)


def test_tls_and_token_together(pki: Pki) -> None:
    server = pki.server(token="s3cret")
    assert _run(_call_once("127.0.0.1:0", server, pki.client(token="s3cret"))) == (b"ping", 1)
    assert _run(_call_once("127.0.0.1:0", server, pki.client())) == (grpc.StatusCode.UNAUTHENTICATED, 0)
    assert _run(_call_once("127.0.0.1:0", server, pki.client(token="guess"))) == (grpc.StatusCode.UNAUTHENTICATED, 0)
