"""Trial data logging: one ``DatalogSP.RunTrialDatalog`` stream per trial (docs/protocol.md §7).

The trial records what happens into the :class:`DatalogWriter` with cheap synchronous calls
(``begin_tick``, ``action``, ``reward``...); finished samples are queued to one sending task per
trial, so a slow or broken datalog service never slows down or fails the trial: its errors are
logged and the trial goes on without it.

Sample semantics follow the Cogment Orchestrator:

- the stream's metadata is ``trial-id`` and ``user-id``; its first message is the trial's final
  ``TrialParams``, then one ``DatalogSample`` per tick;
- sample N is created when observation set N arrives (sample 0 exists from the start, so that
  rewards and messages sent before the first observation are kept); ``info.timestamp`` is that
  moment; ``actions`` has one entry per actor, a placeholder with ``tick_id = -2`` for actors
  without an action; ``rewards`` are as received, ``messages`` as routed (one per recipient);
- ``nb_buffered_ticks`` samples are kept in memory (default 2: sample N is sent when observation
  N+1 arrives) so that rewards for a past tick still in memory join their sample; older ones are
  sent alone as ``out_of_sync`` samples; ``info.state`` is the trial state when the sample is
  sent, so the last sample (flushed when the trial ends) says ``ENDED``;
- ``exclude_fields`` (case-insensitive) clears those fields from every sample.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Callable, Sequence

import grpc

from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2, environment_pb2

__all__ = ["DEFAULT_BUFFERED_TICKS", "SAMPLE_FIELDS", "DatalogWriter"]

logger = logging.getLogger(__name__)

DEFAULT_BUFFERED_TICKS = 2
SAMPLE_FIELDS = ("info", "observations", "actions", "rewards", "messages", "default_actors", "unavailable_actors")
# Seconds one write to the datalog service may take before it is given up on.
WRITE_TIMEOUT = 30.0
# Seconds the service gets to finish its stream once everything was sent.
CLOSE_TIMEOUT = 10.0

Input = datalog_pb2.RunTrialDatalogInput
_NO_ACTION_TICK = -2  # Cogment's "no data" tick of a placeholder action


class DatalogWriter:
    """Records one trial and streams it to a datalog service.

    Args:
        open_stream: returns the RunTrialDatalog call (a gRPC stream-stream call), opened with the
            trial-id and user-id metadata.
        params: the trial's final parameters, sent first.
        description: names the service in logs, e.g. ``"datalog at grpc://..."``.
        trial_id: for logs.
        nb_actors: how many actors the trial has (size of ``actions``).
    """

    def __init__(
        self,
        open_stream: Callable[[], Any],
        params: common_pb2.TrialParams,
        *,
        description: str,
        trial_id: str,
        nb_actors: int,
    ) -> None:
        self._open_stream = open_stream
        self._params = params
        self.description = description
        self.trial_id = trial_id
        self._nb_actors = nb_actors
        buffered = params.nb_buffered_ticks
        if buffered == 0:
            buffered = DEFAULT_BUFFERED_TICKS
        elif buffered < 2:
            logger.warning("trial %s: nb_buffered_ticks=%d is invalid; using %d", trial_id, buffered, DEFAULT_BUFFERED_TICKS)
            buffered = DEFAULT_BUFFERED_TICKS
        self._buffered = int(buffered)
        self._excluded: list[str] = []
        for name in params.datalog.exclude_fields:
            field = name.strip().lower()
            if field in SAMPLE_FIELDS:
                self._excluded.append(field)
            else:
                logger.warning("trial %s: unknown datalog exclude field %r ignored; known: %s", trial_id, name, ", ".join(SAMPLE_FIELDS))
        self._samples: deque[datalog_pb2.DatalogSample] = deque()
        self._queue: asyncio.Queue[datalog_pb2.DatalogSample | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.failed = False
        self.closed = False
        self._new_sample(0)

    # ------------------------------------------------------------------ recording (trial side)

    def start(self) -> None:
        """Open the stream and send the params, in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"datalog-{self.trial_id}")

    def _new_sample(self, tick: int) -> datalog_pb2.DatalogSample:
        sample = datalog_pb2.DatalogSample()
        sample.info.tick_id = tick
        sample.info.timestamp = time.time_ns()
        placeholder = common_pb2.Action(tick_id=_NO_ACTION_TICK)
        for _ in range(self._nb_actors):
            sample.actions.add().CopyFrom(placeholder)
        self._samples.append(sample)
        return sample

    @property
    def _current(self) -> datalog_pb2.DatalogSample:
        return self._samples[-1]

    def begin_tick(self, tick: int, observations: environment_pb2.ObservationSet, state: int) -> None:
        """Observation set ``tick`` arrived: it opens the sample of that tick."""
        if self.failed:
            return
        current = self._samples[-1] if self._samples else None
        if current is not None and current.info.tick_id == tick and not current.HasField("observations"):
            current.info.timestamp = time.time_ns()  # the first sample: created at start, stamped now
            sample = current
        else:
            sample = self._new_sample(tick)
        sample.observations.CopyFrom(observations)
        while len(self._samples) > self._buffered - 1 and len(self._samples) > 1:
            self._ship(self._samples.popleft(), state)

    def action(self, index: int, action: common_pb2.Action) -> None:
        if not self.failed and 0 <= index < self._nb_actors:
            self._current.actions[index].CopyFrom(action)

    def missing(self, default_actors: Sequence[int], unavailable_actors: Sequence[int]) -> None:
        """Actors without an action this tick (after the response timeouts)."""
        if self.failed:
            return
        sample = self._current
        sample.default_actors.extend(default_actors)
        sample.unavailable_actors.extend(unavailable_actors)

    def reward(self, reward: common_pb2.Reward, tick: int, state: int) -> None:
        """A reward as received, attributed to ``tick`` (the current one, or a past one)."""
        if self.failed:
            return
        for sample in reversed(self._samples):
            if sample.info.tick_id == tick:
                sample.rewards.append(reward)
                return
        lone = datalog_pb2.DatalogSample()
        lone.info.out_of_sync = True
        lone.info.tick_id = max(tick, 0)
        lone.info.timestamp = time.time_ns()
        lone.info.special_events.append("Out of sync reward")
        lone.rewards.append(reward)
        self._ship(lone, state)

    def message(self, message: common_pb2.Message) -> None:
        if not self.failed:
            self._current.messages.append(message)

    def event(self, text: str) -> None:
        """A special event of the current tick ("End requested", "Stale trial"...)."""
        if not self.failed:
            self._current.info.special_events.append(text)

    def close(self, state: int) -> None:
        """The trial is over: send what is buffered (stamped ``state``), then end the stream."""
        if self.closed:
            return
        self.closed = True
        if not self.failed:
            while self._samples:
                self._ship(self._samples.popleft(), state)
        self._queue.put_nowait(None)

    async def wait(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until everything was sent and the stream is closed."""
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except asyncio.TimeoutError:
                self._task.cancel()

    def _ship(self, sample: datalog_pb2.DatalogSample, state: int) -> None:
        sample.info.state = state  # type: ignore[assignment]
        for field in self._excluded:
            sample.ClearField(field)
        self._queue.put_nowait(sample)

    # ------------------------------------------------------------------ sending (own task)

    async def _run(self) -> None:
        call = None
        drain: asyncio.Task[None] | None = None
        try:
            call = self._open_stream()
            drain = asyncio.ensure_future(_discard_replies(call))
            await asyncio.wait_for(call.write(Input(trial_params=self._params)), WRITE_TIMEOUT)
            while True:
                sample = await self._queue.get()  # fed by our own trial, which always closes us
                if sample is None:
                    break
                await _within(call.write(Input(sample=sample)), WRITE_TIMEOUT)
            await asyncio.wait_for(call.done_writing(), WRITE_TIMEOUT)
            # Let the service read to the end before the call is dropped.
            try:
                await asyncio.wait_for(asyncio.shield(drain), CLOSE_TIMEOUT)
            except asyncio.TimeoutError:
                logger.debug("trial %s: %s did not close its stream within %g s", self.trial_id, self.description, CLOSE_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError:
            self._fail(f"no progress within {WRITE_TIMEOUT:g} s")
        except Exception as err:  # any transport failure: the trial goes on without its datalog
            self._fail(f"{type(err).__name__}: {_details(err)}")
        finally:
            if drain is not None:
                drain.cancel()
            if call is not None:
                call.cancel()

    def _fail(self, reason: str) -> None:
        self.failed = True
        self._samples.clear()
        logger.warning("trial %s: %s failed (%s); the trial goes on without its datalog", self.trial_id, self.description, reason)


async def _within(awaitable: Any, seconds: float) -> Any:
    """A deadline without ``asyncio.wait_for``'s extra task per sample (3.11's ``asyncio.timeout``)."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None:  # Python 3.10
        return await asyncio.wait_for(awaitable, seconds)
    async with timeout(seconds):
        return await awaitable


async def _discard_replies(call: Any) -> None:
    """The Orchestrator reads and ignores whatever the datalog service sends."""
    try:
        while True:
            reply = await call.read()
            if reply is None or reply is grpc.aio.EOF:
                return
    except Exception as err:
        logger.debug("datalog reply stream ended: %s", err)


def _details(err: BaseException) -> str:
    details = getattr(err, "details", None)
    if callable(details):
        try:
            return str(details())
        except Exception:
            pass
    return str(err)
