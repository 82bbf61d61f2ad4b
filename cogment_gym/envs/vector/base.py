"""``CogmentVectorEnv``: N sub-environments on Cogment trials as one ``gymnasium.vector.VectorEnv``.

The public entry point and the base of both strategies, as Gymnasium's ``SyncVectorEnv`` /
``AsyncVectorEnv`` or SB3's ``DummyVecEnv`` / ``SubprocVecEnv`` are one class each:

- :class:`~cogment_gym.envs.vector.per_trial.PerTrialVectorEnv` (``envs_per_trial=1``):
  sub-environment ``i`` is one client actor in one trial at a time (one episode, one trial, as
  :class:`~cogment_gym.envs.CogmentEnv`).
- :class:`~cogment_gym.envs.vector.batched.BatchedVectorEnv` (``envs_per_trial=K > 1``): each
  trial runs K sub-environments in the environment service, one message per tick for all of
  them (``EnvConfig.num_envs``), and the sub-environments reset themselves inside the trial
  with the same autoreset semantics: a trial then carries many episodes, their boundaries are
  marked by the terminations / truncations, not by trials.

``CogmentVectorEnv(...)`` is a class whose ``__new__`` makes the strategy's subclass (chosen by
:func:`~cogment_gym.envs.vector.strategy.choose_envs_per_trial`; batched trials by default where
they can run): ``isinstance(envs, CogmentVectorEnv)`` and ``isinstance(envs,
gymnasium.vector.VectorEnv)`` hold for both, and the SB3 / RLlib integrations take either.

Shared here: the connection (one Orchestrator, one event loop and one gRPC channel per endpoint
for all trials), the ``step_async`` / ``step_wait`` state machine, seeds and options, and the
loop side: a vector step sends every action before it waits for any observation, so the trials
progress together. A subclass says how actions become trial payloads and how observations
become the batched results.

Autoreset follows Gymnasium 1.x (``metadata["autoreset_mode"]``):

- ``NEXT_STEP`` (default): the step after an episode ended starts a new trial (or sub-env
  episode) for that sub-environment and returns its first observation, reward 0 and both flags
  False; the action given for it is ignored.
- ``SAME_STEP``: the new episode starts in the step that ended the episode; the final observation
  and info are in ``info["final_obs"]`` / ``info["final_info"]`` (masked by ``info["_final_obs"]``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from concurrent.futures import Future
from typing import Any, Callable, ClassVar, Coroutine, Iterable, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2
from cogment_gym.codec import encode_object, space_from_proto
from cogment_gym.codec.payloads import write_config_resets
from cogment_gym.envs.connection import check_render_mode, make_connection, spec_metadata
from cogment_gym.envs.options import ConnectionOptions, connection_options
from cogment_gym.envs.session import ClientSession, TrialEvent
from cogment_gym.envs.vector.strategy import choose_envs_per_trial
from cogment_gym.errors import (
    AlreadyPendingCallError,
    ClosedEnvironmentError,
    CogmentGymError,
    NoAsyncCallError,
    NotOpenError,
    ResetNeededError,
)
from cogment_gym.protocol import CLIENT_ENDPOINT
from cogment_gym.protocol.runtime import BackgroundLoop, make_runner
from cogment_gym.protocol.security import Security

__all__ = ["CogmentVectorEnv"]

logger = logging.getLogger(__name__)


class _State(enum.Enum):
    DEFAULT = "default"
    WAITING_STEP = "step"


class _SubEnv:
    """What the vector env knows of one sub-environment."""

    __slots__ = ("index", "params", "session", "autoreset", "frame", "obs_path")

    def __init__(self, index: int, params: common_pb2.TrialParams) -> None:
        self.index = index
        self.obs_path = f"observation of sub-environment {index}"  # named in decoding errors
        self.params = params  # everything but the env config, which changes per trial
        self.session: ClientSession | None = None
        self.autoreset = False  # the episode ended at the last step: NEXT_STEP resets it now
        self.frame: Any = None


class _Step:
    """One sub-environment's share of a vector step, before batching."""

    __slots__ = ("event", "reset", "final")

    def __init__(self) -> None:
        self.event: TrialEvent | None = None  # the step's observation (None: reset only)
        self.reset: TrialEvent | None = None  # first observation of a new trial
        self.final = False  # ``event`` ended its trial


class CogmentVectorEnv(VectorEnv[Any, Any, np.ndarray]):
    """``num_envs`` Cogment trials stepped together, as a Gymnasium vector environment.

    Runs like :class:`~cogment_gym.envs.CogmentEnv`::

        CogmentVectorEnv("CartPole-v1", num_envs=8)                          # all in this process
        CogmentVectorEnv(environment="grpc://127.0.0.1:9001", num_envs=16)   # env served elsewhere
        CogmentVectorEnv(environment=["grpc://127.0.0.1:9001",               # several services: a
                                      "grpc://127.0.0.1:9002"], num_envs=16) #   batched trial of 8 each
        CogmentVectorEnv(orchestrator="grpc://127.0.0.1:9000",               # an existing Orchestrator
                         environment="grpc://127.0.0.1:9001", num_envs=4)

    Args:
        env: a Gymnasium id or env factory run in this process (embedded default). Each sub-env
            gets an implementation of its own, so its env instance carries over from one episode
            to the next, and ``reset(seed=None)`` continues its generator as with
            ``gymnasium.vector.SyncVectorEnv``.
        num_envs: number of sub-environments.
        environment: endpoint of an environment service, or a list of endpoints of services of
            the same environment (trial ``j`` runs on ``environment[j % len]``: with one trial per
            sub-environment, sub-env ``i`` on ``environment[i % len]``).
            Each sub-env names itself to the service (``EnvConfig.instance_key``), which gives
            it the same env instance in each new trial: unseeded resets continue its generator
            as with ``SyncVectorEnv``, even when other clients share the service.
        implementation, orchestrator, actor_endpoint, render_mode, max_steps, timeout,
        observation_space, action_space, actor_class, security: as for :class:`~cogment_gym.envs.CogmentEnv`.
        autoreset_mode: :class:`gymnasium.vector.AutoresetMode` ``NEXT_STEP`` (default) or ``SAME_STEP``.
        envs_per_trial: sub-environments per trial (a divisor of ``num_envs``). None (default):
            chosen (:mod:`cogment_gym.envs.vector.strategy`): batched trials, one per environment
            service, unless the options need one trial per sub-environment (``render_mode``,
            ``max_steps``, a foreign service described by its spaces, a remote orchestrator,
            ``datalog``). 1: one episode per trial. K > 1: ``num_envs / K`` batched trials of K
            sub-environments each, auto-resetting inside the trial (see the module doc); then
            ``render_mode`` and ``max_steps`` are not available (use the env's own TimeLimit).
            Either way the vector env behaves as ``SyncVectorEnv`` (seeds, options, reset masks).
        datalog: record every trial, as :class:`~cogment_gym.envs.CogmentEnv`'s ``datalog``.
        env_threads, options: as for :class:`~cogment_gym.envs.CogmentEnv`.
        **make_kwargs: passed to ``gym.make`` (embedded default only).

    Example:
        >>> envs = CogmentVectorEnv("CartPole-v1", num_envs=4)
        >>> obs, infos = envs.reset(seed=42)
        >>> obs.shape
        (4, 4)
        >>> obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())
        >>> envs.close()
    """

    #: The subclass of each strategy: "per_trial", "batched" (filled by ``__init_subclass__``).
    _strategies: ClassVar[dict[str, type[CogmentVectorEnv]]] = {}
    #: This class's strategy (a subclass sets it).
    strategy: ClassVar[str] = ""

    def __init_subclass__(cls, strategy: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if strategy:
            cls.strategy = strategy
            CogmentVectorEnv._strategies[strategy] = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> CogmentVectorEnv:
        if cls is CogmentVectorEnv:  # the public entry point: pick the strategy's class
            k = choose_envs_per_trial(_num_envs(args, kwargs), kwargs.get("envs_per_trial"), _options(args, kwargs))
            cls = CogmentVectorEnv._strategies["batched" if k > 1 else "per_trial"]
        return super().__new__(cls)

    def __init__(
        self,
        env: str | Callable[..., gym.Env[Any, Any]] | None = None,
        num_envs: int = 1,
        *,
        environment: str | Sequence[str] | None = None,
        implementation: str = "",
        orchestrator: str | None = None,
        actor_endpoint: str | None = None,
        render_mode: str | None = None,
        max_steps: int = 0,
        timeout: float = 30.0,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        observation_space: gym.Space[Any] | None = None,
        action_space: gym.Space[Any] | None = None,
        actor_class: str = "player",
        envs_per_trial: int | None = None,
        datalog: Any = None,
        security: Security | None = None,
        env_threads: bool = False,
        options: ConnectionOptions | None = None,
        **make_kwargs: Any,
    ) -> None:
        self.options = opts = connection_options(
            options, env=env, environment=environment, implementation=implementation, orchestrator=orchestrator,
            actor_endpoint=actor_endpoint, render_mode=render_mode, max_steps=max_steps, timeout=timeout,
            observation_space=observation_space, action_space=action_space, actor_class=actor_class, datalog=datalog,
            security=security, env_threads=env_threads, make_kwargs=make_kwargs,
        )
        k = self._envs_per_trial(num_envs, envs_per_trial, opts)
        mode = autoreset_mode if isinstance(autoreset_mode, AutoresetMode) else AutoresetMode(autoreset_mode)
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
            raise ValueError(f"autoreset_mode must be NEXT_STEP or SAME_STEP, got {mode}")
        self.autoreset_mode = mode
        self.num_envs = int(num_envs)
        self.envs_per_trial = k
        self._num_slots = self.num_envs // k  # trials in flight
        self.closed = False
        self._state = _State.DEFAULT
        self._needs_reset = True
        self._pending: Any = None  # the step coroutine's task (caller loop) or future (background loop)
        self._abandoned: list[Any] = []  # tasks/futures an interrupt left running: ended by reset()/close()
        self._subs: list[_SubEnv] = []
        # Names this env's sub-environments to the services (EnvConfig.instance_key): each keeps
        # its env instance from one trial to the next, as in SyncVectorEnv.
        self._instance_prefix = uuid.uuid4().hex
        self._last_obs: list[Any] = [None] * self.num_envs
        self._runner = make_runner()
        self._connection = make_connection(opts, replicas=self._num_slots if opts.embedded_env else 1, sub_envs=k)
        try:
            self._runner.run(self._connection.open())
        except BaseException:
            self._runner.close()
            self.closed = True
            raise
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _envs_per_trial(self, num_envs: int, envs_per_trial: int | None, options: ConnectionOptions) -> int:
        """Sub-environments per trial of this strategy (checked)."""
        return choose_envs_per_trial(num_envs, envs_per_trial, options)

    def _setup(self) -> None:
        spec = self._connection.spec
        if spec is None:
            raise NotOpenError("the trial connection is not open (no environment spec yet): open() it first")
        if len(spec.actors) != 1:
            raise CogmentGymError(
                f"environment {spec.implementation!r} has {len(spec.actors)} agents; CogmentVectorEnv drives one per sub-env"
            )
        actor = spec.actors[0]
        self.single_observation_space = space_from_proto(actor.observation_space)
        self.single_action_space = space_from_proto(actor.action_space)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = spec_metadata(spec)
        self.metadata["autoreset_mode"] = self.autoreset_mode
        check_render_mode(spec, self.options.render_mode)
        self.render_mode = self.options.render_mode
        endpoints = self._connection.env_endpoints
        implementations = self._connection.implementations
        for i in range(self._num_slots):
            params = common_pb2.TrialParams(
                environment=common_pb2.EnvironmentParams(
                    name="env",
                    endpoint=endpoints[i % len(endpoints)],
                    implementation=implementations[i % len(implementations)],
                ),
                actors=[common_pb2.ActorParams(name=actor.name, actor_class=actor.actor_class, endpoint=CLIENT_ENDPOINT)],
                max_steps=self.options.max_steps,
            )
            self._subs.append(_SubEnv(i, params))
        self._actor_name = actor.name

    # ------------------------------------------------------------------ gymnasium API

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | Sequence[dict[str, Any] | None] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Start a new episode (trial) in every sub-environment.

        Args:
            seed: None (no seeding), an int (sub-env ``i`` gets ``seed + i``), or one seed (or
                None) per sub-env.
            options: passed to every sub-env's ``reset``; ``options["reset_mask"]`` (a bool
                array of shape ``(num_envs,)``) resets only those sub-envs, as Gymnasium's
                vector envs do: the others keep their state (and a pending NEXT_STEP autoreset).
                A list of dicts (one per sub-env, SB3's ``set_options``) is also accepted.

        Returns:
            The batched first observations and the merged infos (of the sub-envs reset).
        """
        self._check_idle("reset")
        return self._reset_all(seed, options)

    def _reset_all(
        self, seed: int | Sequence[int | None] | None, options: dict[str, Any] | Sequence[dict[str, Any] | None] | None
    ) -> tuple[Any, dict[str, Any]]:
        """The strategy's reset (after the state checks)."""
        raise NotImplementedError

    def _seed_generator(self, seed: int | Sequence[int | None] | None) -> None:
        """The vector env's own generator, as gymnasium.vector.VectorEnv.reset seeds it."""
        if seed is not None and isinstance(seed, (int, np.integer)):
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(int(seed))

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment (see the module doc for autoreset)."""
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: Any) -> None:
        """Send one action per sub-environment; :meth:`step_wait` collects the results.

        Raises:
            AlreadyPendingCallError: a ``step_async`` already waits for its ``step_wait``.
            ResetNeededError: no episode is running (before ``reset``, after a failure).
            SpaceMismatchError: an action does not fit ``single_action_space`` (nothing is sent).
        """
        self._check_idle("step_async")
        if self._needs_reset:
            raise ResetNeededError("call reset() before step(): no episode is running")
        self._pending = self._start(self._step(self._contents(actions)))
        self._state = _State.WAITING_STEP

    def _contents(self, actions: Any) -> list[bytes | None]:
        """One ActionPayload per trial (None: NEXT_STEP restarts that trial); raises before
        anything is sent when an action does not fit."""
        raise NotImplementedError

    def _collect(self, steps: list[_Step]) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The batched results of a vector step from each trial's share of it."""
        raise NotImplementedError

    def _batch_config(self, config: env_pb2.EnvConfig) -> None:
        """What the strategy adds to a new trial's EnvConfig."""

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Wait for the results of :meth:`step_async`.

        Raises:
            NoAsyncCallError: no ``step_async`` before.
            Any error of a sub-environment (``InvalidActionError``, ``EnvironmentFailedError``,
            ``PeerLostError``, ...), of the same type with "sub-environment i" in its message; every
            trial is then ended and ``reset()`` is needed.
        """
        if self.closed:
            raise ClosedEnvironmentError("this CogmentVectorEnv is closed")
        if self._state is not _State.WAITING_STEP:
            raise NoAsyncCallError("step_wait() without a pending step_async()", "step")
        pending, self._pending = self._pending, None
        self._state = _State.DEFAULT
        steps: list[_Step] = self._wait(pending)
        try:
            return self._collect(steps)
        except BaseException:
            self._needs_reset = True  # the trials go on until reset() or close() ends them
            raise

    def render(self) -> tuple[Any, ...] | None:
        """The last frame each sub-environment sent (``render_mode`` given at construction)."""
        if self.render_mode is None:
            return None
        return tuple(sub.frame for sub in self._subs)

    def close_extras(self, **kwargs: Any) -> None:
        """End every trial, then the Orchestrator, channels and env host this env started."""
        if self._pending is not None:
            self._abandoned.append(self._pending)
            self._pending = None
        self._state = _State.DEFAULT
        try:
            self._settle_abandoned()
            self._runner.run(self._close())
        finally:
            self._runner.close()

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            logger.debug("CogmentVectorEnv garbage-collected without close()")

    def __repr__(self) -> str:
        return f"CogmentVectorEnv({self._connection.implementation!r}, num_envs={self.num_envs})"

    # ------------------------------------------------------------------ sub-env attributes

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """One value per sub-environment of what this side knows of them: ``observation_space``,
        ``action_space``, ``render_mode``, ``metadata``, ``spec``, ``env_endpoint``,
        ``implementation``. The envs themselves live in their service."""
        params = [self._subs[i // self.envs_per_trial].params.environment for i in range(self.num_envs)]
        known: dict[str, Callable[[int], Any]] = {
            "observation_space": lambda i: self.single_observation_space,
            "action_space": lambda i: self.single_action_space,
            "render_mode": lambda i: self.render_mode,
            "metadata": lambda i: self.metadata,
            "spec": lambda i: None,
            "env_endpoint": lambda i: params[i].endpoint,
            "implementation": lambda i: params[i].implementation,
        }
        getter = known.get(name)
        if getter is None:
            raise AttributeError(
                f"sub-environments of a CogmentVectorEnv live in their environment service; their {name!r} is not "
                f"known here (known: {sorted(known)})"
            )
        return tuple(getter(i) for i in range(self.num_envs))

    # ------------------------------------------------------------------ internals: sync side

    def _check_idle(self, call: str) -> None:
        if self.closed:
            raise ClosedEnvironmentError("this CogmentVectorEnv is closed")
        if self._state is not _State.DEFAULT:
            raise AlreadyPendingCallError(f"{call}() while a step_async() waits for its step_wait()", self._state.value)

    def _split_options(
        self, options: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None
    ) -> tuple[list[Any], np.ndarray]:
        """``reset``'s options: one dict (or None) per sub-env, and which sub-envs to reset
        (``options["reset_mask"]``, taken out of the dict)."""
        mask = np.ones(self.num_envs, dtype=np.bool_)
        if options is None or isinstance(options, Mapping):
            opts = dict(options) if options is not None else None
            if opts is not None and "reset_mask" in opts:
                mask = _reset_mask(opts.pop("reset_mask"), self.num_envs)
                if self._needs_reset and not mask.all():
                    raise ResetNeededError("reset every sub-environment (no reset_mask) first: no episode is running")
            return [opts] * self.num_envs, mask
        per_env = list(options)
        if len(per_env) != self.num_envs or not all(o is None or isinstance(o, Mapping) for o in per_env):
            raise ValueError(f"options must be a dict, None, or a list of {self.num_envs} dicts (or None), got {options!r}")
        return per_env, mask

    def _seeds(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seeds: list[Any] = [int(seed) + i for i in range(self.num_envs)]
        elif isinstance(seed, Sequence) and not isinstance(seed, (str, bytes)):
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed: a list of seeds must have num_envs={self.num_envs} entries, got {len(seeds)}")
        else:
            raise ValueError(f"seed must be None, an int or a list of {self.num_envs} ints/None, got {seed!r}")
        for s in seeds:
            if s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0):
                raise ValueError(f"seeds must be non-negative ints or None, got {s!r}")
        return [None if s is None else int(s) for s in seeds]

    def _config(
        self, seed: int | None, options: Mapping[str, Any] | None, slot: int,
        resets: Sequence[tuple[int | None, Mapping[str, Any] | None] | None] | None = None,
    ) -> bytes:
        """The EnvConfig of a new trial of ``slot`` (a sub-environment, or a batched trial; its
        ``resets``: one ``(seed, options)`` per sub-env, or None for a deferred one, EnvConfig.resets)."""
        config = env_pb2.EnvConfig(
            render_mode=self.render_mode or "", omit_reward_messages=True, instance_key=f"{self._instance_prefix}/{slot}"
        )
        self._batch_config(config)
        if resets is not None:
            write_config_resets(config, resets)
        if seed is not None:
            config.seed = seed
        if options is not None:
            config.options.CopyFrom(encode_object(dict(options), "options"))
        return config.SerializeToString()

    def _start(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the loop: a future (background loop, runs now) or a task (caller's loop)."""
        if isinstance(self._runner, BackgroundLoop):
            return self._runner.submit(coro)
        return self._runner.loop.create_task(coro)

    def _wait(self, pending: Any) -> Any:
        """The result of what :meth:`_start` started. If the wait is interrupted (Ctrl-C), the
        work is kept to be cancelled by the next reset() or close(), which then end its trials."""
        try:
            runner = self._runner
            if isinstance(runner, BackgroundLoop):
                return pending.result()
            return runner.wait(pending)
        except BaseException:
            self._needs_reset = True
            if not pending.done():
                self._abandoned.append(pending)
            raise

    def _settle_abandoned(self) -> None:
        abandoned, self._abandoned = self._abandoned, []
        for pending in abandoned:
            pending.cancel()  # the coroutines end what they started when cancelled
            if not isinstance(pending, Future):
                try:
                    self._runner.run(_settle(pending))
                except BaseException:
                    logger.debug("abandoned work ended badly", exc_info=True)


    # ------------------------------------------------------------------ internals: loop side

    async def _open(self, sub: _SubEnv, config: bytes) -> TrialEvent:
        """Start and join a new trial for ``sub``; its first observation."""
        params = common_pb2.TrialParams()
        params.CopyFrom(sub.params)
        params.environment.config.content = config
        connection = self._connection
        trial_id = await connection.start_trial(params)
        session: ClientSession | None = None
        try:
            session = await connection.join(trial_id, actor_name=self._actor_name)
            event = await session.next_event()
            if event.final:
                await session.finish()
                raise CogmentGymError(f"trial {trial_id!r} ended at its first observation")
        except BaseException:
            if session is None or not session.ended:
                await _quietly(connection.terminate(trial_id))
            if session is not None:
                await session.finish()
            raise
        sub.session = session
        return event

    async def _reset(self, configs: dict[int, bytes]) -> dict[int, TrialEvent]:
        subs = [self._subs[i] for i in configs]
        await self._drop(subs)
        tasks = {sub.index: asyncio.ensure_future(self._open(sub, configs[sub.index])) for sub in subs}
        try:
            await asyncio.wait(tasks.values())
        except BaseException:  # cancelled: end what was started
            await _cancel(tasks.values())
            await _quietly(self._drop(self._subs))
            raise
        errors: dict[int, BaseException] = {}
        for i, task in tasks.items():
            error = task.exception()
            if error is not None:
                errors[i] = error
        if errors:
            await self._drop(self._subs)
            _raise_first(errors, self.envs_per_trial)
        return {i: task.result() for i, task in tasks.items()}

    async def _step(self, contents: list[bytes | None]) -> list[_Step]:
        subs = self._subs
        steps = [_Step() for _ in subs]
        opening: dict[int, asyncio.Future[TrialEvent]] = {}
        errors: dict[int, BaseException] = {}
        same_step = self.autoreset_mode is AutoresetMode.SAME_STEP
        try:
            # Every action leaves before any observation is awaited: the trials run together.
            for sub, content in zip(subs, contents):
                if content is None:
                    opening[sub.index] = asyncio.ensure_future(self._open(sub, self._config(None, None, sub.index)))
                    continue
                session = sub.session
                if session is None:
                    errors[sub.index] = ResetNeededError("its trial has ended; reset() is needed")
                    break
                try:
                    await session.act(content)
                except Exception as err:
                    errors[sub.index] = err
                    break
            finishing: list[ClientSession] = []
            if not errors:
                for sub, content in zip(subs, contents):
                    session = sub.session
                    if content is None or session is None:
                        continue
                    try:
                        event = await session.next_event()
                    except Exception as err:
                        errors[sub.index] = err
                        break
                    step = steps[sub.index]
                    step.event = event
                    if event.final:
                        step.final = True
                        sub.session = None
                        finishing.append(session)
                        if same_step:
                            opening[sub.index] = asyncio.ensure_future(self._open(sub, self._config(None, None, sub.index)))
            for session in finishing:
                await session.finish()
            if opening:
                await asyncio.wait(opening.values())
                for i, task in opening.items():
                    error = task.exception()
                    if error is not None:
                        errors.setdefault(i, error)
                    else:
                        steps[i].reset = task.result()
        except BaseException:  # cancelled (close(), an interrupt): end everything
            await _cancel(opening.values())
            await _quietly(self._drop(subs))
            raise
        if errors:
            await _cancel(opening.values())
            await self._drop(subs)
            _raise_first(errors, self.envs_per_trial)
        return steps

    async def _drop(self, subs: Iterable[_SubEnv]) -> None:
        """End the running trials of ``subs`` (hard TerminateTrial) and close their streams."""
        for sub in subs:
            session, sub.session = sub.session, None
            sub.autoreset = False
            if session is None:
                continue
            if not session.ended:
                await _quietly(self._connection.terminate(session.trial_id))
            await session.finish()

    async def _close(self) -> None:
        try:
            await self._drop(self._subs)
        finally:
            await self._connection.close()


# ---------------------------------------------------------------------------------------------


async def _settle(task: asyncio.Future[Any]) -> None:
    await asyncio.wait((task,))


async def _cancel(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel and wait for tasks (a cancelled trial opening ends what it started)."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


async def _quietly(awaitable: Any) -> None:
    """Best effort: ending a trial that is already gone is not an error."""
    try:
        await awaitable
    except Exception as err:
        logger.debug("best-effort clean-up failed: %s", err)


def _reset_mask(mask: Any, n: int) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (n,):
        raise ValueError(f"options['reset_mask'] must be a bool array of shape ({n},), got {mask!r}")
    if not mask.any():
        raise ValueError("options['reset_mask'] resets no sub-environment")
    return mask


def _raise_first(errors: Mapping[int, BaseException], per_trial: int = 1) -> None:
    """Raise the error of the lowest trial index, of its own type, naming its sub-environment(s)."""
    index = min(errors)
    for other in sorted(errors):
        if other != index:
            logger.warning("%s also failed: %s", _slot_label(other, per_trial), errors[other])
    original = errors[index]
    named = _named(original, index * per_trial, _slot_label(index, per_trial))
    if named is original:
        raise original
    raise named from original


def _slot_label(slot: int, per_trial: int) -> str:
    if per_trial == 1:
        return f"sub-environment {slot}"
    return f"sub-environments {slot * per_trial}..{(slot + 1) * per_trial - 1} (batched trial {slot})"


def _named(err: BaseException, index: int, label: str | None = None) -> BaseException:
    label = label or f"sub-environment {index}"
    message = f"{label}: {err}"
    try:
        named = type(err)(message)
    except Exception:  # a constructor with other arguments: keep the error, add a note
        named = err
        if hasattr(err, "add_note"):
            err.add_note(f"raised by {label}")
    else:
        for attr in ("failure", "path", "peer"):
            if hasattr(err, attr):
                setattr(named, attr, getattr(err, attr))
    try:
        setattr(named, "sub_env_index", index)
    except AttributeError:
        pass
    return named


def _num_envs(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    """``num_envs`` of ``CogmentVectorEnv(env, num_envs, ...)``'s arguments."""
    if len(args) > 1:
        return args[1]
    return kwargs.get("num_envs", 1)


def _options(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> ConnectionOptions:
    """The connection options of ``CogmentVectorEnv(...)``'s arguments, as ``__init__`` reads them."""
    if len(args) > 2:
        raise TypeError(f"CogmentVectorEnv takes 2 positional arguments (env, num_envs), got {len(args)}")
    names = {f for f in ConnectionOptions.__dataclass_fields__ if f not in ("make_kwargs", "env")}
    own = {"num_envs", "autoreset_mode", "envs_per_trial", "options", "env"}
    given = {k: v for k, v in kwargs.items() if k in names}
    make_kwargs = {k: v for k, v in kwargs.items() if k not in names and k not in own}
    env = args[0] if args else kwargs.get("env")
    return connection_options(kwargs.get("options"), env=env, make_kwargs=make_kwargs, **given)
