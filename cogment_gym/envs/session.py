"""The client-actor side of one trial (``ClientActorSP.RunTrial``), independent of transport."""

from __future__ import annotations

import logging

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym.errors import OrchestratorLostError, PeerTimeoutError, ProtocolError, TrialFailedError
from cogment_gym.protocol import END, HEARTBEAT, LAST, LAST_ACK, NORMAL, Failure, FailureKind
from cogment_gym.protocol.deadlines import DEFAULT_TIMEOUT
from cogment_gym.protocol.failures import ORCHESTRATOR
from cogment_gym.protocol.links import Link
from cogment_gym.protocol.local import TIMED_OUT

__all__ = ["ClientSession", "TrialEvent"]

logger = logging.getLogger(__name__)

ActorOut = common_pb2.ActorRunTrialOutput
_LAST_ACK = ActorOut(state=LAST_ACK)
_HEARTBEAT = ActorOut(state=HEARTBEAT)


class TrialEvent:
    """One observation delivered to the actor, with the rewards that came before it."""

    __slots__ = ("observation", "rewards", "final")

    def __init__(self, observation: common_pb2.Observation, rewards: list[common_pb2.Reward], final: bool) -> None:
        self.observation = observation
        self.rewards = rewards
        self.final = final


class ClientSession:
    """A client actor in one trial, on its stream to the Orchestrator (``link``: a gRPC call to
    ``ClientActorSP.RunTrial``, or an in-process call to an embedded Orchestrator).

    Errors name the trial and what was awaited. Whatever the topology: the trial failing
    elsewhere arrives in-band (its END: the environment lost is an
    :class:`~cogment_gym.errors.EnvironmentLostError`, ...), the Orchestrator's stream breaking
    is an :class:`~cogment_gym.errors.OrchestratorLostError`, no answer within ``timeout`` a
    :class:`~cogment_gym.errors.PeerTimeoutError`.
    """

    def __init__(self, link: Link, trial_id: str, timeout: float) -> None:
        self.link = link
        self.trial_id = trial_id
        self.timeout = timeout
        # Seconds every read may wait (DEFAULT_TIMEOUT for None or <= 0, as wait_for).
        self._wait = DEFAULT_TIMEOUT if timeout is None or timeout <= 0 else timeout
        self.actor_name = ""
        self.actor_class = ""
        self.ending = False
        self.ended = False
        self.tick = -1
        self.messages: list[common_pb2.Message] = []

    async def join(self, *, actor_name: str = "", actor_class: str = "") -> common_pb2.ActorInitialInput:
        output = common_pb2.ActorInitialOutput(actor_name=actor_name) if actor_name else common_pb2.ActorInitialOutput(actor_class=actor_class)
        await self._write(ActorOut(state=NORMAL, init_output=output), "the init data")
        while True:
            msg = await self._read("the init data")
            if msg.state == NORMAL and msg.HasField("init_input"):
                init = msg.init_input
                self.actor_name, self.actor_class = init.actor_name, init.actor_class
                return init
            self._unexpected(msg, "init_input")

    async def _read(self, what: str) -> common_pb2.ActorRunTrialInput:
        """The next message but heartbeats (answered); ``what`` (e.g. "an observation") names
        the wait in errors. A message already there costs no timer."""
        while True:
            try:
                msg = await self.link.read_within(self._wait)
            except TrialFailedError as err:  # the stream broke: the Orchestrator is gone
                raise self._named(err, f"while waiting for {what}") from None
            if msg is TIMED_OUT:
                raise PeerTimeoutError(
                    f"no answer within {self._wait:g} s while waiting for {what} of trial {self.trial_id!r} from the orchestrator "
                    "(the client's timeout)",
                    peer=ORCHESTRATOR,
                )
            if msg is None:
                self.ended = True
                raise OrchestratorLostError(
                    f"trial {self.trial_id!r}: the orchestrator ended the stream without ending the trial, while waiting for {what}"
                )
            if msg.state == HEARTBEAT:
                await self._write(_HEARTBEAT, "a heartbeat")
                continue
            if msg.state == END:
                self.ended = True
                failure = Failure.from_details(msg.details) if msg.details else Failure(FailureKind.TERMINATED.value, "the trial was ended by the orchestrator", "")
                # Name the trial once: the Orchestrator's own failures already start with it.
                named = failure.summary.startswith(f"trial {self.trial_id!r}")
                raise failure.to_exception("" if named else self.trial_id)
            return msg

    async def _write(self, message: ActorOut, what: str) -> None:
        try:
            await self.link.write(message)
        except TrialFailedError as err:  # the stream broke: the Orchestrator is gone
            raise self._named(err, f"while sending {what}") from None

    def _named(self, err: TrialFailedError, when: str) -> TrialFailedError:
        """``err`` (a stream error, typed by the link), of the same type, naming the trial and
        the wait."""
        try:
            return type(err)(f"trial {self.trial_id!r}: {err}, {when}", failure=err.failure, peer=err.peer or None)
        except TypeError:  # a constructor of its own: keep it as it is
            return err

    def _unexpected(self, msg: common_pb2.ActorRunTrialInput, wanted: str) -> None:
        raise ProtocolError(f"trial {self.trial_id!r}: expected {wanted}, got state {msg.state} {msg.WhichOneof('data')}")

    async def next_event(self) -> TrialEvent:
        """Wait for the next observation; rewards and messages before it are collected."""
        rewards: list[common_pb2.Reward] = []
        while True:
            msg = await self._read("an observation")
            state = msg.state
            if state == NORMAL:
                kind = msg.WhichOneof("data")
                if kind == "observation":
                    self.tick = msg.observation.tick_id
                    if self.ending:
                        await self._write(_LAST_ACK, "LAST_ACK")
                    return TrialEvent(msg.observation, rewards, self.ending)
                if kind == "reward":
                    rewards.append(msg.reward)
                elif kind == "message":
                    self.messages.append(msg.message)
            elif state == LAST:
                self.ending = True
            else:
                self._unexpected(msg, "an observation")

    async def act(self, content: bytes) -> None:
        message = ActorOut(state=NORMAL)
        action = message.action  # filled in place: no copy of the content
        action.tick_id = self.tick
        action.content = content
        try:  # inline (no _write coroutine): once per step
            await self.link.write(message)
        except TrialFailedError as err:  # the stream broke: the Orchestrator is gone
            raise self._named(err, f"while sending the action of tick {self.tick}") from None

    async def await_end(self, timeout: float) -> bool:
        """After the final observation: wait (at most ``timeout`` s) for END; True if it came.
        The stream stays open (``finish`` closes it)."""
        try:
            await self._until_end(timeout)
        except Exception as err:
            logger.debug("trial %s: no END yet: %s", self.trial_id, err)
        return self.ended

    async def _until_end(self, timeout: float) -> None:
        seconds = DEFAULT_TIMEOUT if timeout is None or timeout <= 0 else timeout
        while not self.ended:
            msg = await self.link.read_within(seconds)
            if msg is TIMED_OUT:
                raise PeerTimeoutError(f"no answer within {seconds:g} s while waiting for END of trial {self.trial_id!r}")
            if msg is None or msg.state == END:
                self.ended = True

    async def finish(self, timeout: float = 10.0) -> None:
        """After the final observation: wait for END (LAST_ACK was already sent)."""
        try:
            await self._until_end(timeout)
        except Exception as err:  # the trial is over for us either way
            logger.debug("trial %s: no clean END: %s", self.trial_id, err)
        finally:
            await self.link.close()
