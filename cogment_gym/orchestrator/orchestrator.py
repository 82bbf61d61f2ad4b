"""The Orchestrator: trials by id, their start (params, default params, pre-trial hooks,
datalog), their end (TerminateTrial, inactivity), and what is reported about them."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from typing import AsyncIterator, Iterable, Sequence

import grpc

from cogment_gym._proto.cogment.api import common_pb2, hooks_pb2, orchestrator_pb2
from cogment_gym.errors import CogmentGymError, PeerTimeoutError, ProtocolError, TrialStartError
from cogment_gym.orchestrator.admission import EndpointPolicy, trial_endpoints
from cogment_gym.orchestrator.datalog import DatalogWriter
from cogment_gym.orchestrator.transports import Connector
from cogment_gym.orchestrator.trial import EVENT_STALE, Trial, TrialState
from cogment_gym.protocol import END, HEARTBEAT, NORMAL, Failure, FailureKind, parse_endpoint
from cogment_gym.protocol.deadlines import within
from cogment_gym.protocol.links import ServerLink, ServerStream
from cogment_gym.protocol.local import TIMED_OUT
from cogment_gym.protocol.directory import ACTOR_CLASS_PROPERTY, IMPLEMENTATION_PROPERTY, DirectoryClient, ServiceType, is_discovery
from cogment_gym.protocol.metadata import TRIAL_ID, TRIAL_STARTED, USER_ID, metadata_value
from cogment_gym.orchestrator.slots import is_client_endpoint

__all__ = ["Orchestrator"]

logger = logging.getLogger(__name__)

# Ended trials kept for GetTrialInfo / WatchTrials / id uniqueness before they are forgotten.
KEEP_ENDED_TRIALS = 1000
# Seconds a shutting-down orchestrator gives its trials (and their datalogs) to end.
CLOSE_TIMEOUT = 10.0


class Orchestrator:
    """Runs trials. Lives in one asyncio loop; its gRPC face is in ``services.py``.

    Args:
        default_params: used when StartTrial carries a config instead of full params (see
            :func:`~cogment_gym.orchestrator.params.load_trial_params` for params files); their
            ``max_steps`` also applies to full params that set none (see :meth:`start_trial`).
        pre_trial_hooks: ``grpc://`` endpoints of TrialHooksSP services, called in order.
        connector: how components are reached (local registrations, gRPC channels).
        env_timeout: seconds to wait for the environment's init answer and each ObservationSet.
        hook_timeout: seconds each pre-trial hook may take.
        sweep_interval: seconds between two checks for inactive trials (``max_inactivity``).
        join_timeout: seconds a joining client actor has to send its init data.
        directory: resolves ``cogment://discover`` endpoints (and empty actor / environment
            endpoints, as Cogment does) of trial params and pre-trial hooks, at each StartTrial.
    """

    def __init__(
        self,
        *,
        default_params: common_pb2.TrialParams | None = None,
        pre_trial_hooks: Sequence[str] = (),
        connector: Connector | None = None,
        env_timeout: float = 60.0,
        hook_timeout: float = 30.0,
        sweep_interval: float = 0.25,
        join_timeout: float = 30.0,
        directory: DirectoryClient | None = None,
    ) -> None:
        for hook in pre_trial_hooks:
            if is_discovery(hook):
                if directory is None:
                    raise ValueError(f"pre-trial hook {hook!r} is found through a Cogment Directory: give the Orchestrator one")
            elif parse_endpoint(hook).scheme not in ("grpc", "unix"):
                raise ValueError(f"pre-trial hook {hook!r}: hooks are reached over gRPC (grpc:// or unix:)")
        self.directory = directory
        self.default_params = default_params
        self.pre_trial_hooks = list(pre_trial_hooks)
        self.connector = connector or Connector()
        self.env_timeout = env_timeout
        self.hook_timeout = hook_timeout
        self.sweep_interval = sweep_interval
        self.join_timeout = join_timeout
        self.trials: dict[str, Trial] = {}
        self._ended: collections.deque[str] = collections.deque()  # ids of ENDED trials, oldest first
        self._starting: set[str] = set()
        self._watchers: list[tuple[asyncio.Queue[tuple[Trial, TrialState] | None], frozenset[int]]] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # ------------------------------------------------------------------ starting

    async def start_trial(
        self, request: orchestrator_pb2.TrialStartRequest, user_id: str | None = None, *, policy: EndpointPolicy | None = None
    ) -> str:
        """Start a trial; returns its id, or "" when ``trial_id_requested`` is already used.

        With ``request.params`` the params are used as they are, but for ``max_steps``: when they
        leave it at 0 (no limit asked for), the default params' ``max_steps`` applies (a request's
        limit > the params file's > none; the Cogment Orchestrator ignores the file here).
        Otherwise the default params, with ``trial_config`` replaced by ``request.config`` when
        given, go through the pre-trial hooks in order. ``policy`` (trials started over gRPC)
        bounds the endpoints the final params may name; those of the default params always pass.

        Raises:
            TrialStartError: bad parameters, a failing hook, a shut down orchestrator.
            EndpointRefusedError: ``policy`` refuses an endpoint (a TrialStartError).
        """
        if self._closed:
            raise TrialStartError("the orchestrator is shut down")
        user_id = request.user_id if user_id is None else user_id
        trial_id = request.trial_id_requested or str(uuid.uuid4())
        if trial_id in self.trials or trial_id in self._starting:
            logger.info("trial id %r is already in use: StartTrial refused", trial_id)
            return ""
        self._starting.add(trial_id)
        try:
            params = common_pb2.TrialParams()
            if request.HasField("params"):
                params.CopyFrom(request.params)
                if not params.max_steps and self.default_params is not None:
                    # A client that asks for no limit (CogmentEnv, `cogment-gym run` without
                    # --max-steps) gets the operator's: a params file's max_steps is not lost.
                    params.max_steps = self.default_params.max_steps
            else:
                if self.default_params is not None:
                    params.CopyFrom(self.default_params)
                if request.HasField("config"):
                    params.trial_config.CopyFrom(request.config)
                params = await self._run_hooks(params, trial_id, user_id)
            if self._closed:
                raise TrialStartError("the orchestrator is shut down")
            if not params.environment.name:
                params.environment.name = "env"
            if self.directory is not None:
                params = await self._discover(self.directory, params, trial_id)
            if policy is not None:
                trusted = [e for _, e in trial_endpoints(self.default_params)] if self.default_params is not None else []
                policy.check(params, trial_id=trial_id, trusted=trusted)
            datalog = self._datalog_for(params, trial_id, user_id)
            try:
                trial = Trial(trial_id, params, self.connector, user_id=user_id, env_timeout=self.env_timeout, on_state=self._notify, datalog=datalog)
            except ValueError as err:
                raise TrialStartError(f"trial {trial_id!r} cannot start: {err}") from None
        finally:
            self._starting.discard(trial_id)
        self.trials[trial_id] = trial
        self._notify(trial)
        if datalog is not None:
            datalog.start()
        trial.start()
        if params.max_inactivity > 0:
            self._ensure_sweeper()
        self._forget_old_trials()
        return trial_id

    async def _discover(self, directory: DirectoryClient, params: common_pb2.TrialParams, trial_id: str) -> common_pb2.TrialParams:
        """A copy of ``params`` whose ``cogment://discover`` endpoints (and empty actor and
        environment endpoints: context discovery, as Cogment does) the directory resolved."""
        resolved = common_pb2.TrialParams()
        resolved.CopyFrom(params)

        async def resolve(endpoint: str, what: str, service: str, context: dict[str, str]) -> str:
            try:
                return await directory.resolve(endpoint or "cogment://discover", context_type=ServiceType.Value(service), context=context)
            except CogmentGymError as err:
                raise TrialStartError(f"trial {trial_id!r} cannot start: {what}: {err}") from None

        env = resolved.environment
        if not env.endpoint or is_discovery(env.endpoint):
            env.endpoint = await resolve(env.endpoint, "the environment", "ENVIRONMENT_SERVICE", {IMPLEMENTATION_PROPERTY: env.implementation})
        for actor in resolved.actors:
            if not is_client_endpoint(actor.endpoint) and (not actor.endpoint or is_discovery(actor.endpoint)):
                context = {ACTOR_CLASS_PROPERTY: actor.actor_class, IMPLEMENTATION_PROPERTY: actor.implementation}
                actor.endpoint = await resolve(actor.endpoint, f"actor {actor.name!r}", "ACTOR_SERVICE", context)
        if is_discovery(resolved.datalog.endpoint):
            resolved.datalog.endpoint = await resolve(resolved.datalog.endpoint, "the datalog", "DATALOG_SERVICE", {})
        return resolved

    async def _run_hooks(self, params: common_pb2.TrialParams, trial_id: str, user_id: str) -> common_pb2.TrialParams:
        for endpoint in self.pre_trial_hooks:
            if is_discovery(endpoint):
                if self.directory is None:  # checked in __init__ already
                    raise TrialStartError(f"pre-trial hook {endpoint}: no Cogment Directory to find it in")
                try:
                    endpoint = await self.directory.resolve(endpoint, context_type=ServiceType.Value("PRE_HOOK_SERVICE"))
                except CogmentGymError as err:
                    raise TrialStartError(f"pre-trial hook {endpoint}: {err}") from None
            try:
                reply = await self.connector.hooks(endpoint).OnPreTrial(
                    hooks_pb2.PreTrialParams(params=params),
                    metadata=((TRIAL_ID, trial_id), (USER_ID, user_id)) + self.connector.security.call_metadata,
                    timeout=self.hook_timeout,
                )
            except grpc.aio.AioRpcError as err:
                raise TrialStartError(f"pre-trial hook {endpoint} failed: {err.code().name}: {err.details()}") from None
            params = reply.params
        return params

    def _datalog_for(self, params: common_pb2.TrialParams, trial_id: str, user_id: str) -> DatalogWriter | None:
        endpoint = params.datalog.endpoint
        if not endpoint:
            return None
        try:
            if parse_endpoint(endpoint).scheme not in ("grpc", "unix", "local"):
                raise TrialStartError(f"datalog endpoint {endpoint!r}: a datalog is reached over gRPC (grpc:// or unix:) or in-process (local://)")
        except ValueError as err:
            raise TrialStartError(f"trial {trial_id!r} cannot start: {err}") from None
        metadata = ((TRIAL_ID, trial_id), (USER_ID, user_id), (TRIAL_STARTED, str(time.time_ns())))
        snapshot = common_pb2.TrialParams()
        snapshot.CopyFrom(params)
        return DatalogWriter(
            lambda: self.connector.datalog(endpoint, metadata),
            snapshot,
            description=f"datalog at {endpoint}",
            trial_id=trial_id,
            nb_actors=len(params.actors),
        )

    def _forget_old_trials(self) -> None:
        while len(self._ended) > KEEP_ENDED_TRIALS:
            self.trials.pop(self._ended.popleft(), None)

    # ------------------------------------------------------------------ ending

    def terminate(self, trial_ids: Iterable[str], *, hard: bool) -> None:
        """TerminateTrial: soft (end after the current tick) or hard (END now). Unknown ids are ignored."""
        for trial_id in trial_ids:
            trial = self.trials.get(trial_id)
            if trial is None or trial.done:
                continue
            if hard:
                trial.terminate(Failure(FailureKind.TERMINATED.value, "externally requested (hard TerminateTrial)", f"trial {trial_id!r}"))
            else:
                trial.request_end()

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="orchestrator-sweeper")

    async def _sweep(self) -> None:
        """Hard-end trials without activity for their ``max_inactivity``; stops when none has one."""
        while not self._closed:
            await asyncio.sleep(self.sweep_interval)
            now = time.monotonic()
            watched = 0
            for trial in list(self.trials.values()):
                limit = trial.params.max_inactivity
                if trial.done or limit <= 0:
                    continue
                watched += 1
                idle = now - trial.last_activity
                if idle > limit:
                    logger.info("trial %s: inactive for %.1f s (max_inactivity %d s): ending it", trial.id, idle, limit)
                    trial.record_event(EVENT_STALE)
                    trial.terminate(
                        Failure(
                            FailureKind.TIMEOUT.value,
                            f"the trial was inactive for too long (no observation or action for {idle:.1f} s; max_inactivity is {limit} s)",
                            f"trial {trial.id!r}",
                        )
                    )
            if not watched:
                return

    async def close(self) -> None:
        """Hard-terminate every running trial, wait (bounded) for them and close channels."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        running = [t for t in self.trials.values() if not t.done]
        for trial in running:
            trial.terminate(Failure(FailureKind.TERMINATED.value, "the orchestrator is shutting down", f"trial {trial.id!r}"))
        if running:
            _, late = await asyncio.wait([asyncio.ensure_future(t.wait()) for t in running], timeout=CLOSE_TIMEOUT)
            if late:
                logger.warning("%d trial(s) did not end within %g s of shutdown", len(late), CLOSE_TIMEOUT)
                for future in late:
                    future.cancel()
        datalogs = [t.datalog for t in self.trials.values() if t.datalog is not None]
        if datalogs:
            await asyncio.gather(*(d.wait(CLOSE_TIMEOUT) for d in datalogs), return_exceptions=True)
        for queue, _ in self._watchers:
            queue.put_nowait(None)
        await self.connector.close()

    # ------------------------------------------------------------------ info

    def trial_infos(self, trial_ids: Sequence[str], *, latest_observation: bool, actor_list: bool) -> list[orchestrator_pb2.TrialInfo]:
        """GetTrialInfo: the given trials (unknown ids skipped), or every known trial."""
        trials = [self.trials[t] for t in trial_ids if t in self.trials] if trial_ids else list(self.trials.values())
        return [t.info(latest_observation=latest_observation, actor_list=actor_list) for t in trials]

    def _notify(self, trial: Trial) -> None:
        if trial.state == TrialState.ENDED:
            self._ended.append(trial.id)
        for queue, states in self._watchers:
            if not states or int(trial.state) in states:
                queue.put_nowait((trial, trial.state))

    async def watch(self, states: Iterable[int], full_info: bool) -> AsyncIterator[orchestrator_pb2.TrialListEntry]:
        """WatchTrials: every current trial in ``states`` (all if empty), then every state change."""
        wanted = frozenset(states)
        queue: asyncio.Queue[tuple[Trial, TrialState] | None] = asyncio.Queue()
        entry = (queue, wanted)
        # Snapshot and subscription happen together (no await between): no change is missed or
        # reported twice.
        snapshot = [_entry(t, full_info, t.state) for t in self.trials.values() if not wanted or int(t.state) in wanted]
        self._watchers.append(entry)
        try:
            for item in snapshot:
                yield item
            while True:
                change = await queue.get()
                if change is None:
                    return
                yield _entry(change[0], full_info, change[1])
        finally:
            self._watchers.remove(entry)

    # ------------------------------------------------------------------ client actors

    async def join(self, context: ServerStream) -> None:
        """Serve one ClientActorSP.RunTrial stream from its opening to the trial's end.

        Raises:
            CogmentGymError: the trial or slot cannot be joined (the RPC then fails).
        """
        trial_id = metadata_value(context.invocation_metadata(), TRIAL_ID)
        link = ServerLink(context, "client actor")
        try:
            await self._serve_client(link, trial_id)
        finally:
            await link.close()  # the trial closed it already if it took it

    async def _serve_client(self, link: ServerLink, trial_id: str | None) -> None:
        deadline = time.monotonic() + self.join_timeout
        while True:
            msg = await link.read_within(deadline - time.monotonic())
            if msg is TIMED_OUT:
                raise PeerTimeoutError(f"the client actor sent no init data within {self.join_timeout:g} s")
            if msg is None:
                return
            if msg.state == HEARTBEAT:
                await link.write(common_pb2.ActorRunTrialInput(state=HEARTBEAT))
                continue
            if msg.state == NORMAL and msg.HasField("init_output"):
                break
            raise CogmentGymError(f"a joining client actor must first send init_output, got state {msg.state} {msg.WhichOneof('data')}")
        # The trial is looked up once the init data was read: when the RPC failed before its
        # first message was read, clients (grpcio 1.85) often saw INTERNAL "Internal error
        # from Core" instead of our status.
        trial = self.trials.get(trial_id or "")
        if trial is None:
            raise CogmentGymError(f"unknown trial {trial_id!r} for a client actor to join")
        selection = msg.init_output
        slot = trial.claim_slot(selection.actor_name, selection.actor_class)
        link.description = f"client actor {slot.name!r} of trial {trial.id!r}"
        try:
            await within(link.write(slot.init_input()), self.join_timeout)
        except asyncio.TimeoutError:
            raise PeerTimeoutError(f"{link.description} did not take its init data within {self.join_timeout:g} s") from None
        if not trial.attach_client(slot, link):
            failure = trial.failure or Failure(FailureKind.TERMINATED.value, "the trial ended while the actor was joining", f"trial {trial.id!r}")
            try:
                await asyncio.wait_for(link.write(common_pb2.ActorRunTrialInput(state=END, details=failure.to_details())), 5.0)
            except (Exception, asyncio.TimeoutError):
                logger.debug("trial %s: could not tell a late client actor the trial ended", trial.id, exc_info=True)
            return
        if slot.released is None:  # set for every client slot when the trial starts
            raise ProtocolError(f"{link.description}: the trial has not started its client slots")
        await slot.released  # set when the trial ends; the trial bounds every wait


def _entry(trial: Trial, full_info: bool, state: TrialState) -> orchestrator_pb2.TrialListEntry:
    if full_info:
        info = trial.info()
        info.state = int(state)  # type: ignore[assignment]
        return orchestrator_pb2.TrialListEntry(info=info)
    return orchestrator_pb2.TrialListEntry(trial_id=trial.id, state=int(state))  # type: ignore[arg-type]
