"""Client-side facades: Cogment trials as Gymnasium environments."""

from cogment_gym.envs.cogment_env import CogmentEnv, ResetNeededError
from cogment_gym.envs.connection import TrialConnection
from cogment_gym.envs.session import ClientSession

__all__ = ["ClientSession", "CogmentEnv", "ResetNeededError", "TrialConnection"]
