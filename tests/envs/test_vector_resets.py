"""Resets on the default (batched) path are those of ``SyncVectorEnv``: any seed list (None
entries included), one options dict per sub-environment (``EnvConfig.resets``), and any
``options["reset_mask"]`` (a reset tick inside the running trial, ``ActionPayload.reset``: only
the masked sub-environments reset, the others keep their state and pending autoresets).

Differential: a CogmentVectorEnv made with no ``envs_per_trial`` and a gymnasium SyncVectorEnv
of the same env get the same resets and actions, and everything they return must be equal,
step after step, embedded and served, in both autoreset modes.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.envs.vector import BatchedVectorEnv
from cogment_gym.errors import EnvironmentFailedError
from cogment_gym.testing import assert_data_equal
from tests.envs.test_vector import MODES

N = 6


class DrawEnv(gym.Env[np.ndarray, np.int64]):
    """Everything depends on what reset was given: the observation holds a draw of the env's
    generator (the seed), the episode budget comes from ``options["extra"]``, the reset info names
    both; episodes end when the actions spend the budget (terminated) or at the TimeLimit.
    ``options["fail"]`` makes reset raise."""

    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 1000, (3,), np.int64)
        self.action_space = spaces.Discrete(3)
        self._t = self._budget = self._draw = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if (options or {}).get("fail"):
            raise RuntimeError("asked to fail")
        self._t = 0
        self._draw = int(self.np_random.integers(0, 1000))
        extra = (options or {}).get("extra", 0)
        self._budget = 3 + extra
        info: dict[str, Any] = {"draw": self._draw}
        if extra:
            info["extra"] = extra
        return np.array([0, self._budget, self._draw], np.int64), info

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        self._budget -= int(action)
        self._draw = int(self.np_random.integers(0, 1000))
        info: dict[str, Any] = {"t": self._t}
        if self._t % 2:
            info["odd"] = np.array([self._t], np.int32)
        obs = np.array([self._t, max(self._budget, 0), self._draw], np.int64)
        return obs, float(action) + 0.25, self._budget <= 0, False, info


gym.register("cogment_gym_tests/Draw-v0", entry_point=DrawEnv, max_episode_steps=5)
DRAW_ID = "cogment_gym_tests/Draw-v0"


def _sync(mode: AutoresetMode) -> SyncVectorEnv:
    return SyncVectorEnv([functools.partial(gym.make, DRAW_ID) for _ in range(N)], autoreset_mode=mode)


def _bridged(closing: Callable[[Any], Any], mode: AutoresetMode, where: str, served: Callable[..., Any], **kwargs: Any) -> CogmentVectorEnv:
    if where == "served":
        envs = CogmentVectorEnv(environment=served(DRAW_ID).endpoint, num_envs=N, autoreset_mode=mode, **kwargs)
    else:
        envs = CogmentVectorEnv(DRAW_ID, num_envs=N, autoreset_mode=mode, **kwargs)
    closing(envs)
    assert isinstance(envs, BatchedVectorEnv)
    return envs


def _reset_both(direct: SyncVectorEnv, bridged: CogmentVectorEnv, what: str, **kwargs: Any) -> None:
    options = kwargs.get("options")
    direct_kwargs = dict(kwargs)
    if isinstance(options, dict):  # SyncVectorEnv pops reset_mask out of the dict it is given
        direct_kwargs["options"] = dict(options)
    expected, got = direct.reset(**direct_kwargs), bridged.reset(**kwargs)
    assert_data_equal(expected[0], got[0], f"{what}: obs")
    assert_data_equal(expected[1], got[1], f"{what}: infos")


def _step_both(direct: SyncVectorEnv, bridged: CogmentVectorEnv, actions: np.ndarray, what: str) -> np.ndarray:
    expected, got = direct.step(actions), bridged.step(actions)
    for name, e, g in zip(("obs", "rewards", "terminations", "truncations", "infos"), expected, got):
        assert_data_equal(e, g, f"{what}: {name}")
    return np.asarray(got[2] | got[3])


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_any_seed_list_matches_sync_vector_env(mode: AutoresetMode, closing: Callable[[Any], Any], served: Callable[..., Any]) -> None:
    """Seeds that are not s, s+1, ...: arbitrary ints, and None entries that continue their
    sub-environment's generator (only comparable after a seeded reset)."""
    bridged = _bridged(closing, mode, "embedded", served)
    assert bridged.envs_per_trial == N, "the default: one batched trial"
    direct = closing(_sync(mode))
    rng = np.random.default_rng(1)
    for r, seed in enumerate([[41, 7, 7, 300, 2, 99], [None, 5, None, None, 0, 12], [None] * N, 17, [3, 2, 1, 0, 5, 4]]):
        _reset_both(direct, bridged, f"reset {r} (seed={seed})", seed=seed)
        for t in range(8):
            _step_both(direct, bridged, rng.integers(0, 3, N), f"reset {r}, step {t}")


@pytest.mark.parametrize("where", ["embedded", "served"])
def test_per_sub_env_options_match_masked_resets_of_sync_vector_env(
    where: str, closing: Callable[[Any], Any], served: Callable[..., Any]
) -> None:
    """One options dict per sub-environment (a list, as SB3's set_options gives): the same as
    resetting each sub-environment of a SyncVectorEnv with its own dict."""
    mode = AutoresetMode.NEXT_STEP
    bridged = _bridged(closing, mode, where, served)
    direct = closing(_sync(mode))
    seeds = [10, 20, 30, 40, 50, 60]
    per_env: list[Any] = [{"extra": 2}, None, {"extra": 0}, {}, {"extra": 5}, {"extra": 1}]
    got_obs, got_infos = bridged.reset(seed=seeds, options=per_env)
    direct.reset(seed=seeds)
    for i in range(N):
        mask = np.zeros(N, np.bool_)
        mask[i] = True
        obs, _ = direct.reset(seed=seeds, options={"reset_mask": mask, **(per_env[i] or {})})
    assert_data_equal(obs, got_obs, "obs")
    assert got_obs[:, 1].tolist() == [5, 3, 3, 3, 8, 4], "each sub-environment got its own options"
    assert sorted(got_infos) == ["_draw", "_extra", "draw", "extra"]
    assert_data_equal(got_obs[:, 2], got_infos["draw"], "infos['draw']")
    assert got_infos["_draw"].all() and got_infos["extra"][got_infos["_extra"]].tolist() == [2, 5, 1]
    assert got_infos["_extra"].tolist() == [True, False, False, False, True, True]
    rng = np.random.default_rng(2)
    for t in range(12):
        _step_both(direct, bridged, rng.integers(0, 3, N), f"step {t}")


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("where", "per_trial"), [("embedded", None), ("served", None), ("embedded", 2)], ids=["embedded", "served", "3-trials"])
def test_reset_mask_matches_sync_vector_env_step_after_step(
    mode: AutoresetMode, where: str, per_trial: int | None, closing: Callable[[Any], Any], served: Callable[..., Any]
) -> None:
    """Masked resets between steps, with seeds (ints and None) and options: only the masked
    sub-environments reset, the others keep their state, and a NEXT_STEP autoreset pending in
    an unmasked one still happens at the next step (one pending in a masked one is cleared)."""
    kwargs = {} if per_trial is None else {"envs_per_trial": per_trial}
    bridged = _bridged(closing, mode, where, served, **kwargs)
    direct = closing(_sync(mode))
    _reset_both(direct, bridged, "first reset", seed=100)
    rng = np.random.default_rng(3)
    masked_pending = unmasked_pending = whole_trials = 0
    done = np.zeros(N, np.bool_)
    for t in range(60):
        if t % 3 == 2:
            mask = rng.random(N) < 0.4
            mask[rng.integers(0, N)] = True
            if t % 9 == 2 and per_trial:
                mask[:2] = True  # sometimes a whole trial: a new trial, beside the reset ticks
                whole_trials += 1
            seeds: Any = [None if rng.random() < 0.3 else int(s) for s in rng.integers(0, 10_000, N)]
            options: dict[str, Any] = {"reset_mask": mask}
            if t % 2:
                options["extra"] = int(rng.integers(1, 4))
            masked_pending += int(np.sum(done & mask))
            unmasked_pending += int(np.sum(done & ~mask))
            _reset_both(direct, bridged, f"step {t}: reset mask {mask.astype(int).tolist()}", seed=seeds, options=options)
            done &= ~mask
        done = _step_both(direct, bridged, rng.integers(0, 3, N), f"step {t}")
    if mode is AutoresetMode.NEXT_STEP:
        assert masked_pending and unmasked_pending, "masks must have met sub-environments with a pending autoreset"
    assert whole_trials or not per_trial


def test_reset_mask_keeps_the_others_untouched(closing: Callable[[Any], Any]) -> None:
    """The sub-environments a reset_mask leaves out are neither stepped nor reset: their
    observation and generator go on as if the reset had not happened."""
    envs = closing(CogmentVectorEnv(DRAW_ID, num_envs=3))
    obs, _ = envs.reset(seed=[1, 2, 3])
    after, infos = envs.reset(seed=[None, 8, None], options={"reset_mask": np.array([False, True, False])})
    assert_data_equal(obs[[0, 2]], after[[0, 2]], "the unmasked sub-environments' observations")
    assert set(infos) == {"draw", "_draw"} and infos["_draw"].tolist() == [False, True, False]
    alone = gym.make(DRAW_ID)
    alone.reset(seed=1)
    stepped, *_ = envs.step(np.array([0, 0, 0]))
    assert_data_equal(alone.step(np.int64(0))[0], stepped[0], "sub-environment 0 after the masked reset")


def test_a_reset_mask_after_a_trial_ended_from_outside(served: Callable[..., Any], closing: Callable[[Any], Any]) -> None:
    """NEXT_STEP: a batched trial ended by a TerminateTrial cuts its episodes, and each of its
    sub-environments is to reset at the next step. A reset_mask then resets the masked ones now
    and leaves the others' reset to the next step (SubEnvReset.deferred in the new trial's
    config), as SyncVectorEnv does for sub-envs whose autoreset is pending."""
    import grpc

    from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
    from cogment_gym.orchestrator.server import start_orchestrator

    with start_orchestrator() as orchestrator:
        envs = closing(CogmentVectorEnv(
            orchestrator=orchestrator.lifecycle_endpoint, environment=served(DRAW_ID).endpoint, num_envs=3, envs_per_trial=3,
        ))
        direct = [gym.make(DRAW_ID) for _ in range(3)]
        obs, _ = envs.reset(seed=[1, 2, 3])
        for i in range(3):
            assert_data_equal(direct[i].reset(seed=1 + i)[0], obs[i], f"reset: obs[{i}]")
        envs.step(np.zeros(3, np.int64))
        for env in direct:
            env.step(np.int64(0))
        with grpc.insecure_channel(orchestrator.lifecycle_endpoint.removeprefix("grpc://")) as channel:
            stub = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel)
            running = [t.trial_id for t in stub.GetTrialInfo(orchestrator_pb2.TrialInfoRequest(), timeout=10).trial
                       if t.state == common_pb2.RUNNING]
            assert len(running) == 1
            stub.TerminateTrial(orchestrator_pb2.TerminateTrialRequest(hard_termination=False), metadata=(("trial-id", running[0]),), timeout=10)
        final, _, terminations, truncations, _ = envs.step(np.zeros(3, np.int64))
        assert truncations.all() and not terminations.any(), "the trial's end cut every episode"
        for i, env in enumerate(direct):
            assert_data_equal(env.step(np.int64(0))[0], final[i], f"last step: obs[{i}]")

        obs, infos = envs.reset(seed=[None, 9, None], options={"reset_mask": np.array([False, True, False]), "extra": 2})
        first, first_info = direct[1].reset(seed=9, options={"extra": 2})
        assert_data_equal(first, obs[1], "the masked sub-env, reset")
        assert_data_equal(final[[0, 2]], obs[[0, 2]], "the others keep their last observations")
        assert infos["_draw"].tolist() == [False, True, False] and infos["extra"][1] == 2

        obs, rewards, terminations, truncations, infos = envs.step(np.array([1, 1, 1]))
        step = direct[1].step(np.int64(1))
        resets = [direct[0].reset(), direct[2].reset()]  # at this step: their generators go on
        assert_data_equal(np.stack([resets[0][0], step[0], resets[1][0]]), obs, "next step: obs")
        assert_data_equal(np.array([0.0, step[1], 0.0]), rewards, "next step: rewards")
        assert not (terminations | truncations).any()
        assert_data_equal(np.array([resets[0][1]["draw"], 0, resets[1][1]["draw"]]), infos["draw"], "next step: reset infos")
        assert infos["_t"].tolist() == [False, True, False]
        envs.close()  # before its orchestrator stops


@pytest.mark.parametrize("where", ["embedded", "served"])
def test_an_env_failing_in_a_reset_tick_names_its_trial_and_reset_recovers(
    where: str, closing: Callable[[Any], Any], served: Callable[..., Any]
) -> None:
    envs = _bridged(closing, AutoresetMode.NEXT_STEP, where, served, envs_per_trial=3)
    envs.reset(seed=0)
    envs.step(np.zeros(N, np.int64))
    mask = np.array([False, False, False, False, True, False])
    with pytest.raises(EnvironmentFailedError, match=r"sub-environments 3..5 \(batched trial 1\).*asked to fail"):
        envs.reset(options={"reset_mask": mask, "fail": True})
    direct = closing(_sync(AutoresetMode.NEXT_STEP))
    _reset_both(direct, envs, "the reset after the failure", seed=[5, 4, 3, 2, 1, 0])
    _step_both(direct, envs, np.ones(N, np.int64), "and a step")
