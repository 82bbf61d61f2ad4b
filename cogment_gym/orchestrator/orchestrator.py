"""The Orchestrator: trials by id, their start (params, default params, pre-trial hooks), their
end, and what is reported about them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import AsyncIterator, Iterable, Sequence

import grpc

from cogment_gym._proto.cogment.api import common_pb2, hooks_pb2, orchestrator_pb2
from cogment_gym.errors import CogmentGymError, TrialStartError
from cogment_gym.orchestrator.transports import Connector, ServerLink
from cogment_gym.orchestrator.trial import Trial, TrialState
from cogment_gym.protocol import HEARTBEAT, NORMAL, Failure, FailureKind
from cogment_gym.protocol.metadata import TRIAL_ID, USER_ID, metadata_value

__all__ = ["Orchestrator"]

logger = logging.getLogger(__name__)

# Ended trials kept for GetTrialInfo / id uniqueness before they are forgotten.
KEEP_ENDED_TRIALS = 1000


class Orchestrator:
    """Runs trials. Lives in one asyncio loop; its gRPC face is in ``services.py``.

    Args:
        default_params: used when StartTrial carries a config instead of full params.
        pre_trial_hooks: ``grpc://`` endpoints of TrialHooksSP services, called in order.
        connector: how components are reached (local registrations, gRPC channels).
        env_timeout: seconds to wait for the environment's answer to an ActionSet.
    """

    def __init__(
        self,
        *,
        default_params: common_pb2.TrialParams | None = None,
        pre_trial_hooks: Sequence[str] = (),
        connector: Connector | None = None,
        env_timeout: float = 60.0,
    ) -> None:
        self.default_params = default_params
        self.pre_trial_hooks = list(pre_trial_hooks)
        self.connector = connector or Connector()
        self.env_timeout = env_timeout
        self.trials: dict[str, Trial] = {}
        self._watchers: list[tuple[asyncio.Queue[tuple[Trial, TrialState] | None], frozenset[int]]] = []
        self._closed = False

    # ------------------------------------------------------------------ starting

    async def start_trial(self, request: orchestrator_pb2.TrialStartRequest, user_id: str = "") -> str:
        """Start a trial; returns its id, or "" when ``trial_id_requested`` is already used."""
        if self._closed:
            raise TrialStartError("the orchestrator is shut down")
        trial_id = request.trial_id_requested or str(uuid.uuid4())
        if trial_id in self.trials:
            return ""
        if request.HasField("params"):
            params = common_pb2.TrialParams()
            params.CopyFrom(request.params)
        else:
            params = common_pb2.TrialParams()
            if self.default_params is not None:
                params.CopyFrom(self.default_params)
            if request.HasField("config"):
                params.trial_config.CopyFrom(request.config)
            params = await self._run_hooks(params, trial_id, user_id or request.user_id)
        try:
            trial = Trial(trial_id, params, self.connector, user_id=user_id or request.user_id, env_timeout=self.env_timeout, on_state=self._notify)
        except ValueError as err:
            raise TrialStartError(f"trial {trial_id!r} cannot start: {err}") from err
        self.trials[trial_id] = trial
        self._notify(trial)
        trial.start()
        self._forget_old_trials()
        return trial_id

    async def _run_hooks(self, params: common_pb2.TrialParams, trial_id: str, user_id: str) -> common_pb2.TrialParams:
        for endpoint in self.pre_trial_hooks:
            try:
                reply = await self.connector.hooks(endpoint).OnPreTrial(
                    hooks_pb2.PreTrialParams(params=params),
                    metadata=((TRIAL_ID, trial_id), (USER_ID, user_id)),
                    timeout=30.0,
                )
            except grpc.aio.AioRpcError as err:
                raise TrialStartError(f"pre-trial hook {endpoint} failed: {err.code().name}: {err.details()}") from err
            params = reply.params
        return params

    def _forget_old_trials(self) -> None:
        ended = [tid for tid, t in self.trials.items() if t.done]
        for tid in ended[: max(0, len(ended) - KEEP_ENDED_TRIALS)]:
            del self.trials[tid]

    # ------------------------------------------------------------------ ending

    def terminate(self, trial_ids: Iterable[str], *, hard: bool) -> None:
        for trial_id in trial_ids:
            trial = self.trials.get(trial_id)
            if trial is None or trial.done:
                continue
            if hard:
                trial.terminate(Failure(FailureKind.TERMINATED.value, "terminated on request (hard TerminateTrial)", f"trial {trial_id!r}"))
            else:
                trial.request_end()

    async def close(self) -> None:
        """Hard-terminate every running trial and close channels."""
        self._closed = True
        running = [t for t in self.trials.values() if not t.done]
        for trial in running:
            trial.terminate(Failure(FailureKind.TERMINATED.value, "the orchestrator is shutting down", f"trial {trial.id!r}"))
        for trial in running:
            try:
                await asyncio.wait_for(trial.wait(), 10)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                logger.warning("trial %s did not end within 10 s of shutdown", trial.id)
        for queue, _ in self._watchers:
            queue.put_nowait(None)
        await self.connector.close()

    # ------------------------------------------------------------------ info

    def trial_infos(self, trial_ids: Sequence[str], *, latest_observation: bool, actor_list: bool) -> list[orchestrator_pb2.TrialInfo]:
        trials = [self.trials[t] for t in trial_ids if t in self.trials] if trial_ids else list(self.trials.values())
        return [t.info(latest_observation=latest_observation, actor_list=actor_list) for t in trials]

    def _notify(self, trial: Trial) -> None:
        for queue, states in self._watchers:
            if not states or int(trial.state) in states:
                queue.put_nowait((trial, trial.state))

    async def watch(self, states: Iterable[int], full_info: bool) -> AsyncIterator[orchestrator_pb2.TrialListEntry]:
        """Every current trial in ``states`` (all if empty), then every state change."""
        wanted = frozenset(states)
        queue: asyncio.Queue[tuple[Trial, TrialState] | None] = asyncio.Queue()
        entry = (queue, wanted)
        self._watchers.append(entry)
        try:
            for trial in list(self.trials.values()):
                if not wanted or int(trial.state) in wanted:
                    yield _entry(trial, full_info, trial.state)
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield _entry(item[0], full_info, item[1])
        finally:
            self._watchers.remove(entry)

    # ------------------------------------------------------------------ client actors

    async def join(self, context: object, read_timeout: float = 30.0) -> None:
        """Serve one ClientActorSP.RunTrial stream from its opening to the trial's end."""
        trial_id = metadata_value(context.invocation_metadata(), TRIAL_ID)  # type: ignore[attr-defined]
        link = ServerLink(context, "client actor")
        trial = self.trials.get(trial_id or "")
        if trial is None:
            raise CogmentGymError(f"unknown trial {trial_id!r} for a client actor to join")
        while True:
            msg = await asyncio.wait_for(link.read(), read_timeout)
            if msg is None:
                return
            if msg.state == HEARTBEAT:
                await link.write(common_pb2.ActorRunTrialInput(state=HEARTBEAT))
                continue
            if msg.state == NORMAL and msg.HasField("init_output"):
                break
            raise CogmentGymError(f"a joining client actor must first send init_output, got state {msg.state} {msg.WhichOneof('data')}")
        selection = msg.init_output
        slot = trial.claim_slot(selection.actor_name, selection.actor_class)
        link.description = f"client actor {slot.name!r}"
        slot.link = link
        await link.write(trial.init_input(slot))
        assert slot.joined is not None and slot.released is not None
        slot.joined.set_result(None)
        await slot.released


def _entry(trial: Trial, full_info: bool, state: TrialState) -> orchestrator_pb2.TrialListEntry:
    if full_info:
        info = trial.info()
        info.state = int(state)
        return orchestrator_pb2.TrialListEntry(info=info)
    return orchestrator_pb2.TrialListEntry(trial_id=trial.id, state=int(state))
