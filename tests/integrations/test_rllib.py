"""RLlib integration: env_config checks, the env creators on real services, and PPO (new API
stack) trained by 2 env runners (Ray worker processes) against environments served here.

The env services run in this process (``cogment_gym.serve``) and count what their envs do, so the
tests can tell that every step RLlib sampled went through them; the env runners reach them over
gRPC from their own processes, as they would reach a service on another machine.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ray")

import ray  # noqa: E402
from gymnasium.vector import AutoresetMode  # noqa: E402
from pettingzoo.utils.wrappers import BaseParallelWrapper  # noqa: E402
from ray.job_config import JobConfig  # noqa: E402
from ray.rllib.env.env_context import EnvContext  # noqa: E402
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv  # noqa: E402
from ray.rllib.utils.pre_checks.env import check_multiagent_environments  # noqa: E402


from cogment_gym import CogmentEnv, CogmentGymError  # noqa: E402
from cogment_gym.envs import CogmentVectorEnv  # noqa: E402
from cogment_gym.errors import EnvConfigError  # noqa: E402
from cogment_gym.integrations.rllib import (  # noqa: E402
    cogment_env_creator,
    cogment_multi_agent_env_creator,
)
from tests.waiting import wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "grpc://127.0.0.1:9001"  # never dialled: configs that fail before connecting
MULTIWALKER = "pettingzoo.sisl.multiwalker_v9"


# ---------------------------------------------------------------------------------------------
# helpers


class Counter:
    """Steps taken by the served envs of one test (they run on the server's threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.steps = 0

    def add(self) -> None:
        with self._lock:
            self.steps += 1


class CountingWrapper(gym.Wrapper[Any, Any, Any, Any]):
    def __init__(self, env: gym.Env[Any, Any], counter: Counter) -> None:
        super().__init__(env)
        self.counter = counter

    def step(self, action: Any) -> Any:
        self.counter.add()
        return super().step(action)


class CountingParallelWrapper(BaseParallelWrapper):  # type: ignore[misc]
    def __init__(self, env: Any, counter: Counter) -> None:
        super().__init__(env)
        self.counter = counter

    def step(self, actions: Any) -> Any:
        self.counter.add()
        return super().step(actions)


def _example(name: str) -> ModuleType:
    """``examples/<name>.py`` as a module (not put in sys.modules: Ray pickles its functions by value)."""
    spec = importlib.util.spec_from_file_location(f"cogment_gym_example_{name}", ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """One local Ray instance for the module's training tests (starting one takes ~10 s)."""
    ray.init(num_cpus=2, include_dashboard=False, job_config=JobConfig(code_search_path=[str(ROOT)]))
    try:
        yield
    finally:
        ray.shutdown()


# ---------------------------------------------------------------------------------------------
# env_config


@pytest.mark.parametrize(
    ("creator", "env_config", "message"),
    [
        (cogment_env_creator, {}, r"must name the environment: 'environment' .* or 'env' .*got keys \[\]"),
        (cogment_env_creator, {"max_steps": 10}, r"must name the environment.*got keys \['max_steps'\]"),
        (cogment_env_creator, {"endpoint": ENDPOINT}, r"unknown env_config key\(s\) 'endpoint' \(did you mean 'environment'\?\)"),
        (cogment_env_creator, {"environment": 9001}, r"env_config\['environment'\] must be str or list or tuple: got 9001"),
        (cogment_env_creator, {"environment": []}, r"non-empty list of endpoints: got \[\]"),
        (cogment_env_creator, {"environment": [ENDPOINT, 2]}, r"non-empty list of endpoints"),
        (cogment_env_creator, {"environment": ENDPOINT, "max_steps": True}, r"\['max_steps'\] must be int: got True"),
        (cogment_env_creator, {"environment": ENDPOINT, "num_envs": 0}, r"\['num_envs'\] must be at least 1: got 0"),
        (cogment_env_creator, {"environment": ENDPOINT, "service_actors": {"player_1": object()}},
         r"maps agents to endpoints .*'player_1'"),
        (cogment_env_creator, {"environment": ENDPOINT, "agent": "player_0", "num_envs": 2}, r"gym_env_vectorize_mode \('sync'\)"),
        (cogment_multi_agent_env_creator, {"environment": ENDPOINT, "num_envs": 2}, r"unknown env_config key\(s\) 'num_envs'"),
        (cogment_multi_agent_env_creator, {"env": 3}, r"\['env'\] must be str: got 3"),
        (cogment_env_creator, {"environment": ENDPOINT, "envs_per_trial": 4}, r"\['envs_per_trial'\]=4 needs a vector env"),
        (cogment_env_creator, {"environment": ENDPOINT, "security": "tls"}, r"\['security'\] must be Security or Mapping"),
        (cogment_env_creator, {"environment": ENDPOINT, "security": {"private": "k"}}, r"unknown env_config\['security'\] key\(s\) \['private'\]"),
        (cogment_env_creator, {"environment": ENDPOINT, "security": {"token": "a", "token_file": "t"}}, r"both 'token' and 'token_file'"),
        (cogment_env_creator, {"environment": ENDPOINT, "security": {"token_file": "/nonexistent/t"}}, r"cannot read .*'token_file'"),
        (cogment_multi_agent_env_creator, {"environment": ENDPOINT, "security": {"private_key": "k"}},
         r"\['security'\]: private_key is given without cert_chain"),
    ],
)
def test_bad_env_config_is_refused_before_connecting(creator: Callable[..., Any], env_config: dict[str, Any], message: str) -> None:
    with pytest.raises(EnvConfigError, match=message) as raised:
        creator(EnvContext(env_config, worker_index=1))
    assert isinstance(raised.value, CogmentGymError) and isinstance(raised.value, ValueError)


# ---------------------------------------------------------------------------------------------
# the creators, in this process


def test_env_creator_builds_a_cogment_env_on_the_served_env(served: Callable[..., Any], closing: Callable[[Any], Any]) -> None:
    counter = Counter()
    server = served({"CartPole-v1": lambda **kwargs: CountingWrapper(gym.make("CartPole-v1", **kwargs), counter)})
    env = closing(cogment_env_creator(EnvContext({"environment": server.endpoint, "max_steps": 5}, worker_index=1)))
    assert isinstance(env, CogmentEnv)
    direct = gym.make("CartPole-v1")
    assert (env.observation_space, env.action_space) == (direct.observation_space, direct.action_space)
    env.reset(seed=0)
    truncated = terminated = False
    steps = 0
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(0)
        steps += 1
    assert counter.steps == steps and steps <= 6, "max_steps from env_config applies (6 actions at most)"
    # Embedded: the env runs inside the env runner.
    embedded = closing(cogment_env_creator({"env": "CartPole-v1", "make_kwargs": {"max_episode_steps": 3}}))
    embedded.reset(seed=1)
    assert [embedded.step(1)[3] for _ in range(3)] == [False, False, True]


def test_env_config_security_reaches_a_tls_service_with_a_token(
    pki: Any, served: Callable[..., Any], closing: Callable[[Any], Any], tmp_path: Path
) -> None:
    """PEM paths and a token file travel in env_config (strings, as across Ray's processes); each
    env runner reads them when it builds its facade."""
    from cogment_gym.protocol.security import Security

    token = tmp_path / "token"
    token.write_text("s3cret\n")
    server = served("CartPole-v1", security=pki.server(token="s3cret"))
    security = {"root_cert": str(pki.ca), "private_key": str(pki.client_key), "cert_chain": str(pki.client_cert), "token_file": str(token)}
    env = closing(cogment_env_creator(EnvContext({"environment": server.endpoint, "max_steps": 3, "security": security}, worker_index=1)))
    env.reset(seed=0)
    env.step(env.action_space.sample())
    as_object = Security(root_cert=pki.ca, private_key=pki.client_key, cert_chain=pki.client_cert, token="s3cret")
    envs = closing(cogment_env_creator({"environment": server.endpoint, "security": as_object, "num_envs": 2}))
    assert isinstance(envs, CogmentVectorEnv)
    envs.reset(seed=0)
    envs.step(envs.action_space.sample())
    without = {k: v for k, v in security.items() if k != "token_file"}
    with pytest.raises(CogmentGymError, match="requires a token"):
        cogment_env_creator({"environment": server.endpoint, "security": without})


def test_creators_spread_over_a_list_of_endpoints(served: Callable[..., Any], closing: Callable[[Any], Any]) -> None:
    """vector_entry_point mode: RLlib calls ``entry_point(env_ctx | {"num_envs": n})`` (a plain dict);
    sync mode: ``entry_point(env_ctx)``, the EnvContext with the runner's index."""
    first, second = served("CartPole-v1"), served("CartPole-v1")
    context = EnvContext({"environment": [first.endpoint, second.endpoint]}, worker_index=1)
    envs = closing(cogment_env_creator(context | {"num_envs": 3}))
    assert isinstance(envs, CogmentVectorEnv)
    assert envs.num_envs == 3 and envs.autoreset_mode is AutoresetMode.NEXT_STEP
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 4)
    # Sub-envs 0, 1, 2 play on endpoints i % 2: first, second, first.
    assert (first.servicer.active_trials, second.servicer.active_trials) == (2, 1)
    envs.step(np.zeros(3, np.int64))
    envs.close()
    assert wait_until(lambda: first.servicer.active_trials == second.servicer.active_trials == 0), "trials left running"
    # Batched trials: one trial of 4 sub-envs per runner.
    batched = closing(cogment_env_creator(EnvContext({"environment": first.endpoint, "envs_per_trial": 4}, worker_index=1) | {"num_envs": 4}))
    assert isinstance(batched, CogmentVectorEnv) and batched.envs_per_trial == 4
    assert batched.reset(seed=0)[0].shape == (4, 4)
    assert first.servicer.active_trials == 1
    batched.close()
    assert wait_until(lambda: first.servicer.active_trials == 0), "trials left running"
    # Single envs (RLlib's "sync" mode): runner w plays on endpoint w % 2.
    for worker_index in (1, 2, 3):
        env = closing(cogment_env_creator(EnvContext({"environment": [first.endpoint, second.endpoint]}, worker_index=worker_index)))
        env.reset(seed=0)
    assert (first.servicer.active_trials, second.servicer.active_trials) == (1, 2)


def test_multi_agent_creator_passes_rllibs_checks(served: Callable[..., Any]) -> None:
    server = served("pettingzoo.classic.rps_v2", api="parallel", env_kwargs={"max_cycles": 3})
    env = cogment_multi_agent_env_creator(EnvContext({"environment": server.endpoint}, worker_index=1))
    try:
        assert isinstance(env, ParallelPettingZooEnv)
        assert set(env.possible_agents) == {"player_0", "player_1"}
        check_multiagent_environments(env)
        obs, _ = env.reset(seed=3)
        assert set(obs) == {"player_0", "player_1"}
        steps = 0
        while True:
            obs, rewards, terminateds, truncateds, _ = env.step({"player_0": 0, "player_1": 1})  # rock, paper
            steps += 1
            assert rewards == {"player_0": -1.0, "player_1": 1.0}
            if terminateds["__all__"] or truncateds["__all__"]:
                break
        assert steps == 3 and truncateds == {"player_0": True, "player_1": True, "__all__": True}
    finally:
        env.close()
    assert wait_until(lambda: server.servicer.active_trials == 0), "close() left a trial running"


# ---------------------------------------------------------------------------------------------
# training: 2 env runners, each a Ray worker process with its own connection


@pytest.mark.slow
@pytest.mark.parametrize("vectorize_mode", ["vector_entry_point", "sync"])
def test_ppo_trains_on_served_cartpole_with_two_env_runners(
    vectorize_mode: str, ray_session: None, served: Callable[..., Any]
) -> None:
    counter = Counter()
    server = served({"CartPole-v1": lambda **kwargs: CountingWrapper(gym.make("CartPole-v1", **kwargs), counter)})
    iterations, batch = 3, 400
    results = _example("rllib_ppo_cartpole").train(
        server.endpoint, iterations=iterations, env_runners=2, envs_per_runner=2, train_batch_size=batch,
        vectorize_mode=vectorize_mode,
    )
    print(f"RLlib PPO ({vectorize_mode}): {results}, served steps {counter.steps}, trials {server.servicer.trials_played}")
    assert results["env_steps"] >= iterations * batch
    assert counter.steps == results["env_steps"], "every step RLlib sampled was a step of the served env, and no other"
    if vectorize_mode == "sync":  # a CogmentEnv per sub-env: one episode, one trial
        assert server.servicer.trials_played >= results["episodes"] > 0
    else:  # a CogmentVectorEnv per runner: by default one batched trial of its 2 sub-envs, many episodes in it
        assert 2 <= server.servicer.trials_played < results["episodes"]
    assert all(math.isfinite(r) and r > 0 for r in results["returns"]), results["returns"]
    # algo.stop() stopped the env runners, which closed their envs: no trial is left on the service.
    assert wait_until(lambda: server.servicer.active_trials == 0), f"{server.servicer.active_trials} trials left running"


@pytest.mark.slow
def test_multi_agent_ppo_on_served_multiwalker(ray_session: None, served: Callable[..., Any]) -> None:
    from pettingzoo.sisl import multiwalker_v9

    counter = Counter()
    server = served(lambda **kwargs: CountingParallelWrapper(multiwalker_v9.parallel_env(max_cycles=40, **kwargs), counter))
    iterations = 2
    results = _example("rllib_multiagent").train(server.endpoint, iterations=iterations, env_runners=2, train_batch_size=200)
    print(f"RLlib multi-agent PPO: {results}, served steps {counter.steps}, trials {server.servicer.trials_played}")
    assert results["env_steps"] >= iterations * 200
    assert results["agent_steps"] == {f"walker_{i}": results["env_steps"] for i in range(3)}, "every walker acts every step"
    # RLlib's env check steps each runner's env once more than it samples.
    assert counter.steps >= results["env_steps"]
    assert server.servicer.trials_played >= results["episodes"] > 0  # multi-agent: one episode, one trial
    assert all(math.isfinite(r) for r in results["returns"]), results["returns"]
    assert wait_until(lambda: server.servicer.active_trials == 0), f"{server.servicer.active_trials} trials left running"
