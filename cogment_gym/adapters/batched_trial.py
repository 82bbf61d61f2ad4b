"""One batched trial: ``num_envs`` instances of a single-agent Gymnasium environment stepped side
by side, one Cogment message per tick for all of them (``EnvConfig.num_envs > 0``).

The sub-environments reset themselves when their episode ends, as
``gymnasium.vector.SyncVectorEnv`` does (``NEXT_STEP`` or ``SAME_STEP`` autoreset): a batched
trial does not end with an episode; episode boundaries travel in ``BatchedStep``. Given the same
seeds, a client sees exactly what a ``SyncVectorEnv`` of the same envs would return.

A running trial also takes reset ticks (``ActionPayload.reset``, gymnasium.vector's
``reset_mask``): the named sub-environments are reset with their own seed and options, the
others are neither stepped nor reset and keep their state (a pending NEXT_STEP autoreset too),
as ``SyncVectorEnv.reset(options={"reset_mask": ...})`` leaves them.

Knows nothing of streams; the servicer drives it like a :class:`~cogment_gym.adapters.gym_trial.GymTrial`.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.adapters.gym_trial import StepResult, reset_arguments, single_actor_name
from cogment_gym.adapters.hosting import Implementation
from cogment_gym.adapters.pool import Instance, PooledTrial
from cogment_gym.codec.payloads import ResetRequest, batched_pieces, config_resets, read_batched_action, vector_returns, write_batched
from cogment_gym.codec.wire import Pieces
from cogment_gym.errors import TrialSetupError

__all__ = ["MAX_BATCH", "BatchedGymTrial"]

# More sub-environments than this in one trial is almost surely a mistake (and one message).
MAX_BATCH = 4096


class BatchedGymTrial(PooledTrial):
    """``num_envs`` env instances of one implementation playing one trial for one actor, all on
    one thread (one hand-over per tick for all of them), pooled together."""

    impl: Implementation

    def __init__(self, impl: Implementation, actors: Sequence[common_pb2.TrialActor], config: env_pb2.EnvConfig) -> None:
        super().__init__()
        self.actor_name = single_actor_name(impl, actors)
        n = config.num_envs
        if not 0 < n <= MAX_BATCH:
            raise TrialSetupError(f"a batched trial needs 1 <= num_envs <= {MAX_BATCH}, got {n}")
        if config.render_mode:
            raise TrialSetupError(
                f"batched trials do not render (render_mode={config.render_mode!r}); run one env per trial (num_envs=0) to render"
            )
        if config.autoreset_mode not in (env_pb2.AUTORESET_MODE_NEXT_STEP, env_pb2.AUTORESET_MODE_SAME_STEP):
            raise TrialSetupError(f"unknown autoreset_mode {config.autoreset_mode}; expected NEXT_STEP (0) or SAME_STEP (1)")
        self.impl = impl
        self.num_envs = n
        self.same_step = config.autoreset_mode == env_pb2.AUTORESET_MODE_SAME_STEP
        self.send_reward_messages = not config.omit_reward_messages
        seed, options = reset_arguments(config)
        # The first reset of each sub-environment: seed + i and the options, or EnvConfig.resets.
        self.resets = config_resets(config, n, seed, options)
        if self.same_step and any(r is None for r in self.resets):
            raise TrialSetupError("EnvConfig.resets: a deferred first reset needs AUTORESET_MODE_NEXT_STEP")
        self.single_observation_space = impl.observation_space
        self.single_action_space = impl.action_space
        self.observation_space = batch_space(impl.observation_space, n)
        self.action_space = batch_space(impl.action_space, n)
        self._obs: Any = create_empty_array(impl.observation_space, n=n, fn=np.zeros)
        self._autoreset = np.zeros(n, dtype=np.bool_)
        self._env_obs: list[Any] = [None] * n  # each sub-env's last observation (reset ticks keep them)
        # The n envs are kept together for the client's key between its trials (sub-environment
        # i gets the same instance back, so unseeded resets continue their generators).
        self.render_mode = None
        self.instance_key = config.instance_key
        self.count = n
        self.envs: list[gym.Env[Any, Any]] = []

    def _opened(self, instance: Instance) -> None:
        self.envs = instance.envs

    def _payload(
        self, obs: list[Any], rewards: np.ndarray, terminations: np.ndarray, truncations: np.ndarray,
        infos: list[dict[str, Any]], ends: list[tuple[int, Any, dict[str, Any]]], reset_indices: Sequence[int] = (),
    ) -> bytes | Pieces:
        """The tick's payload: pieces holding the sub-environments' own arrays where they can
        (codec.wire; the servicer joins them before the envs can change them), else its bytes."""
        pieces = batched_pieces(self.single_observation_space, obs, rewards, terminations, truncations, infos, ends, reset_indices)
        if pieces is not None:
            return pieces
        batched = concatenate(self.single_observation_space, obs, self._obs)
        return write_batched(
            self.observation_space, self.single_observation_space, batched, rewards, terminations, truncations, infos, ends,
            reset_indices,
        )

    def reset(self) -> bytes | Pieces:
        n = self.num_envs
        obs, infos = [], []
        self._autoreset[:] = False
        for i, (env, reset) in enumerate(zip(self.envs, self.resets)):
            info: dict[str, Any]
            if reset is None:  # deferred: resets at the first step, as a pending NEXT_STEP autoreset
                single = self.single_observation_space
                o, info = next(iterate(batch_space(single, 1), create_empty_array(single, n=1, fn=np.zeros))), {}
                self._autoreset[i] = True
            else:
                o, info = env.reset(seed=reset[0], options=reset[1])
            obs.append(o)
            infos.append(info)
        self._env_obs = obs
        zeros = np.zeros(n, dtype=np.bool_)
        return self._payload(obs, np.zeros(n, dtype=np.float64), zeros, zeros, infos, [])

    def _reset_tick(self, request: ResetRequest, force_truncate: bool) -> StepResult:
        """Reset the requested sub-environments only (SyncVectorEnv.reset with a reset_mask)."""
        n = self.num_envs
        obs = list(self._env_obs)
        infos: list[dict[str, Any]] = [{} for _ in range(n)]
        for i, (seed, options) in request.resets.items():
            obs[i], infos[i] = self.envs[i].reset(seed=seed, options=options)
            self._autoreset[i] = False
        self._env_obs = obs
        terminations = np.zeros(n, dtype=np.bool_)
        truncations = np.zeros(n, dtype=np.bool_)
        if force_truncate:  # the trial ends here: a time limit for all
            truncations[:] = True
        payload = self._payload(obs, np.zeros(n, dtype=np.float64), terminations, truncations, infos, [], list(request.resets))
        return StepResult(payload, 0.0, False, False)

    def decode_action(self, content: bytes) -> Any:
        """Decode and check the batched action (or a reset tick's ResetRequest); raises
        SpaceMismatchError / MalformedMessageError."""
        return read_batched_action(content, self.action_space, f"action of actor {self.actor_name!r}", self.num_envs)

    def step(self, action: Any, force_truncate: bool = False) -> StepResult:
        if type(action) is ResetRequest:
            return self._reset_tick(action, force_truncate)
        n = self.num_envs
        rewards = np.zeros(n, dtype=np.float64)
        terminations = np.zeros(n, dtype=np.bool_)
        truncations = np.zeros(n, dtype=np.bool_)
        obs: list[Any] = []
        infos: list[dict[str, Any]] = []
        ends: list[tuple[int, Any, dict[str, Any]]] = []
        same_step, autoreset = self.same_step, self._autoreset
        add_obs, add_info = obs.append, infos.append
        # Once per sub-env and tick: the plain loop (no enumerate/zip tuples), numpy scalars
        # written once per array below.
        reward_list: list[float] = [0.0] * n
        terminated_list: list[bool] = [False] * n
        truncated_list: list[bool] = [False] * n
        for i, a in enumerate(iterate(self.action_space, action)):
            env = self.envs[i]
            if autoreset[i]:  # NEXT_STEP: this step resets; its action is ignored
                o, info = env.reset()
            else:
                o, reward, terminated, truncated, info = env.step(a)
                if not (type(reward) is float and type(terminated) is bool and type(truncated) is bool):  # else: as they are
                    reward, terminated, truncated = vector_returns(reward, terminated, truncated, f"sub-environment {i}")
                reward_list[i], terminated_list[i], truncated_list[i] = reward, terminated, truncated
                if same_step and (terminated or truncated):
                    ends.append((i, o, info))
                    o, info = env.reset()
            add_obs(o)
            add_info(info)
        rewards[:] = reward_list
        terminations[:] = terminated_list
        truncations[:] = truncated_list
        if force_truncate:  # the trial ends here (max_steps, an end request): a time limit for all
            truncations |= ~terminations
        if not same_step:
            self._autoreset = terminations | truncations
        self._env_obs = obs
        payload = self._payload(obs, rewards, terminations, truncations, infos, ends)
        return StepResult(payload, float(rewards.sum()), False, False)
