"""cogment_gym: Gymnasium and PettingZoo environments as Cogment 2.x services, and Cogment trials
as Gymnasium environments.

    import cogment_gym
    server = cogment_gym.serve("CartPole-v1")          # a Cogment environment service
    env = cogment_gym.CogmentEnv("CartPole-v1")         # a Cogment trial as a gymnasium.Env
    venv = cogment_gym.CogmentVectorEnv("CartPole-v1", num_envs=8)   # N trials as a vector env
    aec = cogment_gym.CogmentAECEnv("pettingzoo.classic.connect_four_v3")   # ... as a PettingZoo env
"""

from cogment_gym import _grpc_tuning

_grpc_tuning.apply()  # before the first import of grpc below

from cogment_gym._version import __version__  # noqa: E402
from cogment_gym.adapters import EnvServer, EnvWorkers, serve, serve_forever  # noqa: E402
from cogment_gym.envs import CogmentEnv, CogmentVectorEnv, ConnectionOptions, ServiceActor  # noqa: E402
from cogment_gym.errors import CogmentGymError  # noqa: E402
from cogment_gym.orchestrator import Orchestrator  # noqa: E402
from cogment_gym.protocol.security import Security  # noqa: E402

__all__ = [
    "CogmentAECEnv",
    "CogmentEnv",
    "CogmentGymError",
    "CogmentParallelEnv",
    "CogmentVectorEnv",
    "ConnectionOptions",
    "EnvServer",
    "EnvWorkers",
    "Orchestrator",
    "Security",
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
