"""The Orchestrator's ports (TrialLifecycleSP, ClientActorSP) and its channels to components, with
TLS, mTLS and a token (``OrchestratorServer(security=...)``), and which endpoints a trial started
over gRPC may name. Real gRPC on 127.0.0.1, certificates made at test time (``tests/pki.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Iterator

import grpc
import pytest

import cogment_gym
from cogment_gym import CogmentEnv
from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym.actors import RandomPolicy, serve_actor
from cogment_gym.errors import AuthenticationError
from cogment_gym.orchestrator.server import OrchestratorServer
from cogment_gym.protocol.security import NO_SECURITY, TOKEN_KEY, Security, bind, new_channel, new_server
from tests.pki import Pki
from tests.waiting import wait_until

from .peers import WAIT, ClientActor, Datalog, Hook, Lifecycle, ScriptedEnv, client, run, serving, service, trial_params

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def started() -> Iterator[list[Any]]:
    """Servers to stop at teardown, last started first."""
    servers: list[Any] = []
    yield servers
    for server in reversed(servers):
        server.stop()


def _target(endpoint: str) -> str:
    return endpoint[len("grpc://"):]


@contextlib.asynccontextmanager
async def _lifecycle(endpoint: str, security: Security) -> AsyncIterator[Lifecycle]:
    async with new_channel(_target(endpoint), security, []) as channel:
        yield Lifecycle(channel, metadata=security.call_metadata)


async def _code(call: Awaitable[Any]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


async def _version_codes(server: OrchestratorServer, security: Security) -> tuple[grpc.StatusCode, grpc.StatusCode]:
    """Version on the lifecycle port and on the client-actor port, dialed with ``security``."""
    codes = []
    for endpoint, stub in ((server.lifecycle_endpoint, orchestrator_pb2_grpc.TrialLifecycleSPStub),
                           (server.actor_endpoint, orchestrator_pb2_grpc.ClientActorSPStub)):
        async with new_channel(_target(endpoint), security, []) as channel:
            codes.append(await _code(stub(channel).Version(common_pb2.VersionRequest(), timeout=WAIT, metadata=security.call_metadata)))
    return codes[0], codes[1]


# ---------------------------------------------------------------------------------------- TLS end to end


def test_trials_run_over_tls_with_client_certificates_and_a_token_on_both_ports(pki: Pki, started: list[Any]) -> None:
    """Every hop secured: the controller -> lifecycle port, a client actor -> the client-actor
    port, the Orchestrator -> the env service and the service actor (mTLS with its own
    certificate, as the Cogment Orchestrator dials), the service actor -> the env's spec."""
    server_security, client_security = pki.server(token="s3cret"), pki.client(token="s3cret")
    env = cogment_gym.serve("CartPole-v1", security=server_security)
    started.append(env)
    actor = serve_actor(RandomPolicy, environment=env.endpoint, security=server_security)
    started.append(actor)
    orch = OrchestratorServer(security=server_security, actor_port=0)
    started.append(orch)
    assert orch.actor_endpoint != orch.lifecycle_endpoint

    async def controller() -> None:
        async with _lifecycle(orch.lifecycle_endpoint, client_security) as lifecycle:
            trial_id = await lifecycle.start(trial_params(env.endpoint, [service("player", actor.endpoint)]))
            await lifecycle.wait_state(trial_id, common_pb2.ENDED, timeout=30)
            infos = await lifecycle.info(trial_id)
            assert [i.state for i in infos] == [common_pb2.ENDED]

    run(controller())
    assert wait_until(lambda: actor.servicer.trials_played == 1 and env.servicer.trials_played == 1)

    # A client actor on the client-actor port (the facade with a remote Orchestrator).
    gym_env = CogmentEnv(orchestrator=orch.lifecycle_endpoint, actor_endpoint=orch.actor_endpoint, environment=env.endpoint,
                         security=client_security, max_steps=5)
    try:
        gym_env.reset(seed=1)
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = gym_env.step(gym_env.action_space.sample())
            steps, done = steps + 1, terminated or truncated
    finally:
        gym_env.close()
    assert 1 <= steps <= 6
    assert wait_until(lambda: env.servicer.trials_played == 2)  # counted once its stream is over


def test_plaintext_and_certificate_less_clients_are_refused_on_both_ports(pki: Pki, started: list[Any]) -> None:
    orch = OrchestratorServer(security=pki.server(), actor_port=0)
    started.append(orch)

    async def scenario() -> None:
        assert await _version_codes(orch, pki.client()) == (grpc.StatusCode.OK, grpc.StatusCode.OK)
        for security in (NO_SECURITY, pki.client(cert=False), pki.outsider()):
            assert await _version_codes(orch, security) == (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE), security
            async with _lifecycle(orch.lifecycle_endpoint, security) as lifecycle:
                code = await _code(lifecycle.start(trial_params("grpc://127.0.0.1:1", [client("p")])))
            assert code == grpc.StatusCode.UNAVAILABLE

    run(scenario())
    assert orch.orchestrator.trials == {}


def test_tls_without_client_certificates(pki: Pki, started: list[Any]) -> None:
    orch = OrchestratorServer(security=pki.server(mtls=False))
    started.append(orch)
    assert run(_version_codes(orch, pki.client(cert=False))) == (grpc.StatusCode.OK, grpc.StatusCode.OK)
    assert run(_version_codes(orch, NO_SECURITY)) == (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)


def test_the_orchestrator_refuses_a_component_whose_certificate_another_ca_signed(pki: Pki, started: list[Any]) -> None:
    impostor = cogment_gym.serve("CartPole-v1", security=Security(private_key=pki.other_server_key, cert_chain=pki.other_server_cert))
    started.append(impostor)
    actor = serve_actor(RandomPolicy, security=pki.server())
    started.append(actor)
    orch = OrchestratorServer(security=pki.server())
    started.append(orch)

    async def scenario() -> None:
        async with _lifecycle(orch.lifecycle_endpoint, pki.client()) as lifecycle:
            trial_id = await lifecycle.start(trial_params(impostor.endpoint, [service("player", actor.endpoint)]))
            await lifecycle.wait_state(trial_id, common_pb2.ENDED)

    run(scenario())
    assert impostor.servicer.trials_played == 0
    trial = next(iter(orch.orchestrator.trials.values()))
    assert trial.failure is not None and f"environment 'env' at {impostor.endpoint} is unreachable" in trial.failure.summary


@contextlib.asynccontextmanager
async def _serving_checked(security: Security, *servicers: Any) -> AsyncIterator[str]:
    """Like ``peers.serving``, behind a server that checks ``security``'s token."""
    server = new_server(security, [])
    for servicer in servicers:
        servicer.add_to(server)
    port = bind(server, "127.0.0.1:0", security)
    await server.start()
    try:
        yield f"grpc://127.0.0.1:{port}"
    finally:
        await server.stop(0)


def test_the_orchestrator_sends_its_token_to_hooks_datalogs_and_environments() -> None:
    token = Security(token="s3cret")

    async def scenario() -> None:
        env, hook, datalog = ScriptedEnv(), Hook(), Datalog()
        async with _serving_checked(token, env, hook, datalog) as endpoint:
            params = trial_params(endpoint, [client("p")], max_steps=2)
            params.datalog.endpoint = endpoint
            with_token = await asyncio.to_thread(OrchestratorServer, default_params=params, pre_trial_hooks=[endpoint],
                                                 component_security=token)
            without = await asyncio.to_thread(OrchestratorServer, default_params=params, pre_trial_hooks=[endpoint])
            try:
                async with grpc.aio.insecure_channel(_target(with_token.lifecycle_endpoint)) as channel:
                    trial_id = await Lifecycle(channel).start(config=b"")
                    player = ClientActor(channel, trial_id, name="p")
                    record = await player.finished()
                    assert record.got_end and len(record.observations) == 4
                stream = await datalog.stream(trial_id)
                await datalog.until(lambda: stream.closed, "the datalog stream to close")
                assert hook.calls[0][0]["authentication-token"] == ["s3cret"]
                assert stream.metadata["authentication-token"] == ["s3cret"] and len(stream.samples) == 4
                assert (await env.trial(trial_id)).metadata["authentication-token"] == ["s3cret"]
                # Without the token, the hook refuses it and the trial does not start.
                async with _lifecycle(without.lifecycle_endpoint, NO_SECURITY) as lifecycle:
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await lifecycle.start(config=b"")
                assert f"pre-trial hook {endpoint} failed: UNAUTHENTICATED" in (caught.value.details() or "")
                assert without.orchestrator.trials == {} and len(hook.calls) == 1
            finally:
                await asyncio.to_thread(with_token.stop)
                await asyncio.to_thread(without.stop)

    run(scenario())


def test_a_component_refusing_the_orchestrators_token_fails_the_trial_with_a_typed_error(
    started: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The client has the token, the Orchestrator not: the env service refuses the trial, and
    the client sees it as AuthenticationError naming the env, not as an internal error."""
    env_server = cogment_gym.serve("CartPole-v1", security=Security(token="s3cret"))
    started.append(env_server)
    orch = OrchestratorServer()
    started.append(orch)
    env = CogmentEnv(orchestrator=orch.lifecycle_endpoint, environment=env_server.endpoint, security=Security(token="s3cret"))
    try:
        with pytest.raises(AuthenticationError, match=rf"environment 'CartPole-v1' at {env_server.endpoint} refused the call: .*requires a token"):
            env.reset(seed=0)
    finally:
        env.close()
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]
    assert env_server.servicer.trials_played == 0


# ---------------------------------------------------------------------------------------- tokens


def test_every_rpc_of_both_ports_needs_the_token_and_a_refused_one_touches_no_trial(started: list[Any]) -> None:
    made = []

    def counted(render_mode: str | None = None) -> Any:
        import gymnasium as gym

        made.append(1)
        return gym.make("CartPole-v1", render_mode=render_mode)

    token = Security(token="s3cret")
    env = cogment_gym.serve(counted, security=token)
    started.append(env)
    orch = OrchestratorServer(security=token, actor_port=0)
    started.append(orch)

    async def scenario() -> None:
        async with _lifecycle(orch.lifecycle_endpoint, token) as lifecycle:
            pending = await lifecycle.start(trial_params(env.endpoint, [client("player")]))  # nobody joins: it waits
            await lifecycle.wait_state(pending, common_pb2.PENDING)
        made_before, trials_before = len(made), dict(orch.orchestrator.trials)
        for metadata in ((), ((TOKEN_KEY, "guess"),), (("authorization", "Bearer guess"),)):
            async with grpc.aio.insecure_channel(_target(orch.lifecycle_endpoint)) as channel:
                stub = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel)
                calls = {
                    "StartTrial": stub.StartTrial(orchestrator_pb2.TrialStartRequest(params=trial_params(env.endpoint, [client("p")])), metadata=metadata, timeout=WAIT),
                    "TerminateTrial": stub.TerminateTrial(orchestrator_pb2.TerminateTrialRequest(hard_termination=True),
                                                          metadata=(("trial-id", pending), *metadata), timeout=WAIT),
                    "GetTrialInfo": stub.GetTrialInfo(orchestrator_pb2.TrialInfoRequest(), metadata=metadata, timeout=WAIT),
                    "WatchTrials": _drain(stub.WatchTrials(orchestrator_pb2.TrialListRequest(), metadata=metadata, timeout=WAIT)),
                    "Version": stub.Version(common_pb2.VersionRequest(), metadata=metadata, timeout=WAIT),
                    "Status": stub.Status(common_pb2.StatusRequest(), metadata=metadata, timeout=WAIT),
                }
                for name, call in calls.items():
                    assert await _code(call) == grpc.StatusCode.UNAUTHENTICATED, (name, metadata)
            async with grpc.aio.insecure_channel(_target(orch.actor_endpoint)) as channel:
                stub = orchestrator_pb2_grpc.ClientActorSPStub(channel)
                for name, call in {"Version": stub.Version(common_pb2.VersionRequest(), metadata=metadata, timeout=WAIT),
                                   "Status": stub.Status(common_pb2.StatusRequest(), metadata=metadata, timeout=WAIT)}.items():
                    assert await _code(call) == grpc.StatusCode.UNAUTHENTICATED, (name, metadata)
                joining = ClientActor(channel, pending, name="player", metadata=metadata)
                await joining.finished()
                assert joining.code == grpc.StatusCode.UNAUTHENTICATED and joining.record.init is None
                assert "requires a token" in (joining.details or "") or "refused" in (joining.details or "")
        # Nothing was started, listed, joined or terminated; no env was made.
        assert dict(orch.orchestrator.trials) == trials_before and len(made) == made_before
        async with _lifecycle(orch.lifecycle_endpoint, token) as lifecycle:
            assert await lifecycle.state(pending) == common_pb2.PENDING
            await lifecycle.terminate(pending, hard=True)
            await lifecycle.wait_state(pending, common_pb2.ENDED)

    run(scenario())


async def _drain(call: Any) -> None:
    async for _ in call:
        pass


def test_a_monitoring_token_with_per_method_rights(started: list[Any]) -> None:
    """What ``authorize`` allows: one token for everything, another that may only look."""
    looking = {"/cogmentAPI.TrialLifecycleSP/GetTrialInfo", "/cogmentAPI.TrialLifecycleSP/WatchTrials",
               "/cogmentAPI.TrialLifecycleSP/Version", "/cogmentAPI.TrialLifecycleSP/Status"}

    def authorize(token: str | None, method: str) -> bool:
        return token == "admin" or (token == "monitor" and method in looking)

    orch = OrchestratorServer(security=Security(authorize=authorize))
    started.append(orch)

    async def scenario() -> None:
        async with serving(ScriptedEnv()) as env_endpoint:
            async with _lifecycle(orch.lifecycle_endpoint, Security(token="admin")) as admin:
                trial_id = await admin.start(trial_params(env_endpoint, [client("p")]))
            async with _lifecycle(orch.lifecycle_endpoint, Security(token="monitor")) as monitor:
                assert [i.trial_id for i in await monitor.info()] == [trial_id]
                assert await _code(monitor.terminate(trial_id, hard=True)) == grpc.StatusCode.UNAUTHENTICATED
                assert await _code(monitor.start(trial_params(env_endpoint, [client("p")]))) == grpc.StatusCode.UNAUTHENTICATED
                assert await monitor.state(trial_id) == common_pb2.PENDING
            async with _lifecycle(orch.lifecycle_endpoint, Security(token="admin")) as admin:
                await admin.terminate(trial_id, hard=True)
                await admin.wait_state(trial_id, common_pb2.ENDED)

    run(scenario())
    assert len(orch.orchestrator.trials) == 1


# ---------------------------------------------------------------------------------------- endpoints


def test_local_endpoints_from_the_wire_are_refused_by_default(started: list[Any]) -> None:
    orch = OrchestratorServer()
    started.append(orch)
    orch.orchestrator.connector.add_local_environment("inside", lambda requests, context: None)

    async def scenario() -> None:
        async with _lifecycle(orch.lifecycle_endpoint, NO_SECURITY) as lifecycle:
            for params in (trial_params("local://inside", [client("p")]),
                           trial_params("grpc://127.0.0.1:1", [service("p", "local://policy")])):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await lifecycle.start(params)
                assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
                assert "TrialLifecycleSP::StartTrial failure: [" in (caught.value.details() or "")
                assert "local:// endpoints" in (caught.value.details() or "")

    run(scenario())
    assert orch.orchestrator.trials == {}


def test_an_allow_list_bounds_what_a_remote_trial_may_name(started: list[Any]) -> None:
    async def scenario() -> None:
        async with serving(ScriptedEnv()) as env_endpoint:
            port = env_endpoint.rpartition(":")[2]
            orch = await asyncio.to_thread(OrchestratorServer, allowed_endpoints=[f"grpc://127.0.0.1:{port}"])
            started.append(orch)
            async with _lifecycle(orch.lifecycle_endpoint, NO_SECURITY) as lifecycle:
                trial_id = await lifecycle.start(trial_params(env_endpoint, [client("p")]))
                for refused in (trial_params(f"grpc://localhost:{port}", [client("p")]),
                                trial_params(env_endpoint, [service("p", "grpc://10.0.0.1:9002")]),
                                trial_params(env_endpoint, [client("p")], datalog=common_pb2.DatalogParams(endpoint="unix:///tmp/x.sock"))):
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await lifecycle.start(refused)
                    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
                    assert "matches none of the allowed endpoints" in (caught.value.details() or "")
                assert list(orch.orchestrator.trials) == [trial_id]
                await lifecycle.terminate(trial_id, hard=True)

    run(scenario())


def test_the_default_params_endpoints_always_pass(started: list[Any]) -> None:
    async def scenario() -> None:
        async with serving(ScriptedEnv()) as env_endpoint:
            params = trial_params(env_endpoint, [client("p")])
            orch = await asyncio.to_thread(OrchestratorServer, default_params=params, allowed_endpoints=["grpc://nowhere.example:1"])
            started.append(orch)
            async with _lifecycle(orch.lifecycle_endpoint, NO_SECURITY) as lifecycle:
                trial_id = await lifecycle.start(config=b"")  # the default params
                assert trial_id
                with pytest.raises(grpc.aio.AioRpcError) as caught:  # the same endpoint, named by the caller: also the operator's
                    await lifecycle.start(trial_params(env_endpoint, [client("p")], datalog=common_pb2.DatalogParams(endpoint="grpc://10.0.0.9:1")))
                assert "the datalog endpoint" in (caught.value.details() or "")
                await lifecycle.terminate(trial_id, hard=True)

    run(scenario())


# ---------------------------------------------------------------------------------------- binding


BIND_SCRIPT = textwrap.dedent(
    """
    import sys
    from cogment_gym.orchestrator.server import run_orchestrator

    host = {"host": sys.argv[1]} if len(sys.argv) > 1 else {}
    run_orchestrator(lifecycle_port=0, on_ready=lambda lifecycle, actor: print(lifecycle, flush=True), **host)
    """
)
# 127.0.0.1 in /proc/net/tcp, and as grpc binds it in /proc/net/tcp6 (::ffff:127.0.0.1).
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as file:
            for line in list(file)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.rpartition(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads the listening sockets from /proc")
@pytest.mark.parametrize("host", [None, "0.0.0.0"])
def test_run_orchestrator_binds_the_loopback_address_by_default(host: str | None) -> None:
    env_vars = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    args = [host] if host else []
    process = subprocess.Popen([sys.executable, "-c", BIND_SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_vars)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()  # the process prints it once serving, or exits
        assert line.startswith("grpc://127.0.0.1:"), process.stderr.read() if process.stderr else line
        addresses = _listening_addresses(int(line.rpartition(":")[2]))
        if host is None:
            assert addresses and addresses <= LOOPBACK, addresses  # 127.0.0.1 only
        else:  # asked for every interface: the check sees the difference
            assert addresses and not addresses & LOOPBACK, addresses
        process.send_signal(signal.SIGTERM)
        assert process.wait(WAIT) == 0
        if host is not None:  # the exposed process says what is left open
            assert process.stderr is not None and "without a token or client certificates" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
