"""Environment services with TLS, mTLS and a token (``serve(..., security=...)``, ``workers=K``):
a trial runs end to end for a client with the right settings; a plaintext client, a client
without a valid certificate, a client without the token are refused before any env is made."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Callable

import grpc
import gymnasium as gym
import pytest

import cogment_gym
from cogment_gym import CogmentEnv, Security
from cogment_gym._proto.cogment.api import common_pb2, environment_pb2, environment_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.errors import AuthenticationError, EndpointUnreachableError, SecuritySettingsError
from cogment_gym.protocol import parse_endpoint
from cogment_gym.protocol.security import NO_SECURITY, TOKEN_KEY, new_channel
from tests.envs.test_connection import STREAMS_LOGGER, trial_peers
from tests.pki import Pki
from tests.waiting import wait_until

MADE: list[str] = []


def counted_cartpole(render_mode: str | None = None) -> gym.Env[Any, Any]:
    """CartPole, counting how many were made (the probe ``serve`` makes included)."""
    MADE.append("made")
    return gym.make("CartPole-v1", render_mode=render_mode)


def _episode(env: gym.Env[Any, Any], seed: int = 0) -> int:
    env.reset(seed=seed)
    steps = 0
    while True:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            return steps


async def _raw_calls(endpoint: str, security: Security, metadata: tuple[tuple[str, str], ...]) -> tuple[grpc.StatusCode, grpc.StatusCode]:
    """GetSpec, then a RunTrial that asks for a trial (init_input): their status codes."""
    async with new_channel(parse_endpoint(endpoint).grpc_target, security, []) as channel:
        try:
            await env_pb2_grpc.EnvSpecSPStub(channel).GetSpec(env_pb2.GetSpecRequest(), metadata=metadata, timeout=10)
            spec_code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as err:
            spec_code = err.code()
        call = environment_pb2_grpc.EnvironmentSPStub(channel).RunTrial(metadata=(("trial-id", "intruder"), *metadata), timeout=10)
        try:
            init = environment_pb2.EnvInitialInput(name="env", actors_in_trial=[common_pb2.TrialActor(name="player", actor_class="player")])
            await call.write(environment_pb2.EnvRunTrialInput(state=common_pb2.NORMAL, init_input=init))
            await call.read()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass
        finally:
            call.cancel()
        return spec_code, await call.code()


def test_a_trial_runs_over_tls_with_a_client_certificate_and_a_token(
    pki: Pki, served: Callable[..., Any], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    server = served(counted_cartpole, security=pki.server(token="s3cret"))
    assert server.local_endpoint == ""  # no same-host socket beside TLS
    env = closing(CogmentEnv(environment=server.endpoint, security=pki.client(token="s3cret")))
    assert _episode(env) >= 1 and _episode(env, seed=1) >= 1
    assert wait_until(lambda: server.servicer.trials_played == 2)
    peers = trial_peers(caplog)
    assert len(peers) == 2 and all(peer.startswith("ipv4:") for peer in peers), peers


def test_plaintext_and_certificate_less_clients_are_refused_before_any_env_is_made(pki: Pki, served: Callable[..., Any]) -> None:
    server = served(counted_cartpole, security=pki.server(token="s3cret"))
    made = len(MADE)
    for security in (Security(token="s3cret"), pki.client(cert=False, token="s3cret"), pki.outsider()):
        with pytest.raises(EndpointUnreachableError, match=f"environment service at {server.endpoint} is unreachable"):
            CogmentEnv(environment=server.endpoint, security=security)
        codes = asyncio.run(_raw_calls(server.endpoint, security, (("authentication-token", "s3cret"),)))
        assert codes == (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE), security
    assert len(MADE) == made and server.servicer.trials_played == 0


def test_a_missing_or_wrong_token_is_unauthenticated_and_makes_no_env(
    served: Callable[..., Any], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=STREAMS_LOGGER)
    server = served(counted_cartpole, security=Security(token="s3cret"))
    assert server.local_endpoint  # token only: the same-host socket is there, and checks the token too
    made = len(MADE)
    with pytest.raises(AuthenticationError, match=f"environment service at {server.endpoint} refused the call: .*requires a token"):
        CogmentEnv(environment=server.endpoint)
    with pytest.raises(AuthenticationError, match="the token sent in the metadata was refused"):
        CogmentEnv(environment=server.endpoint, security=Security(token="guess"))
    for metadata in ((), ((TOKEN_KEY, "guess"),)):
        for endpoint in (server.endpoint, server.local_endpoint):
            assert asyncio.run(_raw_calls(endpoint, NO_SECURITY, metadata)) == (grpc.StatusCode.UNAUTHENTICATED,) * 2
    assert len(MADE) == made and server.servicer.trials_played == 0 and server.servicer.active_trials == 0
    # With the token: over the same-host socket (an embedded Orchestrator on this host) as over TCP.
    env = closing(CogmentEnv(environment=server.endpoint, security=Security(token="s3cret")))
    assert _episode(env) >= 1
    peers = trial_peers(caplog)
    assert peers and all(peer.startswith("unix:") for peer in peers), peers


def test_tls_over_a_unix_socket(pki: Pki, served: Callable[..., Any], closing: Callable[[Any], Any], tmp_path: Path) -> None:
    server = served("CartPole-v1", unix_socket=str(tmp_path / "env.sock"), security=pki.server())
    env = closing(CogmentEnv(environment=server.endpoint, security=pki.client()))
    assert _episode(env) >= 1
    with pytest.raises(EndpointUnreachableError):
        CogmentEnv(environment=server.endpoint)


@pytest.mark.slow
def test_workers_serve_tls_and_tokens(pki: Pki) -> None:
    with cogment_gym.serve("CartPole-v1", workers=2, security=pki.server(token="s3cret")) as workers:
        envs = CogmentVectorEnv(environment=workers.endpoints, num_envs=2, security=pki.client(token="s3cret"))
        try:
            envs.reset(seed=0)
            for _ in range(5):
                envs.step(envs.action_space.sample())
        finally:
            envs.close()
        for endpoint in workers.endpoints:
            assert asyncio.run(_raw_calls(endpoint, NO_SECURITY, ((TOKEN_KEY, "s3cret"),))) == (grpc.StatusCode.UNAVAILABLE,) * 2
            assert asyncio.run(_raw_calls(endpoint, pki.client(), ())) == (grpc.StatusCode.UNAUTHENTICATED,) * 2


def test_unusable_security_settings_fail_serve_at_once(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.key"
    with pytest.raises(SecuritySettingsError, match=f"cannot read the private key file '{missing}'"):
        cogment_gym.serve("CartPole-v1", security=Security(private_key=missing, cert_chain=pki.server_cert))
    with pytest.raises(SecuritySettingsError, match="cannot read the private key file"):  # before any worker starts
        cogment_gym.serve("CartPole-v1", workers=2, security=Security(private_key=missing, cert_chain=pki.server_cert))
