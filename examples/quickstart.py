"""CogmentEnv's three ways to run, on CartPole. Run: ``python examples/quickstart.py``."""

from __future__ import annotations

import cogment_gym
from cogment_gym.orchestrator.server import OrchestratorServer


def play(env: cogment_gym.CogmentEnv, label: str) -> None:
    """One episode with random actions; one Gymnasium episode is one Cogment trial."""
    obs, info = env.reset(seed=42)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        total += float(reward)
        done = terminated or truncated
    print(f"{label}: return {total}")
    env.close()


# 1. Embedded: the env and an Orchestrator live in this process; no port is opened.
play(cogment_gym.CogmentEnv("CartPole-v1"), "embedded")

# 2. The env served as a Cogment environment service (here in a background thread; in another
#    process: `cogment-gym serve CartPole-v1 --port 9001`), trials run by an embedded Orchestrator.
with cogment_gym.serve("CartPole-v1", port=0) as server:
    play(cogment_gym.CogmentEnv(environment=server.endpoint), f"environment at {server.endpoint}")

    # 3. A standalone Orchestrator too (`cogment-gym orchestrator --lifecycle-port 9000`, or the
    #    real Cogment Orchestrator): trials are started and joined over gRPC, as any Cogment client.
    with OrchestratorServer(lifecycle_port=0) as orchestrator:
        env = cogment_gym.CogmentEnv(orchestrator=orchestrator.lifecycle_endpoint, environment=server.endpoint)
        play(env, f"orchestrator at {orchestrator.lifecycle_endpoint}")
