"""One trial per sub-environment (``CogmentVectorEnv(..., envs_per_trial=1)``).

Sub-environment ``i`` is one client actor in one trial at a time: one episode, one trial, as
:class:`~cogment_gym.envs.CogmentEnv` (what Cogment tools see: datalog, trial lists). It is what
runs against services that cannot batch (official Cogment SDK envs), with ``render_mode``,
``max_steps``, a remote Orchestrator or a datalog (see :mod:`cogment_gym.envs.vector.strategy`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import concatenate, create_empty_array, iterate

from cogment_gym.codec.payloads import action_payload
from cogment_gym.codec.payloads import vector_returns
from cogment_gym.envs.options import ConnectionOptions, ended_by_orchestrator
from cogment_gym.codec.payloads import unpack_observation
from cogment_gym.envs.session import TrialEvent
from cogment_gym.envs.vector.base import CogmentVectorEnv, _Step, _SubEnv
from cogment_gym.envs.vector.strategy import choose_envs_per_trial

__all__ = ["PerTrialVectorEnv"]


class PerTrialVectorEnv(CogmentVectorEnv, strategy="per_trial"):
    """A :class:`~cogment_gym.envs.CogmentVectorEnv` of one trial per sub-environment.

    Made by ``CogmentVectorEnv(..., envs_per_trial=1)`` (or when the options need it); takes the
    same arguments.
    """

    def _envs_per_trial(self, num_envs: int, envs_per_trial: int | None, options: ConnectionOptions) -> int:
        k = choose_envs_per_trial(num_envs, 1 if envs_per_trial is None else envs_per_trial, options)
        if k != 1:
            raise ValueError(f"PerTrialVectorEnv runs one trial per sub-environment: got envs_per_trial={k}")
        return 1

    def _reset_all(
        self, seed: int | Sequence[int | None] | None, options: dict[str, Any] | Sequence[dict[str, Any] | None] | None
    ) -> tuple[Any, dict[str, Any]]:
        seeds = self._seeds(seed)
        per_env, mask = self._split_options(options)
        self._seed_generator(seed)
        indices = [i for i in range(self.num_envs) if mask[i]]
        configs = {i: self._config(seeds[i], per_env[i], i) for i in indices}
        self._settle_abandoned()
        results = self._wait(self._start(self._reset(configs)))
        self._needs_reset = False
        obs_list: list[Any] = [None] * self.num_envs
        infos: dict[str, Any] = {}
        for i in indices:
            obs, _, _, _, info = self._unpack(self._subs[i], results[i])
            obs_list[i] = obs
            infos = self._add_info(infos, info, i)
        if not mask.all():  # the others keep their last observations
            for i in range(self.num_envs):
                if not mask[i]:
                    obs_list[i] = self._last_obs[i]
        self._last_obs = obs_list
        return self._batch(obs_list), infos

    def _contents(self, actions: Any) -> list[bytes | None]:
        per_env = list(iterate(self.action_space, actions))
        if len(per_env) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions (one per sub-environment), got {len(per_env)}")
        contents: list[bytes | None] = []
        for sub, action in zip(self._subs, per_env):
            if sub.autoreset:
                contents.append(None)  # NEXT_STEP: this sub-env resets, its action is ignored
            else:
                contents.append(action_payload(self.single_action_space, action, f"actions[{sub.index}]"))
        return contents

    def _unpack(self, sub: _SubEnv, event: TrialEvent) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        obs, reward, terminated, truncated, info, frame = unpack_observation(
            event.observation.content, self.single_observation_space, sub.obs_path, where=f"sub-environment {sub.index}: "
        )
        if frame is not None:
            sub.frame = frame
        return obs, reward, terminated, truncated, info

    def _batch(self, obs_list: list[Any]) -> Any:
        out: Any = create_empty_array(self.single_observation_space, n=self.num_envs, fn=np.empty)
        return concatenate(self.single_observation_space, obs_list, out)

    def _collect(self, steps: list[_Step]) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        n = self.num_envs
        rewards = np.zeros(n, dtype=np.float64)
        terminations = np.zeros(n, dtype=np.bool_)
        truncations = np.zeros(n, dtype=np.bool_)
        obs_list: list[Any] = [None] * n
        infos: dict[str, Any] = {}
        same_step = self.autoreset_mode is AutoresetMode.SAME_STEP
        for sub, step in zip(self._subs, steps):
            i = sub.index
            sub.autoreset = False
            if step.event is not None:
                obs, reward, terminated, truncated, info = self._unpack(sub, step.event)
                reward, terminated, truncated = vector_returns(reward, terminated, truncated, f"sub-environment {i}")
                truncated = ended_by_orchestrator(step.final, terminated, truncated)
                rewards[i], terminations[i], truncations[i] = reward, terminated, truncated
                if step.final:
                    if same_step:
                        infos = self._add_info(infos, {"final_obs": obs, "final_info": info}, i)
                    else:
                        sub.autoreset = True
                if not (step.final and same_step):
                    obs_list[i] = obs
                    infos = self._add_info(infos, info, i)
            if step.reset is not None:
                obs, _, _, _, info = self._unpack(sub, step.reset)
                obs_list[i] = obs
                infos = self._add_info(infos, info, i)
        self._last_obs = obs_list
        return self._batch(obs_list), rewards, terminations, truncations, infos
