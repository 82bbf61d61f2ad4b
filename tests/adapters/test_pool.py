"""Env pools (``adapters/pool.py``): instances kept per client key between trials, each living
on a thread of its own."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import gymnasium as gym
import pytest

from cogment_gym.adapters import hosting, pool
from cogment_gym.adapters.hosting import EnvHost


def _pool() -> hosting.Implementation:
    impl = EnvHost("CartPole-v1", None).get("")
    assert isinstance(impl, hosting.Implementation)
    return impl


def _acquire(impl: pool.EnvPool, key: str = "", count: int = 1) -> pool.Instance:
    return asyncio.run(impl.acquire(None, key, count))


def test_a_key_gets_its_own_instance_back_whatever_was_released_since() -> None:
    impl = _pool()
    a, b = _acquire(impl, "client/0"), _acquire(impl, "client/1")
    impl.release(a, None, "client/0")
    impl.release(b, None, "client/1")
    anonymous = _acquire(impl)  # keyed instances are not handed to others while idle...
    assert anonymous is not a and anonymous is not b
    impl.release(anonymous, None)
    assert _acquire(impl, "client/0") is a and _acquire(impl, "client/1") is b
    assert _acquire(impl, "client/2") is anonymous  # ...an unknown key takes a shared one
    impl.close()


def test_groups_of_sub_environments_are_pooled_apart_from_single_instances() -> None:
    impl = _pool()
    single = _acquire(impl)
    group = _acquire(impl, "c", 3)
    assert len(group.envs) == 3 and len({id(env) for env in group.envs}) == 3
    impl.release(single, None)
    impl.release(group, None, "c")
    assert impl.take(None, "", 3) is None  # a group is not made of single instances
    assert _acquire(impl, "c", 3) is group and _acquire(impl) is single
    impl.close()


def test_keyed_instances_beyond_the_bound_return_to_the_shared_pool(monkeypatch: object) -> None:
    impl = _pool()
    monkeypatch.setattr(pool, "MAX_KEYED_INSTANCES", 2)  # type: ignore[attr-defined]
    envs = [_acquire(impl, f"k{i}") for i in range(3)]
    for i, env in enumerate(envs):
        impl.release(env, None, f"k{i}")
    assert _acquire(impl) is envs[0]  # the longest idle key lost its claim
    assert _acquire(impl, "k1") is envs[1] and _acquire(impl, "k2") is envs[2]
    impl.close()


def test_close_closes_keyed_instances_too() -> None:
    closed: list[object] = []

    class Tracked(gym.Wrapper):  # type: ignore[type-arg]
        def close(self) -> None:
            closed.append(self)
            super().close()

    impl = EnvHost(lambda **kwargs: Tracked(gym.make("CartPole-v1", **kwargs)), None).get("")
    assert isinstance(impl, hosting.Implementation)
    keyed, shared = _acquire(impl, "k"), _acquire(impl)
    impl.release(keyed, None, "k")
    impl.release(shared, None)
    impl.close()
    assert keyed.env in closed and shared.env in closed
    assert not keyed.calls.alive and not shared.calls.alive  # their threads are gone


class _ThreadRecorder(gym.Wrapper):  # type: ignore[type-arg]
    """Records the thread of every call made to it."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.threads = {"__init__": threading.get_ident()}

    def reset(self, **kwargs: Any) -> Any:
        self.threads["reset"] = threading.get_ident()
        return super().reset(**kwargs)

    def step(self, action: Any) -> Any:
        self.threads["step"] = threading.get_ident()
        return super().step(action)

    def close(self) -> None:
        self.threads["close"] = threading.get_ident()
        super().close()


def test_an_instance_is_made_used_and_closed_on_its_own_thread_never_the_callers() -> None:
    impl = EnvHost({"rec": lambda: _ThreadRecorder(gym.make("CartPole-v1"))}, None).get("rec")
    assert isinstance(impl, hosting.Implementation)
    probe = _acquire(impl)  # the instance serve() made to read the spaces: pooled, reused

    async def play(instance: pool.Instance) -> None:
        await instance.calls.call("reset", instance.env.reset)
        await instance.calls.call("step", instance.env.step, 0)

    asyncio.run(play(probe))
    other = _acquire(impl)  # a new one, made on a new thread
    asyncio.run(play(other))
    impl.release(probe, None)
    impl.release(other, None)
    impl.close()
    for instance in (probe, other):
        threads = instance.env.threads
        assert set(threads) == {"__init__", "reset", "step", "close"}
        assert len(set(threads.values())) == 1, threads
        assert threads["step"] != threading.get_ident()
    assert probe.env.threads["step"] != other.env.threads["step"]


def test_close_waits_a_bounded_time_for_an_env_whose_close_hangs(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    class HangingClose(gym.Wrapper):  # type: ignore[type-arg]
        def close(self) -> None:
            release.wait()
            super().close()

    host = EnvHost({"hc": lambda: HangingClose(gym.make("CartPole-v1"))}, None)
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="cogment_gym.adapters.pool"):
            host.close(timeout=0.3)
        assert time.monotonic() - started < 0.3 + 2.0
        assert "cogment-gym-env:hc" in caplog.text and "env.close() running" in caplog.text
    finally:
        release.set()
