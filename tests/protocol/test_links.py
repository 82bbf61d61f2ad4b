"""``Link`` and ``ServerLink``: one RunTrial stream, the same interface over gRPC and in-process,
transport failures as typed errors. Real gRPC on 127.0.0.1, port 0; raw-bytes methods so that
no Cogment service is involved."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Awaitable, Callable

import grpc
import pytest

from cogment_gym.errors import (
    EndpointUnreachableError,
    EnvironmentLostError,
    EnvironmentUnreachableError,
    OrchestratorLostError,
    OrchestratorUnreachableError,
    PeerLostError,
    PeerTimeoutError,
)
from cogment_gym.protocol import LocalCall
from cogment_gym.protocol.links import GRPC_OPTIONS, READ_AHEAD, Link, ServerLink, grpc_error
from cogment_gym.protocol.local import EMPTY, TIMED_OUT

WAIT = 10.0
METHOD = "/cogment_gym.test.Echo/RunTrial"

Handler = Callable[[Any, Any], Awaitable[None]]


async def _echo_context(request_iterator: Any, context: Any) -> None:
    while True:
        message = await context.read()
        if message is grpc.aio.EOF:
            return
        await context.write(message)


class _Server:
    """A grpc.aio server whose one method runs ``handler(request_iterator, context)``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.server = grpc.aio.server(options=GRPC_OPTIONS)
        method = grpc.stream_stream_rpc_method_handler(handler)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("cogment_gym.test.Echo", {"RunTrial": method}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    async def __aenter__(self) -> "_Server":
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}", options=GRPC_OPTIONS)
        return self

    def call(self) -> Any:
        return self.channel.stream_stream(METHOD)()

    async def __aexit__(self, *exc: Any) -> None:
        await self.channel.close()
        await self.server.stop(None)


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(main(), 30)

    asyncio.run(bounded())


@pytest.mark.parametrize("transport", ["grpc", "local"])
def test_link_round_trip_deadline_and_end(transport: str) -> None:
    """Same behaviour over both transports: messages in order, a deadline that passes loses
    nothing (the stream survives), ``poll`` never waits, the peer's end reads as None."""

    async def main() -> None:
        async with _Server(_echo_context) as server:
            call = server.call() if transport == "grpc" else LocalCall(_echo_context, (), "echo")
            link = Link(call, "echo service")
            assert await link.read_within(0.05) is TIMED_OUT
            assert link.poll() is EMPTY
            for i in range(3):
                await link.write(b"m%d" % i)
            assert [await link.read() for _ in range(3)] == [b"m0", b"m1", b"m2"]
            await link.write(b"after the timeout")
            assert await link.read_within(WAIT) == b"after the timeout"
            await link.close()  # half-closes; the echo returns; the link is dropped
            await link.close()  # idempotent

    run(main)


def test_link_read_ahead_keeps_order_past_the_limit() -> None:
    """The reader task stops at READ_AHEAD unread messages and goes on once they are taken."""
    count = READ_AHEAD * 2 + 5

    async def burst(request_iterator: Any, context: Any) -> None:
        await context.read()
        for i in range(count):
            await context.write(i.to_bytes(4, "little"))

    async def main() -> None:
        async with _Server(burst) as server:
            link = Link(server.call(), "burst service")
            await link.write(b"go")
            got = [int.from_bytes(await link.read_within(WAIT), "little") for _ in range(count)]
            assert got == list(range(count))
            assert len(link.inbox.items) <= READ_AHEAD
            assert await link.read_within(WAIT) is None
            await link.close()

    run(main)


def test_link_to_nothing_is_unreachable() -> None:
    with socket.socket() as probe:  # a port nothing listens on (bound, never listening)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

        async def main() -> None:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                link = Link(channel.stream_stream(METHOD)(), f"environment at grpc://127.0.0.1:{port}")
                with pytest.raises(EndpointUnreachableError, match=rf"environment at grpc://127.0.0.1:{port} is unreachable"):
                    await link.read_within(WAIT)
                await link.close()

        run(main)


def test_link_peer_failure_is_a_lost_peer() -> None:
    async def failing(request_iterator: Any, context: Any) -> None:
        await context.read()
        await context.abort(grpc.StatusCode.INTERNAL, "the env crashed")

    async def main() -> None:
        async with _Server(failing) as server:
            link = Link(server.call(), "environment 'env'", "environment")
            await link.write(b"step")
            with pytest.raises(PeerLostError, match=r"environment 'env' failed: INTERNAL: the env crashed") as err:
                await link.read_within(WAIT)
            assert type(err.value) is PeerLostError, "a failure the peer sent is not a lost environment"
            with pytest.raises(PeerLostError, match="environment 'env'"):
                await link.write(b"more")
            await link.close()

    run(main)


def test_local_link_failure_names_the_peer() -> None:
    async def broken(request_iterator: Any, context: Any) -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        link = Link(LocalCall(broken, (), "actor 'a'"), "actor 'a'")
        with pytest.raises(PeerLostError, match=r"actor 'a'.*RuntimeError: boom"):
            await link.read_within(WAIT)
        await link.close()

    run(main)


class _Err(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "why") -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


def test_grpc_error_types() -> None:
    unreachable = grpc_error(_Err(grpc.StatusCode.UNAVAILABLE), "orchestrator at grpc://h:1")
    assert type(unreachable) is EndpointUnreachableError
    assert str(unreachable) == "orchestrator at grpc://h:1 is unreachable: why"
    lost = grpc_error(_Err(grpc.StatusCode.CANCELLED), "actor 'b'")
    assert type(lost) is PeerLostError
    assert str(lost) == "actor 'b' is gone: its connection broke (its process died, or the connection dropped) (gRPC CANCELLED: why)"
    refused = grpc_error(_Err(grpc.StatusCode.UNKNOWN, "ClientActorSP::RunTrial failure: [no such trial]"), "orchestrator")
    assert type(refused) is PeerLostError and str(refused) == "orchestrator failed: UNKNOWN: ClientActorSP::RunTrial failure: [no such trial]"


@pytest.mark.parametrize(
    ("code", "details", "reached", "peer", "expected"),
    [
        # Nothing answered yet: unreachable; once it answered, the same status is a lost peer.
        (grpc.StatusCode.UNAVAILABLE, "connect: Connection refused", False, "environment", EnvironmentUnreachableError),
        (grpc.StatusCode.UNAVAILABLE, "Socket closed", True, "environment", EnvironmentLostError),
        (grpc.StatusCode.UNAVAILABLE, "Stream removed (ping timeout)", True, "orchestrator", OrchestratorLostError),
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", False, "orchestrator", OrchestratorUnreachableError),
        # grpc.aio's own words for a call that broke under a read or write: lost, whatever was read.
        (grpc.StatusCode.INTERNAL, "Internal error from Core", False, "environment", EnvironmentLostError),
        (grpc.StatusCode.CANCELLED, "the server is stopping", True, "environment", EnvironmentLostError),
        # An INTERNAL the peer sent on purpose is its failure, not a lost peer.
        (grpc.StatusCode.INTERNAL, "the env crashed", True, "environment", PeerLostError),
        (grpc.StatusCode.UNAVAILABLE, "Socket closed", True, "actor", PeerLostError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", False, "environment", PeerTimeoutError),
    ],
)
def test_grpc_error_is_typed_by_its_peer(code: grpc.StatusCode, details: str, reached: bool, peer: str, expected: type) -> None:
    error = grpc_error(_Err(code, details), "the peer", peer=peer, reached=reached)
    assert type(error) is expected, (code, details, reached, peer, type(error))
    assert error.peer == peer  # type: ignore[attr-defined]
    assert str(error).startswith("the peer ")
    if expected in (EnvironmentLostError, OrchestratorLostError):
        assert f"(gRPC {code.name}: {details})" in str(error), "the gRPC status is kept, never the whole message"
        assert str(error) != f"{code.name}: {details}"
    if "ping timeout" in details:
        assert "stopped answering keepalive pings" in str(error)


def test_grpc_deadline_is_a_timeout_naming_the_call() -> None:
    error = grpc_error(_Err(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"), "environment service at grpc://h:1",
                       peer="environment", what="GetSpec", timeout=2.5)
    assert type(error) is PeerTimeoutError and isinstance(error, TimeoutError)
    assert str(error) == "environment service at grpc://h:1 did not answer GetSpec within 2.5 s"
    assert "DEADLINE_EXCEEDED" not in str(error)


@pytest.mark.parametrize("transport", ["grpc", "local"])
def test_server_link_serves_a_client_stream(transport: str) -> None:
    """The serving end (what the Orchestrator holds for a client actor): reads through an inbox
    (a reader task for gRPC, the local call's own), writes back, sees the client's end."""
    seen: list[Any] = []

    async def main() -> None:
        finished = asyncio.Event()

        async def serve(request_iterator: Any, context: Any) -> None:
            link = ServerLink(context, "client actor 'p'")
            try:
                while (message := await link.read_within(WAIT)) is not None:
                    seen.append(message)
                    await link.write(message + b"!")
            finally:
                await link.close()
                finished.set()

        async with _Server(serve) as server:
            call = server.call() if transport == "grpc" else LocalCall(serve, (), "orchestrator")
            client = Link(call, "orchestrator")
            await client.write(b"join")
            assert await client.read_within(WAIT) == b"join!"
            await client.close()
            await asyncio.wait_for(finished.wait(), WAIT)
        assert seen == [b"join"]

    run(main)


def test_server_link_refuses_writes_once_closed() -> None:
    async def main() -> None:
        errors: list[BaseException] = []

        async def serve(request_iterator: Any, context: Any) -> None:
            link = ServerLink(context, "client actor 'p'")
            await link.close()
            try:
                await link.write(b"late")
            except PeerLostError as err:
                errors.append(err)

        call = LocalCall(serve, (), "orchestrator")
        assert await Link(call, "orchestrator").read_within(WAIT) is None
        assert len(errors) == 1 and "client actor 'p': the stream is closed" in str(errors[0])

    run(main)


# ------------------------------------------------------------------------------------ keepalive


def test_every_channel_and_server_of_the_package_takes_the_keepalive_options() -> None:
    """One place for the options: every channel is made with GRPC_OPTIONS, every server with
    GRPC_SERVER_OPTIONS (or GRPC_OPTIONS, which holds the servers' ping policy too), whether
    through protocol/security.py or grpc.aio's constructors."""
    import pathlib
    import re

    from cogment_gym.protocol.links import KEEPALIVE_OPTIONS
    from cogment_gym.protocol.serving import GRPC_SERVER_OPTIONS

    for option in KEEPALIVE_OPTIONS:
        assert option in GRPC_OPTIONS and option in GRPC_SERVER_OPTIONS
    names = dict(KEEPALIVE_OPTIONS)
    assert names["grpc.keepalive_time_ms"] > names["grpc.http2.min_ping_interval_without_data_ms"], "servers would GOAWAY our pings"
    assert "grpc.http2.max_pings_without_data" not in names
    package = pathlib.Path(__file__).resolve().parents[2] / "cogment_gym"
    made = 0
    for path in package.rglob("*.py"):
        if "_proto" in path.parts:
            continue
        text = path.read_text()
        for call in re.finditer(r"\b(new_channel|new_server|grpc\.aio\.insecure_channel|grpc\.aio\.secure_channel|grpc\.aio\.server)\(([^\n]*)", text):
            if text[max(0, call.start() - 4):call.start()] == "def " or path.name == "security.py":
                continue  # security.py passes on the options it is given
            made += 1
            assert re.search(r"GRPC_(SERVER_)?OPTIONS", call.group(2)), f"{path}: {call.group(0)} without the package's options"
    assert made >= 5


@pytest.mark.slow
def test_an_idle_stream_outlives_many_keepalive_periods() -> None:
    """Our channels and servers ping each other on a stream that carries nothing for 3.5
    keepalive periods: no GOAWAY (too_many_pings), the stream still works afterwards."""
    from cogment_gym.protocol.links import KEEPALIVE_TIME
    from cogment_gym.protocol.serving import GRPC_SERVER_OPTIONS

    async def main() -> None:
        server = grpc.aio.server(options=GRPC_SERVER_OPTIONS)
        method = grpc.stream_stream_rpc_method_handler(_echo_context)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("cogment_gym.test.Echo", {"RunTrial": method}),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS) as channel:
                link = Link(channel.stream_stream(METHOD)(), "echo", "environment")
                await link.write(b"before")
                assert await link.read_within(WAIT) == b"before"
                assert await link.read_within(KEEPALIVE_TIME * 3.5) is TIMED_OUT  # idle; pings go both ways
                await link.write(b"after")
                assert await link.read_within(WAIT) == b"after"
                await link.close()
        finally:
            await server.stop(None)

    asyncio.run(asyncio.wait_for(main(), KEEPALIVE_TIME * 3.5 + 60))
