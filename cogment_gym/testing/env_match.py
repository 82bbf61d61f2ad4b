"""Check that an environment behaves the same stepped directly and through a bridge.

The same environment is stepped twice with the same seeds, reset options and actions: once
directly (``gymnasium.make`` or a factory), once through a bridge such as
:class:`cogment_gym.CogmentEnv`. Observations, rewards, ``terminated``, ``truncated`` and
``info`` must be exactly equal: same types (``type(x) is type(y)``: ``int`` is not ``np.int64``,
``dict`` is not ``OrderedDict``), dtypes, shapes, dict key order and values, floats compared bit
for bit except that NaN equals NaN (and ``-0.0`` differs from ``0.0``). cogment_gym's bridge
keeps the environment's own types, so nothing is converted by default.

For a bridge that gives values back in their space's canonical types instead, ``canonical=True``
converts the direct side first: each observation as its space encodes it canonically (a
``Discrete`` observation as ``np.int64`` even when the env returned a Python ``int``, a list for
a ``Box`` as an array of the Box's dtype, dict entries in the space's key order), rewards as
Python ``float`` and the two flags as Python ``bool``. ``info`` is never converted.

Spaces must be equal too, or describe the same way on the wire (a space of a type with no codec
arrives as a :class:`cogment_gym.codec.ForeignSpace`, not equal to the env's own). Flags that are
tuples (one per agent, highway-env's multi-agent intersection) end an episode when all are set,
as the bridge ends its trial then.

Example:
    >>> from cogment_gym import CogmentEnv
    >>> from cogment_gym.testing import check_bridge_matches
    >>> bridged = CogmentEnv("CartPole-v1")
    >>> report = check_bridge_matches("CartPole-v1", bridged, seeds=[0, 1], max_steps=50)
    >>> bridged.close()
    >>> report.episodes
    2
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from cogment_gym.codec import space_to_proto
from cogment_gym.codec.payloads import flag_summary
from cogment_gym.errors import CogmentGymError

__all__ = ["MatchReport", "assert_data_equal", "canonical_value", "check_bridge_matches", "same_space"]


# ---------------------------------------------------------------------------------------------
# strict comparison


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}: {np.array2string(value, threshold=20)}"
    if isinstance(value, np.generic):
        return f"{type(value).__name__}({value!r})"
    text = repr(value)
    return f"{type(value).__name__} {text[:120]}{'...' if len(text) > 120 else ''}"


def _float_arrays_equal(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    """Exact: equal values, NaN where the other has NaN, same signs of zeros."""
    if not np.array_equal(a, b, equal_nan=True):
        return False
    if a.dtype.kind == "c":
        return _float_arrays_equal(a.real, b.real) and _float_arrays_equal(a.imag, b.imag)
    return bool(np.array_equal(np.signbit(a), np.signbit(b)))


def _mismatch(path: str, what: str, expected: Any, actual: Any) -> AssertionError:
    return AssertionError(f"{path}: {what}: expected {_describe(expected)}, got {_describe(actual)}")


def assert_data_equal(expected: Any, actual: Any, path: str = "value") -> None:
    """Assert ``actual`` is exactly ``expected``, recursively; the error names the first difference.

    Types must be identical (``int`` is not ``np.int64``, ``tuple`` is not ``list``, ``dict`` is
    not ``OrderedDict``), arrays must have the same dtype, shape and elements, floats are compared
    exactly with NaN equal to NaN and the sign of zero kept. Dict keys must be the same, in the
    same order; values are compared key by key.

    Raises:
        AssertionError: naming the path of the first difference, e.g. ``obs['pair'][1]: dtype``.
    """
    if type(expected) is not type(actual):
        raise _mismatch(path, "type differs", expected, actual)
    if isinstance(expected, dict):
        if expected.keys() != actual.keys():
            missing = [k for k in expected if k not in actual]
            extra = [k for k in actual if k not in expected]
            raise AssertionError(f"{path}: keys differ: missing {missing}, unexpected {extra}")
        if list(expected) != list(actual):
            raise AssertionError(f"{path}: key order differs: expected {list(expected)}, got {list(actual)}")
        for key in expected:
            assert_data_equal(expected[key], actual[key], f"{path}[{key!r}]")
        return
    if isinstance(expected, spaces.GraphInstance):  # a NamedTuple: before plain tuples
        for part in ("nodes", "edges", "edge_links"):
            assert_data_equal(getattr(expected, part), getattr(actual, part), f"{path}.{part}")
        return
    if isinstance(expected, (list, tuple)):
        if len(expected) != len(actual):
            raise _mismatch(path, f"length differs ({len(expected)} != {len(actual)})", expected, actual)
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_data_equal(e, a, f"{path}[{i}]")
        return
    if isinstance(expected, (np.ndarray, np.generic)):
        if expected.dtype != actual.dtype:
            raise _mismatch(path, f"dtype differs ({expected.dtype} != {actual.dtype})", expected, actual)
        if expected.shape != actual.shape:
            raise _mismatch(path, f"shape differs ({expected.shape} != {actual.shape})", expected, actual)
        if expected.dtype == object:
            for index in np.ndindex(expected.shape):
                assert_data_equal(np.asarray(expected)[index], np.asarray(actual)[index], f"{path}[{', '.join(map(str, index))}]")
            return
        a, b = np.asarray(expected), np.asarray(actual)
        equal = _float_arrays_equal(a, b) if a.dtype.kind in "fc" else bool(np.array_equal(a, b))
        if not equal:
            raise _mismatch(path, "values differ", expected, actual)
        return
    if isinstance(expected, float):
        same = (math.isnan(expected) and math.isnan(actual)) or (expected == actual and math.copysign(1.0, expected) == math.copysign(1.0, actual))
        if not same:
            raise _mismatch(path, "values differ", expected, actual)
        return
    try:
        equal = bool(expected == actual)
    except Exception as err:  # an __eq__ that cannot compare is a difference too
        raise AssertionError(f"{path}: values cannot be compared ({err}): expected {_describe(expected)}, got {_describe(actual)}") from err
    if not equal:
        raise _mismatch(path, "values differ", expected, actual)


def same_space(direct: spaces.Space[Any], bridged: spaces.Space[Any]) -> bool:
    """Whether a bridged space stands for the direct one: equal, or described alike on the wire
    (a space of a type with no codec is rebuilt as a ForeignSpace, equal only to its like)."""
    if direct == bridged:
        return True
    try:
        return bool(space_to_proto(direct).SerializeToString(deterministic=True) == space_to_proto(bridged).SerializeToString(deterministic=True))
    except CogmentGymError:
        return False


# ---------------------------------------------------------------------------------------------
# canonical types of space values


def canonical_value(space: spaces.Space[Any], value: Any) -> Any:
    """``value`` in the canonical types of ``space`` (what a space-encoding bridge gives back).

    Only lossless conversions are made (a Python ``int`` to the Discrete's dtype, a list to an
    array of the Box's dtype, an array to a dtype it casts to safely); anything else is returned
    unchanged, so that a comparison shows the difference.
    """
    if isinstance(space, spaces.Discrete):
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return space.dtype.type(value)
        if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu":
            return space.dtype.type(value)
        return value
    if isinstance(space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)):
        dtype = space.dtype
        if isinstance(value, np.ndarray):
            if value.dtype != dtype and np.can_cast(value.dtype, dtype, casting="safe"):
                return value.astype(dtype)
            return value
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            return value
        if array.dtype.kind in "biuf":
            converted = array.astype(dtype)
            if np.array_equal(converted, array, equal_nan=array.dtype.kind == "f"):
                return converted
        return value
    if isinstance(space, spaces.Text):
        return str(value) if isinstance(value, str) else value
    if isinstance(space, spaces.Dict):
        if isinstance(value, Mapping) and value.keys() == space.spaces.keys():
            return {key: canonical_value(sub, value[key]) for key, sub in space.spaces.items()}
        return value
    if isinstance(space, spaces.Tuple):
        if isinstance(value, (tuple, list)) and len(value) == len(space.spaces):
            return tuple(canonical_value(s, v) for s, v in zip(space.spaces, value))
        return value
    if isinstance(space, spaces.Sequence) and not space.stack:
        if isinstance(value, (tuple, list)):
            return tuple(canonical_value(space.feature_space, v) for v in value)
        return value
    if isinstance(space, spaces.OneOf):
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (int, np.integer)):
            index = int(value[0])
            if 0 <= index < len(space.spaces):
                return np.int64(index), canonical_value(space.spaces[index], value[1])
        return value
    return value


# ---------------------------------------------------------------------------------------------
# the check


@dataclass
class MatchReport:
    """What :func:`check_bridge_matches` stepped (both sides matched throughout)."""

    episodes: int = 0
    steps: int = 0
    terminated: int = 0  # episodes that ended with terminated=True
    truncated: int = 0  # episodes that ended with truncated=True
    capped: int = 0  # episodes stopped at max_steps before they ended
    episode_lengths: list[int] = field(default_factory=list)


Policy = Callable[[Any], Any]


def check_bridge_matches(
    env: str | Callable[[], gym.Env[Any, Any]],
    bridged: gym.Env[Any, Any],
    *,
    seeds: Sequence[int | None] = (0, 1, 2),
    episodes: int | None = None,
    max_steps: int = 200,
    policy: Policy | None = None,
    action_seed: int = 0,
    options: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    canonical: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
) -> MatchReport:
    """Step ``env`` directly and ``bridged`` with the same seeds and actions; assert they match.

    Args:
        env: a Gymnasium id (made with ``gymnasium.make(env, **env_kwargs)``) or a factory; the
            direct environment is made here and closed at the end.
        bridged: the environment under test (e.g. a :class:`cogment_gym.CogmentEnv`); not closed.
        seeds: the seed of each episode's ``reset``; episodes past the end of the list use
            ``None``, which continues each side's random generator.
        episodes: how many episodes (default: ``len(seeds)``).
        max_steps: stop an episode after this many steps if it has not ended.
        policy: ``policy(obs) -> action``, called with the direct env's observation; default:
            samples of a copy of the action space seeded with ``action_seed``.
        options: reset options for every episode, or one entry (or None) per episode.
        canonical: convert the direct side's observations, rewards and flags to the canonical
            types of their spaces first (see the module docstring); off by default.
        env_kwargs: passed to ``gymnasium.make`` or the factory.

    Returns:
        A :class:`MatchReport` of what was stepped.

    Raises:
        AssertionError: at the first difference, naming the episode, the step, the field and
            the path inside it (``episode 1 (seed 7), step 12: obs['pair'][1]: dtype differs``).
    """
    kwargs = dict(env_kwargs or {})
    direct = gym.make(env, **kwargs) if isinstance(env, str) else env(**kwargs)
    try:
        return _check(direct, bridged, list(seeds), episodes, max_steps, policy, action_seed, options, canonical)
    finally:
        direct.close()


def _check(
    direct: gym.Env[Any, Any],
    bridged: gym.Env[Any, Any],
    seeds: list[int | None],
    episodes: int | None,
    max_steps: int,
    policy: Policy | None,
    action_seed: int,
    options: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None,
    canonical: bool,
) -> MatchReport:
    if not same_space(direct.observation_space, bridged.observation_space):
        raise AssertionError(f"observation spaces differ: direct {direct.observation_space}, bridge {bridged.observation_space}")
    if not same_space(direct.action_space, bridged.action_space):
        raise AssertionError(f"action spaces differ: direct {direct.action_space}, bridge {bridged.action_space}")
    n_episodes = len(seeds) if episodes is None else episodes
    if policy is None:
        sampler = copy.deepcopy(direct.action_space)
        sampler.seed(action_seed)
        policy = lambda _obs: sampler.sample()  # noqa: E731
    obs_space = direct.observation_space
    report = MatchReport()

    def same(where: str, expected: Any, actual: Any, name: str) -> None:
        try:
            assert_data_equal(expected, actual, name)
        except AssertionError as err:
            raise AssertionError(f"{where}: {err} (direct vs bridge)") from None

    for episode in range(n_episodes):
        seed = seeds[episode] if episode < len(seeds) else None
        if options is None or isinstance(options, Mapping):
            episode_options = options
        else:
            episode_options = options[episode] if episode < len(options) else None
        label = f"episode {episode} (seed {seed})"
        reset_options = None if episode_options is None else dict(episode_options)
        obs_d, info_d = direct.reset(seed=seed, options=copy.deepcopy(reset_options))
        obs_b, info_b = bridged.reset(seed=seed, options=copy.deepcopy(reset_options))
        where = f"{label}, reset"
        same(where, canonical_value(obs_space, obs_d) if canonical else obs_d, obs_b, "obs")
        same(where, info_d, info_b, "info")
        steps = 0
        ended = False
        while steps < max_steps:
            action = policy(obs_d)
            obs_d, rew_d, term_d, trunc_d, info_d = direct.step(copy.deepcopy(action))
            obs_b, rew_b, term_b, trunc_b, info_b = bridged.step(copy.deepcopy(action))
            steps += 1
            where = f"{label}, step {steps} (action {action!r})"
            if canonical:
                obs_d, rew_d = canonical_value(obs_space, obs_d), float(rew_d)
                term_d, trunc_d = bool(term_d), bool(trunc_d)
            same(where, term_d, term_b, "terminated")
            same(where, trunc_d, trunc_b, "truncated")
            same(where, rew_d, rew_b, "reward")
            same(where, obs_d, obs_b, "obs")
            same(where, info_d, info_b, "info")
            ended_by = flag_summary(term_d), flag_summary(trunc_d, "truncated")
            if any(ended_by):
                report.terminated += ended_by[0]
                report.truncated += ended_by[1]
                ended = True
                break
        report.capped += not ended
        report.episodes += 1
        report.steps += steps
        report.episode_lengths.append(steps)
    return report
