"""``ConnectionOptions``: where a facade's trials run and how they are reached, in one object.

Every facade (:class:`~cogment_gym.envs.CogmentEnv`, :class:`~cogment_gym.envs.CogmentVectorEnv`,
the PettingZoo facades, the RLlib creators) takes the same connection keywords; they become one
frozen :class:`ConnectionOptions`, checked once here, and the connection is built from it
(:func:`~cogment_gym.envs.connection.make_connection`). A facade accepts the keywords as before,
or ``options=ConnectionOptions(...)``, not both.

:func:`ended_by_orchestrator` is the one place where a trial ended by the Orchestrator
(``max_steps``, a soft ``TerminateTrial``) becomes a Gymnasium / PettingZoo truncation.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np

from cogment_gym.codec.payloads import flag_summary
from cogment_gym.protocol.security import Security

__all__ = ["ConnectionOptions", "connection_options", "ended_by_orchestrator"]


@dataclass(frozen=True)
class ConnectionOptions:
    """How a facade runs its trials (see :class:`~cogment_gym.envs.CogmentEnv` for each field).

    Args:
        env: a Gymnasium id / PettingZoo module path or an env factory, run in this process
            (embedded default).
        environment: endpoint of an environment service, or a list of endpoints of services of
            the same environment, instead of ``env``.
        implementation: which implementation of that service (default: its first).
        orchestrator: endpoint of an Orchestrator's TrialLifecycleSP (default: one embedded).
        actor_endpoint: that Orchestrator's ClientActorSP, when on another port.
        render_mode: passed to the served env.
        max_steps: Cogment ``max_steps`` of each trial (0: none).
        timeout: seconds to wait for any answer from the trial.
        observation_space, action_space: the spaces of a remote env that serves no EnvSpecSP.
        actor_class: the class of that env's single actor.
        datalog: record every trial: a datalog endpoint, a ``pathlib.Path`` or a ``TrialRecorder``.
        security: how channels are dialed (:class:`~cogment_gym.protocol.security.Security`).
        env_threads: embedded default (``env`` given) only: run each env instance on a thread of
            its own (``True``: calls can be given a deadline, a blocking env does not stall the
            loop) or inline on the event loop (``False``, the default: 0.5-0.73x the hand-over
            cost, docs/performance.md). Served envs decide this where they are served.
        make_kwargs: keyword arguments of ``gym.make`` / the env factory (``env`` only).

    Example:
        >>> options = ConnectionOptions(environment="grpc://127.0.0.1:9001", timeout=10.0)
        >>> env = CogmentEnv(options=options)
    """

    env: str | Callable[..., Any] | None = None
    environment: str | Sequence[str] | None = None
    implementation: str = ""
    orchestrator: str | None = None
    actor_endpoint: str | None = None
    render_mode: str | None = None
    max_steps: int = 0
    timeout: float = 30.0
    observation_space: gym.Space[Any] | None = None
    action_space: gym.Space[Any] | None = None
    actor_class: str = "player"
    datalog: Any = None
    security: Security | None = None
    env_threads: bool = False
    make_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        env, environment = self.env, self.environment
        if isinstance(environment, (list, tuple)):
            if not environment:
                raise TypeError("environment= is an empty list of endpoints")
            if not all(isinstance(e, str) for e in environment):
                raise TypeError(f"environment must be an endpoint string or a list of them, got {list(environment)!r}")
            object.__setattr__(self, "environment", tuple(environment))
        elif environment is not None and not isinstance(environment, str):
            raise TypeError(f"environment must be an endpoint string or a list of them, got {type(environment).__name__}")
        if env is None and environment is None:
            raise TypeError("give an environment to run: an env id / factory, or environment='grpc://host:port'")
        if env is not None and environment is not None:
            raise TypeError("give either an env id / factory (embedded) or environment='grpc://...', not both")
        if env is not None and self.orchestrator is not None:
            raise TypeError(
                "a remote orchestrator cannot reach an environment living in this process; "
                "serve it (cogment_gym.serve) and pass environment='grpc://...'"
            )
        for name in ("implementation", "actor_class"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str, got {getattr(self, name)!r}")
        for name in ("orchestrator", "actor_endpoint", "render_mode"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str or None, got {value!r}")
        steps = self.max_steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"max_steps must be an int >= 0 (0: no limit), got {steps!r}")
        timeout = self.timeout
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
            raise TypeError(f"timeout must be a number of seconds, got {timeout!r}")
        if (self.observation_space is None) != (self.action_space is None):
            raise TypeError("give both observation_space and action_space, or neither")
        if self.observation_space is not None and environment is None:
            raise TypeError("observation_space/action_space describe a remote environment: also pass environment='grpc://...'")
        if self.security is not None and not isinstance(self.security, Security):
            raise TypeError(f"security must be a cogment_gym.Security, got {type(self.security).__name__}")
        if not isinstance(self.env_threads, bool):
            raise TypeError(f"env_threads must be a bool, got {self.env_threads!r}")
        if not isinstance(self.make_kwargs, Mapping):
            raise TypeError(f"make_kwargs must be a mapping, got {type(self.make_kwargs).__name__}")
        object.__setattr__(self, "make_kwargs", dict(self.make_kwargs))
        _check_datalog(self.datalog, self.orchestrator)

    @property
    def endpoints(self) -> list[str]:
        """The environment endpoints (empty in the embedded default)."""
        environment = self.environment
        if environment is None:
            return []
        return [environment] if isinstance(environment, str) else list(environment)

    @property
    def embedded_env(self) -> bool:
        """The env is made in this process (``env`` given)."""
        return self.env is not None

    def replace(self, **changes: Any) -> ConnectionOptions:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)


_DEFAULTS = {f.name: (f.default if f.default is not dataclasses.MISSING else {}) for f in dataclasses.fields(ConnectionOptions)}


def connection_options(options: ConnectionOptions | None, /, **given: Any) -> ConnectionOptions:
    """A facade's :class:`ConnectionOptions`: ``options`` when given (then every keyword in
    ``given`` must be at its default), else one made of ``given``.

    Raises:
        TypeError: both ``options=`` and connection keywords were given.
    """
    if options is None:
        return ConnectionOptions(**given)
    if not isinstance(options, ConnectionOptions):
        raise TypeError(f"options must be a ConnectionOptions, got {type(options).__name__}")
    clashing = sorted(name for name, value in given.items() if not _is_default(name, value))
    if clashing:
        raise TypeError(f"give either options=ConnectionOptions(...) or the keywords {clashing}, not both")
    return options


def _is_default(name: str, value: Any) -> bool:
    default = _DEFAULTS[name]
    if isinstance(default, dict):
        return not value
    return value is default or (type(value) is type(default) and value == default)


def _check_datalog(datalog: Any, orchestrator: str | None) -> None:
    """``datalog=``'s type and form (the recorder itself is made by the connection)."""
    from cogment_gym.datastore.server import TrialRecorder
    from cogment_gym.protocol import parse_endpoint

    if datalog is None:
        return
    if isinstance(datalog, (TrialRecorder, os.PathLike)):
        if orchestrator is not None:
            raise TypeError(
                "a remote orchestrator cannot reach a recorder living in this process; serve it "
                "(cogment_gym.datastore.serve_datalog) and pass datalog='grpc://...'"
            )
        return
    if isinstance(datalog, str):
        try:
            parsed = parse_endpoint(datalog)
        except ValueError as err:
            raise ValueError(
                f"datalog={datalog!r}: {err}; a string is a datalog endpoint (grpc://host:port), "
                "give a pathlib.Path to record into a directory"
            ) from None
        if parsed.scheme not in ("grpc", "unix"):
            raise ValueError(f"datalog={datalog!r}: a datalog service is reached at grpc:// or unix: endpoints")
        return
    raise TypeError(f"datalog must be an endpoint string, a pathlib.Path or a TrialRecorder, got {type(datalog).__name__}")


def ended_by_orchestrator(final: bool, terminated: Any, truncated: Any) -> Any:
    """The ``truncated`` flag(s) Gymnasium / PettingZoo see at a step of a trial.

    An episode whose trial the Orchestrator ended (``final``: ``max_steps``, a soft
    ``TerminateTrial``) while the env marked it neither terminated nor truncated was cut by a
    time limit: a truncation. ``truncated`` is returned unchanged otherwise.

    ``terminated`` / ``truncated``: flags of one episode (bools, or per-agent tuples: done when all
    are), or bool arrays of a batched trial's episodes (each one cut that did not terminate).
    """
    if not final:
        return truncated
    if isinstance(truncated, np.ndarray):
        return truncated | ~np.asarray(terminated, dtype=np.bool_)
    if flag_summary(terminated) or flag_summary(truncated, "truncated"):
        return truncated
    return True
