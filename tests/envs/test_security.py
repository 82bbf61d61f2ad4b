"""The facades with ``security=``: CogmentVectorEnv (one trial per episode and batched) and the
PettingZoo facades against TLS services, a remote Orchestrator refusing a facade without its
token, and the embedded default, which has nothing to secure."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from cogment_gym import CogmentEnv, Security
from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.envs.pettingzoo_env import CogmentAECEnv, CogmentParallelEnv
from cogment_gym.errors import AuthenticationError, EndpointUnreachableError
from cogment_gym.orchestrator.server import OrchestratorServer
from tests.pki import Pki


@pytest.mark.parametrize("envs_per_trial", [1, 2], ids=["trials", "batched"])
def test_a_vector_env_over_tls_with_a_token(pki: Pki, served: Callable[..., Any], closing: Callable[[Any], Any], envs_per_trial: int) -> None:
    server = served("CartPole-v1", security=pki.server(token="s3cret"))
    envs = closing(CogmentVectorEnv(environment=server.endpoint, num_envs=4, envs_per_trial=envs_per_trial,
                                    security=pki.client(token="s3cret")))
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (4, 4)
    for _ in range(30):  # through some autoresets
        envs.step(envs.action_space.sample())
    with pytest.raises(EndpointUnreachableError):
        CogmentVectorEnv(environment=server.endpoint, num_envs=2)


def test_pettingzoo_facades_over_tls(pki: Pki, served: Callable[..., Any], closing: Callable[[Any], Any]) -> None:
    aec_server = served("pettingzoo.classic.tictactoe_v3", security=pki.server())
    aec = closing(CogmentAECEnv(environment=aec_server.endpoint, security=pki.client()))
    aec.reset(seed=1)
    for agent in aec.agent_iter():
        obs, _, terminated, truncated, _ = aec.last()
        aec.step(None if terminated or truncated else int(np.flatnonzero(obs["action_mask"])[0]))
    par_server = served("pettingzoo.classic.rps_v2", api="parallel", security=pki.server())
    par = closing(CogmentParallelEnv(environment=par_server.endpoint, security=pki.client(), max_steps=3))
    par.reset(seed=0)
    while par.agents:
        par.step({agent: 0 for agent in par.agents})
    with pytest.raises(EndpointUnreachableError):
        CogmentParallelEnv(environment=par_server.endpoint, security=pki.client(cert=False))


def test_a_remote_orchestrator_refuses_a_facade_without_its_token(served: Callable[..., Any], closing: Callable[[Any], Any]) -> None:
    server = served("CartPole-v1")  # the env service itself is open: only the Orchestrator checks
    with OrchestratorServer(security=Security(token="s3cret")) as orch:
        # Refused when the facade checks the Orchestrator, before any trial.
        with pytest.raises(AuthenticationError, match=f"orchestrator at {orch.lifecycle_endpoint} refused the call: .*requires a token"):
            CogmentEnv(orchestrator=orch.lifecycle_endpoint, environment=server.endpoint)
        assert orch.orchestrator.trials == {}
        ok = closing(CogmentEnv(orchestrator=orch.lifecycle_endpoint, environment=server.endpoint, security=Security(token="s3cret")))
        ok.reset(seed=0)
        ok.step(0)
        assert len(orch.orchestrator.trials) == 1


def test_the_embedded_default_takes_security_and_runs_as_before(closing: Callable[[Any], Any]) -> None:
    env = closing(CogmentEnv("CartPole-v1", security=Security(token="unused")))
    env.reset(seed=0)
    env.step(0)
