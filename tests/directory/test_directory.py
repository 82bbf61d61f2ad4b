"""The Cogment Directory (``DirectorySP``): registration, inquiry, ``cogment://discover`` endpoints
in trial params (Orchestrator side) and in the facades (client side), services registering
themselves."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import grpc
import pytest

import cogment_gym
from cogment_gym._proto.cogment.api import common_pb2, directory_pb2, orchestrator_pb2
from cogment_gym.actors import RandomPolicy, serve_actor
from cogment_gym.directory import serve_directory
from cogment_gym.errors import EndpointUnreachableError
from cogment_gym.orchestrator.server import DirectorySettings, OrchestratorServer
from cogment_gym.protocol.directory import DirectoryClient, DirectoryError, is_discovery, parse_discovery
from cogment_gym.protocol.endpoints import EndpointError

from tests.children import REPO_ROOT

T = directory_pb2


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


# ------------------------------------------------------------------------------------ endpoints


def test_discovery_endpoints_parse_as_cogment_reads_them() -> None:
    assert is_discovery("cogment://discover") and is_discovery("COGMENT://Discover/Actor?x=1") and is_discovery("cogment://discover?x=1")
    assert not is_discovery("cogment://client") and not is_discovery("grpc://h:1") and not is_discovery("cogment://discoverer")
    context = parse_discovery("cogment://discover?__implementation=a")
    assert context.is_context and context.properties == {"__implementation": "a"}
    actor = parse_discovery("cogment://discover/actor?__actor_class=player&__implementation=Random&__authentication-token=t")
    assert actor.service_type == T.ACTOR_SERVICE and actor.properties == {"__actor_class": "player", "__implementation": "Random"}
    assert actor.token == "t"
    assert parse_discovery("cogment://discover/service?__id=42").service_id == 42
    assert parse_discovery("cogment://discover/lifecycle").service_type == T.TRIAL_LIFE_CYCLE_SERVICE
    assert parse_discovery("cogment://discover/actservice").service_type == T.CLIENT_ACTOR_CONNECTION_SERVICE
    for bad, fragment in [
        ("cogment://discover/nowhere", "unknown path"),
        ("cogment://discover/service", "__id=<number>"),
        ("cogment://discover/service?__id=1&x=2", "takes only"),
        ("cogment://discover/actor?novalue", "name=value"),
        ("cogment://discover/actor?a=b c", "not a discovery endpoint"),
    ]:
        with pytest.raises(EndpointError, match=fragment):
            parse_discovery(bad)


# ------------------------------------------------------------------------------------ the service


def test_register_inquire_deregister() -> None:
    async def scenario(endpoint: str) -> None:
        client = DirectoryClient(endpoint)
        try:
            first = await client.register(T.ENVIRONMENT_SERVICE, "127.0.0.1", 5001, {"__implementation": "CartPole-v1", "zone": "a"})
            second = await client.register(T.ENVIRONMENT_SERVICE, "127.0.0.1", 5002, {"__implementation": "CartPole-v1"})
            await client.register(T.ACTOR_SERVICE, "127.0.0.1", 5003, {"__actor_class": "player"})
            assert first.service_id != second.service_id and first.secret
            # Most recent first; every property asked for must match.
            assert await client.resolve("cogment://discover/environment?__implementation=CartPole-v1") == "grpc://127.0.0.1:5002"
            assert await client.resolve("cogment://discover/environment?zone=a") == "grpc://127.0.0.1:5001"
            assert await client.resolve(f"cogment://discover/service?__id={first.service_id}") == "grpc://127.0.0.1:5001"
            # Context discovery: the context says what is looked for and adds its properties.
            assert await client.resolve("cogment://discover", context_type=T.ACTOR_SERVICE, context={"__actor_class": "player", "__implementation": ""}) == "grpc://127.0.0.1:5003"
            with pytest.raises(DirectoryError, match="no service in the directory"):
                await client.resolve("cogment://discover/environment?__implementation=Pong")
            with pytest.raises(DirectoryError, match="nothing says what it looks for"):
                await client.resolve("cogment://discover")
            assert await client.resolve("grpc://elsewhere:1") == "grpc://elsewhere:1"  # not a discovery endpoint
            await client.deregister(second)
            assert await client.resolve("cogment://discover/environment?__implementation=CartPole-v1") == "grpc://127.0.0.1:5001"
            with pytest.raises(DirectoryError, match="no service 999"):
                await client.deregister(type(first)(999, "x", T.ACTOR_SERVICE, "h", 1))
            with pytest.raises(DirectoryError, match="secret does not match"):
                await client.deregister(type(first)(first.service_id, "wrong", T.ACTOR_SERVICE, "h", 1))
            with pytest.raises(DirectoryError, match="needs a host and a port"):
                await client.register(T.ACTOR_SERVICE, "", 0)
            with pytest.raises(DirectoryError, match="service type is missing"):
                await client.register(T.UNKNOWN_SERVICE, "h", 1)
        finally:
            await client.close()

    with serve_directory() as directory:
        run(scenario(directory.endpoint))
        assert len(directory.table) == 2


def test_a_registration_with_a_token_is_seen_and_removed_with_that_token_only() -> None:
    async def scenario(endpoint: str) -> None:
        private, public = DirectoryClient(endpoint, token="secret-team"), DirectoryClient(endpoint)
        try:
            registration = await private.register(T.DATALOG_SERVICE, "10.0.0.1", 7000)
            assert await private.resolve("cogment://discover/datalog") == "grpc://10.0.0.1:7000"
            with pytest.raises(DirectoryError):
                await public.resolve("cogment://discover/datalog")
            assert await public.resolve("cogment://discover/datalog?__authentication-token=secret-team") == "grpc://10.0.0.1:7000"
            with pytest.raises(DirectoryError):
                await public.deregister(registration)
            await private.deregister(registration)
        finally:
            await private.close()
            await public.close()

    with serve_directory() as directory:
        run(scenario(directory.endpoint))


def test_no_directory_there_is_an_unreachable_error() -> None:
    async def scenario() -> None:
        client = DirectoryClient("grpc://127.0.0.1:1", timeout=2.0)
        try:
            with pytest.raises(EndpointUnreachableError, match="directory at grpc://127.0.0.1:1 is unreachable"):
                await client.resolve("cogment://discover/environment")
        finally:
            await client.close()

    run(scenario())


# ------------------------------------------------------------------------------------ services and trials


def _entries(directory: Any) -> list[tuple[str, list[tuple[str, str]], int]]:
    return [(T.ServiceType.Name(d.details.type), sorted(d.details.properties.items()), d.endpoint.port) for d in directory.table.entries()]


def test_serve_serve_actor_and_the_orchestrator_register_and_deregister() -> None:
    with serve_directory() as directory:
        with cogment_gym.serve({"cartpole": "CartPole-v1", "acrobot": "Acrobot-v1"}, directory=directory.endpoint) as env_server, \
                serve_actor({"random": RandomPolicy}, actor_classes=["player", "agent"], directory=directory.endpoint) as actor_server, \
                OrchestratorServer(directory=directory.endpoint) as orchestrator:
            port = int(orchestrator.lifecycle_endpoint.rpartition(":")[2])
            assert sorted(_entries(directory)) == sorted([
                ("ENVIRONMENT_SERVICE", [("__implementation", "cartpole")], env_server.port),
                ("ENVIRONMENT_SERVICE", [("__implementation", "acrobot")], env_server.port),
                ("ACTOR_SERVICE", [("__actor_class", "agent"), ("__implementation", "random")], actor_server.port),
                ("ACTOR_SERVICE", [("__actor_class", "player"), ("__implementation", "random")], actor_server.port),
                ("TRIAL_LIFE_CYCLE_SERVICE", [], port),
                ("CLIENT_ACTOR_CONNECTION_SERVICE", [], port),
            ])
        assert directory.table.entries() == []  # each deregistered when it stopped


def test_a_directory_that_refuses_the_registration_stops_the_service() -> None:
    with pytest.raises(EndpointUnreachableError):
        cogment_gym.serve("CartPole-v1", directory="grpc://127.0.0.1:1")


def test_discovery_endpoints_in_trial_params_and_in_the_facade(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service actor and the environment found by the Orchestrator (explicit and context
    discovery); the Orchestrator itself and the environment found by the facade."""
    with serve_directory() as directory:
        with cogment_gym.serve("CartPole-v1", directory=directory.endpoint) as env_server, \
                serve_actor({"random": RandomPolicy}, actor_classes=["player"], environment=env_server.endpoint, directory=directory.endpoint), \
                OrchestratorServer(directory=DirectorySettings(directory.endpoint, properties={"site": "test"})) as orchestrator:
            monkeypatch.setenv("COGMENT_DIRECTORY_ENDPOINT", directory.endpoint)
            env = cogment_gym.CogmentEnv(orchestrator="cogment://discover/lifecycle?site=test",
                                         environment="cogment://discover/environment?__implementation=CartPole-v1")
            try:
                obs, _ = env.reset(seed=3)
                for _ in range(5):
                    obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                    assert reward == 1.0
            finally:
                env.close()
            assert env.observation_space.contains(obs)

            # Params as a Cogment user writes them: the env by context discovery (empty endpoint),
            # the service actor by class and implementation.
            async def start() -> list[orchestrator_pb2.TrialInfo]:
                from tests.orchestrator.peers import Lifecycle

                async with grpc.aio.insecure_channel(orchestrator.lifecycle_endpoint[len("grpc://"):]) as channel:
                    lifecycle = Lifecycle(channel)
                    params = common_pb2.TrialParams(
                        environment=common_pb2.EnvironmentParams(implementation="CartPole-v1"),
                        actors=[common_pb2.ActorParams(name="player", actor_class="player", implementation="random", endpoint="cogment://discover")],
                        max_steps=3,
                    )
                    trial_id = await lifecycle.start(params)
                    await lifecycle.wait_state(trial_id, common_pb2.ENDED)
                    bad = common_pb2.TrialParams(environment=common_pb2.EnvironmentParams(endpoint="cogment://discover/environment?__implementation=Pong"),
                                                 actors=[common_pb2.ActorParams(name="p", actor_class="player", endpoint="cogment://client")])
                    with pytest.raises(grpc.aio.AioRpcError, match="no service in the directory"):
                        await lifecycle.start(bad)
                    return await lifecycle.info(trial_id)

            [info] = run(start())
            assert info.state == common_pb2.ENDED and info.tick_id == 4  # max_steps=3: final observation 4


def test_the_facade_without_a_directory_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COGMENT_DIRECTORY_ENDPOINT", raising=False)
    with pytest.raises(DirectoryError, match="COGMENT_DIRECTORY_ENDPOINT"):
        cogment_gym.CogmentEnv(environment="cogment://discover/environment")


@pytest.mark.slow
def test_cogment_gym_directory_command_serves_and_stops_on_sigterm() -> None:
    process = subprocess.Popen([sys.executable, "-m", "cogment_gym.cli", "services", "directory", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                               env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("directory at grpc://127.0.0.1:"), (line, process.stderr.read() if process.stderr else "")
        endpoint = line.split()[-1]

        async def use() -> str:
            client = DirectoryClient(endpoint)
            try:
                await client.register(T.ENVIRONMENT_SERVICE, "127.0.0.1", 4444)
                return await client.resolve("cogment://discover/environment")
            finally:
                await client.close()

        assert run(use()) == "grpc://127.0.0.1:4444"
    finally:
        process.terminate()
        assert process.wait(10) == 0
