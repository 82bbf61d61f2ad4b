"""CogmentVectorEnv as a state machine (calls out of order, close) and its failures: a failing
sub-environment raises an error of its own type naming its index, every other trial is ended,
and a reset brings the vector env back."""

from __future__ import annotations

import functools
import time
from typing import Any, Callable, Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import cogment_gym
from cogment_gym.envs import CogmentVectorEnv
from cogment_gym.errors import AlreadyPendingCallError, ClosedEnvironmentError, NoAsyncCallError, ResetNeededError
from cogment_gym.errors import EndpointUnreachableError, EnvironmentFailedError, InvalidActionError, PeerLostError, SpaceMismatchError
from cogment_gym.orchestrator.server import OrchestratorServer, start_orchestrator
from cogment_gym.testing import CountingEnv, RaisingEnv, StepCounter

from tests.conftest import ServiceProcess
from tests.waiting import wait_until

FAST = 5.0  # seconds within which a failure must reach the caller
BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)


@pytest.fixture(scope="module")
def orchestrator_server() -> Iterator[OrchestratorServer]:
    with start_orchestrator() as server:
        yield server


def _running_trials(server: OrchestratorServer) -> list[str]:
    return [trial_id for trial_id, trial in list(server.orchestrator.trials.items()) if not trial.done]


# ---------------------------------------------------------------------------------------------
# the state machine


def test_calls_out_of_order_raise(closing: Callable[[Any], Any]) -> None:
    envs = closing(CogmentVectorEnv("CartPole-v1", num_envs=2))
    actions = np.array([0, 1])
    with pytest.raises(ResetNeededError):
        envs.step(actions)
    with pytest.raises(ResetNeededError):
        envs.step_async(actions)
    with pytest.raises(NoAsyncCallError) as no_call:
        envs.step_wait()
    assert isinstance(no_call.value, gym.error.NoAsyncCallError)
    envs.reset(seed=0)
    envs.step_async(actions)
    for call in (lambda: envs.step_async(actions), lambda: envs.step(actions), lambda: envs.reset()):
        with pytest.raises(AlreadyPendingCallError) as pending:
            call()
        assert isinstance(pending.value, gym.error.AlreadyPendingCallError)
    obs, *_ = envs.step_wait()
    assert obs.shape == (2, 4)
    with pytest.raises(NoAsyncCallError):
        envs.step_wait()
    envs.step(actions)  # back to normal


def test_close_is_idempotent_and_final(closing: Callable[[Any], Any]) -> None:
    envs = CogmentVectorEnv("CartPole-v1", num_envs=3)
    envs.reset(seed=0)
    envs.close()
    envs.close()
    assert envs.closed
    for call in (lambda: envs.reset(), lambda: envs.step(np.zeros(3, np.int64)), envs.step_wait):
        with pytest.raises(ClosedEnvironmentError) as closed:
            call()
        assert isinstance(closed.value, gym.error.ClosedEnvironmentError)
    CogmentVectorEnv("CartPole-v1", num_envs=1).close()  # never reset


def test_close_with_a_pending_step_ends_the_trials(orchestrator_server: OrchestratorServer, served: Callable[..., cogment_gym.EnvServer]) -> None:
    server = served("CartPole-v1")
    envs = CogmentVectorEnv(orchestrator=orchestrator_server.lifecycle_endpoint, environment=server.endpoint, num_envs=3)
    envs.reset(seed=0)
    ours = set(_running_trials(orchestrator_server))
    assert len(ours) >= 3
    envs.step_async(np.zeros(3, np.int64))
    envs.close()
    assert wait_until(lambda: not ours & set(_running_trials(orchestrator_server)))


@pytest.mark.parametrize(("per_trial", "count"), [(1, "expected 3 actions"), (None, r"expected actions of shape \(3,\)")],
                         ids=["per-trial", "default"])
def test_bad_actions_are_refused_before_anything_is_sent(per_trial: int | None, count: str, closing: Callable[[Any], Any]) -> None:
    counter = StepCounter()
    envs = closing(CogmentVectorEnv(functools.partial(CountingEnv, counter, spaces.Discrete(3)), num_envs=3, envs_per_trial=per_trial))
    envs.reset(seed=0)
    with pytest.raises(SpaceMismatchError, match=r"actions\[2\]"):
        envs.step(np.array([0, 1, 7]))
    with pytest.raises(ValueError, match=count):
        envs.step(np.array([0, 1]))
    assert counter.steps == 0
    envs.step(np.array([0, 1, 2]))  # nothing was broken
    assert counter.steps == 3


# ---------------------------------------------------------------------------------------------
# failures of one sub-environment


def test_invalid_action_in_one_sub_env_names_it_and_ends_every_trial(
    orchestrator_server: OrchestratorServer, served: Callable[..., cogment_gym.EnvServer], closing: Callable[[Any], Any]
) -> None:
    counter = StepCounter()
    server = served({"counting": functools.partial(CountingEnv, counter, BOX)})
    envs = closing(CogmentVectorEnv(orchestrator=orchestrator_server.lifecycle_endpoint, environment=server.endpoint, num_envs=4))
    envs.reset(seed=0)
    ours = set(_running_trials(orchestrator_server))
    envs.step(np.zeros((4, 2), np.float32))
    steps_before = counter.steps
    actions = np.zeros((4, 2), np.float32)
    actions[2] = [5.0, 0.0]  # encodes fine, but outside the Box: the env side refuses it
    started = time.monotonic()
    with pytest.raises(InvalidActionError) as err:
        envs.step(actions)
    assert time.monotonic() - started < FAST
    assert isinstance(err.value, ValueError)
    assert "sub-environment 2" in str(err.value) and "does not fit Box" in str(err.value)
    assert getattr(err.value, "sub_env_index") == 2
    assert isinstance(err.value.__cause__, InvalidActionError)
    assert counter.steps - steps_before <= 3, "the invalid action stepped an env"
    assert wait_until(lambda: not ours & set(_running_trials(orchestrator_server))), "trials left running"
    assert wait_until(lambda: server.servicer.active_trials == 0)
    with pytest.raises(ResetNeededError):
        envs.step(np.zeros((4, 2), np.float32))
    envs.reset(seed=1)
    envs.step(np.zeros((4, 2), np.float32))


@pytest.mark.parametrize(("per_trial", "named"), [(1, "sub-environment 0: "), (None, r"sub-environments 0..2 \(batched trial 0\): ")],
                         ids=["per-trial", "default"])
def test_env_exception_names_the_lowest_failing_index(per_trial: int | None, named: str, closing: Callable[[Any], Any]) -> None:
    envs = closing(CogmentVectorEnv(functools.partial(RaisingEnv, raise_on_step=2, message="boom"), num_envs=3, envs_per_trial=per_trial))
    envs.reset(seed=0)
    envs.step(np.zeros(3, np.int64))
    with pytest.raises(EnvironmentFailedError, match=named + ".*boom") as err:
        envs.step(np.zeros(3, np.int64))
    assert err.value.failure is not None  # the remote traceback travels along
    envs.reset(seed=0)
    envs.step(np.zeros(3, np.int64))


@pytest.mark.parametrize(("per_trial", "named"), [(1, "sub-environment 0"), (None, r"sub-environments 0..1 \(batched trial 0\)")],
                         ids=["per-trial", "default"])
def test_reset_failure_names_the_sub_env_and_cleans_up(per_trial: int | None, named: str, closing: Callable[[Any], Any]) -> None:
    envs = closing(CogmentVectorEnv(functools.partial(RaisingEnv, raise_on_reset=True), num_envs=2, envs_per_trial=per_trial))
    with pytest.raises(EnvironmentFailedError, match=named):
        envs.reset(seed=0)
    with pytest.raises(ResetNeededError):
        envs.step(np.zeros(2, np.int64))


@pytest.mark.parametrize(("per_trial", "named"), [(1, "sub-environment 0:"), (2, r"sub-environments 0..1 \(batched trial 0\)")])
def test_killed_env_service_reaches_the_caller_fast(
    per_trial: int, named: str, service_process: Callable[..., ServiceProcess], closing: Callable[[Any], Any]
) -> None:
    process = service_process("CartPole-v1")
    envs = closing(CogmentVectorEnv(environment=process.endpoint, num_envs=4, envs_per_trial=per_trial, timeout=10.0))
    envs.reset(seed=0)
    envs.step(np.zeros(4, np.int64))
    process.kill()
    started = time.monotonic()
    with pytest.raises((PeerLostError, EndpointUnreachableError), match=named):
        for _ in range(3):
            envs.step(np.zeros(4, np.int64))
    assert time.monotonic() - started < FAST
    envs.close()  # nothing hangs


@pytest.mark.parametrize("per_trial", [1, None], ids=["per-trial", "default"])
def test_interrupted_step_is_cleaned_up_by_reset(
    per_trial: int | None, served: Callable[..., cogment_gym.EnvServer], closing: Callable[[Any], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Ctrl-C while step_wait waits: the interrupted step is cancelled by the next reset(), which
    ends its trials (no orphan task left to fail on its own), and the vector env works again."""
    import gc
    import signal

    counter = StepCounter()
    server = served({"slow": functools.partial(CountingEnv, counter, BOX, step_delay=0.3)})
    envs = closing(CogmentVectorEnv(environment=server.endpoint, num_envs=2, envs_per_trial=per_trial))
    trials = envs.num_envs // envs.envs_per_trial  # 2 trials of 1, or one batched trial of 2
    envs.reset(seed=0)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(KeyboardInterrupt):
            envs.step(np.zeros((2, 2), np.float32))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    with pytest.raises(ResetNeededError):
        envs.step(np.zeros((2, 2), np.float32))
    obs, _ = envs.reset(seed=1)
    assert obs.shape == (2, 2)
    obs, *_ = envs.step(np.zeros((2, 2), np.float32))
    assert obs.shape == (2, 2)
    assert wait_until(lambda: server.servicer.active_trials == trials), "the interrupted trials were not ended"
    for _ in range(2):
        envs.step(np.zeros((2, 2), np.float32))
    gc.collect()
    orphans = [r.getMessage() for r in caplog.records if r.name == "asyncio" and r.levelname == "ERROR"]
    assert not orphans, orphans


class SlowResetEnv(gym.Env[np.ndarray, np.int64]):
    """Takes 0.3 s to reset (served in a thread of this process: the client loop goes on)."""

    def __init__(self, render_mode: str | None = None) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        time.sleep(0.3)
        return np.zeros(2, np.float32), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return np.zeros(2, np.float32), 0.0, False, False, {}


@pytest.mark.parametrize("per_trial", [1, None], ids=["per-trial", "default"])
def test_interrupted_reset_leaves_no_trial_behind(per_trial: int | None, served: Callable[..., cogment_gym.EnvServer], closing: Callable[[Any], Any]) -> None:
    import signal

    server = served({"slow-reset": SlowResetEnv})
    envs = closing(CogmentVectorEnv(environment=server.endpoint, num_envs=2, envs_per_trial=per_trial))
    trials = envs.num_envs // envs.envs_per_trial

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(KeyboardInterrupt):
            envs.reset(seed=0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    envs.reset(seed=1)
    envs.step(np.zeros(2, np.int64))
    # Only the trials of the second reset run; those the interrupted reset was opening were ended.
    assert wait_until(lambda: server.servicer.active_trials == trials)
    # Another round trip runs whatever the interrupted reset left on the client loop; still as many.
    envs.step(np.zeros(2, np.int64))
    assert server.servicer.active_trials == trials
