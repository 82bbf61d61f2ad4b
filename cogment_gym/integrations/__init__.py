"""Thin adapters to training libraries, each behind an extra and imported on demand.

- :mod:`cogment_gym.integrations.sb3`: :class:`~cogment_gym.integrations.sb3.CogmentVecEnv`, a
  Stable-Baselines3 ``VecEnv`` over Cogment trials (``pip install 'cogment-gym[sb3]'``).
- :mod:`cogment_gym.integrations.rllib`: env creators for RLlib's env runners (new API stack):
  :class:`~cogment_gym.CogmentEnv` / :class:`~cogment_gym.envs.CogmentVectorEnv` per runner, and
  :class:`~cogment_gym.CogmentParallelEnv` in RLlib's ``ParallelPettingZooEnv`` for multi-agent
  (``pip install 'cogment-gym[rllib]'``).

Nothing is imported here, so that ``import cogment_gym.integrations`` works without any extra.
"""

__all__: list[str] = []
