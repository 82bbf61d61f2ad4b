"""What an environment server hosts: implementations, their specs, and pools of env instances.

An *implementation* is one kind of environment a server can run trials of, named as Cogment's
``EnvironmentParams.implementation`` names it. Each trial gets its own env instance; instances
are pooled per render mode and reused by later trials (every trial starts with ``reset``).
"""

from __future__ import annotations

import inspect
import logging
import threading
from typing import Any, Callable, Mapping, Union

import gymnasium as gym

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import encode_object, space_to_proto
from cogment_gym.errors import CogmentGymError, UnsupportedValueError

__all__ = ["EnvFactory", "EnvHost", "EnvSource", "Implementation", "UnknownImplementationError"]

logger = logging.getLogger(__name__)

EnvFactory = Callable[..., gym.Env]
EnvSource = Union[str, EnvFactory]
# Name of the single Cogment actor of a Gymnasium (single-agent) environment.
DEFAULT_ACTOR_NAME = "player"
DEFAULT_ACTOR_CLASS = "player"


class UnknownImplementationError(CogmentGymError, LookupError):
    """A trial asked for an implementation the server does not host."""


def _metadata_value(metadata: Mapping[str, Any]) -> Any:
    """The encodable part of an env's metadata dict (others are left out, with a debug log)."""
    kept = {}
    for key, value in metadata.items():
        try:
            encode_object(value, f"metadata[{key!r}]")
        except UnsupportedValueError as err:
            logger.debug("metadata entry left out of the spec: %s", err)
            continue
        kept[key] = value
    return encode_object(kept, "metadata")


class Implementation:
    """One hosted environment: how to make instances, and its spec."""

    def __init__(self, name: str, source: EnvSource, env_kwargs: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self._kwargs = dict(env_kwargs or {})
        self._source = source
        self._pool: dict[str | None, list[gym.Env]] = {}
        self._lock = threading.Lock()
        self._closed = False
        if isinstance(source, str):
            self._make = self._make_registered
        elif isinstance(source, gym.Env):
            raise TypeError(
                f"implementation {name!r}: got an env instance ({type(source).__name__}); each trial needs its own "
                "instance, so pass a Gymnasium id or a factory such as `lambda: MyEnv()`"
            )
        elif callable(source):
            self._make = self._make_from_factory
        else:
            raise TypeError(f"implementation {name!r}: expected a Gymnasium id or an env factory, got {source!r}")
        probe = self._make(None)
        self.observation_space = probe.observation_space
        self.action_space = probe.action_space
        self.metadata = dict(getattr(probe, "metadata", {}) or {})
        self.render_modes = [str(m) for m in self.metadata.get("render_modes", [])]
        self.gym_spec = getattr(probe, "spec", None)
        self.spec = env_pb2.EnvSpec(
            implementation=name,
            actors=[
                env_pb2.ActorSpec(
                    name=DEFAULT_ACTOR_NAME,
                    actor_class=DEFAULT_ACTOR_CLASS,
                    observation_space=space_to_proto(self.observation_space),
                    action_space=space_to_proto(self.action_space),
                )
            ],
            render_modes=self.render_modes,
            metadata=_metadata_value(self.metadata),
            gym_id=self.gym_spec.id if self.gym_spec is not None else "",
            max_episode_steps=(self.gym_spec.max_episode_steps or 0) if self.gym_spec is not None else 0,
        )
        self.release(probe, None)

    def _make_registered(self, render_mode: str | None) -> gym.Env:
        assert isinstance(self._source, str)
        return gym.make(self._source, render_mode=render_mode, **self._kwargs)

    def _make_from_factory(self, render_mode: str | None) -> gym.Env:
        factory = self._source
        assert callable(factory)
        if render_mode is None:
            env = factory(**self._kwargs)
        else:
            try:
                accepts = "render_mode" in inspect.signature(factory).parameters or any(
                    p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(factory).parameters.values()
                )
            except (TypeError, ValueError):
                accepts = True
            if not accepts:
                raise ValueError(
                    f"implementation {self.name!r}: render_mode={render_mode!r} was asked for, but its factory "
                    "takes no render_mode argument"
                )
            env = factory(render_mode=render_mode, **self._kwargs)
        if not isinstance(env, gym.Env):
            raise TypeError(f"implementation {self.name!r}: the factory returned {type(env).__name__}, not a gymnasium.Env")
        return env

    def acquire(self, render_mode: str | None) -> gym.Env:
        """An env instance for one trial (from the pool, or new)."""
        if render_mode is not None and render_mode not in self.render_modes:
            raise ValueError(
                f"implementation {self.name!r} does not support render_mode={render_mode!r}; "
                f"it supports {self.render_modes}"
            )
        with self._lock:
            idle = self._pool.get(render_mode)
            if idle:
                return idle.pop()
        return self._make(render_mode)

    def release(self, env: gym.Env, render_mode: str | None) -> None:
        """Give an instance back after a trial; closed instead if the host is closing."""
        with self._lock:
            if not self._closed:
                self._pool.setdefault(render_mode, []).append(env)
                return
        env.close()

    def discard(self, env: gym.Env) -> None:
        """Close an instance that failed; it is not reused."""
        try:
            env.close()
        except Exception:  # closing a broken env must not hide the original failure
            logger.exception("closing a failed env of %r", self.name)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            envs = [env for idle in self._pool.values() for env in idle]
            self._pool.clear()
        for env in envs:
            self.discard(env)


class EnvHost:
    """The implementations served by one environment server.

    Args:
        envs: a Gymnasium id, an env factory, or a mapping of implementation names to those.
        env_kwargs: passed to ``gym.make`` / the factory for every instance.
    """

    def __init__(self, envs: EnvSource | Mapping[str, EnvSource], env_kwargs: Mapping[str, Any] | None = None) -> None:
        if isinstance(envs, Mapping):
            sources = dict(envs)
            if not sources:
                raise ValueError("no environment to serve: the mapping is empty")
        elif isinstance(envs, str):
            sources = {envs: envs}
        else:
            sources = {getattr(envs, "__name__", type(envs).__name__): envs}
        self.implementations: dict[str, Implementation] = {}
        try:
            for name, source in sources.items():
                self.implementations[name] = Implementation(name, source, env_kwargs)
        except BaseException:
            self.close()
            raise

    @property
    def default(self) -> Implementation:
        return next(iter(self.implementations.values()))

    def get(self, name: str) -> Implementation:
        """The implementation called ``name``; the first one when ``name`` is empty."""
        if not name:
            return self.default
        impl = self.implementations.get(name)
        if impl is None:
            raise UnknownImplementationError(
                f"implementation {name!r} is not served here; served: {sorted(self.implementations)}"
            )
        return impl

    def close(self) -> None:
        for impl in self.implementations.values():
            impl.close()
