"""Stable-Baselines3 over Cogment trials: :class:`CogmentVecEnv`, an SB3 ``VecEnv``.

Needs the ``sb3`` extra (``pip install 'cogment-gym[sb3]'``). The sub-environments are those
of a :class:`~cogment_gym.envs.CogmentVectorEnv` (batched trials by default where they can run,
``envs_per_trial=1`` for one trial per sub-env) in ``SAME_STEP`` autoreset mode, which is SB3's
convention: when an episode ends, ``step_wait`` returns the first observation of the next
one, and the episode's last observation is in ``infos[i]["terminal_observation"]``.

Example:
    >>> from stable_baselines3 import PPO
    >>> from stable_baselines3.common.vec_env import VecMonitor
    >>> from cogment_gym.integrations.sb3 import CogmentVecEnv
    >>> venv = VecMonitor(CogmentVecEnv("CartPole-v1", num_envs=8))  # or environment="grpc://..."
    >>> model = PPO("MlpPolicy", venv, n_steps=32, seed=0).learn(256)
    >>> venv.close()
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from cogment_gym.envs.vector import CogmentVectorEnv
from cogment_gym.extras import missing_extra

try:
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn
except ImportError as err:
    raise missing_extra("stable_baselines3", "cogment_gym.integrations.sb3", err) from err

__all__ = ["CogmentVecEnv"]


class CogmentVecEnv(VecEnv):
    """An SB3 ``VecEnv`` whose sub-environments are Cogment trials.

    Args:
        env: a Gymnasium id or env factory (embedded default), or an existing
            :class:`~cogment_gym.envs.CogmentVectorEnv` in ``SAME_STEP`` autoreset mode to wrap
            (closed with this one).
        num_envs: number of sub-environments (ignored when wrapping).
        **kwargs: the other arguments of :class:`~cogment_gym.envs.CogmentVectorEnv`
            (``environment=``, ``orchestrator=``, ``max_steps=``, ``render_mode=``, ``security=``, ...).

    ``seed(s)`` and ``set_options(...)`` apply to the next ``reset()`` only, as in SB3.
    ``get_attr`` knows what :meth:`CogmentVectorEnv.get_attr` knows; ``env_method`` supports
    ``"render"`` (the last frames) and ``"get_wrapper_attr"``: the envs live in their service.
    """

    def __init__(self, env: Any = None, num_envs: int = 1, **kwargs: Any) -> None:
        if isinstance(env, CogmentVectorEnv):
            if kwargs:
                raise TypeError(f"wrapping an existing CogmentVectorEnv takes no other arguments, got {sorted(kwargs)}")
            if env.autoreset_mode is not AutoresetMode.SAME_STEP:
                raise ValueError(
                    "SB3 resets sub-environments in the step that ends their episode: create the CogmentVectorEnv "
                    f"with autoreset_mode=AutoresetMode.SAME_STEP (it has {env.autoreset_mode})"
                )
            venv = env
        else:
            kwargs["autoreset_mode"] = AutoresetMode.SAME_STEP
            venv = CogmentVectorEnv(env, num_envs, **kwargs)
        self.venv = venv
        try:
            super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        except BaseException:
            venv.close()
            raise
        self.metadata.update({k: v for k, v in venv.metadata.items() if k not in ("render_modes", "autoreset_mode")})
        self._actions: Any = None

    # ------------------------------------------------------------------ VecEnv API

    def reset(self) -> VecEnvObs:
        options = [dict(o) if o else None for o in self._options]
        obs, infos = self.venv.reset(seed=list(self._seeds), options=options)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [_info_of(infos, i) for i in range(self.num_envs)]
        return obs  # type: ignore[no-any-return]

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminations, truncations, infos = self.venv.step_wait()
        dones = terminations | truncations
        final = infos.get("_final_obs")
        final_obs = infos.get("final_obs")
        final_info = infos.get("final_info", {})
        step_infos: list[dict[str, Any]] = []
        for i in range(self.num_envs):
            if final is not None and final[i]:
                info = _info_of(final_info, i)
                info["terminal_observation"] = final_obs[i]  # type: ignore[index]
                self.reset_infos[i] = _info_of(infos, i, skip=("final_obs", "final_info"))
            else:
                info = _info_of(infos, i)
            info["TimeLimit.truncated"] = bool(truncations[i] and not terminations[i])
            step_infos.append(info)
        return obs, rewards.astype(np.float32), dones, step_infos

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return list(frames) if frames is not None else [None] * self.num_envs

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        values = self.venv.get_attr(attr_name)
        return [values[i] for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"cannot set {attr_name!r} on sub-environments that live in their environment service")

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        targets = list(self._get_indices(indices))
        if method_name == "render":
            frames = self.get_images()
            return [frames[i] for i in targets]
        if method_name == "get_wrapper_attr" and len(method_args) == 1:
            return self.get_attr(method_args[0], indices=targets)
        raise AttributeError(f"cannot call {method_name!r} on sub-environments that live in their environment service")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        # No local wrapper around a sub-environment: wrap this VecEnv (e.g. VecMonitor) instead.
        return [False for _ in self._get_indices(indices)]


def _info_of(infos: dict[str, Any], i: int, skip: Iterable[str] = ()) -> dict[str, Any]:
    """Sub-environment ``i``'s info out of Gymnasium's merged infos (values masked by ``_key``)."""
    skipped = set(skip)
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key in skipped or (isinstance(key, str) and key.startswith("_") and key[1:] in infos):
            continue
        mask = infos.get(f"_{key}")
        if mask is not None and not mask[i]:
            continue
        if isinstance(value, dict):
            out[key] = _info_of(value, i)
        else:
            item = value[i]
            out[key] = item.item() if isinstance(item, np.generic) else item
    return out
