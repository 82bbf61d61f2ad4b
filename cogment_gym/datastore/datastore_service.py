"""``cogmentAPI.TrialDatastoreSP``, the read side, over a directory of trial files.

What the official SDK's ``context.get_datastore()`` uses: ``RetrieveTrials`` (pages, ``properties``
and ``trial_ids`` filters, ``timeout`` to wait for trials still to come), ``RetrieveSamples``
(samples as the Cogment datastore arranges them, actor and field filters; a trial this process
is still recording is followed until its end, as Cogment does), ``DeleteTrials``, ``Version``,
``Status``. One entry per trial id (a trial recorded twice: its latest file).

Not served: ``AddTrial`` / ``AddSample`` (importing trials from elsewhere) answer UNIMPLEMENTED;
trials enter the store through ``DatalogSP``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator

import grpc

from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2, trial_datastore_pb2 as ds_pb2, trial_datastore_pb2_grpc as ds_grpc
from cogment_gym.datastore.fileformat import SAMPLE, iter_records
from cogment_gym.datastore.samples import SampleFilter, stored_sample
from cogment_gym.datastore.store import StoredTrial, TrialStore
from cogment_gym.errors import TrialFileError, TruncatedTrialFileError
from cogment_gym.protocol.versions import status_reply, version_info

__all__ = ["TrialDatastoreServicer"]

logger = logging.getLogger(__name__)

# Seconds between checks of a followed trial when nothing told us it changed (its writer may be
# another process's: then no one does).
_FOLLOW_CHECK = 1.0
_RECORD_HEAD = 9


class TrialDatastoreServicer(ds_grpc.TrialDatastoreSPServicer):
    """Answers TrialDatastoreSP calls from ``store``."""

    def __init__(self, store: TrialStore) -> None:
        self.store = store

    def _listing(self) -> list[StoredTrial]:
        by_id: dict[str, StoredTrial] = {}
        for trial in self.store.trials(on_error="skip"):
            by_id[trial.trial_id] = trial  # a later recording of an id replaces the earlier one
        return list(by_id.values())

    async def RetrieveTrials(self, request: ds_pb2.RetrieveTrialsRequest, context: Any) -> ds_pb2.RetrieveTrialsReply:  # noqa: N802
        start = 0
        if request.trial_handle:
            try:
                start = int(request.trial_handle)
            except ValueError:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"invalid trial_handle {request.trial_handle!r}: leave it empty or give a previous reply's next_trial_handle",
                )
        wanted = set(request.trial_ids)
        count = request.trials_count
        if wanted and (count == 0 or len(wanted) < count):
            count = len(wanted)
        properties = dict(request.properties)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.timeout / 1000.0
        while True:
            seen = self.store.changes.version
            listing = await asyncio.to_thread(self._listing)
            chosen: list[StoredTrial] = []
            next_index = 0
            for index in range(max(start, 0), len(listing)):
                if count and len(chosen) >= count:
                    break
                trial = listing[index]
                if (not wanted or trial.trial_id in wanted) and all(trial.params.properties.get(k) == v for k, v in properties.items()):
                    chosen.append(trial)
                    next_index = index + 1
            remaining = deadline - loop.time()
            if remaining <= 0 or (count and len(chosen) >= count):
                break
            await self.store.changes.wait(seen, remaining)
        reply = ds_pb2.RetrieveTrialsReply(next_trial_handle=str(next_index))
        for trial in chosen:
            reply.trial_infos.add(
                trial_id=trial.trial_id, last_state=trial.last_state, user_id=trial.user_id,  # type: ignore[arg-type]
                samples_count=trial.samples, params=trial.params,
            )
        return reply

    async def RetrieveSamples(self, request: ds_pb2.RetrieveSamplesRequest, context: Any) -> AsyncIterator[ds_pb2.RetrieveSampleReply]:  # noqa: N802
        if not request.trial_ids:
            return
        found = await asyncio.to_thread(self.store.find, request.trial_ids)
        missing = [t for t in request.trial_ids if t not in found]
        if missing:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no trial {missing[0]!r} in {self.store.directory}")
        for trial_id in dict.fromkeys(request.trial_ids):
            trial = found[trial_id]
            actors = list(trial.params.actors)
            indices = {a.name: i for i, a in enumerate(actors)}
            selection = SampleFilter(request, actors)
            async for body in self._follow(trial):
                sample = datalog_pb2.DatalogSample.FromString(body)
                yield ds_pb2.RetrieveSampleReply(trial_sample=selection.apply(stored_sample(sample, trial.trial_id, actors, indices)))

    async def _follow(self, trial: StoredTrial) -> AsyncIterator[bytes]:
        """The trial's sample bodies; while this process writes the file, wait for more."""
        store, path = self.store, trial.path
        offset: int | None = None  # None: start at the file's preamble
        while True:
            seen = store.changes.version
            writing = store.is_writing(path)
            bodies: list[bytes] = []
            try:
                with open(path, "rb") as stream:
                    for record_offset, kind, body in iter_records(stream, path, start=offset):
                        offset = record_offset + _RECORD_HEAD + len(body)
                        if kind == SAMPLE:
                            bodies.append(body)
            except TruncatedTrialFileError:
                if not writing:  # a file cut off for good: what is whole was sent
                    logger.warning("trial %s: %s is cut off; its whole samples were sent", trial.trial_id, path)
                    writing = False
            except (TrialFileError, FileNotFoundError) as err:
                logger.warning("trial %s: reading stopped: %s", trial.trial_id, err)
                return
            for body in bodies:
                yield body
            if not writing:
                return
            await store.changes.wait(seen, _FOLLOW_CHECK)

    async def DeleteTrials(self, request: ds_pb2.DeleteTrialsRequest, context: Any) -> ds_pb2.DeleteTrialsReply:  # noqa: N802
        found = await asyncio.to_thread(self.store.find, request.trial_ids)
        busy = [t.trial_id for t in found.values() if self.store.is_writing(t.path)]
        if busy:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"trial {busy[0]!r} is being recorded; nothing was deleted")
        await asyncio.to_thread(self.store.delete, request.trial_ids)
        return ds_pb2.DeleteTrialsReply()

    async def AddTrial(self, request: ds_pb2.AddTrialRequest, context: Any) -> ds_pb2.AddTrialReply:  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "cogment_gym's datastore is read-only: trials are recorded through DatalogSP")
        return ds_pb2.AddTrialReply()  # pragma: no cover (abort raises)

    async def AddSample(self, request_iterator: Any, context: Any) -> ds_pb2.AddSamplesReply:  # noqa: N802
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "cogment_gym's datastore is read-only: trials are recorded through DatalogSP")
        return ds_pb2.AddSamplesReply()  # pragma: no cover

    async def Version(self, request: common_pb2.VersionRequest, context: Any) -> common_pb2.VersionInfo:  # noqa: N802
        return version_info()

    async def Status(self, request: common_pb2.StatusRequest, context: Any) -> common_pb2.StatusReply:  # noqa: N802
        return status_reply(request)
