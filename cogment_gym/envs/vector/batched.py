"""Batched trials (``CogmentVectorEnv(..., envs_per_trial=K > 1)``, the default where they can run).

Each trial runs K sub-environments in the environment service, one message per tick for all of
them (``EnvConfig.num_envs``), and the sub-environments reset themselves inside the trial with
the same autoreset semantics as ``SyncVectorEnv``: a trial then carries many episodes, their
boundaries marked by the terminations / truncations, not by trials. Fewer messages and trials
per step is what makes it fast (docs/performance.md). ``render_mode`` and ``max_steps`` are not
available (the env's own TimeLimit is).

Resets are those of ``SyncVectorEnv``: a trial whose K sub-environments all reset restarts (a new
trial: ``EnvConfig.seed`` for seeds s, s+1, ... or None, else one ``SubEnvReset`` per sub-env in
``EnvConfig.resets``: any seed list, one options dict per sub-env); a ``reset_mask`` that resets
only some of them sends a reset tick in the running trial (``ActionPayload.reset``): the env side
resets those, with their seeds and options, and leaves the others as they are, pending NEXT_STEP
autoresets included. After a trial ended from outside (NEXT_STEP: every sub-env of it resets at
the next step) such a mask starts a new trial that resets the masked ones now and defers the
others' reset to its first step (``SubEnvReset.deferred``), as SyncVectorEnv would.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec.payloads import action_payload, reset_action_payload, unpack_batched
from cogment_gym.envs.batched import join_batches, split_batch
from cogment_gym.envs.options import ConnectionOptions, ended_by_orchestrator
from cogment_gym.envs.session import TrialEvent
from cogment_gym.envs.vector.base import CogmentVectorEnv, _quietly, _raise_first, _slot_label, _Step, _SubEnv
from cogment_gym.envs.vector.strategy import choose_envs_per_trial, per_trial_reasons
from cogment_gym.errors import CogmentGymError, ResetNeededError, SpaceMismatchError

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
        per_env, env_mask = self._split_options(options)
        shared = options is None or isinstance(options, Mapping)  # one dict (or None) for every sub-env
        blocks = env_mask.reshape(slots, k)
        # A trial whose sub-envs all reset restarts (a new trial, EnvConfig); one where only some
        # do gets a reset tick (ActionPayload.reset): the others keep their state.
        configs: dict[int, bytes] = {}
        ticks: dict[int, bytes] = {}
        deferred: dict[int, np.ndarray] = {}  # new trials whose first payload holds placeholders there
        for j in range(slots):
            row, base = blocks[j], j * k
            if not row.any():
                continue
            if row.all():
                configs[j] = self._trial_config(seeds[base : base + k], per_env[base : base + k], shared, j)
                continue
            if self._subs[j].session is None:
                # NEXT_STEP, the trial ended from outside: each of its sub-envs was to reset at the
                # next step. A new trial resets the masked ones now and the others at its first step.
                resets: list[Any] = [(seeds[base + i], per_env[base + i]) if row[i] else None for i in range(k)]
                configs[j] = self._config(None, None, j, resets=resets)
                deferred[j] = ~row
                continue
            ticks[j] = reset_action_payload({i: (seeds[base + i], per_env[base + i]) for i in range(k) if row[i]})
        self._seed_generator(seed)
        self._settle_abandoned()
        results = self._wait(self._start(self._reset_some(configs, ticks)))
        self._needs_reset = False
        infos: dict[str, Any] = {}
        for j in sorted(results):
            batch = self._unpack_batched(self._subs[j], results[j])
            if j in deferred:  # keep the observations the deferred sub-envs had
                space = self._trial_observation_space
                kept = [old if d else new for old, new, d in zip(iterate(space, self._last_obs[j]), iterate(space, batch.obs), deferred[j])]
                out: Any = create_empty_array(self.single_observation_space, k)
                batch.obs = concatenate(self.single_observation_space, kept, out)
            self._last_obs[j] = batch.obs
            for i, info in enumerate(batch.infos):
                if info:
                    infos = self._add_info(infos, info, j * k + i)
        return self._join(), infos

    def _trial_config(self, seeds: list[int | None], options: list[Any], shared: bool, slot: int) -> bytes:
        """The EnvConfig of a new batched trial whose sub-env i resets with ``seeds[i]`` and
        ``options[i]``: the trial's seed (+ i) and options when they say it, else one SubEnvReset each."""
        first = seeds[0]
        consecutive = all(s is None for s in seeds) or (first is not None and seeds == list(range(first, first + len(seeds))))
        if consecutive and (shared or all(o is None for o in options)):
            return self._config(first, options[0], slot)
        return self._config(None, None, slot, resets=list(zip(seeds, options)))

    async def _reset_some(self, configs: dict[int, bytes], ticks: dict[int, bytes]) -> dict[int, TrialEvent]:
        """Reset ticks in the running trials of ``ticks``, new trials for ``configs``: the first
        observation of each."""
        results: dict[int, TrialEvent] = {}
        if ticks:
            results.update(await self._reset_ticks(ticks))
        if configs:
            results.update(await self._reset(configs))
        return results

    async def _reset_ticks(self, ticks: dict[int, bytes]) -> dict[int, TrialEvent]:
        """Send each trial of ``ticks`` its reset tick (ActionPayload.reset), then await the
        observations; any failure ends every trial (reset() is needed), as a failed step does."""
        subs = self._subs
        errors: dict[int, BaseException] = {}
        events: dict[int, TrialEvent] = {}
        try:
            for j, content in ticks.items():  # every request leaves before any answer is awaited
                session = subs[j].session
                if session is None:
                    errors[j] = ResetNeededError("its trial has ended; reset() every sub-environment of it")
                    break
                try:
                    await session.act(content)
                except Exception as err:
                    errors[j] = err
                    break
            if not errors:
                for j in ticks:
                    session = subs[j].session
                    if session is None:
                        continue
                    try:
                        event = await session.next_event()
                    except Exception as err:
                        errors[j] = err
                        break
                    if event.final:
                        errors[j] = CogmentGymError(f"trial {session.trial_id!r} ended at a reset of some of its sub-environments")
                        break
                    events[j] = event
        except BaseException:  # cancelled (close(), an interrupt): end everything
            await _quietly(self._drop(subs))
            raise
        if errors:
            await self._drop(subs)
            _raise_first(errors, self.envs_per_trial)
        return events

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
