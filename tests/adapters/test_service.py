"""Wire behaviour of ``cogment_gym.serve``: EnvironmentSP and EnvSpecSP driven by hand over gRPC.

Each test plays the Orchestrator's side of the stream message by message with the generated
stubs (see ``_raw.py``) and pins what the environment service sends, in which order, and when it
finishes the call (docs/protocol.md §1).
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any, Iterator

import grpc
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import cogment_gym
from cogment_gym._proto.cogment.api import common_pb2, environment_pb2, environment_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.codec import space_from_proto, tensor_to_array
from cogment_gym.protocol import Failure
from cogment_gym.testing import COMPOSITE_ENV_ID, CompositeSpacesEnv, CountingEnv, RaisingEnv, StepCounter, assert_data_equal

from ._raw import END, HEARTBEAT, LAST, LAST_ACK, NORMAL, WAIT, Decoded, RawTrial, action_content, channel_to, env_config, run, spec_of

CARTPOLE = "CartPole-v1"
EnvIn = environment_pb2.EnvRunTrialInput


@pytest.fixture
def cartpole_server() -> Iterator[cogment_gym.EnvServer]:
    with cogment_gym.serve(CARTPOLE) as server:
        yield server


def _cartpole_spaces() -> tuple[spaces.Space[Any], spaces.Space[Any]]:
    env = gym.make(CARTPOLE)
    return env.observation_space, env.action_space


async def _until_observation(trial: RawTrial) -> tuple[list[Any], environment_pb2.ObservationSet]:
    """Messages before the next ObservationSet (rewards, LAST), and that set."""
    before = []
    while True:
        msg = await trial.recv()
        if msg.state == NORMAL and msg.WhichOneof("data") == "observation_set":
            return before, msg.observation_set
        before.append(msg)


def _failure(msg: Any) -> Failure:
    assert msg.state == END, f"expected END, got {msg}"
    assert msg.details, "END without details"
    return Failure.from_details(msg.details)


# ---------------------------------------------------------------------------------------------
# Version, Status, EnvSpecSP


def test_version_and_status(cartpole_server: cogment_gym.EnvServer) -> None:
    async def main() -> None:
        async with channel_to(cartpole_server.endpoint) as channel:
            stub = environment_pb2_grpc.EnvironmentSPStub(channel)
            version = await stub.Version(common_pb2.VersionRequest(), timeout=WAIT)
            versions = {v.name: v.version for v in version.versions}
            assert versions["cogment_gym"] == cogment_gym.__version__
            assert versions["grpc"] == grpc.__version__
            assert versions["cogment"].startswith("2.")

            assert dict((await stub.Status(common_pb2.StatusRequest(), timeout=WAIT)).statuses) == {}
            assert dict((await stub.Status(common_pb2.StatusRequest(names=["*"]), timeout=WAIT)).statuses) == {"overall_load": "0"}

            trial = RawTrial(channel, "status-1")
            await trial.start(config=env_config(seed=0))
            reply = await stub.Status(common_pb2.StatusRequest(names=["overall_load"]), timeout=WAIT)
            assert dict(reply.statuses) == {"overall_load": "1"}
            assert await trial.end() == grpc.StatusCode.OK
            reply = await stub.Status(common_pb2.StatusRequest(names=["overall_load", "unknown"]), timeout=WAIT)
            assert dict(reply.statuses) == {"overall_load": "0"}

    run(main())


def test_several_implementations_on_one_server() -> None:
    counter = StepCounter()
    envs = {"cartpole": CARTPOLE, "lake": "FrozenLake-v1", "composite": COMPOSITE_ENV_ID, "counting": functools.partial(CountingEnv, counter)}

    async def main(server: cogment_gym.EnvServer) -> None:
        async with channel_to(server.endpoint) as channel:
            listed = await env_pb2_grpc.EnvSpecSPStub(channel).ListImplementations(env_pb2.ListImplementationsRequest(), timeout=WAIT)
            assert list(listed.implementations) == list(envs)

            lake = await spec_of(channel, "lake")
            assert (lake.implementation, lake.gym_id, lake.max_episode_steps) == ("lake", "FrozenLake-v1", 100)
            assert [(a.name, a.actor_class) for a in lake.actors] == [("player", "player")]
            assert space_from_proto(lake.actors[0].observation_space) == spaces.Discrete(16)
            assert space_from_proto(lake.actors[0].action_space) == spaces.Discrete(4)
            assert "rgb_array" in lake.render_modes and "ansi" in lake.render_modes

            composite = await spec_of(channel, "composite")
            reference = CompositeSpacesEnv()
            assert space_from_proto(composite.actors[0].observation_space) == reference.observation_space
            assert space_from_proto(composite.actors[0].action_space) == reference.action_space
            assert composite.gym_id == COMPOSITE_ENV_ID

            # An empty name means the first implementation, as for a trial's impl_name.
            assert (await spec_of(channel, "")).implementation == "cartpole"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await spec_of(channel, "nope")
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert "nope" in (err.value.details() or "") and "lake" in (err.value.details() or "")

            # Trials pick their implementation by impl_name.
            trial = RawTrial(channel, "impl-lake")
            first = await trial.start("lake", env_config(seed=0))
            assert Decoded(first.observations[0], spaces.Discrete(16)).obs == np.int64(0)
            assert await trial.end() == grpc.StatusCode.OK
            trial = RawTrial(channel, "impl-composite")
            first = await trial.start("composite", env_config(seed=4))
            direct_obs, direct_info = CompositeSpacesEnv().reset(seed=4)
            got = Decoded(first.observations[0], reference.observation_space)
            assert_data_equal(direct_obs, got.obs, "obs")
            assert_data_equal(direct_info, got.info, "info")
            assert await trial.end() == grpc.StatusCode.OK

    with cogment_gym.serve(envs) as server:
        run(main(server))


# ---------------------------------------------------------------------------------------------
# A trial from init to end


def test_init_then_action_observation_loop_matches_direct_env(cartpole_server: cogment_gym.EnvServer) -> None:
    obs_space, act_space = _cartpole_spaces()
    direct = gym.make(CARTPOLE)
    direct_obs, _ = direct.reset(seed=3)
    actions = [0, 1, 1, 0, 1, 0]

    async def main() -> None:
        async with channel_to(cartpole_server.endpoint) as channel:
            trial = RawTrial(channel, "loop-1")
            await trial.init(config=env_config(seed=3))
            init_output = await trial.recv_data("init_output")
            assert init_output == environment_pb2.EnvInitialOutput()
            first = await trial.recv_data("observation_set")
            assert first.tick_id == 0
            assert list(first.actors_map) == [0]
            assert len(first.observations) == 1
            assert first.timestamp > 0
            decoded = Decoded(first.observations[0], obs_space)
            assert_data_equal(direct_obs, decoded.obs, "obs")
            assert (decoded.reward, decoded.terminated, decoded.truncated, decoded.info) == (0.0, False, False, {})

            for tick, action in enumerate(actions):
                await trial.act(tick, action_content(act_space, action))
                before, obs_set = await _until_observation(trial)
                d_obs, d_rew, d_term, d_trunc, d_info = direct.step(action)
                assert not d_term and not d_trunc
                # The step's reward also goes to the actor as a Cogment Reward, before the observation.
                assert len(before) == 1 and before[0].WhichOneof("data") == "reward", before
                reward = before[0].reward
                assert (reward.tick_id, reward.receiver_name, reward.value) == (tick, "player", 1.0)
                assert [(s.sender_name, s.value, s.confidence) for s in reward.sources] == [("env", 1.0, 1.0)]
                assert obs_set.tick_id == tick + 1 and list(obs_set.actors_map) == [0]
                got = Decoded(obs_set.observations[0], obs_space)
                assert_data_equal(d_obs, got.obs, "obs")
                assert (got.reward, got.terminated, got.truncated, got.info) == (d_rew, False, False, d_info)
            assert await trial.end() == grpc.StatusCode.OK

    run(main())


def test_env_initiated_soft_end(cartpole_server: cogment_gym.EnvServer) -> None:
    obs_space, act_space = _cartpole_spaces()

    async def main() -> None:
        async with channel_to(cartpole_server.endpoint) as channel:
            trial = RawTrial(channel, "soft-env")
            await trial.start(config=env_config(seed=1))
            tick = 0
            while True:  # always pushing left: CartPole falls within a few dozen steps
                assert tick < 100, "CartPole did not terminate"
                await trial.act(tick, action_content(act_space, 0))
                before, obs_set = await _until_observation(trial)
                got = Decoded(obs_set.observations[0], obs_space)
                tick += 1
                if got.terminated:
                    break
                assert [m.WhichOneof("data") for m in before] == ["reward"]
            # LAST first, then the last reward, then the final observation, then LAST_ACK.
            assert [m.state for m in before] == [LAST, NORMAL]
            assert before[1].reward.tick_id == tick - 1
            assert obs_set.tick_id == tick and not got.truncated
            await trial.recv_state(LAST_ACK)
            # The env now waits for END: it still answers heartbeats, and sends nothing else.
            await trial.send_state(HEARTBEAT)
            await trial.recv_state(HEARTBEAT)
            assert await trial.end() == grpc.StatusCode.OK

    run(main())


def test_env_is_back_in_the_pool_before_the_final_observation_leaves() -> None:
    """So a client's next trial gets the same instance (and seed=None continues its generator)."""
    counter = StepCounter()
    act_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    async def main(server: cogment_gym.EnvServer) -> None:
        async with channel_to(server.endpoint) as channel:
            first = RawTrial(channel, "pool-1")
            await first.start(config=env_config(seed=0))
            await first.act(0, action_content(act_space, np.zeros(2, np.float32)))
            before, _ = await _until_observation(first)
            assert before[0].state == LAST
            await first.recv_state(LAST_ACK)
            # Trial 1 has not ended (no END yet), and trial 2 already reuses its env.
            second = RawTrial(channel, "pool-2")
            await second.start(config=env_config(seed=0))
            assert counter.instances == 1 and counter.resets == 2
            assert await first.end() == grpc.StatusCode.OK
            assert await second.end() == grpc.StatusCode.OK

    with cogment_gym.serve({"counting": functools.partial(CountingEnv, counter, episode_length=1)}) as server:
        run(main(server))


def test_orchestrator_initiated_soft_end_truncates(cartpole_server: cogment_gym.EnvServer) -> None:
    obs_space, act_space = _cartpole_spaces()

    async def main() -> None:
        async with channel_to(cartpole_server.endpoint) as channel:
            trial = RawTrial(channel, "soft-orch")
            await trial.start(config=env_config(seed=2))
            for tick in range(2):
                await trial.act(tick, action_content(act_space, tick % 2))
                await _until_observation(trial)
            await trial.send_state(LAST)
            await trial.act(2, action_content(act_space, 0))
            before, obs_set = await _until_observation(trial)
            assert [(m.state, m.WhichOneof("data")) for m in before] == [(NORMAL, "reward")], "no LAST echoed to the orchestrator"
            assert obs_set.tick_id == 3
            final = Decoded(obs_set.observations[0], obs_space)
            assert (final.terminated, final.truncated) == (False, True)
            await trial.recv_state(LAST_ACK)
            assert await trial.end() == grpc.StatusCode.OK

    run(main())


def test_hard_end_mid_trial_returns_env_to_pool() -> None:
    counter = StepCounter()
    act_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    obs_space = spaces.Box(0, 2**31 - 1, (2,), np.int64)

    async def main(server: cogment_gym.EnvServer) -> None:
        async with channel_to(server.endpoint) as channel:
            trial = RawTrial(channel, "hard-1")
            await trial.start(config=env_config(seed=0))
            for tick in range(3):
                await trial.act(tick, action_content(act_space, np.zeros(2, np.float32)))
                await _until_observation(trial)
            await trial.send_state(END, details="Externally requested")
            await trial.call.done_writing()
            assert await trial.expect_eof() == grpc.StatusCode.OK
            assert (counter.instances, counter.resets, counter.steps) == (1, 1, 3)

            trial = RawTrial(channel, "hard-2")
            first = await trial.start(config=env_config(seed=0))
            # Same instance (no new one made), reset again: obs = [resets, steps] so far.
            assert counter.instances == 1
            assert Decoded(first.observations[0], obs_space).obs.tolist() == [2, 3]
            assert await trial.end() == grpc.StatusCode.OK

    with cogment_gym.serve({"counting": functools.partial(CountingEnv, counter)}) as server:
        run(main(server))


def test_end_before_init_finishes_quietly(cartpole_server: cogment_gym.EnvServer) -> None:
    async def main() -> None:
        async with channel_to(cartpole_server.endpoint) as channel:
            trial = RawTrial(channel, "early-end")
            # LAST during init is acknowledged, END ends the call without a word.
            await trial.send_state(LAST)
            await trial.recv_state(LAST_ACK)
            assert await trial.end() == grpc.StatusCode.OK

    run(main())


def test_heartbeats_answered_before_and_after_init(cartpole_server: cogment_gym.EnvServer) -> None:
    _, act_space = _cartpole_spaces()

    async def main() -> None:
        async with channel_to(cartpole_server.endpoint) as channel:
            trial = RawTrial(channel, "heartbeat")
            await trial.send_state(HEARTBEAT)
            await trial.recv_state(HEARTBEAT)
            await trial.start(config=env_config(seed=0))
            await trial.send_state(HEARTBEAT)
            await trial.recv_state(HEARTBEAT)
            await trial.act(0, action_content(act_space, 1))
            _, obs_set = await _until_observation(trial)
            assert obs_set.tick_id == 1
            await trial.send_state(HEARTBEAT)
            await trial.recv_state(HEARTBEAT)
            assert await trial.end() == grpc.StatusCode.OK

    run(main())


def test_reset_options_seed_and_render_frames() -> None:
    pytest.importorskip("pygame", reason="CartPole's rgb_array rendering needs pygame")
    composite = CompositeSpacesEnv()
    cart_obs, _ = _cartpole_spaces()

    async def main(server: cogment_gym.EnvServer) -> None:
        async with channel_to(server.endpoint) as channel:
            options = {"episode_length": 1, "truncate": True, "label": "hgf"}
            trial = RawTrial(channel, "options")
            first = await trial.start("composite", env_config(seed=9, options=options, render_mode="ansi"))
            got = Decoded(first.observations[0], composite.observation_space)
            assert got.obs["label"] == "hgf"
            assert got.info["options"] == options and got.info["episode_length"] == 1
            assert got.payload.text_frame.startswith("t=0 label=hgf ")
            await trial.act(0, action_content(composite.action_space, composite.action_space.sample()))
            before, final_set = await _until_observation(trial)
            assert before[0].state == LAST
            final = Decoded(final_set.observations[0], composite.observation_space)
            assert (final.terminated, final.truncated) == (False, True)
            assert final.payload.text_frame.startswith("t=1 ")
            await trial.recv_state(LAST_ACK)
            assert await trial.end() == grpc.StatusCode.OK

            trial = RawTrial(channel, "frames")
            first = await trial.start("cartpole", env_config(seed=5, render_mode="rgb_array"))
            direct = gym.make(CARTPOLE, render_mode="rgb_array")
            direct.reset(seed=5)
            payload = Decoded(first.observations[0], cart_obs).payload
            np.testing.assert_array_equal(tensor_to_array(payload.frame), direct.render())
            assert await trial.end() == grpc.StatusCode.OK

            # A render mode the env does not have is refused in-band at init.
            trial = RawTrial(channel, "bad-render")
            await trial.init("cartpole", env_config(render_mode="ansi"))
            failure = _failure(await trial.recv())
            assert failure.kind == "bad_request" and "render_mode='ansi'" in failure.message
            assert await trial.expect_eof() == grpc.StatusCode.OK

    with cogment_gym.serve({"composite": COMPOSITE_ENV_ID, "cartpole": CARTPOLE}) as server:
        run(main(server))


# ---------------------------------------------------------------------------------------------
# Failures travel in-band (hard END with a cogment_gym Failure), the env is not stepped


def test_invalid_actions_end_the_trial_without_stepping() -> None:
    counter = StepCounter()
    act_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    async def main(server: cogment_gym.EnvServer) -> None:
        async with channel_to(server.endpoint) as channel:
            cases = [
                (b"\xff\xff\xff", "not a cogment_gym.v1.ActionPayload"),
                (action_content(spaces.Box(-9.0, 9.0, (2,), np.float32), np.array([5.0, 0.0], np.float32)), "does not fit Box(-1.0, 1.0, (2,), float32)"),
                (action_content(spaces.Discrete(3), 1), "does not fit Box(-1.0, 1.0, (2,), float32)"),
            ]
            for i, (content, phrase) in enumerate(cases):
                trial = RawTrial(channel, f"bad-action-{i}")
                await trial.start(config=env_config(seed=0))
                await trial.act(0, content)
                failure = _failure(await trial.recv())
                assert failure.kind == "invalid_action", failure
                assert phrase in failure.message and "player" in failure.message, failure.message
                assert await trial.expect_eof() == grpc.StatusCode.OK
            trial = RawTrial(channel, "unavailable")
            await trial.start(config=env_config(seed=0))
            await trial.send(EnvIn(state=NORMAL, action_set=environment_pb2.ActionSet(tick_id=0, actions=[b""], unavailable_actors=[0])))
            failure = _failure(await trial.recv())
            assert failure.kind == "invalid_action" and "no action from actor 'player' at tick 0" in failure.message
            assert await trial.expect_eof() == grpc.StatusCode.OK
            assert counter.steps == 0 and counter.resets == 4

    with cogment_gym.serve({"counting": functools.partial(CountingEnv, counter, act_space)}) as server:
        run(main(server))


def test_env_exception_reaches_the_orchestrator_with_traceback() -> None:
    made: list[RaisingEnv] = []

    def factory() -> RaisingEnv:
        env = RaisingEnv(raise_on_step=2, message="boom from the env")
        made.append(env)
        return env

    async def main(server: cogment_gym.EnvServer) -> None:
        async with channel_to(server.endpoint) as channel:
            trial = RawTrial(channel, "raising")
            await trial.start(config=env_config(seed=0))
            await trial.act(0, action_content(spaces.Discrete(2), 0))
            await _until_observation(trial)
            await trial.act(1, action_content(spaces.Discrete(2), 1))
            failure = _failure(await trial.recv())
            assert (failure.kind, failure.type) == ("env_exception", "InjectedFault")
            assert "boom from the env (in step 2)" in failure.message
            assert "Traceback" in failure.traceback and "in _fail" in failure.traceback
            assert failure.origin == "environment 'raising'"
            assert await trial.expect_eof() == grpc.StatusCode.OK
            # The failed instance is not reused: the next trial gets a new one.
            assert len(made) == 1
            trial = RawTrial(channel, "after-raising")
            await trial.start(config=env_config(seed=0))
            assert len(made) == 2
            assert await trial.end() == grpc.StatusCode.OK

    with cogment_gym.serve({"raising": factory}) as server:
        run(main(server))


def test_bad_init_is_refused_in_band(cartpole_server: cogment_gym.EnvServer) -> None:
    async def main() -> None:
        async with channel_to(cartpole_server.endpoint) as channel:
            trial = RawTrial(channel, "two-actors")
            await trial.init(actors=[("a", "player"), ("b", "player")])
            failure = _failure(await trial.recv())
            assert failure.kind == "bad_request" and "expected 1 actor in the trial, got 2" in failure.message
            assert await trial.expect_eof() == grpc.StatusCode.OK

            trial = RawTrial(channel, "unknown-impl")
            await trial.init("Nope-v0")
            failure = _failure(await trial.recv())
            assert failure.kind == "bad_request" and "'Nope-v0' is not served here" in failure.message
            assert await trial.expect_eof() == grpc.StatusCode.OK

            trial = RawTrial(channel, "bad-config")
            await trial.init(config=common_pb2.SerializedMessage(content=b"\xff\xff"))
            failure = _failure(await trial.recv())
            assert failure.kind == "bad_request" and "EnvConfig" in failure.message
            assert await trial.expect_eof() == grpc.StatusCode.OK

    run(main())


def test_silent_orchestrator_gets_an_in_band_timeout() -> None:
    async def main(server: cogment_gym.EnvServer) -> None:
        async with channel_to(server.endpoint) as channel:
            trial = RawTrial(channel, "silent-init")
            failure = _failure(await trial.recv())
            assert failure.kind == "timeout" and "the init data of trial 'silent-init'" in failure.message
            assert await trial.expect_eof() == grpc.StatusCode.OK

            trial = RawTrial(channel, "silent-run")
            await trial.start(config=env_config(seed=0))
            failure = _failure(await trial.recv())
            assert failure.kind == "timeout" and "actions of trial 'silent-run'" in failure.message
            assert await trial.expect_eof() == grpc.StatusCode.OK

    with cogment_gym.serve(CARTPOLE, init_timeout=0.3, idle_timeout=0.3) as server:
        run(main(server))
        assert server.servicer._watchdogs == {}  # each RunTrial's deadline went with it


def test_the_idle_deadline_counts_from_the_last_message_not_from_the_trial_start() -> None:
    """Each read has the whole idle_timeout: a trial whose actions come every 0.15 s lives
    past 3 idle timeouts of 0.3 s (the servicer's reads share one watchdog, re-armed per read)."""

    async def main(server: cogment_gym.EnvServer) -> None:
        obs_space, act_space = _cartpole_spaces()
        async with channel_to(server.endpoint) as channel:
            trial = RawTrial(channel, "slow-but-alive")
            await trial.start(config=env_config(seed=0))
            started = asyncio.get_running_loop().time()
            tick = 0
            while asyncio.get_running_loop().time() - started < 1.0:
                await asyncio.sleep(0.15)  # a gap below idle_timeout, on purpose
                await trial.act(tick, action_content(act_space, np.int64(tick % 2)))
                before, obs_set = await _until_observation(trial)
                assert all(m.state != END for m in before)
                assert obs_set.tick_id == tick + 1
                tick += 1
                if any(m.state == LAST for m in before):
                    break
            assert tick >= 3
            await trial.send_state(END)
            assert await trial.expect_eof() == grpc.StatusCode.OK

    with cogment_gym.serve(CARTPOLE, idle_timeout=0.3) as server:
        run(main(server))
        assert server.servicer._watchdogs == {}


# ---------------------------------------------------------------------------------------------
# Concurrency and transports


def test_many_concurrent_trials_each_with_its_own_env() -> None:
    n_trials, n_steps = 20, 6
    made: list[CompositeSpacesEnv] = []

    def factory() -> CompositeSpacesEnv:
        env = CompositeSpacesEnv()
        made.append(env)
        return env

    reference = CompositeSpacesEnv()
    obs_space, act_space = reference.observation_space, reference.action_space

    async def one_trial(channel: grpc.aio.Channel, index: int, started: list[int], go: asyncio.Event) -> None:
        options = {"episode_length": 50}
        direct = CompositeSpacesEnv()
        d_obs, d_info = direct.reset(seed=index, options=options)
        sampler = CompositeSpacesEnv().action_space
        sampler.seed(1000 + index)
        trial = RawTrial(channel, f"concurrent-{index}")
        first = await trial.start(config=env_config(seed=index, options=options))
        got = Decoded(first.observations[0], obs_space)
        assert_data_equal(d_obs, got.obs, f"trial {index} obs")
        started.append(index)
        if len(started) == n_trials:
            go.set()
        await asyncio.wait_for(go.wait(), WAIT)  # every trial holds its env at once
        for tick in range(n_steps):
            action = sampler.sample()
            await trial.act(tick, action_content(act_space, action))
            _, obs_set = await _until_observation(trial)
            d_obs, d_rew, d_term, d_trunc, d_info = direct.step(action)
            got = Decoded(obs_set.observations[0], obs_space)
            where = f"trial {index} tick {tick}"
            assert_data_equal(d_obs, got.obs, f"{where} obs")
            assert_data_equal(d_info, got.info, f"{where} info")
            assert (got.reward, got.terminated, got.truncated) == (d_rew, d_term, d_trunc), where
        assert await trial.end() == grpc.StatusCode.OK

    async def main(server: cogment_gym.EnvServer) -> None:
        async with channel_to(server.endpoint) as channel:
            started: list[int] = []
            go = asyncio.Event()
            await asyncio.gather(*(one_trial(channel, i, started, go) for i in range(n_trials)))

    with cogment_gym.serve({"composite": factory}) as server:
        run(main(server), timeout=120)
        # The spec probe plus one instance per concurrent trial (the probe serves one of them).
        assert len(made) == n_trials
        assert len({id(env) for env in made}) == n_trials


def test_unix_socket_serving(tmp_path: Path) -> None:
    obs_space, act_space = _cartpole_spaces()
    socket_path = tmp_path / "s.sock"
    with cogment_gym.serve(CARTPOLE, unix_socket=str(socket_path)) as server:
        assert server.endpoint == f"unix://{socket_path}"
        assert socket_path.exists()

        async def main() -> None:
            async with channel_to(server.endpoint) as channel:
                trial = RawTrial(channel, "unix")
                first = await trial.start(config=env_config(seed=11))
                direct = gym.make(CARTPOLE)
                assert_data_equal(direct.reset(seed=11)[0], Decoded(first.observations[0], obs_space).obs, "obs")
                await trial.act(0, action_content(act_space, 1))
                _, obs_set = await _until_observation(trial)
                assert_data_equal(direct.step(1)[0], Decoded(obs_set.observations[0], obs_space).obs, "obs")
                assert await trial.end() == grpc.StatusCode.OK

        run(main())
        env = cogment_gym.CogmentEnv(environment=server.endpoint)
        try:
            obs, _ = env.reset(seed=11)
            assert_data_equal(gym.make(CARTPOLE).reset(seed=11)[0], obs, "obs")
            assert env.step(0)[1] == 1.0
        finally:
            env.close()


def test_observation_sets_written_as_bytes_are_the_message() -> None:
    """Over gRPC the servicer writes observation sets as bytes joined from the payload's pieces
    (codec.wire); a LocalCall gets the message. Both say the same."""
    from cogment_gym.adapters.service import _observation_set, _observation_set_bytes
    from cogment_gym.codec.wire import Pieces

    payload = env_pb2.ObservationPayload(reward=2.5, terminated=True).SerializeToString()
    for content in (payload, Pieces([payload[:3], np.frombuffer(payload[3:], np.uint8)])):
        wire = environment_pb2.EnvRunTrialOutput.FromString(_observation_set_bytes(7, content))
        message = _observation_set(7, content)
        message.observation_set.timestamp = wire.observation_set.timestamp
        assert wire == message
        assert wire.observation_set.observations[0] == payload and list(wire.observation_set.actors_map) == [0]
