"""The official Cogment Python SDK 2.10.1 against our secured servers.

* A controller passes the token the way the SDK allows: ``cogment.Context(metadata=...)`` with
  ``authentication-token``, on an SSL endpoint with a client certificate; it starts a trial of
  our TLS CartPole played by our TLS service actor, follows it with ``get_trial_info`` to its
  end. Without the token every call is UNAUTHENTICATED and no trial starts. The SDK 2.10 sends
  no Context metadata with ``watch_trials`` (nor with a client actor's join): those are refused
  by a token-checking Orchestrator, as docs/security.md says.
* A client actor joins over SSL endpoints, with a client key (mTLS) and without one (TLS only),
  and, through the ``authorize`` recipe of docs/security.md, a token-protected Orchestrator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

import cogment_gym
from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym.actors import RandomPolicy, serve_actor
from cogment_gym.orchestrator.server import OrchestratorServer
from cogment_gym.protocol.security import Security, new_channel
from tests.orchestrator.peers import Lifecycle, client, run, service, trial_params
from tests.pki import Pki

from . import sdk

pytestmark = [pytest.mark.network, pytest.mark.slow]

SCRIPT_TIMEOUT = 60.0


@pytest.fixture
def started() -> Iterator[list[Any]]:
    servers: list[Any] = []
    yield servers
    for server in reversed(servers):
        server.stop()


def _tls_args(pki: Pki, *, key: bool = True) -> list[str]:
    args = ["--root-cert", str(pki.ca)]
    return args + ["--private-key", str(pki.client_key), "--cert-chain", str(pki.client_cert)] if key else args


def _script(name: str, *args: str) -> dict:
    proc = sdk.run_sdk_script(name, [*args, "--timeout", str(SCRIPT_TIMEOUT)], timeout=SCRIPT_TIMEOUT + 30)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    return sdk.last_json_line(proc.stdout)


def _params_file(tmp_path: Path, params: common_pb2.TrialParams) -> Path:
    from google.protobuf import json_format

    path = tmp_path / "trial.json"
    path.write_text(json.dumps(json_format.MessageToDict(params)))
    return path


def test_an_sdk_controller_passes_the_token_through_its_context_metadata(
    sdk_venv_python: Path, pki: Pki, started: list[Any], tmp_path: Path
) -> None:
    server_security = pki.server(token="s3cret")
    env = cogment_gym.serve("CartPole-v1", security=server_security)
    started.append(env)
    actor = serve_actor(RandomPolicy, environment=env.endpoint, security=server_security)
    started.append(actor)
    orch = OrchestratorServer(security=server_security)
    started.append(orch)
    trial = _params_file(tmp_path, trial_params(env.endpoint, [service("player", actor.endpoint)], max_steps=20))

    result = _script("sdk_secure_controller.py", "--endpoint", orch.lifecycle_endpoint, "--trial", str(trial),
                     "--token", "s3cret", *_tls_args(pki))
    assert result["versions"]["cogment"].startswith("2."), result
    assert result["trial_id"] and result["states"][-1] == "ENDED", result
    assert result["terminate"] == "ok", result  # TerminateTrial carried the token too
    # The SDK's watch_trials sends no metadata: refused.
    assert result["watch_error"].startswith("UNAUTHENTICATED: "), result
    assert actor.servicer.trials_played == 1

    before = dict(orch.orchestrator.trials)
    refused = _script("sdk_secure_controller.py", "--endpoint", orch.lifecycle_endpoint, "--trial", str(trial), *_tls_args(pki))
    for key in ("versions_error", "start_error", "watch_error", "terminate_error"):
        assert refused[key].startswith("UNAUTHENTICATED: ") and "requires a token" in refused[key], refused
    assert "trial_id" not in refused and dict(orch.orchestrator.trials) == before


def _allow_client_actors(token: str | None, method: str) -> bool:
    """docs/security.md's recipe for SDK client actors: ClientActorSP needs no token (a join
    names a trial id, which only token holders can list); everything else does."""
    return token == "s3cret" or method.startswith("/cogmentAPI.ClientActorSP/")


@pytest.mark.parametrize("case", ["mtls-with-client-key", "tls-without-client-key", "token-with-the-recipe"])
def test_an_sdk_client_actor_joins_over_ssl_endpoints(sdk_venv_python: Path, pki: Pki, started: list[Any], case: str) -> None:
    if case == "tls-without-client-key":
        server_security, key = pki.server(mtls=False), False
    elif case == "mtls-with-client-key":
        server_security, key = pki.server(), True
    else:
        server_security, key = Security(private_key=pki.server_key, cert_chain=pki.server_cert, root_cert=pki.ca,
                                        authorize=_allow_client_actors, token="s3cret"), True
    env = cogment_gym.serve("CartPole-v1", security=server_security)
    started.append(env)
    orch = OrchestratorServer(security=server_security)
    started.append(orch)
    controller = pki.client(token="s3cret")

    async def start() -> str:
        async with new_channel(orch.lifecycle_endpoint[len("grpc://"):], controller, []) as channel:
            return await Lifecycle(channel, controller.call_metadata).start(trial_params(env.endpoint, [client("player")], max_steps=10))

    trial_id = run(start())
    summary = _script("sdk_client_actor.py", "--endpoint", orch.actor_endpoint, "--trial-id", trial_id, "--actor-name", "player",
                      *_tls_args(pki, key=key))
    assert summary["joined"] is True and summary["trial_id"] == trial_id, summary
    assert 1 <= len(summary["actions"]) <= 11

    async def state() -> int:
        async with new_channel(orch.lifecycle_endpoint[len("grpc://"):], controller, []) as channel:
            lifecycle = Lifecycle(channel, controller.call_metadata)
            await lifecycle.wait_state(trial_id, common_pb2.ENDED)
            return await lifecycle.state(trial_id)

    assert run(state()) == common_pb2.ENDED
