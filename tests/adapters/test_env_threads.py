"""Env code runs off the event loop (``adapters/env_thread.py``): a hanging env holds up its own
trial only; ``step_timeout`` fails that trial alone, with a typed in-band error; ``stop(grace)``
returns in bounded time with a call still hung; no thread outlives its server.

Hanging envs block on a ``threading.Event`` the test owns (``gate``), opened at teardown; tests
wait on the env's ``entered`` event, never on a sleep.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from typing import Any, Callable, Iterator

import grpc
import pytest

import cogment_gym
from cogment_gym.errors import EnvironmentFailedError, EnvironmentTimeoutError, PeerTimeoutError, TrialFailedError
from cogment_gym.testing import HANGING_ENV_ID, HangingEnv
from tests.waiting import wait_until

WAIT = 20.0  # seconds any expected event may take before the test fails


class Hangs:
    """HangingEnvs sharing one gate; every instance made is kept (``made``)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.made: list[HangingEnv] = []

    def factory(self, render_mode: str | None = None) -> HangingEnv:
        env = HangingEnv(self.gate, self.entered, render_mode=render_mode)
        self.made.append(env)
        return env

    def instance(self, number: int) -> HangingEnv:
        return next(env for env in self.made if env.number == number)


@pytest.fixture
def hangs() -> Iterator[Hangs]:
    h = Hangs()
    yield h
    h.gate.set()  # whatever the test did, nothing stays blocked


class Background:
    """``fn()`` in a thread; ``result`` / ``error`` once it returned."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(fn,), daemon=True)
        self._thread.start()

    def _main(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as err:
            self.error = err
        finally:
            self.done.set()

    def join(self, timeout: float = WAIT) -> None:
        assert self.done.wait(timeout), "the background call did not return"
        self._thread.join(timeout)


def _play(env: cogment_gym.CogmentEnv, steps: int) -> list[int]:
    """``steps`` steps (resetting at episode ends); the instance numbers seen."""
    _, info = env.reset()
    seen = [info["instance"]]
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(0)
        seen.append(info["instance"])
        if terminated or truncated:
            _, info = env.reset()
            seen.append(info["instance"])
    return seen


def _hang_in(env: cogment_gym.CogmentEnv, call: str, at: int = 1) -> Callable[[], Any]:
    def run() -> Any:
        env.reset(options={"hang": call, "hang_at": at})
        for _ in range(at):
            env.step(0)

    return run


def test_a_hanging_step_leaves_other_trials_of_the_server_at_full_pace(hangs: Hangs, served: Any, closing: Any) -> None:
    server = served({"hang": hangs.factory})
    stuck_env = closing(cogment_gym.CogmentEnv(environment=server.endpoint))
    stuck = Background(_hang_in(stuck_env, "step"))
    assert hangs.entered.wait(WAIT), "the env never reached its hanging step"

    # While that step hangs on the server: 300 steps and ~6 new trials (50-step episodes) of
    # another client, on the same server, go through, and the hung call is still hung after them.
    other = closing(cogment_gym.CogmentEnv(environment=server.endpoint))
    seen = _play(other, 300)
    assert len(seen) > 300
    assert not stuck.done.is_set() and not hangs.gate.is_set()
    assert server.servicer.active_trials == 2  # the hung trial is still there, still waiting

    hangs.gate.set()  # the hung step returns: its trial goes on as if nothing happened
    stuck.join()
    assert stuck.error is None
    stuck_env.step(0)


def test_a_hanging_embedded_env_does_not_freeze_its_client(hangs: Hangs, closing: Any) -> None:
    # Embedded: env service, Orchestrator and client share the caller's event loop. With
    # env_threads=True (the embedded default runs env calls inline) the hung call is on the env's
    # thread, so the loop still runs and the client's own deadline fires.
    env = closing(cogment_gym.CogmentEnv(hangs.factory, timeout=0.5, env_threads=True))
    _, info = env.reset(options={"hang": "step"})
    hung = info["instance"]
    with pytest.raises(PeerTimeoutError):
        env.step(0)
    assert hangs.entered.is_set() and not hangs.gate.is_set()
    _, info = env.reset()  # a new trial while the other call still hangs: on another instance
    assert info["instance"] != hung
    env.step(0)
    hangs.gate.set()


@pytest.mark.parametrize("call", ["step", "reset", "render"])
def test_step_timeout_fails_only_the_hung_trial_with_a_typed_error(call: str, hangs: Hangs, served: Any, closing: Any) -> None:
    server = served({"hang": hangs.factory}, step_timeout=0.5)
    env = closing(cogment_gym.CogmentEnv(environment=server.endpoint, render_mode="ansi" if call == "render" else None))
    _, info = env.reset()
    healthy = info["instance"]
    env.step(0)
    started = time.monotonic()
    with pytest.raises(EnvironmentTimeoutError) as caught:
        env.reset(options={"hang": call, "hang_at": 2})
        env.step(0)
        env.step(0)
    elapsed = time.monotonic() - started
    err = caught.value
    assert isinstance(err, EnvironmentFailedError) and isinstance(err, PeerTimeoutError) and isinstance(err, TimeoutError)
    message = str(err)
    for part in ("environment 'hang'", f"env.{call}()", "0.5 s", "abandoned"):
        assert part in message, (part, message)
    named = set(re.findall(r"trial '([^']+)'", message.partition("Remote traceback")[0]))
    assert len(named) == 1, message  # the service names the trial (as the client's prefix does)
    if call != "reset":  # (a trial whose reset failed never became the env's trial)
        assert named == {env.trial_id}
    # The remote traceback is the hung thread's stack: where the env blocks.
    assert "Remote traceback" in message and "in _block" in message and "gate.wait()" in message
    assert elapsed < 0.5 + 10.0  # the deadline, plus the client's own reading of the END

    hung = next(env for env in hangs.made if env.entered.is_set() and env._hang == call)
    # The server goes on: the next trial plays, on another instance; the hung one never returns.
    other = closing(cogment_gym.CogmentEnv(environment=server.endpoint, render_mode="ansi" if call == "render" else None))
    seen = _play(other, 60) + _play(env, 60)
    assert hung.number not in seen
    assert not hung.closed  # still blocked: closing it waits for that call
    hangs.gate.set()
    assert wait_until(lambda: hung.closed, WAIT), "the abandoned instance was not closed once its call returned"
    seen = _play(other, 5) + _play(env, 5)
    assert hung.number not in seen
    del healthy


def test_stop_returns_within_grace_while_a_call_hangs(hangs: Hangs, caplog: pytest.LogCaptureFixture, closing: Any) -> None:
    server = cogment_gym.serve({"hang": hangs.factory})
    try:
        env = closing(cogment_gym.CogmentEnv(environment=server.endpoint, timeout=60))
        stuck = Background(_hang_in(env, "step"))
        assert hangs.entered.wait(WAIT)
        trial_id = env.trial_id
        with caplog.at_level(logging.WARNING, logger="cogment_gym.adapters"):
            started = time.monotonic()
            server.stop(grace=0.5)
            elapsed = time.monotonic() - started
        assert elapsed < 0.5 + 3.0, f"stop(0.5) took {elapsed:.1f} s"
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert any(trial_id in w and "abandoning" in w and "env.step()" in w for w in warnings), warnings
        stuck.join()  # the client learns that the service is gone
        assert isinstance(stuck.error, TrialFailedError), stuck.error
    finally:
        server.stop()
        hangs.gate.set()


def _env_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("cogment-gym-env:")]


def test_no_thread_outlives_normal_trials_or_their_server(closing: Any) -> None:
    # gRPC starts threads of its own for the process's lifetime (its poller) on first use: once
    # here, so that the snapshot below holds them.
    with cogment_gym.serve({"cp": "CartPole-v1"}) as warm:
        probe = cogment_gym.CogmentEnv(environment=warm.endpoint)
        probe.reset(seed=0)
        probe.close()
    before = set(threading.enumerate())
    server = cogment_gym.serve({"cp": "CartPole-v1"})
    env = cogment_gym.CogmentEnv(environment=server.endpoint)
    threads = set(_env_threads()) - before
    assert len(threads) == 1  # the instance serve() made to read the spaces, pooled
    for _ in range(20):  # 20 episodes played out, one after the other: that instance plays them all
        env.reset()
        while not any(env.step(0)[2:4]):
            pass
    assert set(_env_threads()) - before == threads
    env.close()
    server.stop()
    # Another server with a batched trial of 8 (one thread for the 8) and the embedded path.
    server = cogment_gym.serve({"cp": "CartPole-v1"})
    from cogment_gym.envs import CogmentVectorEnv

    vector = CogmentVectorEnv(environment=server.endpoint, num_envs=8, envs_per_trial=8)
    vector.reset(seed=0)
    vector.step(vector.action_space.sample())
    assert len(set(_env_threads()) - before) == 2  # the probe instance's, and the batch's
    vector.close()
    server.stop()
    embedded = cogment_gym.CogmentEnv("CartPole-v1")
    embedded.reset(seed=0)
    embedded.step(0)
    embedded.close()
    assert wait_until(lambda: set(threading.enumerate()) <= before, WAIT), set(threading.enumerate()) - before


def test_step_timeout_is_validated() -> None:
    for bad in (0, -1.0, "1", True):
        with pytest.raises(ValueError, match="step_timeout"):
            cogment_gym.serve("CartPole-v1", step_timeout=bad)
    with pytest.raises(ValueError, match="env_threads=False"):
        cogment_gym.serve("CartPole-v1", step_timeout=1.0, env_threads=False)


def test_inline_env_calls_still_serve(served: Any, closing: Any) -> None:
    server = served("CartPole-v1", env_threads=False)
    env = closing(cogment_gym.CogmentEnv(environment=server.endpoint))
    env.reset(seed=0)
    for _ in range(5):
        env.step(0)
    assert not _env_threads() or all(not t.name.startswith("cogment-gym-env:CartPole") for t in _env_threads())


@pytest.mark.slow
def test_step_timeout_reaches_worker_processes(closing: Any) -> None:
    # A worker process's HangingEnv blocks for good (its gate is never set there): the worker
    # fails that trial past the deadline, serves the next, and still stops in bounded time.
    workers = cogment_gym.serve({"hang": HANGING_ENV_ID}, workers=2, step_timeout=0.5)
    try:
        for endpoint in workers.endpoints:
            env = closing(cogment_gym.CogmentEnv(environment=endpoint))
            env.reset(options={"hang": "step"})
            with pytest.raises(EnvironmentTimeoutError, match=r"env\.step\(\).*0\.5 s"):
                env.step(0)
            _play(env, 3)
        started = time.monotonic()
        workers.stop(grace=0.5)
        assert time.monotonic() - started < 0.5 + 5.0
        assert all(code == 0 for code in workers.exited().values())
    finally:
        workers.stop()


def test_an_instance_back_in_the_pool_is_not_reported_abandoned_by_the_trial_that_left_it(
    hangs: Hangs, served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Trial A ends (its instance goes back to the pool before its final observation leaves);
    # trial B takes that instance and hangs in reset; then A gets its END. A's call is long over:
    # nothing of A's is abandoned, whatever B's call on the same thread does.
    from cogment_gym.testing import HangingEnv as _Env

    from ._raw import LAST, LAST_ACK, RawTrial, action_content, channel_to, env_config, run

    server = served({"hang": lambda: hangs.made.append(_Env(hangs.gate, hangs.entered, episode_length=1)) or hangs.made[-1]})

    async def main() -> None:
        async with channel_to(server.endpoint) as channel:
            a = RawTrial(channel, "trial-a")
            await a.start(config=env_config(seed=0))
            await a.act(0, action_content(hangs.made[0].action_space, 0))
            seen = []  # LAST, a reward, the final observations, LAST_ACK
            while not seen or seen[-1] != "LAST_ACK":
                msg = await a.recv()
                seen.append("LAST" if msg.state == LAST else "LAST_ACK" if msg.state == LAST_ACK else msg.WhichOneof("data"))
            assert "observation_set" in seen, seen
            b = RawTrial(channel, "trial-b")
            await b.init(config=env_config(options={"hang": "reset"}))
            await b.recv_data("init_output")
            assert await asyncio.to_thread(hangs.entered.wait, WAIT)
            assert len(hangs.made) == 1  # B plays A's instance (the only one)
            with caplog.at_level(logging.WARNING, logger="cogment_gym.adapters"):
                assert await a.end() == grpc.StatusCode.OK
            hangs.gate.set()
            await b.recv_data("observation_set")
            assert await b.end() == grpc.StatusCode.OK
            assert not hangs.made[0].closed  # the instance was not discarded: B played on it

    run(main())
    assert not [r for r in caplog.records if "abandoning" in r.getMessage()], caplog.text
