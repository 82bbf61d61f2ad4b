"""Replay recorded trials as Gymnasium episodes, without Minari: ``(obs, action, reward,
terminated, truncated, info)`` per step, decoded by the same codec as the facades.

    from cogment_gym.datastore import episodes
    for episode in episodes("recorded"):
        for obs, action, reward, terminated, truncated, info in episode.steps():
            ...

What an episode is, per kind of trial (the payloads are cogment_gym's, ``cogment_gym.v1``):

- **single-agent** (one episode a trial): the reset observation (tick 0), then one step per
  tick: the action sent at tick t, and the observation, reward, flags and info of tick t+1 (the
  reward and flags in the env's own types, as the facades give them: ``codec/payloads/returns.py``).
- **batched** (``EnvConfig.num_envs`` = K > 0, ``CogmentVectorEnv(envs_per_trial=K)``): K
  sub-environments auto-resetting inside the trial; each sub-environment's episodes, cut at its
  ``terminations`` / ``truncations`` as Gymnasium's NEXT_STEP or SAME_STEP autoreset says (the
  step that resets under NEXT_STEP is no transition; SAME_STEP's final observation and info come
  from ``BatchedStep.ends``). Seeds: sub-environment i's first episode has the trial's seed + i
  (or its own seed and options, ``EnvConfig.resets``). A reset tick (``ActionPayload.reset``, a
  ``reset_mask`` that reset some sub-environments of the running trial) is no transition: the
  episodes of the sub-environments it reset end there (truncated at their last step, as an
  episode a trial cut short) and new ones begin with the seed and options of the reset; the
  others go on.
- **multi-agent** (PettingZoo; payloads name their ``agent``): one episode per agent, the agent's
  own view: its observation at each of its turns (AEC) or at each tick (parallel), its action
  there, and what ``last()`` says at its next turn (the reward accumulated since its move,
  ``cumulative_reward``).

An episode the trial cut short (the trial ended or was terminated before the episode ended, as
the facades' ``close()`` or a new ``reset()`` do) gets ``truncated`` at its last step, as the
facades report a Cogment end and as Minari's DataCollector stores an unfinished episode; an
episode with no step at all is left out.

Only complete trials are replayed: a file that was cut off mid-record, or whose stream never
ended (the datalog process was killed, the trial is still running), is skipped with an
:class:`IncompleteTrialWarning` naming it; a damaged file raises
:class:`~cogment_gym.errors.CorruptTrialFileError` (file and offset).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import gymnasium as gym
from gymnasium.vector.utils import batch_space, iterate

from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import decode, decode_info, decode_object, parse_message, space_from_proto, tensor_to_array
from cogment_gym.codec.payloads.resets import config_resets, read_reset_request
from cogment_gym.codec.payloads.returns import decode_cumulative_reward, decode_flags, decode_reward
from cogment_gym.datastore.fileformat import FILE_SUFFIX, TrialFile, read_header, read_trial_file
from cogment_gym.errors import CodecError, DatasetExportError, TruncatedTrialFileError

__all__ = ["Episode", "IncompleteTrialWarning", "RecordedTrial", "episodes", "trial_files", "trials"]

logger = logging.getLogger(__name__)

ACTING, LEAVING = env_pb2.AGENT_STATUS_ACTING, env_pb2.AGENT_STATUS_LEAVING
_NO_ACTION_TICK = -2

Spaces = Mapping[str, tuple[gym.Space[Any], gym.Space[Any]]]


class IncompleteTrialWarning(UserWarning):
    """A recorded trial was skipped: its file was cut off, or its end was never written."""


@dataclass
class Episode:
    """One episode of one agent (or sub-environment), as recorded.

    ``observations`` and ``infos`` have one entry more than the steps (the reset's first);
    ``actions[t]`` was taken on ``observations[t]`` and led to ``observations[t + 1]``,
    ``rewards[t]``, ``terminations[t]``, ``truncations[t]``, ``infos[t + 1]``.

    Attributes:
        trial_id: the trial it was recorded in.
        agent: the actor name (single-agent: the env's actor, e.g. "player"; multi-agent: the agent id).
        sub_env: index of the sub-environment in a batched trial (None otherwise).
        seed, options: of the reset that started it (None when it was not seeded / had none).
    """

    trial_id: str
    agent: str
    sub_env: int | None = None
    seed: int | None = None
    options: dict[str, Any] | None = None
    observations: list[Any] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    rewards: list[Any] = field(default_factory=list)
    terminations: list[Any] = field(default_factory=list)
    truncations: list[Any] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    _start_tick: int = 0

    def __len__(self) -> int:
        return len(self.actions)

    def steps(self) -> Iterator[tuple[Any, Any, Any, Any, Any, dict[str, Any]]]:
        """``(obs, action, reward, terminated, truncated, info)``: the observation the action was
        taken on, then what the step returned (its own observation is the next step's ``obs``;
        the last one is ``observations[-1]``)."""
        for t in range(len(self.actions)):
            yield self.observations[t], self.actions[t], self.rewards[t], self.terminations[t], self.truncations[t], self.infos[t + 1]

    @property
    def done(self) -> bool:
        return bool(self.actions) and (self.terminations[-1] or self.truncations[-1])

    def _step(self, action: Any, obs: Any, reward: Any, terminated: Any, truncated: Any, info: dict[str, Any]) -> None:
        self.actions.append(action)
        self.observations.append(obs)
        self.rewards.append(reward)
        self.terminations.append(terminated)
        self.truncations.append(truncated)
        self.infos.append(info)

    def _cut(self) -> Episode | None:
        """At the trial's end: unfinished -> truncated at its last step; None if it has no step."""
        if not self.actions:
            return None
        if not (self.terminations[-1] or self.truncations[-1]):
            self.truncations[-1] = True
        return self


def _info(payload: Any) -> dict[str, Any]:
    return decode_info(payload.info) if payload.HasField("info") else {}


class RecordedTrial:
    """One recorded trial: its params, its samples, the spaces of its actors, its episodes.

    Args:
        file: the read trial file.
        spaces: actor name or class -> ``(observation_space, action_space)``, for actors whose
            spaces the params do not carry (trials not started by cogment_gym's facades).
    """

    def __init__(self, file: TrialFile, spaces: Spaces | None = None) -> None:
        self.file = file
        self.params: common_pb2.TrialParams = file.params
        self.trial_id = file.trial_id
        self._spaces = dict(spaces or {})
        self.config = env_pb2.EnvConfig()
        content = self.params.environment.config.content
        if content:
            try:
                self.config = parse_message(env_pb2.EnvConfig, content, "environment config")
            except CodecError as err:
                raise DatasetExportError(f"trial {self.trial_id} ({file.path}): not a cogment_gym environment's config: {err}") from None

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def actor_names(self) -> list[str]:
        return [a.name for a in self.params.actors]

    @property
    def num_envs(self) -> int:
        """Sub-environments of a batched trial (0: one episode a trial)."""
        return int(self.config.num_envs)

    def samples(self) -> Iterator[datalog_pb2.DatalogSample]:
        for body in self.file.samples:
            sample = datalog_pb2.DatalogSample.FromString(body)
            if not sample.info.out_of_sync:
                yield sample

    def spaces(self, actor: str) -> tuple[gym.Space[Any], gym.Space[Any]]:
        """``(observation_space, action_space)`` of an actor: from its ActorConfig in the params
        (the facades put them there), else from ``spaces=``."""
        index = self._index(actor)
        params = self.params.actors[index]
        if params.config.content:
            try:
                config = parse_message(env_pb2.ActorConfig, params.config.content, f"config of actor {actor!r}")
            except CodecError:
                config = None
            if config is not None and config.HasField("observation_space") and config.HasField("action_space"):
                return space_from_proto(config.observation_space), space_from_proto(config.action_space)
        given = self._spaces.get(params.name) or self._spaces.get(params.actor_class)
        if given is not None:
            return given
        raise DatasetExportError(
            f"trial {self.trial_id} ({self.path}): the spaces of actor {actor!r} are not recorded (trials started by "
            "cogment_gym's facades carry them); pass spaces={name: (observation_space, action_space)} or an env id"
        )

    def _index(self, actor: str) -> int:
        for i, params in enumerate(self.params.actors):
            if params.name == actor:
                return i
        raise DatasetExportError(f"trial {self.trial_id} ({self.path}) has no actor {actor!r}; its actors: {self.actor_names}")

    def _seed_options(self) -> tuple[int | None, dict[str, Any] | None]:
        seed = int(self.config.seed) if self.config.HasField("seed") else None
        options = decode_object(self.config.options, "options") if self.config.HasField("options") else None
        return seed, options if isinstance(options, dict) or options is None else {"options": options}

    def episodes(self, agent: str | None = None) -> list[Episode]:
        """The trial's episodes (of ``agent``; None: every actor's, in actor order)."""
        names = [agent] if agent is not None else self.actor_names
        out: list[Episode] = []
        for name in names:
            if self.num_envs:
                out.extend(self._batched_episodes(name))
            else:
                out.extend(self._actor_episodes(name))
        return out

    # ------------------------------------------------------------------ one actor, one trial

    def _payload(self, sample: datalog_pb2.DatalogSample, index: int) -> Any:
        observations = sample.observations
        if index >= len(observations.actors_map):
            return None
        slot = observations.actors_map[index]
        if not 0 <= slot < len(observations.observations):
            return None
        return parse_message(env_pb2.ObservationPayload, observations.observations[slot], f"trial {self.trial_id}: observation of tick {sample.info.tick_id}")

    def _action(self, sample: datalog_pb2.DatalogSample, index: int, space: gym.Space[Any], what: str) -> Any:
        payload = self._action_payload(sample, index, what)
        return decode(space, payload.value, what)

    def _action_payload(self, sample: datalog_pb2.DatalogSample, index: int, what: str) -> env_pb2.ActionPayload:
        content: bytes | None = None
        if index < len(sample.actions):
            action = sample.actions[index]
            if not (action.tick_id == _NO_ACTION_TICK and not action.content):
                content = action.content
        if content is None and index in sample.default_actors:
            content = self.params.actors[index].default_action.content
        if content is None:
            raise DatasetExportError(f"trial {self.trial_id} ({self.path}): {what}: no action recorded at tick {sample.info.tick_id}")
        return parse_message(env_pb2.ActionPayload, content, f"trial {self.trial_id}: {what} at tick {sample.info.tick_id}")

    def _actor_episodes(self, actor: str) -> list[Episode]:
        index = self._index(actor)
        obs_space, act_space = self.spaces(actor)
        seed, options = self._seed_options()
        episode: Episode | None = None
        pending: datalog_pb2.DatalogSample | None = None  # the sample of the agent's last observation
        for sample in self.samples():
            if not sample.HasField("observations"):
                continue
            payload = self._payload(sample, index)
            if payload is None or payload.status not in (ACTING, LEAVING) or not payload.HasField("value"):
                continue
            where = f"trial {self.trial_id}: observation of {actor!r} at tick {sample.info.tick_id}"
            obs = decode(obs_space, payload.value, where, bounds=False)
            if episode is None:
                episode = Episode(self.trial_id, actor, seed=seed, options=options, _start_tick=int(sample.info.tick_id))
                episode.observations.append(obs)
                episode.infos.append(_info(payload))
            elif pending is not None:  # always: the episode began at an earlier observation
                action = self._action(pending, index, act_space, f"action of {actor!r}")
                # Multi-agent payloads name their agent: what last() says is the reward summed
                # since the agent's last move; a single-agent payload's reward is the step's.
                reward = decode_cumulative_reward(payload) if payload.agent else decode_reward(payload)
                terminated, truncated = decode_flags(payload)
                episode._step(action, obs, reward, terminated, truncated, _info(payload))
            if episode.done:
                return [episode]
            pending = sample
        if episode is None:
            return []
        cut = episode._cut()
        return [cut] if cut is not None else []

    def _batched_episodes(self, actor: str) -> list[Episode]:
        index = self._index(actor)
        obs_space, act_space = self.spaces(actor)
        n = self.num_envs
        batched_obs, batched_act = batch_space(obs_space, n), batch_space(act_space, n)
        same_step = self.config.autoreset_mode == env_pb2.AUTORESET_MODE_SAME_STEP
        seed, options = self._seed_options()
        current: list[Episode | None] = [None] * n
        finished: list[Episode] = []
        pending: datalog_pb2.DatalogSample | None = None
        for sample in self.samples():
            if not sample.HasField("observations"):
                continue
            tick = int(sample.info.tick_id)
            payload = self._payload(sample, index)
            if payload is None or not payload.HasField("value"):
                continue
            where = f"trial {self.trial_id}: tick {tick}"
            if not payload.HasField("batch"):
                raise DatasetExportError(f"{where}: a batched trial's observation without `batch`")
            obs = list(iterate(batched_obs, decode(batched_obs, payload.value, f"{where}: observation", bounds=False)))
            batch = payload.batch
            rewards = tensor_to_array(batch.rewards)
            terminations = tensor_to_array(batch.terminations)
            truncations = tensor_to_array(batch.truncations)
            infos = [decode_info(info) for info in batch.infos] or [{} for _ in range(n)]
            ends = {int(e.index): e for e in batch.ends}
            if pending is None:  # the reset
                first = config_resets(self.config, n, seed, options)
                for i, reset in enumerate(first):  # None: deferred, reset by the first step (NEXT_STEP)
                    current[i] = None if reset is None else self._new_episode(actor, i, tick, obs[i], infos[i], *reset)
                pending = sample
                continue
            what = f"batched action of {actor!r}"
            action_payload = self._action_payload(pending, index, what)
            pending = sample
            if action_payload.HasField("reset"):  # a reset tick: no step, some sub-envs begin anew
                request = read_reset_request(action_payload.reset, n, f"{where}: {what}")
                if sorted(request.resets) != [int(i) for i in batch.reset_indices]:
                    raise DatasetExportError(
                        f"{where}: the reset tick asked to reset sub-environments {sorted(request.resets)}, its observation "
                        f"says {list(batch.reset_indices)}"
                    )
                for i, (reset_seed, reset_options) in request.resets.items():
                    episode = current[i]
                    if episode is not None:
                        cut = episode._cut()
                        if cut is not None:
                            finished.append(cut)
                    current[i] = self._new_episode(actor, i, tick, obs[i], infos[i], reset_seed, reset_options)
                continue
            actions = list(iterate(batched_act, decode(batched_act, action_payload.value, what)))
            for i in range(n):
                episode = current[i]
                if episode is None:  # NEXT_STEP: this step reset sub-environment i
                    current[i] = self._new_episode(actor, i, tick, obs[i], infos[i], None, None)
                    continue
                terminated, truncated = bool(terminations[i]), bool(truncations[i])
                end = ends.get(i)
                if end is not None:  # SAME_STEP: the final observation travelled apart
                    final = decode(obs_space, end.observation, f"{where}: final observation of sub-environment {i}", bounds=False)
                    episode._step(actions[i], final, rewards[i], terminated, truncated, _info(end))
                else:
                    episode._step(actions[i], obs[i], rewards[i], terminated, truncated, infos[i])
                if terminated or truncated:
                    finished.append(episode)
                    current[i] = None
                    if same_step and end is not None:
                        current[i] = self._new_episode(actor, i, tick, obs[i], infos[i], None, None)
        for episode in current:
            if episode is not None:
                cut = episode._cut()
                if cut is not None:
                    finished.append(cut)
        finished.sort(key=lambda e: (e._start_tick, e.sub_env or 0))
        return finished

    def _new_episode(self, actor: str, sub_env: int, tick: int, obs: Any, info: dict[str, Any], seed: int | None, options: Any) -> Episode:
        episode = Episode(self.trial_id, actor, sub_env=sub_env, seed=seed, options=options, _start_tick=tick)
        episode.observations.append(obs)
        episode.infos.append(info)
        return episode


# ---------------------------------------------------------------------------------------------- files


def trial_files(source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The trial files of a directory (or the files given), sorted by name."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            return sorted(p for p in path.iterdir() if p.name.endswith(FILE_SUFFIX) and p.is_file())
        if path.is_file():
            return [path]
        raise FileNotFoundError(f"no trial directory or file at {path}")
    return [Path(p) for p in source]


def trials(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    spaces: Spaces | None = None,
    include_incomplete: bool = False,
) -> Iterator[RecordedTrial]:
    """The recorded trials of a directory (or of the files given), oldest first.

    Args:
        source: a directory of trial files, one file, or several.
        spaces: for actors whose spaces the params do not carry (see :class:`RecordedTrial`).
        include_incomplete: also yield trials whose file has no end or was cut off (their
            whole records); by default they are skipped with an :class:`IncompleteTrialWarning`.

    Raises:
        CorruptTrialFileError: a damaged file (its path and the offset of the damage).
    """
    # Ordered by the headers alone; each file is read whole only when its turn comes.
    ordered = []
    for path in trial_files(source):
        try:
            ordered.append((read_header(path)[0].started, path.name, path))
        except TruncatedTrialFileError as err:  # cut before its header ended: nothing to replay
            warnings.warn(f"skipping {path}: {err}", IncompleteTrialWarning, stacklevel=2)
    ordered.sort()
    for _, _, path in ordered:
        file = read_trial_file(path)
        if not file.complete and not include_incomplete:
            warnings.warn(
                f"skipping trial {file.trial_id} ({path}): {file.status}, {len(file.samples)} whole samples", IncompleteTrialWarning, stacklevel=2
            )
            continue
        yield RecordedTrial(file, spaces)


def episodes(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    agent: str | None = None,
    spaces: Spaces | None = None,
    include_incomplete: bool = False,
) -> Iterator[Episode]:
    """Every episode of the recorded trials (see the module doc), trial after trial.

    Args:
        source: a directory of trial files, one file, or several.
        agent: only this actor's episodes (multi-agent trials: an agent id); None: every actor's.
        spaces, include_incomplete: as for :func:`trials`.

    Example:
        >>> for episode in episodes("recorded"):                        # doctest: +SKIP
        ...     total = sum(reward for _, _, reward, _, _, _ in episode.steps())
    """
    for trial in trials(source, spaces=spaces, include_incomplete=include_incomplete):
        if agent is not None and agent not in trial.actor_names:
            continue
        yield from trial.episodes(agent)

