"""Faults reach the CogmentEnv caller as typed, clear errors within seconds, and other trials
keep running.

Each test asserts the exception type, key phrases of its message and how long it took; and that
another CogmentEnv (on the same server where there is one) goes on stepping afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from typing import Any, Callable, Iterator

import grpc
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import cogment_gym
from cogment_gym import CogmentEnv
from cogment_gym._proto.cogment.api import common_pb2, environment_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import encode
from cogment_gym.errors import ResetNeededError, UnknownImplementationError
from cogment_gym.errors import (
    CogmentGymError,
    EndpointUnreachableError,
    EnvironmentFailedError,
    InvalidActionError,
    PeerLostError,
    PeerTimeoutError,
    SpaceMismatchError,
)
from cogment_gym.orchestrator.server import OrchestratorServer, start_orchestrator
from cogment_gym.orchestrator.transports import Connector
from cogment_gym.protocol import parse_endpoint
from cogment_gym.testing import CountingEnv, RaisingEnv, StepCounter, assert_data_equal

FAST = 5.0  # seconds within which every failure must reach the caller


class Clock:
    def __enter__(self) -> Clock:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.start


def _keeps_stepping(env: CogmentEnv, steps: int = 3) -> None:
    """``env`` (mid-episode or not) still works: a few steps, a reset if the episode ended."""
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


@pytest.fixture
def counter() -> StepCounter:
    return StepCounter()


# ---------------------------------------------------------------------------------------------
# bad actions: the env is not stepped


BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)


@pytest.mark.parametrize("mode", ["embedded", "service"])
def test_out_of_bounds_action_ends_the_trial_without_stepping(
    mode: str, counter: StepCounter, served: Callable[..., cogment_gym.EnvServer], closing: Callable[[Any], Any]
) -> None:
    factory = functools.partial(CountingEnv, counter, BOX)
    if mode == "embedded":
        env, other = closing(CogmentEnv(factory)), closing(CogmentEnv("CartPole-v1"))
    else:
        server = served({"counting": factory})
        env, other = closing(CogmentEnv(environment=server.endpoint)), closing(CogmentEnv(environment=server.endpoint))
    env.reset(seed=0)
    other.reset(seed=0)
    env.step(np.array([0.5, -0.5], np.float32))
    other.step(other.action_space.sample())
    steps_before = counter.steps
    for bad in (np.array([5.0, 0.0], np.float32), np.array([np.nan, 0.0], np.float32)):
        with Clock() as clock, pytest.raises(InvalidActionError) as err:
            env.step(bad)
        assert clock.elapsed < FAST
        assert isinstance(err.value, ValueError)
        message = str(err.value)
        assert "action of actor 'player' does not fit Box(-1.0, 1.0, (2,), float32)" in message
        assert "within the bounds" in message
        assert counter.steps == steps_before, "the env was stepped with an invalid action"
        # The trial is over; the env is usable again after a reset.
        with pytest.raises(ResetNeededError):
            env.step(np.zeros(2, np.float32))
        env.reset(seed=1)
    env.step(np.zeros(2, np.float32))
    assert counter.steps == steps_before + 1
    _keeps_stepping(other)


def test_action_of_the_wrong_type_is_refused_before_sending(counter: StepCounter, closing: Callable[[Any], Any]) -> None:
    env = closing(CogmentEnv(functools.partial(CountingEnv, counter, spaces.Discrete(3))))
    env.reset(seed=0)
    cases = [
        ("left", "expected an integer, got str 'left'"),
        (1.0, "expected an integer, got float 1.0"),
        (3, "expected an integer in [0, 3), got 3"),
        (np.array([1, 2]), "expected an integer"),
        (None, "expected an integer, got NoneType None"),
    ]
    for bad, phrase in cases:
        with Clock() as clock, pytest.raises(SpaceMismatchError) as err:
            env.step(bad)
        assert clock.elapsed < FAST
        assert "action does not fit Discrete(3)" in str(err.value) and phrase in str(err.value)
    assert counter.steps == 0
    # Nothing was sent: the episode goes on.
    obs, reward, terminated, truncated, info = env.step(2)
    assert (counter.steps, reward, info) == (1, 1.0, {"t": 1})
    assert counter.actions == [np.int64(2)]

    box_env = closing(CogmentEnv(functools.partial(CountingEnv, counter, BOX)))
    box_env.reset(seed=0)
    for bad, phrase in [
        (np.array([0.5, 0.5]), "float64 array of shape (2,) (not safely castable)"),
        (np.zeros(3, np.float32), "expected shape (2,)"),
        ({"x": 1}, "float32 values"),
    ]:
        with pytest.raises(SpaceMismatchError, match="action does not fit Box") as err:
            box_env.step(bad)
        assert phrase in str(err.value)
    assert counter.steps == 1
    box_env.step(np.array([0.5, 0.5], np.float32))
    assert counter.steps == 2


# ---------------------------------------------------------------------------------------------
# the env raises


@pytest.mark.parametrize("mode", ["embedded", "service"])
def test_env_exception_reaches_the_caller(mode: str, served: Callable[..., cogment_gym.EnvServer], closing: Callable[[Any], Any]) -> None:
    factory = functools.partial(RaisingEnv, raise_on_step=3, message="boom")
    if mode == "embedded":
        env, other = closing(CogmentEnv(factory)), closing(CogmentEnv(factory))
        origin = "environment 'env'"
    else:
        server = served({"raising": factory})
        env, other = closing(CogmentEnv(environment=server.endpoint)), closing(CogmentEnv(environment=server.endpoint))
        origin = "environment 'raising'"
    env.reset(seed=0)
    other.reset(seed=0)
    env.step(0)
    other.step(0)
    env.step(1)
    with Clock() as clock, pytest.raises(EnvironmentFailedError) as err:
        env.step(1)
    assert clock.elapsed < FAST
    message = str(err.value)
    assert f"{origin}: InjectedFault: boom (in step 3)" in message
    assert message.count("trial '") == 1, message
    assert "Remote traceback:" in message and "testing/envs.py" in message and "in _fail" in message
    failure = err.value.failure
    assert failure is not None and (failure.kind, failure.type) == ("env_exception", "InjectedFault")
    # The other trial (same env implementation, at its step 2) is unaffected.
    other.step(0)
    # And the failed CogmentEnv starts a new trial (with a fresh env instance) on reset.
    env.reset(seed=0)
    env.step(0)


def test_env_exception_in_reset(served: Callable[..., cogment_gym.EnvServer], closing: Callable[[Any], Any]) -> None:
    server = served({"raising": functools.partial(RaisingEnv, raise_on_reset=True), "cartpole": "CartPole-v1"})
    env = closing(CogmentEnv(environment=server.endpoint, implementation="raising"))
    other = closing(CogmentEnv(environment=server.endpoint, implementation="cartpole"))
    other.reset(seed=0)
    with Clock() as clock, pytest.raises(EnvironmentFailedError, match=r"InjectedFault: injected fault \(in reset\)") as err:
        env.reset(seed=0)
    assert clock.elapsed < FAST
    assert "Remote traceback:" in str(err.value)
    with pytest.raises(ResetNeededError):
        env.step(0)
    _keeps_stepping(other)


# ---------------------------------------------------------------------------------------------
# the env service dies, or was never there


def test_env_service_killed_mid_trial(service_process: Callable[..., Any], closing: Callable[[Any], Any]) -> None:
    service = service_process("CartPole-v1")
    env = closing(CogmentEnv(environment=service.endpoint, timeout=FAST))
    same_server = closing(CogmentEnv(environment=service.endpoint, timeout=FAST))
    elsewhere = closing(CogmentEnv("CartPole-v1"))
    for e in (env, same_server, elsewhere):
        e.reset(seed=0)
        e.step(0)
    service.kill()
    with Clock() as clock, pytest.raises(PeerLostError) as err:
        env.step(1)
    assert clock.elapsed < FAST
    assert isinstance(err.value, ConnectionError)
    assert f"environment 'CartPole-v1' at {service.endpoint}" in str(err.value)
    with Clock() as clock, pytest.raises(PeerLostError):
        same_server.step(1)
    assert clock.elapsed < FAST
    # A new trial cannot reach the dead service either, and says so at once.
    with Clock() as clock, pytest.raises(EndpointUnreachableError, match="is unreachable"):
        env.reset(seed=1)
    assert clock.elapsed < FAST
    _keeps_stepping(elsewhere)
    with Clock() as clock:
        env.close()
        same_server.close()
    assert clock.elapsed < FAST


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A TCP port that was just bound then released: nothing listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


def test_unreachable_endpoint(closed_port: int, closing: Callable[[Any], Any], tmp_path: Any) -> None:
    other = closing(CogmentEnv("CartPole-v1"))
    other.reset(seed=0)
    endpoint = f"grpc://127.0.0.1:{closed_port}"
    with Clock() as clock, pytest.raises(EndpointUnreachableError) as err:
        CogmentEnv(environment=endpoint)
    assert clock.elapsed < FAST
    assert isinstance(err.value, ConnectionError)
    assert f"environment service at {endpoint} is unreachable" in str(err.value)
    missing = tmp_path / "nobody.sock"
    with Clock() as clock, pytest.raises(EndpointUnreachableError, match="is unreachable"):
        CogmentEnv(environment=f"unix://{missing}")
    assert clock.elapsed < FAST
    _keeps_stepping(other)


def test_unknown_implementation(served: Callable[..., cogment_gym.EnvServer]) -> None:
    server = served({"a": "CartPole-v1", "b": "FrozenLake-v1"})
    with Clock() as clock, pytest.raises(UnknownImplementationError) as err:
        CogmentEnv(environment=server.endpoint, implementation="nope")
    assert clock.elapsed < FAST
    assert isinstance(err.value, LookupError) and not isinstance(err.value, ConnectionError)
    assert "implementation 'nope' is not served here; served: ['a', 'b']" in str(err.value)


# ---------------------------------------------------------------------------------------------
# facade state machine


def test_step_before_reset_and_after_the_end(closing: Callable[[Any], Any]) -> None:
    env = closing(CogmentEnv("CartPole-v1"))
    with pytest.raises(ResetNeededError, match=r"call reset\(\) before step\(\)") as err:
        env.step(0)
    assert isinstance(err.value, gym.error.ResetNeeded) and isinstance(err.value, CogmentGymError)
    env.reset(seed=0)
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(0)
    with pytest.raises(ResetNeededError):
        env.step(0)
    env.reset(seed=0)
    env.step(0)


def test_close_is_idempotent(closing: Callable[[Any], Any]) -> None:
    never_reset = CogmentEnv("CartPole-v1")
    never_reset.close()
    never_reset.close()
    mid_episode = CogmentEnv("CartPole-v1")
    mid_episode.reset(seed=0)
    mid_episode.step(1)
    with Clock() as clock:
        mid_episode.close()
        mid_episode.close()
    assert clock.elapsed < FAST
    with pytest.raises(CogmentGymError, match="closed"):
        mid_episode.reset()
    with pytest.raises(ResetNeededError):
        mid_episode.step(0)


@pytest.fixture
def orchestrator() -> Iterator[OrchestratorServer]:
    with start_orchestrator() as server:
        yield server


def _watch_trials(orchestrator: OrchestratorServer, done: Callable[[dict[str, int]], bool]) -> dict[str, int]:
    """Follow WatchTrials until ``done(states by trial id)``; fail after FAST seconds."""
    channel = grpc.insecure_channel(parse_endpoint(orchestrator.lifecycle_endpoint).grpc_target)
    states: dict[str, int] = {}
    call = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel).WatchTrials(orchestrator_pb2.TrialListRequest(), timeout=FAST)
    try:
        for entry in call:
            states[entry.trial_id] = entry.state
            if done(states):
                return states
        raise AssertionError(f"WatchTrials ended early; trial states: {states}")
    except grpc.RpcError as err:
        names = {k: common_pb2.TrialState.Name(v) for k, v in states.items()}
        raise AssertionError(f"trials not as expected within {FAST} s ({err.code().name}); trial states: {names}") from None
    finally:
        call.cancel()
        channel.close()


def _count(states: dict[str, int], state: int) -> int:
    return sum(1 for s in states.values() if s == state)


def test_reset_mid_episode_starts_a_new_trial(
    served: Callable[..., cogment_gym.EnvServer], orchestrator: OrchestratorServer, closing: Callable[[Any], Any]
) -> None:
    server = served("CartPole-v1")
    env = closing(CogmentEnv(orchestrator=orchestrator.lifecycle_endpoint, environment=server.endpoint))
    direct = gym.make("CartPole-v1")
    for seed in (3, 4, 5):
        assert_data_equal(direct.reset(seed=seed)[0], env.reset(seed=seed)[0], f"reset {seed}")
        for action in (1, 0, 1):
            expected, got = direct.step(action), env.step(action)
            assert_data_equal(expected[0], got[0], f"seed {seed} obs")
            assert got[1:4] == (1.0, False, False)
    # Each reset ended the trial it interrupted; the last one runs until close().
    _watch_trials(orchestrator, lambda s: len(s) == 3 and _count(s, common_pb2.ENDED) == 2 and _count(s, common_pb2.RUNNING) == 1)
    env.close()
    _watch_trials(orchestrator, lambda s: len(s) == 3 and _count(s, common_pb2.ENDED) == 3)
    with pytest.raises(CogmentGymError):
        env.reset()


@pytest.mark.parametrize("remote_orchestrator", [True, False], ids=["orchestrator", "embedded-orchestrator"])
def test_step_timeout_then_reset_ends_the_abandoned_trial(
    remote_orchestrator: bool,
    counter: StepCounter,
    served: Callable[..., cogment_gym.EnvServer],
    orchestrator: OrchestratorServer,
    closing: Callable[[Any], Any],
) -> None:
    # The env takes 1.5 s to step (blocking its server meanwhile); the client waits 1 s at most.
    server = served({"slow": functools.partial(CountingEnv, counter, step_delay=1.5)})
    where = {"orchestrator": orchestrator.lifecycle_endpoint} if remote_orchestrator else {}
    env = closing(CogmentEnv(environment=server.endpoint, timeout=1.0, **where))
    env.reset(seed=0)
    with Clock() as clock, pytest.raises(PeerTimeoutError, match="no answer within 1 s while waiting for an observation"):
        env.step(np.zeros(2, np.float32))
    assert clock.elapsed < FAST
    # The caller gave up on that trial: the next reset ends it (it would otherwise wait for an
    # action that never comes) and starts a new one.
    with Clock() as clock:
        env.reset(seed=1)
    assert clock.elapsed < FAST
    if remote_orchestrator:
        _watch_trials(orchestrator, lambda s: len(s) == 2 and _count(s, common_pb2.ENDED) == 1 and _count(s, common_pb2.RUNNING) == 1)
    with Clock() as clock:
        env.close()
    assert clock.elapsed < FAST


# ---------------------------------------------------------------------------------------------
# what the facade relies on from the orchestrator's transport


def test_a_timed_out_read_leaves_the_link_usable(served: Callable[..., cogment_gym.EnvServer]) -> None:
    """CogmentEnv gives up waiting after ``timeout`` and later ends the trial through the same
    stream: a read cancelled by a deadline must lose nothing (grpc.aio cancels the whole call
    when a read in progress is cancelled, unless the transport shields it), and close() must not
    raise."""
    server = served("CartPole-v1")
    act_space = gym.make("CartPole-v1").action_space

    async def main() -> None:
        connector = Connector()
        link = connector.environment(server.endpoint, (("trial-id", "close-after-timeout"),), "environment")
        try:
            init = environment_pb2.EnvInitialInput(name="env", actors_in_trial=[common_pb2.TrialActor(name="player", actor_class="player")])
            await link.write(environment_pb2.EnvRunTrialInput(state=common_pb2.NORMAL, init_input=init))
            assert (await asyncio.wait_for(link.read(), 10)).HasField("init_output")
            assert (await asyncio.wait_for(link.read(), 10)).HasField("observation_set")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(link.read(), 0.2)  # the env waits for actions: nothing comes
            action = env_pb2.ActionPayload(value=encode(act_space, 1)).SerializeToString()
            await link.write(environment_pb2.EnvRunTrialInput(state=common_pb2.NORMAL, action_set=environment_pb2.ActionSet(tick_id=0, actions=[action])))
            messages = [await asyncio.wait_for(link.read(), 10) for _ in range(2)]
            assert [m.WhichOneof("data") for m in messages] == ["reward", "observation_set"]
            await link.write(environment_pb2.EnvRunTrialInput(state=common_pb2.END))
            await link.close()
        finally:
            await connector.close()

    asyncio.run(asyncio.wait_for(main(), 30))
