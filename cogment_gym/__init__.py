"""cogment_gym: Gymnasium and PettingZoo environments as Cogment 2.x services, and Cogment trials
as Gymnasium environments.

    import cogment_gym
    server = cogment_gym.serve("CartPole-v1")          # a Cogment environment service
    env = cogment_gym.CogmentEnv("CartPole-v1")         # a Cogment trial as a gymnasium.Env
    aec = cogment_gym.CogmentAECEnv("pettingzoo.classic.connect_four_v3")   # ... as a PettingZoo env
"""

from cogment_gym._version import __version__
from cogment_gym.adapters import EnvServer, EnvWorkers, serve, serve_forever
from cogment_gym.envs import CogmentEnv, ServiceActor
from cogment_gym.errors import CogmentGymError
from cogment_gym.orchestrator import Orchestrator

__all__ = [
    "CogmentAECEnv",
    "CogmentEnv",
    "CogmentGymError",
    "CogmentParallelEnv",
    "EnvServer",
    "EnvWorkers",
    "Orchestrator",
    "ServiceActor",
    "__version__",
    "serve",
    "serve_forever",
]


def __getattr__(name: str) -> object:
    # The PettingZoo facades need the optional ``pettingzoo`` package: imported on first use.
    if name in ("CogmentAECEnv", "CogmentParallelEnv"):
        from cogment_gym.envs import pettingzoo_env

        return getattr(pettingzoo_env, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
