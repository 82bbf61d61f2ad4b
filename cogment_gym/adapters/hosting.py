"""What an environment server hosts: implementations and their specs.

An *implementation* is one kind of environment a server can run trials of, named as Cogment's
``EnvironmentParams.implementation`` names it. Each trial gets its own env instance, which lives
on a thread of its own; instances are pooled per render mode and reused by later trials (every
trial starts with ``reset``; see :mod:`cogment_gym.adapters.pool`).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Mapping, Union

import gymnasium as gym

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.adapters import pettingzoo_trial
from cogment_gym.adapters.pettingzoo_trial import PettingZooImplementation
from cogment_gym.adapters.env_thread import EnvCalls, EnvThread, InlineCalls, env_thread_name
from cogment_gym.adapters.pool import CLOSE_TIMEOUT, EnvPool, Instance, close_envs, factory_accepts_render_mode, join_threads, metadata_message
from cogment_gym.codec import space_to_proto
from cogment_gym.errors import UnknownImplementationError
from cogment_gym.extras import missing_for_source

__all__ = ["EnvFactory", "EnvHost", "EnvSource", "Implementation", "make_implementation"]

logger = logging.getLogger(__name__)

EnvFactory = Callable[..., gym.Env]
EnvSource = Union[str, EnvFactory]
AnyImplementation = Union["Implementation", PettingZooImplementation]
# Name of the single Cogment actor of a Gymnasium (single-agent) environment.
DEFAULT_ACTOR_NAME = "player"
DEFAULT_ACTOR_CLASS = "player"


class Implementation(EnvPool):
    """One hosted Gymnasium environment: how to make instances, and its spec.

    Args:
        probe: an instance the factory already made (it is pooled, not made twice), with its thread.
        env_threads: each instance on a thread of its own (see :class:`~cogment_gym.adapters.pool.EnvPool`).
    """

    multi_agent = False

    def __init__(
        self,
        name: str,
        source: EnvSource,
        env_kwargs: Mapping[str, Any] | None = None,
        *,
        probe: Instance | None = None,
        env_threads: bool = True,
    ) -> None:
        super().__init__(env_threads=env_threads)
        self.name = name
        self._kwargs = dict(env_kwargs or {})
        self._source = source
        self._maker: Callable[[str | None], gym.Env]
        if isinstance(source, str):
            self._maker = functools.partial(self._make_registered, source)
        elif isinstance(source, gym.Env):
            raise TypeError(
                f"implementation {name!r}: got an env instance ({type(source).__name__}); each trial needs its own "
                "instance, so pass a Gymnasium id or a factory such as `lambda: MyEnv()`"
            )
        elif callable(source):
            self._maker = functools.partial(self._make_from_factory, source)
        else:
            raise TypeError(f"implementation {name!r}: expected a Gymnasium id or an env factory, got {source!r}")
        if probe is None:
            probe = self.create(None)
        try:
            self._describe(probe.env)
        except BaseException:
            self.discard(probe)
            raise
        self.release(probe, None)

    def _describe(self, probe: gym.Env) -> None:
        name = self.name
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
            metadata=metadata_message(self.metadata),
            gym_id=self.gym_spec.id if self.gym_spec is not None else "",
            max_episode_steps=(self.gym_spec.max_episode_steps or 0) if self.gym_spec is not None else 0,
        )

    def _make(self, render_mode: str | None) -> gym.Env:
        return self._maker(render_mode)

    def _make_registered(self, env_id: str, render_mode: str | None) -> gym.Env:
        if render_mode is None:
            # Not render_mode=None: gym.make passes it on, and some envs take no render_mode
            # argument at all (highway-env's lane-keeping-v0, parking-parked-v0).
            return gym.make(env_id, **self._kwargs)
        return gym.make(env_id, render_mode=render_mode, **self._kwargs)

    def _make_from_factory(self, factory: EnvFactory, render_mode: str | None) -> gym.Env:
        if render_mode is None:
            env = factory(**self._kwargs)
        else:
            if not factory_accepts_render_mode(factory):
                raise ValueError(
                    f"implementation {self.name!r}: render_mode={render_mode!r} was asked for, but its factory "
                    "takes no render_mode argument"
                )
            env = factory(render_mode=render_mode, **self._kwargs)
        if not isinstance(env, gym.Env):
            raise TypeError(f"implementation {self.name!r}: the factory returned {type(env).__name__}, not a gymnasium.Env")
        return env


class EnvHost:
    """The implementations served by one environment server.

    Args:
        envs: a Gymnasium id, an env factory, or a mapping of implementation names to those.
            PettingZoo environments are served too: an importable module path such as
            ``"pettingzoo.classic.connect_four_v3"``, or a factory of ``AECEnv`` / ``ParallelEnv``
            instances (see :mod:`cogment_gym.adapters.pettingzoo_trial`).
        env_kwargs: passed to ``gym.make`` / the factory for every instance.
        api: PettingZoo sources only: ``"aec"`` or ``"parallel"`` to serve the environment with
            that API (converting it with PettingZoo's wrappers if needed); None: a module's
            ``env()`` (AEC), a factory's own API.
        max_agents: PettingZoo environments without ``possible_agents`` (agents generated during
            the episode): the number of agent slots their spec offers.
        env_threads: every env instance on a thread of its own, off the server's event loop
            (default); False: env calls run in the calling thread (see :mod:`env_thread`).
    """

    def __init__(
        self,
        envs: EnvSource | Mapping[str, EnvSource],
        env_kwargs: Mapping[str, Any] | None = None,
        *,
        api: str | None = None,
        max_agents: int | None = None,
        env_threads: bool = True,
    ) -> None:
        self.env_threads = env_threads
        if isinstance(envs, Mapping):
            sources = dict(envs)
            if not sources:
                raise ValueError("no environment to serve: the mapping is empty")
        elif isinstance(envs, str):
            sources = {envs: envs}
        else:
            sources = {getattr(envs, "__name__", type(envs).__name__): envs}
        self.implementations: dict[str, AnyImplementation] = {}
        try:
            for name, source in sources.items():
                self.implementations[name] = make_implementation(
                    name, source, env_kwargs, api=api, max_agents=max_agents, env_threads=env_threads
                )
        except BaseException:
            self.close()
            raise

    @property
    def default(self) -> AnyImplementation:
        return next(iter(self.implementations.values()))

    def get(self, name: str) -> AnyImplementation:
        """The implementation called ``name``; the first one when ``name`` is empty."""
        if not name:
            return self.default
        impl = self.implementations.get(name)
        if impl is None:
            raise UnknownImplementationError(
                f"implementation {name!r} is not served here; served: {sorted(self.implementations)}"
            )
        return impl

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close every idle env instance, waiting at most ``timeout`` s in all (see :meth:`EnvPool.close`)."""
        threads = [calls for impl in self.implementations.values() for calls in impl.shut()]
        join_threads(threads, timeout)


def make_implementation(
    name: str,
    source: EnvSource,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    api: str | None = None,
    max_agents: int | None = None,
    env_threads: bool = True,
) -> AnyImplementation:
    """A Gymnasium or a PettingZoo implementation, whichever ``source`` makes.

    Strings: a Gymnasium id if registered (or ``module:Id``), else an importable PettingZoo
    module path (a ``pettingzoo.`` path without PettingZoo installed raises
    :class:`~cogment_gym.errors.MissingExtraError`, naming the extra). Factories: called once, on
    the thread the instance will live on, to see what they make (that instance is pooled).
    """
    if api is not None and api not in ("aec", "parallel"):
        raise ValueError(f"api must be 'aec', 'parallel' or None, got {api!r}")
    if isinstance(source, str):
        if source not in gym.registry and ":" not in source:
            if pettingzoo_trial.find_module(source) is not None:
                return pettingzoo_trial.PettingZooImplementation(
                    name, source, env_kwargs, api=api, max_agents=max_agents, env_threads=env_threads
                )
            missing = missing_for_source(source)  # a PettingZoo path without the extra: say which
            if missing is not None:
                raise missing
        return Implementation(name, source, env_kwargs, env_threads=env_threads)
    if isinstance(source, gym.Env) or not callable(source):
        return Implementation(name, source, env_kwargs, env_threads=env_threads)  # raises the usual TypeError
    calls: EnvCalls = EnvThread(env_thread_name(name)) if env_threads else InlineCalls(env_thread_name(name))
    kwargs = dict(env_kwargs or {})
    try:
        env = calls.run("__init__", lambda: source(**kwargs))
    except BaseException:
        calls.close()
        raise
    probe = Instance([env], calls)
    try:
        if pettingzoo_trial.is_pettingzoo_env(env):
            return pettingzoo_trial.PettingZooImplementation(
                name, source, env_kwargs, api=api, max_agents=max_agents, probe=probe, env_threads=env_threads
            )
        if not isinstance(env, gym.Env):
            raise TypeError(
                f"implementation {name!r}: the factory returned {type(env).__name__}, not a gymnasium.Env "
                "(nor a PettingZoo AECEnv / ParallelEnv)"
            )
        return Implementation(name, source, env_kwargs, probe=probe, env_threads=env_threads)
    except BaseException:
        if not calls.closed:  # (an implementation discards a probe that fails to describe itself)
            calls.submit("close", close_envs, probe.envs, name)
            calls.close()
        raise
