"""The actors of a trial: one :class:`ActorSlot` per entry of ``TrialParams.actors``.

A slot owns its actor's stream and what goes through it (docs/protocol.md §2, §5), as the Cogment
Orchestrator's actor objects do:

* connecting: a service actor's init handshake, or the join of a client actor;
* what the actor sends is taken as it arrives, whatever the trial is waiting for (the tick's
  actions, the environment's observations, the LAST_ACKs of the end): the tick's action goes to
  the gathering, rewards are stamped with the tick they were sent in and routed by the trial to
  their receivers' slots, messages are forwarded at once, LAST_ACK is noted;
* what the actor is owed goes out with its next observation: one aggregated ``Reward`` per tick
  (confidence-weighted mean), then LAST on the final tick, then the observation;
* a broken stream disengages it; a required actor's loss ends the trial (:class:`Failed`).

Everything runs in the trial's task: a slot never reads its stream from another task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Sequence

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym.errors import AuthenticationError, CogmentGymError, EndpointUnreachableError, PeerLostError, PeerTimeoutError
from cogment_gym.protocol import END, HEARTBEAT, LAST, LAST_ACK, NORMAL, Failure, FailureKind
from cogment_gym.protocol.endpoints import CLIENT_ENDPOINT
from cogment_gym.protocol.deadlines import within
from cogment_gym.protocol.failures import ACTOR

from cogment_gym.protocol.local import EMPTY, TIMED_OUT

if TYPE_CHECKING:
    from cogment_gym.orchestrator.trial import Trial
    from cogment_gym.protocol.links import Link, ServerLink

__all__ = [
    "ACTOR_LAST_ACK_TIMEOUT",
    "FAREWELL_TIMEOUT",
    "NO_ACTION",
    "UNBOUNDED_WAIT",
    "ActorSlot",
    "Failed",
    "is_client_endpoint",
    "kind_of",
    "quietly",
]

logger = logging.getLogger(__name__)

ActorIn = common_pb2.ActorRunTrialInput

_ACTOR_LAST = ActorIn(state=LAST)
_ACTOR_HEARTBEAT = ActorIn(state=HEARTBEAT)

# Upper bound on a wait Cogment leaves unbounded (timeout parameter 0).
UNBOUNDED_WAIT = 3600.0
# Seconds an actor has for its LAST_ACK at a soft end (the Cogment Orchestrator's bound too).
ACTOR_LAST_ACK_TIMEOUT = 30.0
# Seconds one best-effort END write may take when a trial ends.
FAREWELL_TIMEOUT = 5.0


class _NoAction:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_ACTION"


#: :meth:`ActorSlot.take`'s answer when the message was not a usable action (keep reading).
NO_ACTION: Any = _NoAction()


class Failed(Exception):
    """Carries the Failure that ends the trial hard."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.summary)
        self.failure = failure


def is_client_endpoint(endpoint: str) -> bool:
    """``cogment://client`` (any case), or the deprecated bare ``client``."""
    return endpoint.lower() in (CLIENT_ENDPOINT, "client")


def kind_of(err: BaseException) -> FailureKind:
    if isinstance(err, EndpointUnreachableError):
        return FailureKind.UNREACHABLE
    if isinstance(err, AuthenticationError):  # a component refused the Orchestrator's token
        return FailureKind.UNAUTHENTICATED
    if isinstance(err, PeerTimeoutError):
        return FailureKind.TIMEOUT
    return FailureKind.PEER_LOST


class ActorSlot:
    """One actor of a trial (an entry of ``TrialParams.actors``): its stream and what passes on it.

    Args:
        trial: the trial it belongs to (its tick, its routing of rewards and messages, its datalog).
        index: its index in ``TrialParams.actors`` (the order of every actor list on the wire).
        params: its ``ActorParams``.
    """

    def __init__(self, trial: Trial, index: int, params: common_pb2.ActorParams) -> None:
        self.trial = trial
        self.index = index
        self.params = params
        self.name = params.name
        self.actor_class = params.actor_class
        self.is_client = is_client_endpoint(params.endpoint)
        self.link: Link | ServerLink | None = None
        self.available = False  # connected and not disengaged
        self.claimed = False  # client actors: a join selected this slot
        self.joined: asyncio.Future[None] | None = None  # client actors: set when joined
        self.released: asyncio.Future[None] | None = None  # client actors: the servicer returns when set
        self.rewards: dict[int, list[common_pb2.RewardSource]] = {}  # owed, by tick
        self.got_last_ack = False
        self.stream_over = False  # its side of the stream ended (EOF or END) during the soft end
        self.farewell_sent = False  # END already sent (disengaged at init)
        self.missing_reason = ""
        # Its last response_timeout expired with the read still pending: it is behind, and the
        # soft end waits for its LAST_ACK no longer than one response_timeout.
        self.lagging = False

    @property
    def description(self) -> str:
        return f"actor {self.name!r}"

    @property
    def done_sending(self) -> bool:
        """Nothing more is awaited from it at the end of the trial (LAST_ACK, or its stream ended)."""
        return self.got_last_ack or self.stream_over

    def init_input(self) -> ActorIn:
        init = common_pb2.ActorInitialInput(
            actor_name=self.name,
            actor_class=self.actor_class,
            impl_name=self.params.implementation,
            env_name=self.trial.env_name,
        )
        if self.params.HasField("config"):
            init.config.CopyFrom(self.params.config)
        return ActorIn(state=NORMAL, init_input=init)

    # ------------------------------------------------------------------ joining (client actors)

    def open_for_join(self, loop: asyncio.AbstractEventLoop) -> None:
        """The trial started: a client slot gets the futures its join sets and its RPC awaits."""
        if self.is_client:
            self.joined = loop.create_future()
            self.released = loop.create_future()

    def free_for(self, actor_class: str) -> bool:
        """A client slot of ``actor_class`` that no join took and that still waits for one."""
        joined = self.joined
        return self.is_client and self.actor_class == actor_class and not self.claimed and joined is not None and not joined.done()

    def claim(self, actor_class: str = "") -> None:
        """A joining client actor takes this slot (``actor_class``: the class it says it is, or "").

        Raises:
            CogmentGymError: of another class, a service actor's slot, disengaged (no join in
                time), or taken already.
        """
        trial_id = self.trial.id
        if actor_class and self.actor_class != actor_class:
            raise CogmentGymError(f"actor {self.name!r} of trial {trial_id!r} is of class {self.actor_class!r}, not {actor_class!r}")
        if not self.is_client:
            raise CogmentGymError(f"actor {self.name!r} of trial {trial_id!r} is a service actor ({self.params.endpoint})")
        if self.joined is not None and self.joined.cancelled():
            raise CogmentGymError(f"actor {self.name!r} of trial {trial_id!r} did not join in time and was disengaged")
        if self.claimed:
            raise CogmentGymError(f"actor {self.name!r} of trial {trial_id!r} has already joined")
        self.claimed = True

    async def release(self) -> None:
        """The trial is over for a client actor: its stream closed, a join still awaited refused,
        its RPC let go (the servicer returns)."""
        if self.link is not None:
            await self.link.close()
        if self.joined is not None and not self.joined.done():
            self.joined.cancel()
        if self.released is not None and not self.released.done():
            self.released.set_result(None)

    # ------------------------------------------------------------------ connecting

    async def connect(self) -> None:
        """Connect within ``initial_connection_timeout``: a service actor's init, a client's join.

        An optional actor that fails is unavailable for the whole trial (told so with END).

        Raises:
            Failed: a required actor failed to connect.
        """
        trial = self.trial
        timeout = self.params.initial_connection_timeout or UNBOUNDED_WAIT
        try:
            if self.is_client:
                joined = self.joined
                if joined is None:
                    raise CogmentGymError(f"client {self.description} cannot join a trial that was not started")
                try:
                    await asyncio.wait_for(asyncio.shield(joined), timeout)
                except asyncio.TimeoutError:
                    joined.cancel()  # a late join is refused
                    raise PeerTimeoutError(f"client {self.description} did not join within {timeout:g} s") from None
            else:
                link = trial.connector.service_actor(self.params.endpoint, trial.metadata, f"{self.description} at {self.params.endpoint}")
                self.link = link
                try:
                    await asyncio.wait_for(self._init_service_actor(link), timeout)
                except asyncio.TimeoutError:
                    raise PeerTimeoutError(f"{self.description} did not answer its init within {timeout:g} s") from None
            self.available = True
        except CogmentGymError as err:
            if not self.params.optional:
                raise Failed(Failure(kind_of(err).value, f"failed to initialize required {self.description}: {err}", f"trial {trial.id!r}", type(err).__name__)) from None
            logger.warning("trial %s: optional %s is unavailable for the whole trial: %s", trial.id, self.description, err)
            if self.link is not None:  # closed with the others when the trial ends
                self.farewell_sent = True
                try:
                    await asyncio.wait_for(self.link.write(ActorIn(state=END, details=f"{self.description} is disengaged: {err}")), 5.0)
                except (Exception, asyncio.TimeoutError):  # best effort: it failed already
                    logger.debug("trial %s: could not tell %s", trial.id, self.description, exc_info=True)

    async def _init_service_actor(self, link: Link | ServerLink) -> None:
        """Send the init data, await the actor's init_output (answering heartbeats)."""
        await link.write(self.init_input())
        while True:
            msg = await link.read()
            if msg is None:
                raise PeerLostError(f"{self.description} closed its stream during init")
            if msg.state == HEARTBEAT:
                await link.write(_ACTOR_HEARTBEAT)
            elif msg.state == NORMAL and msg.HasField("init_output"):
                return
            elif msg.state == END:
                raise PeerLostError(f"{self.description} ended during init: {Failure.from_details(msg.details).summary}" if msg.details else f"{self.description} ended during init")
            else:
                raise PeerLostError(f"{self.description} sent {msg.WhichOneof('data')} in state {msg.state} before init_output")

    def attach(self, link: Link | ServerLink) -> bool:
        """The client of this slot got its init data; False if it can no longer join."""
        joined = self.joined
        if joined is None or joined.done():
            return False
        self.link = link
        joined.set_result(None)
        return True

    # ------------------------------------------------------------------ what the actor sends

    async def take(self, msg: Any, wanted: bool) -> Any:
        """Handle one message of the actor: its action of the tick when ``wanted`` (the gathering
        awaits it), None (the actor is gone), or :data:`NO_ACTION` (keep reading)."""
        if msg is None:
            self._stream_ended("its stream closed")
            return None
        state = msg.state
        trial = self.trial
        if state == NORMAL:
            kind = msg.WhichOneof("data")
            if kind == "action":
                action = msg.action
                tick = trial.tick
                if action.tick_id == -1 or action.tick_id == tick:
                    self.lagging = False
                    if wanted:
                        trial.last_activity = time.monotonic()
                        if trial.datalog is not None:
                            trial.datalog.action(self.index, action)
                        return action
                    # Cogment keeps the first action of a tick only (or it came after its deadline).
                    logger.debug("trial %s: dropped a second or late action of %s for tick %d", trial.id, self.description, tick)
                else:
                    logger.debug("trial %s: dropped action of %s for tick %d (now %d)", trial.id, self.description, action.tick_id, tick)
            elif kind == "reward":
                trial.route_reward(msg.reward, self.name)
            elif kind == "message":
                await trial.route_message(msg.message, self.name)
        elif state == END:
            self._stream_ended(f"it ended its stream: {Failure.from_details(msg.details).summary}" if msg.details else "it ended its stream")
            return None
        elif state == LAST_ACK:
            self.got_last_ack = True
        # HEARTBEAT / LAST from an actor after init: logged only, as Cogment does.
        return NO_ACTION

    def _stream_ended(self, reason: str) -> None:
        if self.trial.ending:  # after its final observation: it may still be told END
            self.stream_over = True
        else:
            self.disengage(reason)

    async def poll_action(self) -> Any:
        """Take the queued messages up to the action: the action, None (the actor is gone), or
        :data:`NO_ACTION` (nothing usable queued yet)."""
        link = self.link
        if link is None:
            return None
        while True:
            try:
                msg = link.poll()
            except (PeerLostError, EndpointUnreachableError) as err:
                self.disengage(err)
                return None
            if msg is EMPTY:
                return NO_ACTION
            result = await self.take(msg, True)
            if result is not NO_ACTION:
                return result

    async def next_action(self) -> common_pb2.Action | None:
        """The action of the tick, or None (unavailable, or its ``response_timeout`` passed).
        Waits under the trial's watchdog (armed for the tick) and the response timeout."""
        link = self.link
        if not self.available or link is None:
            return None
        response_timeout = self.params.response_timeout
        deadline = time.monotonic() + response_timeout if response_timeout > 0 else 0.0
        while True:
            try:
                msg = await link.read_within(deadline - time.monotonic() if deadline else None)
            except (PeerLostError, EndpointUnreachableError) as err:
                self.disengage(err)
                return None
            if msg is TIMED_OUT:
                self.response_timed_out()
                return None
            result = await self.take(msg, True)
            if result is not NO_ACTION:
                return result

    def has_news(self) -> bool:
        """Something it sent waits to be taken (or its stream ended)."""
        link = self.link
        if link is None:
            return False
        inbox = link.inbox
        return (bool(inbox.items) or inbox.closed) and self.available and not self.stream_over

    async def drain(self) -> None:
        """Take what it sent, without waiting; no action is awaited from it now."""
        link = self.link
        while link is not None and self.available and not self.stream_over:
            try:
                msg = link.poll()
            except (PeerLostError, EndpointUnreachableError) as err:
                self.disengage(err)
                return
            if msg is EMPTY:
                return
            await self.take(msg, False)

    def response_timed_out(self) -> None:
        self.missing_reason = f"no action within its response_timeout of {self.params.response_timeout:g} s"
        self.lagging = True
        logger.debug("trial %s: %s at tick %d", self.trial.id, self.missing_reason, self.trial.tick)

    def disengage(self, reason: object) -> None:
        """Read and written no more. Raises Failed for a required actor, unless the trial is ending."""
        trial = self.trial
        if self.available:
            logger.info("trial %s: %s disengaged: %s", trial.id, self.description, reason)
        self.available = False
        self.missing_reason = str(reason)
        if not self.params.optional and not trial.ending:
            raise Failed(Failure(FailureKind.PEER_LOST.value, f"required {self.description} is gone: {reason}", f"trial {trial.id!r}", peer=ACTOR))

    # ------------------------------------------------------------------ what the actor is owed

    def owe(self, tick: int, sources: Sequence[common_pb2.RewardSource], sender: str) -> None:
        """Reward ``sources`` for ``tick`` (sender rewritten), delivered before the next observation."""
        bucket = self.rewards.get(tick)
        if bucket is None:
            bucket = self.rewards[tick] = []
        for source in sources:
            copy = common_pb2.RewardSource()
            copy.CopyFrom(source)
            copy.sender_name = sender
            bucket.append(copy)

    async def deliver(self, content: bytes, tick: int, timestamp: int, final: bool) -> None:
        """Its rewards, LAST on the final tick, then the observation of ``tick``."""
        link = self.link
        if link is None:
            return
        try:
            if self.rewards:
                await self._send_rewards(link)
            if final:
                await link.write(_ACTOR_LAST)
            message = ActorIn(state=NORMAL)
            observation = message.observation  # filled in place: no copy of the content
            observation.tick_id = tick
            observation.timestamp = timestamp
            observation.content = content
            await link.write(message)
        except (PeerLostError, EndpointUnreachableError) as err:
            self.disengage(err)

    async def deliver_rewards(self) -> None:
        """What it is still owed, now (at the end of the trial, before END)."""
        link = self.link
        if link is None or not self.available or not self.rewards:
            return
        try:
            await self._send_rewards(link)
        except (PeerLostError, EndpointUnreachableError) as err:
            self.disengage(err)

    async def _send_rewards(self, link: Link | ServerLink) -> None:
        rewards, self.rewards = self.rewards, {}
        for tick in sorted(rewards):
            await link.write(ActorIn(state=NORMAL, reward=aggregate(tick, self.name, rewards[tick])))

    # ------------------------------------------------------------------ ending

    @property
    def last_ack_budget(self) -> float:
        """Seconds a soft end waits for its LAST_ACK: one response_timeout at most once it lags."""
        if self.lagging:
            return min(ACTOR_LAST_ACK_TIMEOUT, self.params.response_timeout)
        return ACTOR_LAST_ACK_TIMEOUT

    async def farewell(self, message: ActorIn, *, failed: bool) -> None:
        """END (``message``), best effort: at a soft end to an actor still available; at a
        hard end (``failed``) to any actor not told already (disengaged at init)."""
        link = self.link
        if link is None or (self.farewell_sent if failed else not self.available):
            return
        await quietly(link.write(message))

    async def forward(self, message: common_pb2.Message) -> None:
        """A message for it, at once."""
        link = self.link
        if link is None or not self.available:
            return
        try:
            await link.write(ActorIn(state=NORMAL, message=message))
        except (PeerLostError, EndpointUnreachableError) as err:
            self.disengage(err)


async def quietly(awaitable: Any, timeout: float = FAREWELL_TIMEOUT) -> None:
    """Best effort send/close at the end of a trial: the peer may already be gone."""
    try:
        await within(awaitable, timeout)
    except (Exception, asyncio.CancelledError):
        logger.debug("best-effort send failed", exc_info=True)


def aggregate(tick: int, receiver: str, sources: Sequence[common_pb2.RewardSource]) -> common_pb2.Reward:
    """Cogment's value: the confidence-weighted mean over sources with confidence > 0."""
    weight = sum(s.confidence for s in sources if s.confidence > 0)
    value = sum(s.value * s.confidence for s in sources if s.confidence > 0) / weight if weight > 0 else 0.0
    return common_pb2.Reward(tick_id=tick, receiver_name=receiver, value=value, sources=sources)
