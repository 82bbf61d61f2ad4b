"""Service actors with TLS, mTLS and a token (``serve_actor(..., security=...)``): a game is
played through them by an Orchestrator dialing with the right settings; anyone else is refused
before a policy is made."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Iterator

import grpc
import numpy as np
import pytest

import cogment_gym
from cogment_gym import CogmentEnv, Security
from cogment_gym._proto.cogment.api import agent_pb2_grpc, common_pb2
from cogment_gym.actors import ActorContext, TrialPolicy, serve_actor
from cogment_gym.protocol import parse_endpoint
from cogment_gym.protocol.security import NO_SECURITY, TOKEN_KEY, new_channel
from cogment_gym.orchestrator.server import OrchestratorServer
from tests.orchestrator.peers import Lifecycle, connect, run, service, trial_params
from tests.pki import Pki
from tests.waiting import wait_until

CONNECT_FOUR = "pettingzoo.classic.connect_four_v3"


class FirstLegal(TrialPolicy):
    made = 0

    def __init__(self, context: ActorContext) -> None:
        super().__init__(context)
        FirstLegal.made += 1

    def act(self, observation: Any, context: ActorContext) -> int:
        return int(np.flatnonzero(np.asarray(context.action_mask))[0])


@pytest.fixture
def servers() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for server in reversed(started):
        server.stop()


async def _run_trial_code(endpoint: str, security: Security, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    """A raw ServiceActorSP.RunTrial asking the actor to init: its status code."""
    async with new_channel(parse_endpoint(endpoint).grpc_target, security, []) as channel:
        call = agent_pb2_grpc.ServiceActorSPStub(channel).RunTrial(metadata=(("trial-id", "intruder"), *metadata), timeout=10)
        try:
            init = common_pb2.ActorInitialInput(actor_name="player_1", actor_class="player", env_name="env")
            await call.write(common_pb2.ActorRunTrialInput(state=common_pb2.NORMAL, init_input=init))
            await call.read()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass
        finally:
            call.cancel()
        return await call.code()


def test_a_game_is_played_through_a_tls_service_actor(pki: Pki, servers: list[Any], closing: Callable[[Any], Any]) -> None:
    """The facade's embedded Orchestrator dials the env service and the service actor with the
    client certificate and the token; the actor takes its spaces from the trial."""
    env_server = cogment_gym.serve(CONNECT_FOUR, security=pki.server(token="s3cret"))
    servers.append(env_server)
    actor = serve_actor(FirstLegal, security=pki.server(token="s3cret"))
    servers.append(actor)
    made = FirstLegal.made
    env = closing(CogmentEnv(environment=env_server.endpoint, service_actors={"player_1": actor.endpoint},
                             security=pki.client(token="s3cret")))
    rng = np.random.default_rng(0)
    for game in range(2):
        obs, _ = env.reset(seed=game)
        while True:
            obs, _, terminated, truncated, _ = env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
            if terminated or truncated:
                break
    assert FirstLegal.made == made + 2
    assert wait_until(lambda: actor.servicer.trials_played == 2)


def test_plaintext_certificate_less_and_token_less_orchestrators_are_refused(pki: Pki, servers: list[Any]) -> None:
    actor = serve_actor(FirstLegal, security=pki.server(token="s3cret"))
    servers.append(actor)
    made = FirstLegal.made
    token = ((TOKEN_KEY, "s3cret"),)
    for security in (NO_SECURITY, pki.client(cert=False), pki.outsider()):
        assert asyncio.run(_run_trial_code(actor.endpoint, security, token)) == grpc.StatusCode.UNAVAILABLE, security
    for metadata in ((), ((TOKEN_KEY, "guess"),)):
        assert asyncio.run(_run_trial_code(actor.endpoint, pki.client(), metadata)) == grpc.StatusCode.UNAUTHENTICATED
    assert FirstLegal.made == made and actor.servicer.trials_played == 0 and actor.servicer.active_trials == 0


def test_the_spec_fetch_of_a_service_actor_dials_with_its_settings(servers: list[Any]) -> None:
    """``serve_actor(environment=...)`` asks the env server for its spaces with the same
    settings; without the token the env refuses it and the trial fails, saying why."""
    env_server = cogment_gym.serve("CartPole-v1", security=Security(token="s3cret"))
    servers.append(env_server)
    orch = OrchestratorServer(component_security=Security(token="s3cret"))
    servers.append(orch)
    results = {}
    for name, security in (("with the token", Security(token="s3cret")), ("without", None)):
        actor = serve_actor(lambda observation, context: 0, environment=env_server.endpoint, security=security)
        servers.append(actor)

        async def scenario() -> Any:
            async with connect(orch) as channel:
                lifecycle = Lifecycle(channel)
                trial_id = await lifecycle.start(trial_params(env_server.endpoint, [service("player", actor.endpoint)]))
                await lifecycle.wait_state(trial_id, common_pb2.ENDED, timeout=30)
                return orch.orchestrator.trials[trial_id].failure

        results[name] = run(scenario())
    assert results["with the token"] is None
    failure = results["without"]
    assert failure is not None, results
    assert f"AuthenticationError: the environment server at {env_server.endpoint}, asked for its spaces, failed: UNAUTHENTICATED" in failure.summary
