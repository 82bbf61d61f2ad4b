"""One trial: connect its components, run its ticks, end it cleanly.

Tick loop (behaviour of the Cogment 2.x Orchestrator, docs/protocol.md §1.4, §2.3, §4):

1. read the environment's ObservationSet (rewards/messages before it are routed); every set but
   the first advances the tick by one;
2. to every available actor: its pending rewards (one aggregated ``Reward`` per tick), LAST if
   this is the final tick, its Observation;
3. gather one action per actor (``response_timeout``, ``optional``, ``default_action``);
4. if an end was requested or ``tick >= max_steps``: LAST to the environment (so with
   ``max_steps = M`` the environment gets ActionSets 0..M, the last after LAST, and the final
   observation is tick M+1);
5. the ActionSet; the answer is the next ObservationSet.

Every actor stream is processed as data arrives, whatever the trial waits for (actions, the
environment's observations, LAST_ACKs): rewards are stamped with the tick they were sent in and
delivered before the next observation, messages are forwarded at once (to the environment too),
and what is sent before END is delivered (rewards owed after the final observation go out just
before END). The per-actor part lives in :class:`~cogment_gym.orchestrator.slots.ActorSlot`.

Soft end: the environment's LAST_ACK (60 s), the actors' LAST_ACKs (30 s), then END to all.
Any failure (a required actor missing, a peer lost, a deadline passed, a hard TerminateTrial,
inactivity): a hard END to everyone, whose ``details`` carry the in-band Failure.

Concurrency: everything runs in the trial's task (only the actors' init runs in one child task
per actor). Links read into inboxes (a reader task per gRPC stream, none for local streams), so
the trial takes a message that is there without suspending, and waits on several streams by
sleeping on one future that any of their inboxes wakes: no task per actor and tick. Deadlines:
the trial's watchdog is re-armed per phase of a tick without touching the loop's timers in the
steady state; response timeouts are inbox deadlines.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Container, Coroutine, Sequence

from cogment_gym._proto.cogment.api import common_pb2, environment_pb2, orchestrator_pb2
from cogment_gym.errors import (
    AuthenticationError,
    CogmentGymError,
    EndpointUnreachableError,
    PeerLostError,
    PeerTimeoutError,
    TrialFailedError,
)
from cogment_gym.protocol import END, HEARTBEAT, LAST, LAST_ACK, NORMAL, Failure, FailureKind, failure_from_exception, parse_endpoint
from cogment_gym.protocol.failures import ACTOR, failure_from_link_error
from cogment_gym.protocol.deadlines import Watchdog
from cogment_gym.protocol.local import EMPTY
from cogment_gym.protocol.memory import LARGE_MESSAGE, keep_large_buffers
from cogment_gym.protocol.metadata import TRIAL_ID

from cogment_gym.orchestrator.slots import NO_ACTION, UNBOUNDED_WAIT, ActorSlot, Failed, is_client_endpoint, quietly

if TYPE_CHECKING:
    from cogment_gym.orchestrator.datalog import DatalogWriter
    from cogment_gym.orchestrator.transports import Connector
    from cogment_gym.protocol.links import Link, ServerLink
    from cogment_gym.protocol.local import Inbox

__all__ = ["ActorSlot", "Trial", "TrialState"]

logger = logging.getLogger(__name__)

ActorIn = common_pb2.ActorRunTrialInput
ActorOut = common_pb2.ActorRunTrialOutput
EnvIn = environment_pb2.EnvRunTrialInput

_ENV_LAST = EnvIn(state=LAST)
_ENV_END = EnvIn(state=END)
_ACTOR_END = ActorIn(state=END)
_ENV_HEARTBEAT = EnvIn(state=HEARTBEAT)

# Waits the Cogment Orchestrator also bounds (seconds).
ENV_LAST_ACK_TIMEOUT = 60.0  # the actors': slots.ACTOR_LAST_ACK_TIMEOUT
# Seconds a component gets to end its call once it was sent END (Cogment: WritesDone, Finish).
CLOSE_TIMEOUT = 10.0

# Datalog special events, spelled as the Cogment Orchestrator spells them (typo included).
EVENT_END_REQUESTED = "End requested"
EVENT_MAX_STEPS = "Maximum number of steps reached"
EVENT_ENV_ENDED = "Evironment ended trial"
EVENT_STALE = "Stale trial"


class TrialState(enum.IntEnum):
    UNKNOWN = common_pb2.UNKNOWN
    INITIALIZING = common_pb2.INITIALIZING
    PENDING = common_pb2.PENDING
    RUNNING = common_pb2.RUNNING
    TERMINATING = common_pb2.TERMINATING
    ENDED = common_pb2.ENDED


def _matches(pattern: str, name: str, actor_class: str) -> bool:
    """Cogment receiver patterns: ``name``, ``*``, ``class.*``, ``class.name``."""
    if pattern == name or pattern == "*":
        return True
    cls, dot, who = pattern.partition(".")
    return bool(dot) and cls == actor_class and who in ("*", name)


class Trial:
    """A running trial. Created and driven by :class:`~cogment_gym.orchestrator.Orchestrator`.

    Raises:
        ValueError: the parameters cannot make a trial (no actors, duplicate names, bad endpoints).
    """

    def __init__(
        self,
        trial_id: str,
        params: common_pb2.TrialParams,
        connector: Connector,
        *,
        user_id: str = "",
        env_timeout: float = 60.0,
        on_state: Callable[[Trial], None] | None = None,
        datalog: DatalogWriter | None = None,
    ) -> None:
        _validate(params)
        self.id = trial_id
        self.params = params
        self.user_id = user_id
        self.env_name = params.environment.name or "env"
        self.actors = [ActorSlot(self, i, a) for i, a in enumerate(params.actors)]
        self._by_name = {slot.name: slot for slot in self.actors}
        self._single = len(self.actors) == 1
        self.connector = connector
        self.env_timeout = env_timeout
        self.state = TrialState.INITIALIZING
        self.tick = 0
        self.started_ns = time.time_ns()
        self.ended_ns: int | None = None
        self.latest_observation: environment_pb2.ObservationSet | None = None
        self.end_requested = False
        self.failure: Failure | None = None
        self.last_activity = time.monotonic()
        self.datalog = datalog
        self._on_state = on_state
        self._env: Link | None = None
        self._env_ending = False  # the environment sent LAST
        self._last_sent = False  # this side sent LAST to the environment
        self._env_last_ack = False
        self._closing = False  # the hard end began: no more joins, no more terminate()
        self.ending = False  # the final observations went out: actors' streams may end
        self._task: asyncio.Task[None] | None = None
        self._watchdog: Watchdog | None = None
        self._env_wait = ""  # what the env deadline waits for (formatted once)
        self._watched: Link | ServerLink | None = None  # what the main task's watchdog guards
        self._gathering: list[Link | ServerLink] = []  # actors whose actions are awaited (several)
        self._unresponsive: list[Link | ServerLink] = []  # passed a deadline: not waited for again

    # ------------------------------------------------------------------ lifecycle

    def _set_state(self, state: TrialState) -> None:
        if state == self.state:
            return
        self.state = state
        if state == TrialState.ENDED:
            self.ended_ns = time.time_ns()
        if self._on_state is not None:
            self._on_state(self)

    def start(self) -> None:
        """Move to PENDING (client actors may join) and run the trial in a task."""
        loop = asyncio.get_running_loop()
        for slot in self.actors:
            slot.open_for_join(loop)
        self._set_state(TrialState.PENDING)
        self._task = loop.create_task(self._main(), name=f"trial-{self.id}")

    @property
    def done(self) -> bool:
        return self.state == TrialState.ENDED

    async def wait(self) -> None:
        """Until the trial has ENDED (every peer was told, every link closed)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    def request_end(self) -> None:
        """Soft end: the trial ends after the current tick's actions are in."""
        if not self.end_requested and not self.done:
            self.end_requested = True
            self.record_event(EVENT_END_REQUESTED)

    def terminate(self, failure: Failure) -> None:
        """Hard end now, telling every peer ``failure``."""
        if self._task is None or self._task.done() or self._closing:
            return
        if self.failure is None:
            self.failure = failure
        self._task.cancel()

    def record_event(self, text: str) -> None:
        """A datalog special event of the current tick."""
        if self.datalog is not None:
            self.datalog.event(text)

    # ------------------------------------------------------------------ client actors

    def claim_slot(self, actor_name: str, actor_class: str) -> ActorSlot:
        """The slot a joining client actor takes (by name, or first free of its class)."""
        if self._closing or self.state == TrialState.ENDED:
            reason = f": {self.failure.summary}" if self.failure is not None else ""
            raise CogmentGymError(f"trial {self.id!r} has ended{reason}")
        if self.state != TrialState.PENDING:
            raise CogmentGymError(f"trial {self.id!r} is {self.state.name}; client actors join PENDING trials only")
        found: ActorSlot | None
        if actor_name:
            found = self._by_name.get(actor_name)
            if found is None:
                raise CogmentGymError(f"trial {self.id!r} has no actor named {actor_name!r}; actors: {list(self._by_name)}")
        elif actor_class:
            found = next((s for s in self.actors if s.free_for(actor_class)), None)
            if found is None:
                raise CogmentGymError(f"trial {self.id!r} has no free client slot of class {actor_class!r}")
        else:
            raise CogmentGymError("a joining client actor must give an actor_name or an actor_class")
        found.claim(actor_class)
        return found

    def attach_client(self, slot: ActorSlot, link: ServerLink | Link) -> bool:
        """The client of ``slot`` got its init data; False if the trial ended meanwhile."""
        return not self._closing and slot.attach(link)

    # ------------------------------------------------------------------ main

    async def _main(self) -> None:
        task = asyncio.current_task()
        if task is None:  # start() creates the task: never
            raise RuntimeError("Trial._main must run in a task")
        self._watchdog = watchdog = Watchdog(task)
        failure: Failure | None = None
        try:
            try:
                await self._connect_actors()
                await self._connect_env()
                await self._run_ticks()
                await self._soft_end()
            except asyncio.CancelledError:
                _uncancel(task)
                if watchdog.expired is not None:
                    if self._watched is not None:
                        self._unresponsive.append(self._watched)
                    self._unresponsive.extend(self._gathering)
                    peer = self._watched.peer if self._watched is not None else ACTOR if self._gathering else ""
                    failure = Failure(FailureKind.TIMEOUT.value, watchdog.expired, f"trial {self.id!r}", "PeerTimeoutError", peer=peer)
                else:
                    failure = self.failure or Failure(FailureKind.TERMINATED.value, "the trial was cancelled (the orchestrator is shutting down)", f"trial {self.id!r}")
            except Failed as failed:
                failure = failed.failure
            except (PeerLostError, EndpointUnreachableError, PeerTimeoutError, AuthenticationError) as err:  # a link's: typed by its peer
                failure = failure_from_link_error(err, origin=f"trial {self.id!r}", waiting_for=watchdog.waiting_for)
            except TrialFailedError as err:
                failure = failure_from_exception(err, origin=f"trial {self.id!r}", kind=FailureKind.OTHER)
            except Exception as err:  # a bug here must still end the trial for everyone
                logger.exception("trial %s: internal error", self.id)
                failure = failure_from_exception(err, origin="orchestrator", kind=FailureKind.OTHER)
            watchdog.disarm()
            if failure is not None:
                self._closing = True
                self.failure = failure
                logger.info("trial %s ends hard: %s", self.id, failure.summary)
                self.record_event(f"Forced termination: {failure.summary}")
                await self._hard_end(failure)
        finally:
            self._closing = True
            watchdog.close()
            try:
                await self._close_links()
            finally:
                self._set_state(TrialState.ENDED)
                if self.datalog is not None:
                    self.datalog.close(int(TrialState.ENDED))

    def _guard(self) -> Watchdog:
        """The main task's watchdog (set when it starts)."""
        if self._watchdog is None:
            raise RuntimeError(f"trial {self.id!r} has no running task")
        return self._watchdog

    def _connected(self) -> tuple[Link, Watchdog]:
        """The environment's link and the watchdog, once the environment is connected."""
        if self._env is None:
            raise RuntimeError(f"trial {self.id!r} is not connected to its environment")
        return self._env, self._guard()

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """What every stream of the trial carries."""
        return ((TRIAL_ID, self.id),)

    # ------------------------------------------------------------------ connecting

    async def _connect_actors(self) -> None:
        if self._single:
            await self.actors[0].connect()
        else:
            await _run_all([slot.connect() for slot in self.actors])
        if not any(slot.available for slot in self.actors):
            logger.warning("trial %s: no actor is available; stepping with default/empty actions", self.id)

    async def _connect_env(self) -> None:
        try:
            await self._connect_env_once()
        except EndpointUnreachableError as err:
            endpoint = self.params.environment.endpoint
            via = self.connector.unroute(endpoint)
            if via is None:
                raise
            # The service's same-host socket is gone (a restarted or stopped service): TCP from
            # now on, and this trial tries once more there.
            logger.info("trial %s: %s failed (%s); using %s itself from now on", self.id, via, err, endpoint)
            failed, self._env = self._env, None
            if failed is not None:
                await quietly(failed.close(timeout=0))
            await self._connect_env_once()

    async def _connect_env_once(self) -> None:
        env = self.params.environment
        self._env = link = self.connector.environment(env.endpoint, self.metadata, f"environment {env.implementation or self.env_name!r} at {env.endpoint}")
        self._env_wait = f"observations from {link.description}"
        init = environment_pb2.EnvInitialInput(
            name=self.env_name,
            impl_name=env.implementation,
            tick_id=0,
            actors_in_trial=[common_pb2.TrialActor(name=s.name, actor_class=s.actor_class) for s in self.actors],
        )
        if env.HasField("config"):
            init.config.CopyFrom(env.config)
        watchdog = self._guard()
        self._watched = link
        watchdog.arm(self.env_timeout, f"the init answer of {link.description}")
        await link.write(EnvIn(state=NORMAL, init_input=init))
        while True:
            msg = await link.read()
            if msg is None:
                raise link.lost("closed its stream during init")
            if msg.state == HEARTBEAT:
                await link.write(_ENV_HEARTBEAT)
            elif msg.state == NORMAL and msg.HasField("init_output"):
                break
            elif msg.state == END:
                raise Failed(Failure.from_details(msg.details) if msg.details else Failure(FailureKind.PEER_LOST.value, "ended during init", link.description))
            else:
                raise PeerLostError(f"{link.description} sent {msg.WhichOneof('data')} in state {msg.state} before init_output")
        watchdog.disarm()

    # ------------------------------------------------------------------ ticks

    async def _read_observations(self, *, armed: bool = False) -> environment_pb2.ObservationSet:
        """The next ObservationSet (``armed``: the caller already armed the env deadline).
        Meanwhile what the actors send is taken as it arrives; what they sent before the set
        came keeps the tick it was sent in."""
        link, watchdog = self._connected()
        if not armed:
            self._watched = link
            watchdog.arm(self.env_timeout, self._env_wait)
        inbox = link.inbox
        actors = self.actors
        while True:
            msg = link.poll()
            if msg is EMPTY:
                # _sleep(inbox) inlined: this wait is once per tick on the hot path.
                wake = asyncio.get_running_loop().create_future()
                inbox.waiter = wake
                watched = self._watch_actors(wake)
                try:
                    await wake
                finally:
                    if inbox.waiter is wake:
                        inbox.waiter = None
                    for other in watched:
                        if other.waiter is wake:
                            other.waiter = None
                for slot in actors:
                    if slot.has_news():
                        await slot.drain()
                continue
            if msg is None:
                raise link.lost("closed its stream")
            state = msg.state
            if state == NORMAL:
                kind = msg.WhichOneof("data")
                if kind == "observation_set":
                    watchdog.disarm()
                    self.last_activity = time.monotonic()
                    for slot in actors:  # what they sent before it keeps this tick
                        if slot.has_news():
                            await slot.drain()
                    return msg.observation_set
                if kind == "reward":
                    self.route_reward(msg.reward, self.env_name)
                elif kind == "message":
                    await self.route_message(msg.message, self.env_name)
            elif state == LAST:
                self._env_ending = True
            elif state == LAST_ACK:
                self._env_last_ack = True
            elif state == END:
                raise Failed(Failure.from_details(msg.details) if msg.details else Failure(FailureKind.PEER_LOST.value, "the environment ended the trial", link.description))
            # HEARTBEAT after init: not answered (Cogment answers during init only; an SDK
            # peer answers every heartbeat, so answering here would ping-pong forever).

    async def _sleep(self, inbox: Inbox | None, until: float = 0.0, awaited: Container[ActorSlot] = ()) -> None:
        """Until ``inbox`` (None: none) or an actor's stream has something, or the loop time
        ``until`` (0: no limit), then take what the actors sent (but the ``awaited`` ones,
        whose actions the caller polls). No task per actor: one future that any inbox wakes."""
        loop = asyncio.get_running_loop()
        wake = loop.create_future()
        watched = self._watch_actors(wake)
        if inbox is not None:
            inbox.waiter = wake
            watched.append(inbox)
        timer = loop.call_at(until, _wake, wake) if until else None
        try:
            await wake
        finally:
            if timer is not None:
                timer.cancel()
            for other in watched:
                if other.waiter is wake:
                    other.waiter = None
        for slot in self.actors:
            if slot.has_news() and slot not in awaited:
                await slot.drain()

    def _watch_actors(self, wake: asyncio.Future[None]) -> list[Inbox]:
        """Make ``wake`` the waiter of every live actor's inbox (set at once if one has news)."""
        watched: list[Inbox] = []
        for slot in self.actors:
            link = slot.link
            if link is None or not slot.available or slot.stream_over:
                continue
            other = link.inbox
            other.waiter = wake
            watched.append(other)
            if (other.items or other.closed) and not wake.done():
                wake.set_result(None)
        return watched

    async def _take_from_actors(self, awaited: Container[ActorSlot] = ()) -> None:
        """Take what every actor (but the ``awaited`` ones) sent, without waiting."""
        for slot in self.actors:
            if slot.has_news() and slot not in awaited:
                await slot.drain()

    async def _run_ticks(self) -> None:
        obs_set = await self._read_observations()
        if obs_set.ByteSize() > LARGE_MESSAGE:  # large observations: keep their buffers (protocol.memory)
            keep_large_buffers()
        self._set_state(TrialState.RUNNING)
        max_steps = self.params.max_steps
        datalog = self.datalog
        env, watchdog = self._connected()
        while True:
            self.latest_observation = obs_set
            final = self._env_ending or self._last_sent
            if final and self.state != TrialState.TERMINATING:
                self._set_state(TrialState.TERMINATING)  # the environment ended the trial
            if datalog is not None:
                datalog.begin_tick(self.tick, obs_set, int(self.state))
                if final and not self._last_sent:
                    datalog.event(EVENT_ENV_ENDED)
            # Deadlines: writes to actors and the whole gathering have a backstop (a stuck
            # gRPC peer blocks writes); reads of actions re-arm their own, more precise one.
            self._watched = None
            watchdog.arm(UNBOUNDED_WAIT, _ACTORS_WAIT)
            await self._dispatch(obs_set, final)
            if final:
                watchdog.disarm()
                return
            actions_in = await self._gather_actions()
            # The env deadline covers sending the ActionSet and receiving the next observations.
            self._watched = env
            watchdog.arm(self.env_timeout, self._env_wait)
            if self.end_requested or (max_steps and self.tick >= max_steps):
                if not self.end_requested:
                    self.record_event(EVENT_MAX_STEPS)
                self._last_sent = True
                self._set_state(TrialState.TERMINATING)
                await env.write(_ENV_LAST)
            await env.write(actions_in)
            obs_set = await self._read_observations(armed=True)
            self.tick += 1

    async def _dispatch(self, obs_set: environment_pb2.ObservationSet, final: bool) -> None:
        observations, actors_map = obs_set.observations, obs_set.actors_map
        if len(actors_map) != len(self.actors):
            raise Failed(Failure(FailureKind.OTHER.value, f"observation set maps {len(actors_map)} actors, the trial has {len(self.actors)}", "environment"))
        if final:
            self.ending = True  # from now on an actor's stream may end (after its LAST_ACK)
        for slot in self.actors:
            if not slot.available:
                continue
            index = actors_map[slot.index]
            if not 0 <= index < len(observations):
                raise Failed(Failure(FailureKind.OTHER.value, f"actors_map[{slot.index}] = {index} is out of range", "environment"))
            await slot.deliver(observations[index], self.tick, obs_set.timestamp, final)

    async def _gather_actions(self) -> environment_pb2.EnvRunTrialInput:
        """This tick's actions as the message to the environment (an ActionSet)."""
        actors = self.actors
        actions: Sequence[common_pb2.Action | None]
        if self._single:
            slot = actors[0]
            self._watched = slot.link
            actions = (await slot.next_action(),)
        else:
            actions = await self._actions_of_all()
        message = EnvIn(state=NORMAL)
        action_set = message.action_set  # filled in place: no copy of the set
        action_set.tick_id = self.tick
        action_set.timestamp = time.time_ns()
        contents = action_set.actions
        defaults: list[int] = []
        missing: list[ActorSlot] = []
        for slot, action in zip(actors, actions):
            if action is not None:
                contents.append(action.content)
            elif slot.params.HasField("default_action"):
                contents.append(slot.params.default_action.content)
                defaults.append(slot.index)
            else:
                contents.append(b"")
                action_set.unavailable_actors.append(slot.index)
                if not slot.params.optional:
                    missing.append(slot)
        if self.datalog is not None and (defaults or action_set.unavailable_actors):
            self.datalog.missing(defaults, action_set.unavailable_actors)
        if missing:
            reasons = "; ".join(f"{s.name!r}: {s.missing_reason or 'no action'}" for s in missing)
            raise Failed(
                Failure(
                    FailureKind.TIMEOUT.value,
                    f"required actors {[s.name for s in missing]} unavailable at tick {self.tick} ({reasons})",
                    f"trial {self.id!r}",
                )
            )
        return message

    async def _actions_of_all(self) -> list[common_pb2.Action | None]:
        """Every actor's action for this tick (None: unavailable, or response timeout), without
        a task per actor: poll every awaited actor's inbox, take what the others send, then
        sleep on one future that a message to any of them (or the earliest response deadline)
        wakes."""
        actions: list[common_pb2.Action | None] = [None] * len(self.actors)
        loop = asyncio.get_running_loop()
        now = loop.time()
        # (slot, its response deadline or 0.0); an actor without response_timeout waits under
        # the trial's watchdog, armed for the tick by _run_ticks.
        awaited = {slot: now + slot.params.response_timeout if slot.params.response_timeout > 0 else 0.0 for slot in self.actors if slot.available}
        # If the trial's watchdog expires meanwhile, these actors passed a deadline.
        self._gathering = [slot.link for slot in awaited if slot.link is not None]
        while True:
            for slot, deadline in list(awaited.items()):
                result = await slot.poll_action()
                if result is NO_ACTION:
                    if deadline and deadline - loop.time() <= 0:
                        slot.response_timed_out()
                        del awaited[slot]
                else:
                    actions[slot.index] = result
                    del awaited[slot]
            if not awaited:
                self._gathering = []
                return actions
            # Polling an actor may have routed its messages (a write: a suspension), during
            # which messages for actors polled before may have come: _sleep then does not sleep.
            earliest = min((deadline for deadline in awaited.values() if deadline), default=0.0)
            await self._sleep(None, earliest, awaited)

    # ------------------------------------------------------------------ rewards and messages

    def route_reward(self, reward: common_pb2.Reward, sender: str) -> None:
        """A reward from ``sender``, for the tick it names (-1: the current one), owed to every
        actor its receiver pattern matches."""
        tick = reward.tick_id
        if tick == -1 or tick == self.tick:
            tick = self.tick
        elif 0 <= tick < self.tick:
            logger.debug("trial %s: reward for past tick %d is only logged", self.id, tick)
            if self.datalog is not None:
                self.datalog.reward(reward, tick, int(self.state))
            return
        else:
            logger.warning("trial %s: reward from %r for tick %d (now %d) dropped", self.id, sender, tick, self.tick)
            return
        if self.datalog is not None:
            self.datalog.reward(reward, tick, int(self.state))
        sources = reward.sources or [common_pb2.RewardSource(value=reward.value, confidence=1.0)]
        receiver = reward.receiver_name
        found = False
        for slot in self.actors:
            if _matches(receiver, slot.name, slot.actor_class):
                found = True
                if slot.available:
                    slot.owe(tick, sources, sender)
        if not found:
            logger.warning("trial %s: reward from %r for unknown receiver %r dropped", self.id, sender, receiver)

    async def route_message(self, message: common_pb2.Message, sender: str) -> None:
        """A message from ``sender``, forwarded at once to the environment or the actors its
        receiver names (tick, sender and receiver rewritten)."""
        if message.tick_id not in (-1, self.tick):
            logger.warning("trial %s: message from %r for tick %d (now %d) dropped", self.id, sender, message.tick_id, self.tick)
            return
        receiver = message.receiver_name
        if receiver == self.env_name:
            routed = common_pb2.Message(tick_id=self.tick, sender_name=sender, receiver_name=self.env_name)
            if message.HasField("payload"):
                routed.payload.CopyFrom(message.payload)
            if self.datalog is not None:
                self.datalog.message(routed)
            env = self._env
            if env is not None and not self._closing:
                await env.write(EnvIn(state=NORMAL, message=routed))
            return
        targets = [s for s in self.actors if _matches(receiver, s.name, s.actor_class)]
        if not targets:
            logger.warning("trial %s: message from %r for unknown receiver %r dropped", self.id, sender, receiver)
        for slot in targets:
            routed = common_pb2.Message(tick_id=self.tick, sender_name=sender, receiver_name=slot.name)
            if message.HasField("payload"):
                routed.payload.CopyFrom(message.payload)
            if self.datalog is not None:
                self.datalog.message(routed)
            await slot.forward(routed)

    # ------------------------------------------------------------------ ending

    async def _soft_end(self) -> None:
        """The final observations went out: the environment's LAST_ACK (60 s), the actors'
        LAST_ACKs (30 s), taking what everyone sends meanwhile; what the actors are still owed;
        then END to all."""
        env, watchdog = self._connected()
        self.ending = True
        if not self._env_last_ack:
            self._watched = env
            watchdog.arm(ENV_LAST_ACK_TIMEOUT, f"LAST_ACK from {env.description}")
            while True:
                msg = env.poll()
                if msg is EMPTY:
                    await self._sleep(env.inbox)
                    continue
                if msg is None or msg.state in (LAST_ACK, END):
                    break
                if msg.state == NORMAL:
                    kind = msg.WhichOneof("data")
                    if kind == "reward":
                        self.route_reward(msg.reward, self.env_name)
                    elif kind == "message":
                        await self.route_message(msg.message, self.env_name)
            watchdog.disarm()
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadlines: dict[ActorSlot, float] = {}
        for slot in self.actors:
            deadlines[slot] = start + slot.last_ack_budget
        await self._take_from_actors()
        given_up: list[ActorSlot] = []
        while True:
            waiting = [slot for slot in self.actors if slot.available and not slot.done_sending and slot not in given_up]
            now = loop.time()
            for slot in waiting:
                if deadlines[slot] - now <= 0:
                    logger.warning("trial %s: no LAST_ACK from %s within %g s", self.id, slot.description, deadlines[slot] - start)
                    given_up.append(slot)
                    if slot.link is not None:
                        self._unresponsive.append(slot.link)  # missed a deadline: no wait at close
            waiting = [slot for slot in waiting if slot not in given_up]
            if not waiting:
                break
            await self._sleep(None, min(deadlines[slot] for slot in waiting))
        for slot in self.actors:  # owed since their final observation (rewards of its tick)
            await slot.deliver_rewards()
        self._closing = True
        await quietly(env.write(_ENV_END))
        for slot in self.actors:
            await slot.farewell(_ACTOR_END, failed=False)

    async def _hard_end(self, failure: Failure) -> None:
        details = failure.to_details()
        if self._env is not None:
            await quietly(self._env.write(EnvIn(state=END, details=details)))
        farewell = ActorIn(state=END, details=details)
        for slot in self.actors:
            await slot.farewell(farewell, failed=True)

    async def _close_links(self) -> None:
        """Close every stream (each bounded). Client actors are released first: their RPC ends
        right after their END, without waiting for slower components to end their calls."""
        links: list[Link | ServerLink] = [self._env] if self._env is not None else []
        for slot in self.actors:
            if slot.is_client:
                await slot.release()
            elif slot.link is not None:
                links.append(slot.link)
        if len(links) == 1:  # the usual case: just the environment
            await self._close_link(links[0])
        elif links:
            await asyncio.gather(*(self._close_link(link) for link in links))

    async def _close_link(self, link: Link | ServerLink) -> None:
        """Close one stream; ``Link.close`` bounds its own waits."""
        patience = 0.0 if any(link is gone for gone in self._unresponsive) else CLOSE_TIMEOUT
        try:
            await link.close(patience)
        except Exception:  # closing is best effort
            logger.debug("trial %s: closing %s failed", self.id, link.description, exc_info=True)

    # ------------------------------------------------------------------ info

    def info(self, *, latest_observation: bool = False, actor_list: bool = False) -> orchestrator_pb2.TrialInfo:
        end = self.ended_ns if self.ended_ns is not None else time.time_ns()
        info = orchestrator_pb2.TrialInfo(
            trial_id=self.id,
            state=int(self.state),  # type: ignore[arg-type]
            env_name=self.env_name,
            tick_id=self.tick,
            trial_duration=end - self.started_ns,
            properties=dict(self.params.properties),
        )
        if latest_observation and self.latest_observation is not None and self.state != TrialState.ENDED:
            info.latest_observation.CopyFrom(self.latest_observation)
        if actor_list and self.state >= TrialState.PENDING:
            info.actors_in_trial.extend(common_pb2.TrialActor(name=s.name, actor_class=s.actor_class) for s in self.actors)
        return info


_ACTORS_WAIT = "the actors to take this tick's observations and answer"


def _validate(params: common_pb2.TrialParams) -> None:
    """What the Cogment Orchestrator checks before a trial starts (plus our endpoint kinds)."""
    if not params.actors:
        raise ValueError("trial parameters name no actors")
    names = [a.name for a in params.actors]
    for i, actor in enumerate(params.actors):
        if not actor.name or not actor.actor_class:
            raise ValueError(f"actor #{i} needs a name and an actor_class, got name={actor.name!r} actor_class={actor.actor_class!r}")
        if not actor.endpoint:
            raise ValueError(f"actor {actor.name!r} has no endpoint (give grpc://, unix: or cogment://client, or the Orchestrator a Cogment Directory to discover it)")
        if not is_client_endpoint(actor.endpoint):
            parse_endpoint(actor.endpoint)  # raises EndpointError (a ValueError) for bad ones
        if actor.initial_connection_timeout < 0 or actor.response_timeout < 0:
            raise ValueError(f"actor {actor.name!r}: timeouts must be >= 0 seconds (0: none)")
    if len(set(names)) != len(names):
        raise ValueError(f"actor names must be unique, got {names}")
    env = params.environment
    if not env.endpoint:
        raise ValueError("trial parameters name no environment endpoint")
    if is_client_endpoint(env.endpoint):
        raise ValueError(f"the environment cannot be a client ({env.endpoint!r}); give grpc:// or unix:")
    parse_endpoint(env.endpoint)
    env_name = env.name or "env"
    if env_name in names:
        raise ValueError(f"an actor may not be named like the environment ({env_name!r})")


def _uncancel(task: asyncio.Task[Any]) -> None:
    """We handle this cancellation ourselves (Python >= 3.11 counts them)."""
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


async def _run_all(coros: Sequence[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Run concurrently; the first error cancels the others and is raised once they stopped."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.wait(tasks)  # a cancelled child stops at its next await: no peer wait here
        errors = [t.exception() for t in tasks if not t.cancelled()]
    for error in errors:
        if error is not None:
            raise error
    return [t.result() for t in tasks]


def _wake(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


