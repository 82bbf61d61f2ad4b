"""Reading a RunTrial stream on the serving side (``context.read()`` / ``context.write()``: a
gRPC stream or a :class:`~cogment_gym.protocol.LocalCall`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc

from cogment_gym.errors import PeerTimeoutError
from cogment_gym.protocol.deadlines import DEFAULT_TIMEOUT, Watchdog, wait_for
from cogment_gym.protocol.failures import Failure, FailureKind
from cogment_gym.protocol.metadata import TRIAL_ID, metadata_value
from cogment_gym.protocol.states import END, HEARTBEAT, LAST, NORMAL
from cogment_gym.protocol.versions import status_reply, version_info

__all__ = ["StreamEnded", "TrialStreamServicer", "read_answering_heartbeats"]

logger = logging.getLogger(__name__)

EOF_ = grpc.aio.EOF


async def read_answering_heartbeats(context: Any, timeout: float, what: str, heartbeat_reply: Any) -> Any | None:
    """The next message that is not a heartbeat (each heartbeat is answered with
    ``heartbeat_reply``); None once the stream is over (EOF).

    Raises:
        PeerTimeoutError: no message within ``timeout`` seconds (``what`` names the wait).
    """
    while True:
        msg = await wait_for(context.read(), timeout, what)
        if msg is EOF_ or msg is None:
            return None
        if msg.state == HEARTBEAT:
            await context.write(heartbeat_reply)
            continue
        return msg


async def _read_watched(context: Any, timeout: float, what: str, heartbeat_reply: Any, watchdog: Watchdog) -> Any | None:
    """:func:`read_answering_heartbeats` under the servicer task's own :class:`Watchdog`: the
    same deadline and error, without a timer and a context manager per read (once per tick)."""
    seconds = DEFAULT_TIMEOUT if timeout is None or timeout <= 0 else timeout
    while True:
        watchdog.arm(seconds, what)
        try:
            msg = await context.read()
        except asyncio.CancelledError:
            if watchdog.expired is None:  # cancelled from elsewhere (the RPC, a shutdown)
                raise
            watchdog.expired = None
            uncancel = getattr(asyncio.current_task(), "uncancel", None)  # Python >= 3.11 counts cancellations
            if uncancel is not None:
                uncancel()  # ours: turned into the timeout
            raise PeerTimeoutError(f"no answer within {seconds:g} s while waiting for {what}") from None
        finally:
            watchdog.disarm()
        if msg is EOF_ or msg is None:
            return None
        if msg.state == HEARTBEAT:
            await context.write(heartbeat_reply)
            continue
        return msg


class StreamEnded(Exception):
    """The peer ended the stream (END or EOF): the serving side just returns."""


class TrialStreamServicer:
    """What the environment and service-actor servicers share: ``Version``, ``Status`` (load =
    trials in progress), and a ``RunTrial`` that counts trials and turns a silent Orchestrator
    into an in-band hard END. Subclasses set ``origin``, ``heartbeat_reply`` and ``end_message``
    and implement ``_run(trial_id, context)``; put this class first among the bases so that it
    overrides the generated servicer's unimplemented methods.
    """

    origin = "component"
    heartbeat_reply: Any = None
    end_message: Any = None  # the stream's output message class (state=END, details=...)

    def __init__(self) -> None:
        self.active_trials = 0
        self.trials_played = 0
        # The deadline of the reads of each RunTrial task (see _read).
        self._watchdogs: dict[asyncio.Task[Any], Watchdog] = {}

    async def Version(self, request: Any, context: Any) -> Any:
        return version_info()

    async def Status(self, request: Any, context: Any) -> Any:
        return status_reply(request, load=float(self.active_trials))

    async def RunTrial(self, request_iterator: Any, context: Any) -> None:
        trial_id = metadata_value(context.invocation_metadata(), TRIAL_ID) or "?"
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s: trial %s from %s", self.origin, trial_id, context.peer())
        self.active_trials += 1
        task = asyncio.current_task()
        if task is not None:
            self._watchdogs[task] = Watchdog(task)
        try:
            await self._run(trial_id, context)
        except StreamEnded:
            pass
        except PeerTimeoutError as err:
            # The Orchestrator went silent: say so in-band (a hard END with the reason), as for
            # any other failure, rather than failing the RPC with an unexpected exception.
            await self._fail(context, Failure(FailureKind.TIMEOUT.value, str(err), self.origin, type(err).__name__), trial_id)
        finally:
            self.active_trials -= 1
            self.trials_played += 1
            watchdog = self._watchdogs.pop(task, None) if task is not None else None
            if watchdog is not None:
                watchdog.close()

    async def _run(self, trial_id: str, context: Any) -> None:
        raise NotImplementedError

    async def _read(self, context: Any, timeout: float, what: str) -> Any:
        """The next message that is not a heartbeat; raises StreamEnded at the end of the stream.
        In the RunTrial task itself the deadline is that task's watchdog (no timer per read);
        in another task (a service actor's reader) a plain :func:`wait_for`."""
        task = asyncio.current_task()
        watchdog = self._watchdogs.get(task) if task is not None else None
        if watchdog is not None:
            msg = await _read_watched(context, timeout, what, self.heartbeat_reply, watchdog)
        else:
            msg = await read_answering_heartbeats(context, timeout, what, self.heartbeat_reply)
        if msg is None:
            raise StreamEnded
        return msg

    async def _read_init(self, context: Any, trial_id: str, timeout: float, last_ack: Any = None) -> Any | None:
        """The trial's ``init_input``; None when the trial ended first (END), or when something
        else came, which fails the trial in-band. With ``last_ack``, a LAST before the init data
        is answered with it (an Orchestrator ending the trial at once)."""
        while True:
            msg = await self._read(context, timeout, f"the init data of trial {trial_id!r}")
            if msg.state == END:
                return None
            if msg.state == LAST and last_ack is not None:
                await context.write(last_ack)
                continue
            if msg.state == NORMAL and msg.HasField("init_input"):
                return msg.init_input
            got = f"expected init_input, got state {msg.state} {msg.WhichOneof('data')}"
            await self._fail(context, Failure(FailureKind.BAD_REQUEST.value, got, self.origin), trial_id)
            return None

    async def _fail(self, context: Any, failure: Failure, trial_id: str) -> None:
        """End the trial hard with ``failure`` in the END details (best effort)."""
        logger.warning("trial %s: %s ends on failure: %s", trial_id, self.origin, failure.summary)
        try:
            await context.write(self.end_message(state=END, details=failure.to_details()))
        except Exception:  # the Orchestrator may already be gone; nothing else to tell it
            logger.debug("trial %s: could not send END", trial_id, exc_info=True)
