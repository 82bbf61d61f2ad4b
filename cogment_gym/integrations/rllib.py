"""RLlib (Ray, new API stack) over Cogment trials: env creators for RLlib's env runners.

Needs the ``rllib`` extra (``pip install 'cogment-gym[rllib]'``). Every env runner is a Ray
worker process; it calls the creator with the algorithm's ``env_config`` and so builds its own
facade, its own embedded Orchestrator and its own connection to the environment service. Only
the ``env_config`` crosses process boundaries, and it holds strings and numbers (endpoints, ids,
PEM paths).

- :func:`cogment_env_creator`: single agent. RLlib's default vectorisation (``"sync"``) calls it
  once per sub-environment and gets a :class:`~cogment_gym.envs.CogmentEnv`; with
  ``gym_env_vectorize_mode="vector_entry_point"`` RLlib calls it once per env runner, with
  ``num_envs`` added to the config, and gets a :class:`~cogment_gym.envs.CogmentVectorEnv`
  (all the runner's trials in flight at once, through one Orchestrator, in ``NEXT_STEP``
  autoreset mode as RLlib's env runner expects).
- :func:`cogment_multi_agent_env_creator`: a :class:`~cogment_gym.envs.CogmentParallelEnv` wrapped
  in RLlib's ``ParallelPettingZooEnv`` (the env must be served with the parallel API, and its
  agents must stay in the episode until it ends, as that wrapper assumes).
- :func:`register_cogment_env`: either, registered under a name with ``ray.tune.register_env``
  (``config.environment()`` takes an env class or a registered name, not a function).

RLlib closes its envs when the env runners stop (``algo.stop()``), which ends their trials and
Orchestrators.

``env_config`` keys (all optional but one of ``environment`` / ``env``):

==================  =================================================================================
``environment``     endpoint of an environment service (``"grpc://127.0.0.1:9001"``, from
                    ``cogment_gym.serve`` or ``cogment-gym serve``), or a list of endpoints of the
                    same environment: env runner ``w`` plays on ``environment[w % n]`` (its
                    ``worker_index``), or, in ``vector_entry_point`` mode, sub-env ``i`` on
                    ``environment[i % n]``
``env``             a Gymnasium id or PettingZoo module path, run inside each env runner instead
``implementation``  which implementation of the service (default: its first)
``orchestrator``    endpoint of an Orchestrator's TrialLifecycleSP (default: one embedded per env)
``actor_endpoint``  that Orchestrator's ClientActorSP, when on another port
``max_steps``       Cogment ``max_steps`` of each trial (0: none)
``timeout``         seconds to wait for any answer from the trial (default 30)
``render_mode``     passed to the served env
``service_actors``  agent id -> endpoint of a service actor playing it (multi-agent games)
``agent``           single agent in a multi-agent game: the agent the env runner plays
``make_kwargs``     keyword arguments of ``gym.make`` / the PettingZoo env (``env`` only)
``num_envs``        set by RLlib in ``vector_entry_point`` mode: the number of sub-environments
``envs_per_trial``  ``vector_entry_point`` mode: sub-environments per batched trial (a divisor of
                    ``num_envs``; 1: one episode per trial; default: chosen, batched trials where
                    they can run), see CogmentVectorEnv
``env_threads``     ``env`` only: each env instance on a thread of its own (default False: inline)
``security``        how the env service / Orchestrator / service actors are dialed: a
                    :class:`~cogment_gym.protocol.security.Security`, or a mapping of its client
                    fields (``root_cert``, ``private_key``, ``cert_chain``: PEM paths readable on
                    every env runner's machine; ``tls``, ``server_name``, ``token``) and
                    ``token_file`` (a file whose first line is the token, read by each env
                    runner). Prefer ``token_file``: RLlib keeps its config, ``token`` included,
                    in results and checkpoints. See docs/security.md
==================  =================================================================================

Example:
    >>> import cogment_gym
    >>> from ray.rllib.algorithms.ppo import PPOConfig
    >>> from cogment_gym.integrations.rllib import register_cogment_env
    >>> server = cogment_gym.serve("CartPole-v1")            # or `cogment-gym serve` elsewhere
    >>> config = (
    ...     PPOConfig()
    ...     .environment(register_cogment_env("cogment-cartpole"), env_config={"environment": server.endpoint})
    ...     .env_runners(num_env_runners=2, num_envs_per_env_runner=4,
    ...                  gym_env_vectorize_mode="vector_entry_point")
    ... )
    >>> algo = config.build_algo()
    >>> result = algo.train()
    >>> algo.stop(); server.stop()
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Callable, Mapping

import gymnasium as gym

from cogment_gym.envs.cogment_env import CogmentEnv
from cogment_gym.envs.options import ConnectionOptions
from cogment_gym.envs.vector import CogmentVectorEnv
from cogment_gym.errors import EnvConfigError, SecuritySettingsError
from cogment_gym.protocol.security import Security
from cogment_gym.extras import missing_extra

try:
    from ray.tune.registry import register_env
except ImportError as err:
    raise missing_extra("ray", "cogment_gym.integrations.rllib", err) from err

if TYPE_CHECKING:
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

__all__ = [
    "MULTI_AGENT_KEYS",
    "SINGLE_AGENT_KEYS",
    "cogment_env_creator",
    "cogment_multi_agent_env_creator",
    "register_cogment_env",
]

_COMMON_KEYS = (
    "environment", "env", "implementation", "orchestrator", "actor_endpoint", "max_steps", "timeout",
    "render_mode", "service_actors", "make_kwargs", "security", "env_threads",
)
#: ``env_config`` keys :func:`cogment_env_creator` accepts.
SINGLE_AGENT_KEYS = frozenset(_COMMON_KEYS + ("agent", "num_envs", "envs_per_trial"))
#: ``env_config`` keys :func:`cogment_multi_agent_env_creator` accepts.
MULTI_AGENT_KEYS = frozenset(_COMMON_KEYS)

_TYPES: dict[str, tuple[type, ...]] = {
    "environment": (str, list, tuple),
    "env": (str,),
    "implementation": (str,),
    "orchestrator": (str,),
    "actor_endpoint": (str,),
    "max_steps": (int,),
    "timeout": (int, float),
    "render_mode": (str, type(None)),
    "service_actors": (Mapping,),
    "agent": (str,),
    "make_kwargs": (Mapping,),
    "num_envs": (int,),
    "envs_per_trial": (int,),
    "env_threads": (bool,),
    "security": (Security, Mapping),
}

# The keys of a ``security`` mapping: the client side of Security, and a token file.
_SECURITY_KEYS = frozenset({"root_cert", "private_key", "cert_chain", "tls", "server_name", "token", "token_file"})

# Names people reach for, and the key that means it (difflib would suggest "actor_endpoint").
_LIKELY = {"endpoint": "environment", "endpoints": "environment", "env_endpoint": "environment", "env_id": "env",
           "env_kwargs": "make_kwargs", "kwargs": "make_kwargs"}


def cogment_env_creator(env_config: Mapping[str, Any]) -> gym.Env[Any, Any] | CogmentVectorEnv:
    """RLlib env creator (single agent): a :class:`~cogment_gym.envs.CogmentEnv`, or a
    :class:`~cogment_gym.envs.CogmentVectorEnv` of ``env_config["num_envs"]`` sub-environments
    when RLlib asks for a vector env (``gym_env_vectorize_mode="vector_entry_point"``).

    Args:
        env_config: RLlib's ``EnvContext`` (a dict; its ``worker_index`` attribute, when present,
            picks this runner's endpoint in a list of endpoints). Keys: see the module docstring.

    Raises:
        EnvConfigError: neither ``environment`` nor ``env`` is given, a key is unknown, or a value
            has the wrong type.

    Example:
        >>> env = cogment_env_creator({"environment": "grpc://127.0.0.1:9001"})
        >>> envs = cogment_env_creator({"environment": "grpc://127.0.0.1:9001", "num_envs": 8})
    """
    who = "cogment_env_creator"
    options = _read(env_config, SINGLE_AGENT_KEYS, who)
    num_envs = options.pop("num_envs", None)
    envs_per_trial = options.pop("envs_per_trial", None)
    if num_envs is None and envs_per_trial is not None and envs_per_trial != 1:
        raise EnvConfigError(
            f"env_config['envs_per_trial']={envs_per_trial} needs a vector env: set "
            "gym_env_vectorize_mode='vector_entry_point' in .env_runners(...)"
        )
    if num_envs is not None:
        if num_envs < 1:
            raise EnvConfigError(f"env_config['num_envs'] must be at least 1: got {num_envs}")
        if "service_actors" in options or "agent" in options:
            raise EnvConfigError(
                "env_config['service_actors'] / ['agent'] (a multi-agent game played by one agent) need one "
                "CogmentEnv per sub-environment: use RLlib's default gym_env_vectorize_mode ('sync')"
            )
        # Sub-env i plays on endpoints[i % n] (RLlib's vector entry point passes a plain dict,
        # without the runner's index).
        return CogmentVectorEnv(num_envs=num_envs, envs_per_trial=envs_per_trial, options=_connection(options, who))
    facade = {key: options.pop(key) for key in ("agent", "service_actors") if key in options}
    return CogmentEnv(options=_connection(_one_endpoint(options, env_config), who), **facade)


def cogment_multi_agent_env_creator(env_config: Mapping[str, Any]) -> ParallelPettingZooEnv:
    """RLlib env creator (multi-agent): ``ParallelPettingZooEnv(CogmentParallelEnv(...))``.

    The environment must be served with the parallel API (``cogment_gym.serve(...,
    api="parallel")``, or ``env`` names a PettingZoo module, run in the env runner with its
    ``parallel_env()``). RLlib's wrapper starts a first trial at construction to learn the agents.

    Args:
        env_config: RLlib's ``EnvContext``; keys: see the module docstring (no ``num_envs``,
            ``agent``: RLlib vectorises multi-agent envs itself).

    Raises:
        EnvConfigError: as for :func:`cogment_env_creator`.
    """
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    from cogment_gym.envs.pettingzoo_env import CogmentParallelEnv

    who = "cogment_multi_agent_env_creator"
    options = _read(env_config, MULTI_AGENT_KEYS, who)
    service_actors = options.pop("service_actors", None)
    parallel_env = CogmentParallelEnv(options=_connection(_one_endpoint(options, env_config), who), service_actors=service_actors)
    try:
        return ParallelPettingZooEnv(parallel_env)
    except BaseException:
        parallel_env.close()
        raise


def register_cogment_env(name: str = "cogment", *, multi_agent: bool = False) -> str:
    """Register :func:`cogment_env_creator` (or :func:`cogment_multi_agent_env_creator`) with
    ``ray.tune.register_env`` under ``name``, for ``config.environment(name, env_config=...)``.

    Returns:
        ``name``.

    Example:
        >>> register_cogment_env("cogment-cartpole")
        'cogment-cartpole'
        >>> config = PPOConfig().environment("cogment-cartpole", env_config={"environment": endpoint})
    """
    creator: Callable[[Mapping[str, Any]], Any] = cogment_multi_agent_env_creator if multi_agent else cogment_env_creator
    register_env(name, creator)
    return name


def _read(env_config: Mapping[str, Any], allowed: frozenset[str], who: str) -> dict[str, Any]:
    """The checked options of an ``env_config`` (a copy; RLlib's EnvContext is left alone)."""
    if not isinstance(env_config, Mapping):
        raise EnvConfigError(f"{who} expects an env_config mapping: got {type(env_config).__name__}")
    unknown = sorted(str(key) for key in env_config if key not in allowed)
    if unknown:
        hints = [f"{key!r} (did you mean {hint!r}?)" if (hint := _hint(key, allowed)) else repr(key) for key in unknown]
        raise EnvConfigError(f"{who}: unknown env_config key(s) {', '.join(hints)}; expected some of {sorted(allowed)}")
    if env_config.get("environment") is None and env_config.get("env") is None:
        raise EnvConfigError(
            f"{who}: env_config must name the environment: 'environment' (endpoint of an env service, e.g. "
            f"'grpc://127.0.0.1:9001') or 'env' (a Gymnasium id or PettingZoo module to run in the env runner); "
            f"got keys {sorted(str(key) for key in env_config)}"
        )
    options: dict[str, Any] = {}
    for key, value in env_config.items():
        types = _TYPES[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise EnvConfigError(f"{who}: env_config[{key!r}] must be {expected}: got {value!r}")
        options[key] = value
    endpoints = options.get("environment")
    if isinstance(endpoints, (list, tuple)):
        if not endpoints or not all(isinstance(e, str) for e in endpoints):
            raise EnvConfigError(
                f"{who}: env_config['environment'] must be an endpoint or a non-empty list of endpoints: got {endpoints!r}"
            )
        options["environment"] = list(endpoints)
    services = options.get("service_actors")
    if services is not None:
        bad = {agent: value for agent, value in services.items() if not isinstance(value, str)}
        if bad:
            raise EnvConfigError(
                f"{who}: env_config['service_actors'] maps agents to endpoints (strings, sent to every env runner): "
                f"got {bad!r}"
            )
        options["service_actors"] = dict(services)
    if "security" in options:
        options["security"] = _security(options["security"], who)
    return options


def _one_endpoint(options: dict[str, Any], env_config: Mapping[str, Any]) -> dict[str, Any]:
    """A list of endpoints narrowed to this env runner's (``worker_index``), for one facade."""
    endpoints = options.get("environment")
    if endpoints is not None and not isinstance(endpoints, str):
        options["environment"] = endpoints[_index(env_config, "worker_index") % len(endpoints)]
    return options


def _connection(options: Mapping[str, Any], who: str) -> ConnectionOptions:
    """The checked connection keys of an ``env_config`` as one :class:`ConnectionOptions`."""
    try:
        return ConnectionOptions(**options)
    except (TypeError, ValueError) as err:
        raise EnvConfigError(f"{who}: env_config: {err}") from None


def _security(value: Security | Mapping[str, Any], who: str) -> Security:
    """``env_config['security']`` as :class:`Security` (a token file is read here, in the env runner)."""
    if isinstance(value, Security):
        return value
    unknown = sorted(str(key) for key in value if key not in _SECURITY_KEYS)
    if unknown:
        raise EnvConfigError(f"{who}: unknown env_config['security'] key(s) {unknown}; expected some of {sorted(_SECURITY_KEYS)}")
    fields = dict(value)
    token_file = fields.pop("token_file", None)
    try:
        if token_file is not None:
            if "token" in fields:
                raise EnvConfigError(f"{who}: env_config['security'] has both 'token' and 'token_file': give one")
            try:
                with open(token_file, encoding="utf-8") as file:
                    fields["token"] = file.readline().strip()
            except (OSError, UnicodeDecodeError) as err:
                raise EnvConfigError(f"{who}: cannot read env_config['security']['token_file'] {token_file!r}: {err}") from None
        return Security(**fields)
    except SecuritySettingsError as err:
        raise EnvConfigError(f"{who}: env_config['security']: {err}") from None


def _hint(key: str, allowed: frozenset[str]) -> str | None:
    """The accepted key a wrong one probably meant."""
    if _LIKELY.get(key) in allowed:
        return _LIKELY[key]
    close = difflib.get_close_matches(key, sorted(allowed), 1)
    return close[0] if close else None


def _index(env_config: Mapping[str, Any], attribute: str) -> int:
    """``EnvContext.worker_index`` / ``vector_index`` (0 for a plain dict)."""
    value = getattr(env_config, attribute, 0)
    return value if isinstance(value, int) else 0
