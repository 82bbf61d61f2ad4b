"""The Orchestrator's gRPC face: ``cogmentAPI.TrialLifecycleSP`` and ``cogmentAPI.ClientActorSP``.

Failures are reported as the Cogment Orchestrator reports them: status ``UNKNOWN`` with
``"<Service>::<Method> failure: [<reason>]"`` (docs/protocol.md §0).
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, NoReturn

import grpc

from cogment_gym._proto.cogment.api import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from cogment_gym.errors import CogmentGymError, EndpointRefusedError
from cogment_gym.orchestrator.admission import EndpointPolicy
from cogment_gym.orchestrator.orchestrator import Orchestrator
from cogment_gym.protocol import status_reply, version_info
from cogment_gym.protocol.metadata import TRIAL_ID, metadata_values

__all__ = ["ClientActorServicer", "TrialLifecycleServicer"]

logger = logging.getLogger(__name__)


async def _fail(context: Any, method: str, reason: object, code: grpc.StatusCode = grpc.StatusCode.UNKNOWN) -> NoReturn:
    logger.info("%s failure: %s", method, reason)
    await context.abort(code, f"{method} failure: [{reason}]")
    raise AssertionError("context.abort returns only by raising")  # pragma: no cover


class TrialLifecycleServicer(orchestrator_pb2_grpc.TrialLifecycleSPServicer):
    """``policy``: the endpoints a trial started here may name (default: any ``grpc://`` or
    ``unix:`` endpoint, no ``local://``); a refused one fails StartTrial with PERMISSION_DENIED."""

    def __init__(self, orchestrator: Orchestrator, policy: EndpointPolicy | None = None) -> None:
        self.orchestrator = orchestrator
        self.policy = policy or EndpointPolicy()

    async def StartTrial(self, request: orchestrator_pb2.TrialStartRequest, context: Any) -> orchestrator_pb2.TrialStartReply:
        try:
            trial_id = await self.orchestrator.start_trial(request, policy=self.policy)
        except EndpointRefusedError as err:
            await _fail(context, "TrialLifecycleSP::StartTrial", err, grpc.StatusCode.PERMISSION_DENIED)
        except CogmentGymError as err:
            await _fail(context, "TrialLifecycleSP::StartTrial", err)
        return orchestrator_pb2.TrialStartReply(trial_id=trial_id)

    async def TerminateTrial(self, request: orchestrator_pb2.TerminateTrialRequest, context: Any) -> orchestrator_pb2.TerminateTrialReply:
        ids = metadata_values(context.invocation_metadata(), TRIAL_ID)
        if not ids:
            await _fail(context, "TrialLifecycleSP::TerminateTrial", "no 'trial-id' metadata: give one entry per trial to terminate")
        self.orchestrator.terminate(ids, hard=request.hard_termination)
        return orchestrator_pb2.TerminateTrialReply()

    async def GetTrialInfo(self, request: orchestrator_pb2.TrialInfoRequest, context: Any) -> orchestrator_pb2.TrialInfoReply:
        ids = metadata_values(context.invocation_metadata(), TRIAL_ID)
        infos = self.orchestrator.trial_infos(ids, latest_observation=request.get_latest_observation, actor_list=request.get_actor_list)
        return orchestrator_pb2.TrialInfoReply(trial=infos)

    async def WatchTrials(self, request: orchestrator_pb2.TrialListRequest, context: Any) -> AsyncIterator[orchestrator_pb2.TrialListEntry]:
        watch = self.orchestrator.watch(request.filter, request.full_info)
        try:
            async for entry in watch:
                yield entry
        finally:
            await watch.aclose()  # type: ignore[attr-defined]

    async def Version(self, request: common_pb2.VersionRequest, context: Any) -> common_pb2.VersionInfo:
        return version_info()

    async def Status(self, request: common_pb2.StatusRequest, context: Any) -> common_pb2.StatusReply:
        return status_reply(request, load=float(sum(1 for t in self.orchestrator.trials.values() if not t.done)))


class ClientActorServicer(orchestrator_pb2_grpc.ClientActorSPServicer):
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    async def RunTrial(self, request_iterator: Any, context: Any) -> None:
        try:
            await self.orchestrator.join(context)
        except CogmentGymError as err:
            await _fail(context, "ClientActorSP::RunTrial", err)

    async def Version(self, request: common_pb2.VersionRequest, context: Any) -> common_pb2.VersionInfo:
        return version_info()

    async def Status(self, request: common_pb2.StatusRequest, context: Any) -> common_pb2.StatusReply:
        return status_reply(request)
