"""Batched trials: ``CogmentVectorEnv(envs_per_trial=K)`` runs K sub-environments per trial, one
message per tick, auto-resetting inside the trial.

Differential tests against gymnasium's SyncVectorEnv with the same seeds and actions: a batched
trial holds its K env instances for its whole life, so everything must match exactly, seeded or
not, embedded or served, in both autoreset modes.
"""

from __future__ import annotations

from typing import Any, Callable

import grpc
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import decode, encode, tensor_to_array
from cogment_gym.codec.payloads import reset_action_payload
from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.errors import EnvironmentFailedError, SpaceMismatchError
from cogment_gym.protocol import Failure
from cogment_gym.testing import RaisingEnv
from tests.adapters._raw import RawTrial, channel_to, run
from tests.envs.test_vector import MODES, TICK_ID, assert_vector_match, check_vector_env, sync_of


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("num_envs", "per_trial", "seeds"), [(4, 4, [3, None, [5, 6, 7, 8]]), (6, 2, [3, None, [5, 6, None, None, 9, 10]])])
def test_cartpole_matches_sync_vector_env(
    mode: AutoresetMode, num_envs: int, per_trial: int, seeds: list[Any], closing: Callable[[Any], Any]
) -> None:
    bridged = closing(CogmentVectorEnv("CartPole-v1", num_envs=num_envs, envs_per_trial=per_trial, autoreset_mode=mode))
    direct = closing(sync_of("CartPole-v1", num_envs, mode))
    ended = assert_vector_match(bridged, direct, steps=150, seeds=seeds)
    assert ended >= 20, "random CartPole episodes should have ended (and autoreset) many times"


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_varying_infos_time_limits_and_options_match(mode: AutoresetMode, closing: Callable[[Any], Any]) -> None:
    bridged = closing(CogmentVectorEnv(TICK_ID, num_envs=4, envs_per_trial=2, autoreset_mode=mode))
    direct = closing(sync_of(TICK_ID, 4, mode))
    ended = assert_vector_match(bridged, direct, steps=40, seeds=[0, None], options={"extra": 3})
    assert ended >= 10


class DictEnv(gym.Env[dict[str, Any], tuple[Any, ...]]):
    """Dict observations, Tuple actions: batched values that are not plain arrays."""

    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = spaces.Dict({"pos": spaces.Box(-5.0, 5.0, (2,), np.float64), "mode": spaces.Discrete(3)})
        self.action_space = spaces.Tuple((spaces.Discrete(3), spaces.Box(-1.0, 1.0, (1,), np.float32)))
        self._pos = np.zeros(2)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-1, 1, 2)
        self._t = 0
        return {"pos": self._pos.copy(), "mode": 0}, {"start": self._pos[0]}

    def step(self, action: tuple[Any, ...]) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        move, scale = action
        self._t += 1
        self._pos = np.clip(self._pos + (int(move) - 1) * float(scale[0]), -5, 5)
        return {"pos": self._pos.copy(), "mode": int(move)}, float(self._pos.sum()), bool(abs(self._pos).max() >= 5), self._t >= 7, {}


gym.register("cogment_gym_tests/Dict-v0", entry_point=DictEnv)


@pytest.mark.parametrize("num_envs", [2, 4])
def test_composite_spaces_are_split_and_joined_exactly(num_envs: int, closing: Callable[[Any], Any]) -> None:
    """Dict observations and Tuple actions: the generic split/join path when several trials run."""
    bridged = closing(CogmentVectorEnv("cogment_gym_tests/Dict-v0", num_envs=num_envs, envs_per_trial=2))
    direct = closing(sync_of("cogment_gym_tests/Dict-v0", num_envs, AutoresetMode.NEXT_STEP))
    assert_vector_match(bridged, direct, steps=20, seeds=[1, None])


def test_served_in_another_process_matches_unseeded_too(service_process: Callable[..., Any], closing: Callable[[Any], Any]) -> None:
    """A batched trial keeps its env instances: unseeded resets continue the same generators as
    SyncVectorEnv's (one episode per trial can not promise that against a pooled service)."""
    service = service_process("CartPole-v1")
    bridged = closing(CogmentVectorEnv(environment=service.endpoint, num_envs=8, envs_per_trial=8, autoreset_mode=AutoresetMode.SAME_STEP))
    direct = closing(sync_of("CartPole-v1", 8, AutoresetMode.SAME_STEP))
    assert_vector_match(bridged, direct, steps=120, seeds=[7])


class InPlaceEnv(gym.Env[np.ndarray, np.int64]):
    """Returns one observation buffer, rewritten in place at every reset and step (as envs that
    render into a frame buffer do): a served batched trial sends the arrays themselves as pieces
    of the message (codec.wire), and must send what each held at its step."""

    metadata = {"render_modes": []}

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = spaces.Box(0, 255, (96, 96, 3), np.uint8)  # 3 of them: over codec.wire.LARGE_FIELD
        self.action_space = spaces.Discrete(4)
        self._frame = np.zeros((96, 96, 3), np.uint8)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        self._frame[:] = self.np_random.integers(0, 256, self._frame.shape, dtype=np.uint8)
        return self._frame, {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        self._frame[:] = (self._frame.astype(np.int64) * 5 + int(action) + self._t) % 256
        return self._frame, float(action), bool(self._frame[0, 0, 0] < 20), self._t >= 9, {}


gym.register("cogment_gym_tests/InPlace-v0", entry_point=InPlaceEnv)


@pytest.mark.filterwarnings("ignore:.*share an object:UserWarning")  # what this env does, on purpose
@pytest.mark.parametrize("where", ["served", "embedded"])  # gRPC gets the bytes, a LocalCall the message
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_envs_rewriting_their_observation_buffer_match(
    mode: AutoresetMode, where: str, served: Callable[..., Any], closing: Callable[[Any], Any]
) -> None:
    if where == "served":
        endpoint = served("cogment_gym_tests/InPlace-v0").endpoint
        bridged = closing(CogmentVectorEnv(environment=endpoint, num_envs=6, envs_per_trial=3, autoreset_mode=mode))
    else:
        bridged = closing(CogmentVectorEnv("cogment_gym_tests/InPlace-v0", num_envs=6, envs_per_trial=3, autoreset_mode=mode))
    direct = closing(sync_of("cogment_gym_tests/InPlace-v0", 6, mode))
    ended = assert_vector_match(bridged, direct, steps=60, seeds=[11, None])
    assert ended >= 10


def test_batched_vector_env_checks(closing: Callable[[Any], Any]) -> None:
    check_vector_env(closing(CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=4)))
    check_vector_env(closing(CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=2, autoreset_mode=AutoresetMode.SAME_STEP)))


def test_attributes_and_reset_masks_of_whole_and_part_trials(closing: Callable[[Any], Any]) -> None:
    envs = closing(CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=2))
    assert envs.envs_per_trial == 2 and envs.observation_space.shape == (4, 4)
    assert len(envs.get_attr("implementation")) == 4
    first, _ = envs.reset(seed=0)
    assert first.flags.writeable, "like SyncVectorEnv's, batched observations are the caller's to modify"
    envs.step(np.zeros(4, np.int64))
    moved, _, _, _, _ = envs.step(np.zeros(4, np.int64))
    obs, _ = envs.reset(seed=0, options={"reset_mask": np.array([False, False, True, True])})
    np.testing.assert_array_equal(obs[:2], moved[:2])  # kept
    np.testing.assert_array_equal(obs[2:], first[2:])  # reset with seeds 2, 3 again
    part, _ = envs.reset(seed=[0, 9, 9, 9], options={"reset_mask": np.array([True, False, False, False])})  # a reset tick
    np.testing.assert_array_equal(part[1:], obs[1:])  # kept, the other sub-env of its trial too
    np.testing.assert_array_equal(part[0], first[0])


def test_bad_arguments_are_refused_clearly(closing: Callable[[Any], Any]) -> None:
    with pytest.raises(ValueError, match="envs_per_trial must divide num_envs: got num_envs=5, envs_per_trial=2"):
        CogmentVectorEnv("CartPole-v1", num_envs=5, envs_per_trial=2)
    with pytest.raises(ValueError, match="envs_per_trial must be an int >= 1, got 0"):
        CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=0)
    with pytest.raises(ValueError, match="do not render; got render_mode='rgb_array'"):
        CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="max_steps=10 would cut all of them at once"):
        CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=2, max_steps=10)
    envs = closing(CogmentVectorEnv("CartPole-v1", num_envs=4, envs_per_trial=2))
    envs.reset(seed=[1, 5, 2, 3])  # any seeds, any options per sub-env (EnvConfig.resets)
    envs.reset(options=[None, None, None, {"a": 1}])
    with pytest.raises(ValueError, match=r"options must be a dict, None, or a list of 4 dicts"):
        envs.reset(options=[None, None, {"a": 1}])
    with pytest.raises(ValueError, match=r"seeds must be non-negative ints or None, got -1"):
        envs.reset(seed=[1, -1, 2, 3])
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected actions of shape \(4,\) \(4 sub-environments\), got shape \(3,\)"):
        envs.step(np.zeros(3, np.int64))
    with pytest.raises(SpaceMismatchError, match=r"actions\[2\] does not fit Discrete\(2\): expected an integer in \[0, 2\), got 5"):
        envs.step(np.array([0, 1, 5, 0]))  # 5 is not in Discrete(2): nothing is sent
    envs.step(np.zeros(4, np.int64))  # still usable


def test_env_failure_names_the_batched_trial_and_reset_recovers(served: Callable[..., Any], closing: Callable[[Any], Any]) -> None:
    server = served({"ok": "CartPole-v1", "raising": lambda: RaisingEnv(raise_on_step=3)})
    envs = closing(CogmentVectorEnv(environment=server.endpoint, implementation="raising", num_envs=4, envs_per_trial=2))
    envs.reset(seed=0)
    actions = np.zeros(4, np.int64)
    envs.step(actions)
    envs.step(actions)
    with pytest.raises(EnvironmentFailedError, match=r"sub-environments 0..1 \(batched trial 0\).*injected fault \(in step 3\)"):
        envs.step(actions)
    envs.reset(seed=0)  # every trial was ended; new ones start
    envs.step(actions)


def _cartpole_spaces(num_envs: int) -> tuple[spaces.Space[Any], spaces.Space[Any]]:
    """The observation and action spaces of a batched CartPole trial of ``num_envs``."""
    single = gym.make("CartPole-v1")
    return batch_space(single.observation_space, num_envs), batch_space(single.action_space, num_envs)


def test_one_message_per_tick_carries_every_sub_env(served: Callable[..., Any]) -> None:
    """At the wire: one ObservationSet per tick, one ObservationPayload with a batched value and
    per-sub-env rewards, flags and infos; no Cogment Reward message when the sum is 0."""
    server = served("CartPole-v1")
    obs_space, act_space = _cartpole_spaces(3)

    async def main() -> None:
        async with channel_to(server.endpoint) as channel:
            trial = RawTrial(channel, "batched")
            config = env_pb2.EnvConfig(seed=4, num_envs=3, omit_reward_messages=True)
            first = await trial.start(config=common_pb2.SerializedMessage(content=config.SerializeToString()))
            payload = env_pb2.ObservationPayload.FromString(first.observations[0])
            direct = [gym.make("CartPole-v1") for _ in range(3)]
            expected = np.stack([env.reset(seed=4 + i)[0] for i, env in enumerate(direct)])
            np.testing.assert_array_equal(decode(obs_space, payload.value, "obs"), expected)
            assert len(payload.batch.infos) == 0  # CartPole has no info: none is sent
            for tick in range(3):
                actions = np.array([1, 0, 1])
                await trial.act(tick, env_pb2.ActionPayload(value=encode(act_space, actions, "a")).SerializeToString())
                obs_set = await trial.recv_data("observation_set")  # no reward message in between
                assert obs_set.tick_id == tick + 1 and len(obs_set.observations) == 1
                payload = env_pb2.ObservationPayload.FromString(obs_set.observations[0])
                steps = [env.step(int(a)) for env, a in zip(direct, actions)]
                np.testing.assert_array_equal(decode(obs_space, payload.value, "obs"), np.stack([s[0] for s in steps]))
                np.testing.assert_array_equal(tensor_to_array(payload.batch.rewards), [1.0, 1.0, 1.0])
                assert payload.reward == 3.0
                assert not tensor_to_array(payload.batch.terminations).any()
            assert await trial.end() == grpc.StatusCode.OK

    run(main())


def test_a_reset_tick_at_the_wire(served: Callable[..., Any]) -> None:
    """EnvConfig.resets seeds each sub-env; an ActionPayload.reset resets the named sub-envs only
    (no step: rewards 0, the others' observations unchanged, BatchedStep.reset_indices set); a
    malformed one fails the trial in-band as an invalid action."""
    server = served("CartPole-v1")
    obs_space, act_space = _cartpole_spaces(3)

    async def main() -> None:
        async with channel_to(server.endpoint) as channel:
            trial = RawTrial(channel, "reset-tick")
            config = env_pb2.EnvConfig(num_envs=3, omit_reward_messages=True, resets=[
                env_pb2.SubEnvReset(seed=9), env_pb2.SubEnvReset(), env_pb2.SubEnvReset(seed=2),
            ])
            first = await trial.start(config=common_pb2.SerializedMessage(content=config.SerializeToString()))
            obs = decode(obs_space, env_pb2.ObservationPayload.FromString(first.observations[0]).value, "obs")
            direct = [gym.make("CartPole-v1") for _ in range(3)]
            np.testing.assert_array_equal(obs[0], direct[0].reset(seed=9)[0])
            np.testing.assert_array_equal(obs[2], direct[2].reset(seed=2)[0])
            await trial.act(0, env_pb2.ActionPayload(value=encode(act_space, np.array([1, 1, 1]), "a")).SerializeToString())
            stepped = decode(obs_space, env_pb2.ObservationPayload.FromString((await trial.recv_data("observation_set")).observations[0]).value, "obs")
            await trial.act(1, reset_action_payload({1: (5, None), 2: (3, {"low": 0.0, "high": 0.01})}))
            obs_set = await trial.recv_data("observation_set")
            assert obs_set.tick_id == 2
            payload = env_pb2.ObservationPayload.FromString(obs_set.observations[0])
            assert list(payload.batch.reset_indices) == [1, 2] and payload.reward == 0.0
            obs = decode(obs_space, payload.value, "obs")
            np.testing.assert_array_equal(obs[0], stepped[0])
            np.testing.assert_array_equal(obs[1], direct[1].reset(seed=5)[0])
            np.testing.assert_array_equal(obs[2], direct[2].reset(seed=3, options={"low": 0.0, "high": 0.01})[0])
            assert not tensor_to_array(payload.batch.rewards).any() and not tensor_to_array(payload.batch.truncations).any()
            bad = env_pb2.ActionPayload()
            bad.reset.resets.add(index=3)
            await trial.act(2, bad.SerializeToString())
            msg = await trial.recv()
            failure = Failure.from_details(msg.details)
            assert failure.kind == "invalid_action" and "< 3; got [3]" in failure.message, failure
            assert await trial.expect_eof() == grpc.StatusCode.OK

    run(main())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (env_pb2.EnvConfig(num_envs=2, render_mode="rgb_array"), "batched trials do not render"),
        (env_pb2.EnvConfig(num_envs=5000), "a batched trial needs 1 <= num_envs <= 4096, got 5000"),
        (env_pb2.EnvConfig(num_envs=2, autoreset_mode=7), "unknown autoreset_mode 7"),  # type: ignore[arg-type]
        (env_pb2.EnvConfig(num_envs=3, resets=[env_pb2.SubEnvReset(seed=1)] * 2), "resets must hold num_envs=3 entries, got 2"),
        (
            env_pb2.EnvConfig(num_envs=2, autoreset_mode=env_pb2.AUTORESET_MODE_SAME_STEP, resets=[env_pb2.SubEnvReset(), env_pb2.SubEnvReset(deferred=True)]),
            "a deferred first reset needs AUTORESET_MODE_NEXT_STEP",
        ),
    ],
)
def test_bad_batched_configs_are_refused_in_band(config: env_pb2.EnvConfig, message: str, served: Callable[..., Any]) -> None:
    server = served("CartPole-v1")
    async def main() -> None:
        async with channel_to(server.endpoint) as channel:
            trial = RawTrial(channel, "bad")
            await trial.init(config=common_pb2.SerializedMessage(content=config.SerializeToString()))
            msg = await trial.recv()
            failure = Failure.from_details(msg.details)
            assert failure.kind == "bad_request" and message in failure.message, failure
            assert await trial.expect_eof() == grpc.StatusCode.OK

    run(main())


def test_multi_agent_envs_refuse_batched_trials(served: Callable[..., Any]) -> None:
    pytest.importorskip("pettingzoo")
    server = served("pettingzoo.classic.tictactoe_v3")
    async def main() -> None:
        async with channel_to(server.endpoint) as channel:
            trial = RawTrial(channel, "ma")
            config = env_pb2.EnvConfig(num_envs=2)
            await trial.init(
                config=common_pb2.SerializedMessage(content=config.SerializeToString()),
                actors=[("player_1", "player_1"), ("player_2", "player_2")],
            )
            failure = Failure.from_details((await trial.recv()).details)
            assert "is a multi-agent environment: batched trials (num_envs=2) need a single-agent one" in failure.message
            assert await trial.expect_eof() == grpc.StatusCode.OK

    run(main())
