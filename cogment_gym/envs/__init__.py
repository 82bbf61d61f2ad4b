"""Client-side facades: Cogment trials as Gymnasium environments."""

from cogment_gym.envs.cogment_env import CogmentEnv, ResetNeededError
from cogment_gym.envs.connection import TrialConnection
from cogment_gym.envs.multi_agent import ServiceActor
from cogment_gym.envs.session import ClientSession
from cogment_gym.envs.vector import AlreadyPendingCallError, ClosedEnvironmentError, CogmentVectorEnv, NoAsyncCallError

__all__ = [
    "AlreadyPendingCallError",
    "ClientSession",
    "ClosedEnvironmentError",
    "CogmentEnv",
    "CogmentVectorEnv",
    "CogmentAECEnv",
    "CogmentParallelEnv",
    "NoAsyncCallError",
    "ResetNeededError",
    "ServiceActor",
    "TrialConnection",
]


def __getattr__(name: str) -> object:
    # The PettingZoo facades need the optional ``pettingzoo`` package: imported on first use.
    if name in ("CogmentAECEnv", "CogmentParallelEnv"):
        from cogment_gym.envs import pettingzoo_env

        return getattr(pettingzoo_env, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
