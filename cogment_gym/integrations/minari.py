"""Recorded trials as Minari datasets (``pip install -e '.[minari]'``).

    from cogment_gym.integrations.minari import export_minari
    dataset = export_minari("recorded", "cogment/cartpole-random-v0")
    # later, anywhere: minari.load_dataset("cogment/cartpole-random-v0")

Each episode of :func:`cogment_gym.datastore.episodes` becomes a Minari episode: observations
(the reset's, then each step's), actions, rewards, terminations, truncations, infos (the reset's
first, as Minari's DataCollector stores them), and the seed of its reset; the spaces are those
recorded with the trials (the env's spec), or given. Values are exactly what the env produced:
images are stored raw (Minari's lossy JPEG encoding is turned off).

- **Multi-agent trials**: one dataset per agent, ``<name>-<agent>`` (``cogment/rps-v0`` ->
  ``cogment/rps-player_0-v0``), each the agent's own episodes; or ``agent=`` for one.
- **Batched trials** (``envs_per_trial=K``): each sub-environment's episodes, cut where its
  terminations / truncations say (see :mod:`cogment_gym.datastore.replay`).
- Episodes cut short by their trial's end are truncated at their last step, as Minari's
  DataCollector does; incomplete trial files are skipped with a warning.
- Datasets go where Minari keeps them (``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

import gymnasium as gym
import numpy as np

from cogment_gym.datastore.replay import Episode, RecordedTrial, trials
from cogment_gym.errors import DatasetExportError
from cogment_gym.extras import missing_extra

__all__ = ["dataset_id_for_agent", "export_minari"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _minari() -> Any:
    try:
        import minari
    except ImportError as err:
        raise missing_extra("minari", "the Minari export", err) from err
    return minari


def dataset_id_for_agent(dataset_id: str, agent: str) -> str:
    """The id of one agent's dataset: the agent joins the dataset name, before the version."""
    from minari.dataset.minari_dataset import gen_dataset_id, parse_dataset_id

    namespace, name, version = parse_dataset_id(dataset_id)
    return gen_dataset_id(namespace, f"{name}-{agent}", version)


def _stack(space: gym.Space[Any], values: Sequence[Any]) -> Any:
    """Per-step values as Minari's storages take them: dicts / tuples of per-leaf lists."""
    if isinstance(space, gym.spaces.Dict):
        return {key: _stack(sub, [v[key] for v in values]) for key, sub in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(_stack(sub, [v[i] for v in values]) for i, sub in enumerate(space.spaces))
    if isinstance(space, (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        return np.stack([np.asarray(v, dtype=space.dtype) for v in values])
    return list(values)


def _same_shape(first: Any, other: Any) -> bool:
    if isinstance(first, dict):
        return isinstance(other, dict) and first.keys() == other.keys() and all(_same_shape(first[k], other[k]) for k in first)
    if isinstance(first, np.ndarray):
        return isinstance(other, np.ndarray) and first.shape == other.shape and first.dtype == other.dtype
    return type(first) is type(other)


def _infos(episode: Episode, where: str) -> dict[str, Any] | None:
    """Minari's infos: a dict of per-step lists (the reset's first); the keys must stay the same."""
    infos = episode.infos
    if not any(infos):
        return None
    first = infos[0]
    for t, info in enumerate(infos[1:], start=1):
        if not _same_shape(first, info):
            raise DatasetExportError(
                f"{where}: the info of step {t} ({sorted(info)}) does not have the keys and types of the reset's ({sorted(first)}); "
                "Minari needs the same info structure at every step: pass infos=False to leave infos out"
            )
    return _transpose(infos)


def _transpose(infos: list[Any]) -> Any:
    first = infos[0]
    if isinstance(first, dict):
        return {key: _transpose([info[key] for info in infos]) for key in first}
    if isinstance(first, np.ndarray):
        return np.stack(infos)
    return list(infos)


def _buffer(episode: Episode, index: int, obs_space: gym.Space[Any], act_space: gym.Space[Any], with_infos: bool) -> Any:
    from minari.data_collector.episode_buffer import EpisodeBuffer

    where = f"trial {episode.trial_id}, agent {episode.agent!r}" + (f", sub-environment {episode.sub_env}" if episode.sub_env is not None else "")
    return EpisodeBuffer(
        id=index,
        seed=episode.seed,
        options=episode.options,
        observations=_stack(obs_space, episode.observations),
        actions=_stack(act_space, episode.actions),
        rewards=list(episode.rewards),
        terminations=list(episode.terminations),
        truncations=list(episode.truncations),
        infos=_infos(episode, where) if with_infos else None,
    )


def _env_spec(trial: RecordedTrial, env: Any) -> Any:
    """The Gymnasium EnvSpec to record: the given one, else the implementation's if it is a
    registered Gymnasium id (lets ``dataset.recover_environment()`` work)."""
    if env is not None:
        if isinstance(env, str):
            return gym.spec(env)
        return env.spec if isinstance(env, gym.Env) else env
    implementation = trial.params.environment.implementation
    if implementation in gym.registry:
        return gym.spec(implementation)
    return None


def export_minari(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    dataset_id: str,
    *,
    agent: str | None = None,
    env: str | gym.Env[Any, Any] | Any = None,
    spaces: Mapping[str, tuple[gym.Space[Any], gym.Space[Any]]] | None = None,
    infos: bool = True,
    data_format: str = "arrow",
    progress: Progress | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    """Build Minari dataset(s) from recorded trials; returns ``{dataset_id: MinariDataset}``.

    Args:
        source: a directory of trial files (``cogment-gym datalog --out DIR``, ``datalog=Path``),
            one file, or several.
        dataset_id: Minari id, ``(namespace/)name-v<version>``; multi-agent trials give one
            dataset per agent (:func:`dataset_id_for_agent`) unless ``agent`` is given.
        agent: export only this actor's episodes (its id kept as ``dataset_id``).
        env: a Gymnasium id / env / EnvSpec recorded as the dataset's env (default: the trials'
            implementation when it is a registered Gymnasium id, else none).
        spaces: actor name or class -> ``(observation_space, action_space)`` for trials whose
            params do not carry them (not started by cogment_gym's facades).
        infos: store the infos (Minari needs the same keys at every step).
        data_format: Minari storage, "arrow" (default; needs pyarrow), "hdf5" (needs h5py) or "parquet".
        progress: called with ``(episodes_done, steps_done)`` as episodes are added.
        **metadata: passed to ``minari.create_dataset_from_buffers`` (``author``,
            ``algorithm_name``, ``code_permalink``, ``description``...).

    Raises:
        DatasetExportError: nothing to export, trials of different envs or spaces, an agent that
            is not there, infos whose structure changes.
        CorruptTrialFileError: a damaged trial file.
    """
    minari = _minari()
    recorded = list(trials(source, spaces=spaces))
    if not recorded:
        raise DatasetExportError(f"no complete recorded trial in {source}")
    names = [agent] if agent is not None else list(dict.fromkeys(n for t in recorded for n in t.actor_names))
    multi = agent is None and len(names) > 1
    spec = _env_spec(recorded[0], env)
    buffers: dict[str, list[Any]] = {name: [] for name in names}
    chosen_spaces: dict[str, tuple[gym.Space[Any], gym.Space[Any]]] = {}
    implementation = recorded[0].params.environment.implementation
    done_episodes = done_steps = 0
    for trial in recorded:
        if trial.params.environment.implementation != implementation:
            raise DatasetExportError(
                f"trial {trial.trial_id} ({trial.path}) ran {trial.params.environment.implementation!r}, the first trial "
                f"{implementation!r}: export the trials of one environment per dataset"
            )
        for name in names:
            if name not in trial.actor_names:
                continue
            obs_space, act_space = trial.spaces(name)
            known = chosen_spaces.setdefault(name, (obs_space, act_space))
            if known != (obs_space, act_space):
                raise DatasetExportError(f"trial {trial.trial_id} ({trial.path}): actor {name!r} has other spaces than in the trials before it")
            for episode in trial.episodes(name):
                buffers[name].append(_buffer(episode, len(buffers[name]), obs_space, act_space, infos))
                done_episodes += 1
                done_steps += len(episode)
                if progress is not None:
                    progress(done_episodes, done_steps)
    missing = [name for name in names if name not in chosen_spaces]
    if missing:
        raise DatasetExportError(f"no recorded trial has actor {missing[0]!r}; their actors: {sorted({n for t in recorded for n in t.actor_names})}")
    datasets: dict[str, Any] = {}
    for name in names:
        if not buffers[name]:
            logger.warning("actor %r has no episode with a step: no dataset for it", name)
            continue
        obs_space, act_space = chosen_spaces[name]
        target = dataset_id_for_agent(dataset_id, name) if multi else dataset_id
        datasets[target] = minari.create_dataset_from_buffers(
            target, buffers[name], env=spec if not multi else None, observation_space=obs_space, action_space=act_space,
            data_format=data_format, jpeg_encoding=False, **metadata,
        )
    if not datasets:
        raise DatasetExportError(f"the recorded trials in {source} have no episode with a step")
    return datasets
