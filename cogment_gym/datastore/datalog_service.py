"""``cogmentAPI.DatalogSP`` served over a :class:`~cogment_gym.datastore.store.TrialStore`.

Any Cogment 2.x Orchestrator (ours, embedded or standalone, or the real one) streams a trial to
``RunTrialDatalog``: metadata ``trial-id`` (required) and ``user-id``, the trial's params first,
then its samples. Each sample is appended to the trial's file as it arrives; when the stream
ends the file gets its END record and is fsync'd (in a worker thread: an fsync may take
milliseconds and the loop may be a trial's). A stream that breaks (the Orchestrator died, the
service stops) ends its file with the reason: its samples stay readable, the trial is not
counted as complete. So does a stream that ends before a sample says the trial ENDED (as the
Orchestrator's last sample does).

The servicer is written against ``context.read()`` / ``context.write()``, so the same code is
reached over gRPC and in-process (``local://``, :class:`~cogment_gym.protocol.LocalCall`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc

from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2, datalog_pb2_grpc
from cogment_gym.datastore.fileformat import TrialFileWriter
from cogment_gym.datastore.store import TrialStore
from cogment_gym.protocol.metadata import TRIAL_ID, TRIAL_STARTED, USER_ID, metadata_value
from cogment_gym.protocol.versions import status_reply, version_info

__all__ = ["DatalogServicer"]

logger = logging.getLogger(__name__)

_EOF = grpc.aio.EOF
_ENDED = common_pb2.TrialState.ENDED


class DatalogServicer(datalog_pb2_grpc.DatalogSPServicer):
    """Records every trial streamed to it into ``store``.

    Attributes:
        store: where the trial files go.
        active: streams being recorded now.
    """

    def __init__(self, store: TrialStore) -> None:
        self.store = store
        self.active = 0

    async def RunTrialDatalog(self, request_iterator: Any, context: Any) -> None:  # noqa: N802 (gRPC name)
        metadata = context.invocation_metadata()
        trial_id = metadata_value(metadata, TRIAL_ID)
        if not trial_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "DatalogSP.RunTrialDatalog: missing required metadata 'trial-id'")
            return
        user_id = metadata_value(metadata, USER_ID) or ""
        first = await context.read()
        if first is _EOF or first is None:
            return
        if first.WhichOneof("msg") != "trial_params":
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"DatalogSP.RunTrialDatalog (trial {trial_id!r}): the first message must be the trial params, got {first.WhichOneof('msg')}",
            )
            return
        writer = self.store.create(trial_id, user_id, first.trial_params, started=_started(metadata_value(metadata, TRIAL_STARTED)))
        self.active += 1
        logger.debug("trial %s: recording to %s", trial_id, writer.path)
        error = "the stream was cancelled (the service stopped or the Orchestrator went away)"
        try:
            await context.write(datalog_pb2.RunTrialDatalogOutput())  # Cogment acknowledges the params
            await self._record(context, writer, trial_id)
            # An Orchestrator flushes a trial's last sample with state ENDED; a stream that stops
            # short of it (e.g. this server shutting down) is no finished trial.
            error = "" if writer.last_state == _ENDED else (
                f"the stream ended before the trial did (last state {common_pb2.TrialState.Name(writer.last_state)})"
            )
        except asyncio.CancelledError:
            raise
        except Exception as err:
            error = f"{type(err).__name__}: {_details(err)}"
            logger.warning("trial %s: datalog stream broke (%s); %s keeps the %d samples received", trial_id, error, writer.path, writer.samples)
        finally:
            self.active -= 1
            try:
                if error:
                    self.store.finished(writer, error)  # no await: we may be cancelled
                else:
                    await asyncio.to_thread(self.store.finished, writer)
            except OSError as err:
                logger.error("trial %s: could not finish %s: %s", trial_id, writer.path, err)

    async def _record(self, context: Any, writer: TrialFileWriter, trial_id: str) -> None:
        store = self.store
        while True:
            message = await context.read()
            if message is _EOF or message is None:
                return
            kind = message.WhichOneof("msg")
            if kind != "sample":
                raise ValueError(f"expected a sample, got {kind or 'an empty message'}")
            sample = message.sample
            writer.sample_bytes(sample.SerializeToString(), int(sample.info.state))
            store.appended()

    async def Version(self, request: common_pb2.VersionRequest, context: Any) -> common_pb2.VersionInfo:  # noqa: N802
        return version_info()

    async def Status(self, request: common_pb2.StatusRequest, context: Any) -> common_pb2.StatusReply:  # noqa: N802
        return status_reply(request, float(self.active))


def _started(value: str | None) -> int | None:
    """The trial's start our Orchestrator sends (``TRIAL_STARTED``), or None (other Orchestrators:
    the file is stamped when its stream arrives)."""
    try:
        started = int(value) if value else 0
    except ValueError:
        logger.warning("ignoring a malformed %s metadata value %r (expected ns since the epoch)", TRIAL_STARTED, value)
        return None
    return started if started > 0 else None


def _details(err: BaseException) -> str:
    details = getattr(err, "details", None)
    if callable(details):
        try:
            return str(details())
        except Exception:
            pass
    return str(err)
