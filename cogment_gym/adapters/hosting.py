"""What an environment server hosts: implementations, their specs, and pools of env instances.

An *implementation* is one kind of environment a server can run trials of, named as Cogment's
``EnvironmentParams.implementation`` names it. Each trial gets its own env instance; instances
are pooled per render mode and reused by later trials (every trial starts with ``reset``).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

import gymnasium as gym

from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import encode_object, space_to_proto
from cogment_gym.errors import CogmentGymError, UnsupportedValueError

__all__ = ["EnvFactory", "EnvHost", "EnvPool", "EnvSource", "Implementation", "UnknownImplementationError", "make_implementation"]

if TYPE_CHECKING:
    from cogment_gym.adapters.pettingzoo_trial import PettingZooImplementation

logger = logging.getLogger(__name__)

EnvFactory = Callable[..., gym.Env]
EnvSource = Union[str, EnvFactory]
AnyImplementation = Union["Implementation", "PettingZooImplementation"]
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


# Idle instances kept for their key (EnvConfig.instance_key) at most; beyond, the longest idle
# goes back to the shared pool (a client that vanished does not hold instances forever).
MAX_KEYED_INSTANCES = 1024


class EnvPool:
    """Idle env instances of one implementation, per render mode (every trial starts with a reset).

    An instance released with a key (``EnvConfig.instance_key``: a client's name for one of its
    sub-environments) is kept for that key: the next trial with the same key gets it back, so an
    unseeded ``reset`` continues its random generator as a local env's would.

    Subclasses set ``name``, ``render_modes`` and ``_make(render_mode)``.
    """

    name: str
    render_modes: list[str]

    def __init__(self) -> None:
        self._pool: dict[str | None, list[Any]] = {}
        self._keyed: OrderedDict[tuple[str | None, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    def _make(self, render_mode: str | None) -> Any:
        raise NotImplementedError

    def acquire(self, render_mode: str | None, key: str = "") -> Any:
        """An env instance for one trial: the one kept for ``key``, else an idle one, else new."""
        if render_mode is not None and render_mode not in self.render_modes:
            raise ValueError(
                f"implementation {self.name!r} does not support render_mode={render_mode!r}; "
                f"it supports {self.render_modes}"
            )
        with self._lock:
            if key:
                kept = self._keyed.pop((render_mode, key), None)
                if kept is not None:
                    return kept
            idle = self._pool.get(render_mode)
            if idle:
                return idle.pop()
        return self._make(render_mode)

    def release(self, env: Any, render_mode: str | None, key: str = "") -> None:
        """Give an instance back after a trial (kept for ``key`` when given); closed instead if
        the host is closing."""
        with self._lock:
            if not self._closed:
                if not key:
                    self._pool.setdefault(render_mode, []).append(env)
                    return
                displaced = self._keyed.pop((render_mode, key), None)
                self._keyed[(render_mode, key)] = env
                if displaced is not None:
                    self._pool.setdefault(render_mode, []).append(displaced)
                while len(self._keyed) > MAX_KEYED_INSTANCES:
                    (mode, _), oldest = self._keyed.popitem(last=False)
                    self._pool.setdefault(mode, []).append(oldest)
                return
        env.close()

    def give_back(self, env: Any, render_mode: str | None, key: str, *, failed: bool) -> None:
        """After a trial: :meth:`release` the instance, or :meth:`discard` it if the trial failed."""
        if failed:
            self.discard(env)
        else:
            self.release(env, render_mode, key)

    def discard(self, env: Any) -> None:
        """Close an instance that failed; it is not reused."""
        try:
            env.close()
        except Exception:  # closing a broken env must not hide the original failure
            logger.exception("closing a failed env of %r", self.name)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            envs = [env for idle in self._pool.values() for env in idle] + list(self._keyed.values())
            self._pool.clear()
            self._keyed.clear()
        for env in envs:
            self.discard(env)


def factory_accepts_render_mode(factory: Callable[..., Any]) -> bool:
    """Whether ``factory(render_mode=...)`` is a valid call (True when it cannot be told)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return True
    return "render_mode" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


class Implementation(EnvPool):
    """One hosted Gymnasium environment: how to make instances, and its spec.

    Args:
        probe: an instance the factory already made (it is pooled, not made twice).
    """

    multi_agent = False

    def __init__(self, name: str, source: EnvSource, env_kwargs: Mapping[str, Any] | None = None, *, probe: gym.Env | None = None) -> None:
        super().__init__()
        self.name = name
        self._kwargs = dict(env_kwargs or {})
        self._source = source
        if isinstance(source, str):
            self._maker = self._make_registered
        elif isinstance(source, gym.Env):
            raise TypeError(
                f"implementation {name!r}: got an env instance ({type(source).__name__}); each trial needs its own "
                "instance, so pass a Gymnasium id or a factory such as `lambda: MyEnv()`"
            )
        elif callable(source):
            self._maker = self._make_from_factory
        else:
            raise TypeError(f"implementation {name!r}: expected a Gymnasium id or an env factory, got {source!r}")
        if probe is None:
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

    def _make(self, render_mode: str | None) -> gym.Env:
        return self._maker(render_mode)

    def _make_registered(self, render_mode: str | None) -> gym.Env:
        assert isinstance(self._source, str)
        return gym.make(self._source, render_mode=render_mode, **self._kwargs)

    def _make_from_factory(self, render_mode: str | None) -> gym.Env:
        factory = self._source
        assert callable(factory)
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
    """

    def __init__(
        self,
        envs: EnvSource | Mapping[str, EnvSource],
        env_kwargs: Mapping[str, Any] | None = None,
        *,
        api: str | None = None,
        max_agents: int | None = None,
    ) -> None:
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
                self.implementations[name] = make_implementation(name, source, env_kwargs, api=api, max_agents=max_agents)
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

    def close(self) -> None:
        for impl in self.implementations.values():
            impl.close()


def make_implementation(
    name: str,
    source: EnvSource,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    api: str | None = None,
    max_agents: int | None = None,
) -> AnyImplementation:
    """A Gymnasium or a PettingZoo implementation, whichever ``source`` makes.

    Strings: a Gymnasium id if registered (or ``module:Id``), else an importable PettingZoo
    module path. Factories: called once to see what they make (that instance is pooled).
    """
    if api is not None and api not in ("aec", "parallel"):
        raise ValueError(f"api must be 'aec', 'parallel' or None, got {api!r}")
    if isinstance(source, str):
        if source not in gym.registry and ":" not in source:
            from cogment_gym.adapters import pettingzoo_trial

            if pettingzoo_trial.find_module(source) is not None:
                return pettingzoo_trial.PettingZooImplementation(name, source, env_kwargs, api=api, max_agents=max_agents)
        return Implementation(name, source, env_kwargs)
    if isinstance(source, gym.Env) or not callable(source):
        return Implementation(name, source, env_kwargs)  # raises the usual TypeError
    probe = source(**dict(env_kwargs or {}))
    try:
        from cogment_gym.adapters import pettingzoo_trial

        if pettingzoo_trial.is_pettingzoo_env(probe):
            return pettingzoo_trial.PettingZooImplementation(name, source, env_kwargs, api=api, max_agents=max_agents, probe=probe)
        if not isinstance(probe, gym.Env):
            raise TypeError(
                f"implementation {name!r}: the factory returned {type(probe).__name__}, not a gymnasium.Env "
                "(nor a PettingZoo AECEnv / ParallelEnv)"
            )
        return Implementation(name, source, env_kwargs, probe=probe)
    except BaseException:
        try:
            probe.close()
        except Exception:
            logger.debug("closing the probe env of %r failed", name, exc_info=True)
        raise
