"""Env pools (``adapters/pool.py``): instances kept per client key between trials."""

from __future__ import annotations

import gymnasium as gym

from cogment_gym.adapters import hosting, pool
from cogment_gym.adapters.hosting import EnvHost


def _pool() -> hosting.Implementation:
    impl = EnvHost("CartPole-v1", None).get("")
    assert isinstance(impl, hosting.Implementation)
    return impl


def test_a_key_gets_its_own_instance_back_whatever_was_released_since() -> None:
    impl = _pool()
    a, b = impl.acquire(None, "client/0"), impl.acquire(None, "client/1")
    impl.release(a, None, "client/0")
    impl.release(b, None, "client/1")
    anonymous = impl.acquire(None)  # keyed instances are not handed to others while idle...
    assert anonymous is not a and anonymous is not b
    impl.release(anonymous, None)
    assert impl.acquire(None, "client/0") is a and impl.acquire(None, "client/1") is b
    assert impl.acquire(None, "client/2") is anonymous  # ...an unknown key takes a shared one


def test_keyed_instances_beyond_the_bound_return_to_the_shared_pool(monkeypatch: object) -> None:
    impl = _pool()
    monkeypatch.setattr(pool, "MAX_KEYED_INSTANCES", 2)  # type: ignore[attr-defined]
    envs = [impl.acquire(None, f"k{i}") for i in range(3)]
    for i, env in enumerate(envs):
        impl.release(env, None, f"k{i}")
    assert impl.acquire(None) is envs[0]  # the longest idle key lost its claim
    assert impl.acquire(None, "k1") is envs[1] and impl.acquire(None, "k2") is envs[2]


def test_close_closes_keyed_instances_too() -> None:
    closed: list[object] = []

    class Tracked(gym.Wrapper):  # type: ignore[type-arg]
        def close(self) -> None:
            closed.append(self)
            super().close()

    impl = EnvHost(lambda **kwargs: Tracked(gym.make("CartPole-v1", **kwargs)), None).get("")
    assert isinstance(impl, hosting.Implementation)
    keyed, shared = impl.acquire(None, "k"), impl.acquire(None)
    impl.release(keyed, None, "k")
    impl.release(shared, None)
    impl.close()
    assert keyed in closed and shared in closed
