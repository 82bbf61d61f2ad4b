"""``CogmentVectorEnv`` and its two strategies: one trial per sub-environment, batched trials.

- :mod:`~cogment_gym.envs.vector.base`: :class:`CogmentVectorEnv`, the entry point and shared base;
- :mod:`~cogment_gym.envs.vector.strategy`: which strategy ``CogmentVectorEnv(...)`` picks;
- :mod:`~cogment_gym.envs.vector.per_trial`: :class:`PerTrialVectorEnv`;
- :mod:`~cogment_gym.envs.vector.batched`: :class:`BatchedVectorEnv`.
"""

from cogment_gym.envs.vector.base import CogmentVectorEnv
from cogment_gym.envs.vector.batched import BatchedVectorEnv
from cogment_gym.envs.vector.per_trial import PerTrialVectorEnv
from cogment_gym.envs.vector.strategy import choose_envs_per_trial

__all__ = ["BatchedVectorEnv", "CogmentVectorEnv", "PerTrialVectorEnv", "choose_envs_per_trial"]
