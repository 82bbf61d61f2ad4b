"""Batched trials (``CogmentVectorEnv(..., envs_per_trial=K > 1)``, the default where they can run).

Each trial runs K sub-environments in the environment service, one message per tick for all of
them (``EnvConfig.num_envs``), and the sub-environments reset themselves inside the trial with
the same autoreset semantics as ``SyncVectorEnv``: a trial then carries many episodes, their
boundaries marked by the terminations / truncations, not by trials. Fewer messages and trials
per step is what makes it fast (docs/performance.md). Seeds must be None or consecutive within a
trial (an int seed is), ``reset_mask`` covers whole trials, ``render_mode`` and ``max_steps`` are
not available (the env's own TimeLimit is).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space, iterate

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.payloads import action_payload
from cogment_gym.codec.payloads import unpack_batched
from cogment_gym.envs.batched import join_batches, split_batch
from cogment_gym.envs.options import ConnectionOptions, ended_by_orchestrator
from cogment_gym.envs.session import TrialEvent
from cogment_gym.envs.vector.base import CogmentVectorEnv, _slot_label, _Step, _SubEnv
from cogment_gym.envs.vector.strategy import choose_envs_per_trial, per_trial_reasons
from cogment_gym.errors import SpaceMismatchError

__all__ = ["BatchedVectorEnv"]


class BatchedVectorEnv(CogmentVectorEnv, strategy="batched"):
    """A :class:`~cogment_gym.envs.CogmentVectorEnv` of ``num_envs / K`` batched trials of K
    sub-environments each.

    Made by ``CogmentVectorEnv(...)`` where batched trials can run, or with ``envs_per_trial=K``;
    takes the same arguments.
    """

    def _envs_per_trial(self, num_envs: int, envs_per_trial: int | None, options: ConnectionOptions) -> int:
        k = choose_envs_per_trial(num_envs, envs_per_trial, options)
        if k == 1:
            why = "; ".join(per_trial_reasons(options)) or f"num_envs={num_envs} over {max(1, len(options.endpoints))} service(s)"
            raise ValueError(
                f"BatchedVectorEnv runs several sub-environments per trial: got envs_per_trial=1 ({why}); "
                "CogmentVectorEnv(...) picks the strategy that fits"
            )
        return k

    def _setup(self) -> None:
        super()._setup()
        # The spaces of one batched trial's values.
        self._trial_observation_space = batch_space(self.single_observation_space, self.envs_per_trial)
        self._trial_action_space = batch_space(self.single_action_space, self.envs_per_trial)

    def _batch_config(self, config: env_pb2.EnvConfig) -> None:
        config.num_envs = self.envs_per_trial
        if self.autoreset_mode is AutoresetMode.SAME_STEP:
            config.autoreset_mode = env_pb2.AUTORESET_MODE_SAME_STEP

    def _reset_all(
        self, seed: int | Sequence[int | None] | None, options: dict[str, Any] | Sequence[dict[str, Any] | None] | None
    ) -> tuple[Any, dict[str, Any]]:
        k, slots = self.envs_per_trial, self._num_slots
        seeds = self._seeds(seed)
        trial_seeds: list[int | None] = []
        for j in range(slots):
            seed_block = seeds[j * k : (j + 1) * k]
            first = seed_block[0]
            if all(s is None for s in seed_block):
                trial_seeds.append(None)
            elif first is not None and seed_block == list(range(first, first + k)):
                trial_seeds.append(first)
            else:
                raise ValueError(
                    f"seed: a batched trial seeds its sub-environments s, s+1, ..., so the seeds of sub-environments "
                    f"{j * k}..{(j + 1) * k - 1} must be all None or consecutive; got {seed_block} "
                    "(envs_per_trial=1, one trial per sub-environment, takes any seeds)"
                )
        per_env, env_mask = self._split_options(options)
        per_trial: list[Any] = per_env[::k]
        if not (options is None or isinstance(options, Mapping)):  # a list: one options dict per trial
            per_trial = []
            for j in range(slots):
                block: list[Any] = [dict(o) if o else None for o in per_env[j * k : (j + 1) * k]]
                if any(o != block[0] for o in block):
                    raise ValueError(
                        f"options: a batched trial resets its {k} sub-environments with the same options; those of "
                        f"sub-environments {j * k}..{(j + 1) * k - 1} differ: {block} "
                        "(envs_per_trial=1, one trial per sub-environment, takes any)"
                    )
                per_trial.append(block[0])
        blocks = env_mask.reshape(slots, k)
        if not (blocks.all(axis=1) | ~blocks.any(axis=1)).all():
            raise ValueError(
                f"options['reset_mask'] must reset whole batched trials ({k} sub-environments each), got {env_mask.astype(int).tolist()} "
                "(envs_per_trial=1, one trial per sub-environment, takes any mask)"
            )
        mask = blocks[:, 0]
        self._seed_generator(seed)
        configs = {j: self._config(trial_seeds[j], per_trial[j], j) for j in range(slots) if mask[j]}
        self._settle_abandoned()
        results = self._wait(self._start(self._reset(configs)))
        self._needs_reset = False
        infos: dict[str, Any] = {}
        for j in configs:
            batch = self._unpack_batched(self._subs[j], results[j])
            self._last_obs[j] = batch.obs
            for i, info in enumerate(batch.infos):
                if info:
                    infos = self._add_info(infos, info, j * k + i)
        return self._join(), infos

    def _contents(self, actions: Any) -> list[bytes | None]:
        """One batched ActionPayload per trial (None: NEXT_STEP restarts that trial)."""
        if isinstance(self.action_space, (gym.spaces.Box, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
            shape = np.shape(actions)
            if shape != self.action_space.shape:
                raise ValueError(f"expected actions of shape {self.action_space.shape} ({self.num_envs} sub-environments), got shape {shape}")
        single = self.single_action_space
        if isinstance(single, gym.spaces.Discrete):  # its encoder checks dtype and shape, not bounds
            array = np.asarray(actions)
            outside = (array < single.start) | (array >= single.start + single.n)
            if outside.any():
                index = int(np.flatnonzero(outside)[0])
                raise SpaceMismatchError(
                    f"actions[{index}] does not fit {single}: expected an integer in [{single.start}, {single.start + single.n}), "
                    f"got {array[index]}"
                )
        parts = split_batch(self.action_space, single, actions, self._num_slots)
        contents: list[bytes | None] = []
        k = self.envs_per_trial
        for sub, part in zip(self._subs, parts):
            if sub.autoreset:
                contents.append(None)
            else:
                path = f"actions[{sub.index * k}:{(sub.index + 1) * k}]" if self._num_slots > 1 else "actions"
                contents.append(action_payload(self._trial_action_space, part, path))
        return contents

    def _unpack_batched(self, sub: _SubEnv, event: TrialEvent) -> Any:
        return unpack_batched(
            event.observation.content, self._trial_observation_space, self.single_observation_space, self.envs_per_trial,
            where=f"{_slot_label(sub.index, self.envs_per_trial)}: ",
        )

    def _join(self) -> Any:
        return join_batches(self.single_observation_space, self._trial_observation_space, self._last_obs[: self._num_slots])

    def _collect(self, steps: list[_Step]) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        n, k = self.num_envs, self.envs_per_trial
        rewards = np.zeros(n, dtype=np.float64)
        terminations = np.zeros(n, dtype=np.bool_)
        truncations = np.zeros(n, dtype=np.bool_)
        infos: dict[str, Any] = {}
        same_step = self.autoreset_mode is AutoresetMode.SAME_STEP
        for sub, step in zip(self._subs, steps):
            j, base = sub.index, sub.index * k
            sub.autoreset = False
            if step.event is not None:
                batch = self._unpack_batched(sub, step.event)
                rewards[base : base + k] = batch.rewards
                terminations[base : base + k] = batch.terminations
                truncations[base : base + k] = batch.truncations
                ends = {index: (obs, info) for index, obs, info in batch.ends}
                cut = step.final and same_step  # a new trial replaces this one in this step
                if step.final:
                    # The trial itself ended (from outside): every episode in it is cut.
                    truncations[base : base + k] = ended_by_orchestrator(True, batch.terminations, truncations[base : base + k])
                    sub.autoreset = not same_step
                    if cut:
                        for i, obs in enumerate(iterate(self._trial_observation_space, batch.obs)):
                            ends.setdefault(i, (obs, batch.infos[i] if batch.infos else {}))
                if ends or (batch.infos and not cut):
                    for i in range(k):  # in SyncVectorEnv's order: final first, then the step's info
                        end = ends.get(i)
                        if end is not None:
                            infos = self._add_info(infos, {"final_obs": end[0], "final_info": end[1]}, base + i)
                        if batch.infos and not cut and batch.infos[i]:
                            infos = self._add_info(infos, batch.infos[i], base + i)
                self._last_obs[j] = batch.obs
            if step.reset is not None:
                batch = self._unpack_batched(sub, step.reset)
                self._last_obs[j] = batch.obs
                for i, info in enumerate(batch.infos):
                    if info:
                        infos = self._add_info(infos, info, base + i)
        return self._join(), rewards, terminations, truncations, infos
