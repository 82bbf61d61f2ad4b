"""Client-side facades: Cogment trials as Gymnasium environments."""

from cogment_gym.envs.cogment_env import CogmentEnv
from cogment_gym.envs.multi_agent import ServiceActor
from cogment_gym.envs.options import ConnectionOptions
from cogment_gym.envs.vector import CogmentVectorEnv

__all__ = [
    "CogmentEnv",
    "CogmentVectorEnv",
    "CogmentAECEnv",
    "CogmentParallelEnv",
    "ConnectionOptions",
    "ServiceActor",
]


def __getattr__(name: str) -> object:
    # The PettingZoo facades need the optional ``pettingzoo`` package: imported on first use.
    if name in ("CogmentAECEnv", "CogmentParallelEnv"):
        from cogment_gym.envs import pettingzoo_env

        return getattr(pettingzoo_env, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
