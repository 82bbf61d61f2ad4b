"""One trial: connect its components, run its ticks, end it cleanly.

Tick loop (behaviour of the Cogment 2.x Orchestrator, see docs/protocol.md):

1. read the environment's ObservationSet (rewards/messages before it are routed);
2. to every available actor: its pending rewards, LAST if this is the final tick, its Observation;
3. gather one action per actor (response_timeout, optional actors, default_action);
4. if an end was requested or ``tick >= max_steps``: LAST to the environment;
5. send the ActionSet; the answer is the next tick's ObservationSet.

Soft end: the environment's LAST_ACK, then each actor's LAST_ACK (deadlines), then END to all.
Any failure: hard END with a ``details`` string carrying the in-band Failure.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from cogment_gym._proto.cogment.api import common_pb2, environment_pb2, orchestrator_pb2
from cogment_gym.errors import CogmentGymError, EndpointUnreachableError, PeerLostError, PeerTimeoutError, TrialFailedError
from cogment_gym.protocol import END, HEARTBEAT, LAST, LAST_ACK, NORMAL, Failure, FailureKind, failure_from_exception
from cogment_gym.protocol.deadlines import Watchdog
from cogment_gym.protocol.endpoints import CLIENT_ENDPOINT
from cogment_gym.protocol.metadata import TRIAL_ID

if TYPE_CHECKING:
    from cogment_gym.orchestrator.transports import Connector, Link, ServerLink

__all__ = ["ActorSlot", "Trial", "TrialState"]

logger = logging.getLogger(__name__)

ActorIn = common_pb2.ActorRunTrialInput
ActorOut = common_pb2.ActorRunTrialOutput
EnvIn = environment_pb2.EnvRunTrialInput

_ENV_LAST = EnvIn(state=LAST)
_ENV_END = EnvIn(state=END)
_ACTOR_LAST = ActorIn(state=LAST)
_ACTOR_END = ActorIn(state=END)
_ACTOR_HEARTBEAT = ActorIn(state=HEARTBEAT)
_ENV_HEARTBEAT = EnvIn(state=HEARTBEAT)

# Waits the Cogment Orchestrator also bounds (seconds).
ENV_LAST_ACK_TIMEOUT = 60.0
ACTOR_LAST_ACK_TIMEOUT = 30.0
# Upper bound on a wait Cogment leaves unbounded (timeout parameter 0).
UNBOUNDED_WAIT = 3600.0


class TrialState(enum.IntEnum):
    UNKNOWN = common_pb2.UNKNOWN
    INITIALIZING = common_pb2.INITIALIZING
    PENDING = common_pb2.PENDING
    RUNNING = common_pb2.RUNNING
    TERMINATING = common_pb2.TERMINATING
    ENDED = common_pb2.ENDED


class _Failed(Exception):
    """Internal: carries the Failure that ends the trial hard."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.summary)
        self.failure = failure


def _matches(pattern: str, name: str, actor_class: str) -> bool:
    """Cogment receiver patterns: ``name``, ``*``, ``class.*``, ``class.name``."""
    if pattern == name or pattern == "*":
        return True
    cls, dot, who = pattern.partition(".")
    return bool(dot) and cls == actor_class and who in ("*", name)


class ActorSlot:
    """One actor of the trial (an entry of TrialParams.actors)."""

    def __init__(self, index: int, params: common_pb2.ActorParams) -> None:
        self.index = index
        self.params = params
        self.name = params.name
        self.actor_class = params.actor_class
        self.is_client = params.endpoint in (CLIENT_ENDPOINT, "client")
        self.link: Link | ServerLink | None = None
        self.available = False  # connected and not disengaged
        self.joined: asyncio.Future[None] | None = None  # client actors: set when joined
        self.released: asyncio.Future[None] | None = None  # client actors: the servicer returns when set
        self.rewards: dict[int, list[common_pb2.RewardSource]] = {}
        self.got_last_ack = False
        self.pending_read: asyncio.Future[Any] | None = None

    @property
    def description(self) -> str:
        return f"actor {self.name!r}"


class Trial:
    """A running trial. Created and driven by :class:`~cogment_gym.orchestrator.Orchestrator`."""

    def __init__(
        self,
        trial_id: str,
        params: common_pb2.TrialParams,
        connector: Connector,
        *,
        user_id: str = "",
        env_timeout: float = 60.0,
        on_state: Callable[[Trial], None] | None = None,
        datalog: Any = None,
    ) -> None:
        if not params.actors:
            raise ValueError("trial parameters name no actors")
        names = [a.name for a in params.actors]
        if any(not a.name or not a.actor_class for a in params.actors):
            raise ValueError("every actor needs a name and an actor_class")
        if len(set(names)) != len(names):
            raise ValueError(f"actor names must be unique, got {names}")
        if not params.environment.endpoint:
            raise ValueError("trial parameters name no environment endpoint")
        self.id = trial_id
        self.params = params
        self.user_id = user_id
        self.env_name = params.environment.name or "env"
        if self.env_name in names:
            raise ValueError(f"an actor may not be named like the environment ({self.env_name!r})")
        self.actors = [ActorSlot(i, a) for i, a in enumerate(params.actors)]
        self._by_name = {slot.name: slot for slot in self.actors}
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
        self._on_state = on_state
        self._env: Link | None = None
        self._env_ending = False  # the environment sent LAST
        self._last_sent = False  # this side sent LAST to the environment
        self._env_last_ack = False
        self._task: asyncio.Task[None] | None = None
        self._watchdog: Watchdog | None = None
        self._datalog = datalog
        self._messages_to_env: list[common_pb2.Message] = []

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
        for slot in self.actors:
            if slot.is_client:
                loop = asyncio.get_running_loop()
                slot.joined = loop.create_future()
                slot.released = loop.create_future()
        self._set_state(TrialState.PENDING)
        self._task = asyncio.get_running_loop().create_task(self._main(), name=f"trial-{self.id}")

    @property
    def done(self) -> bool:
        return self.state == TrialState.ENDED

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    def request_end(self) -> None:
        """Soft end: the trial ends after the current tick's actions are in."""
        self.end_requested = True

    def terminate(self, failure: Failure) -> None:
        """Hard end now."""
        if self._task is None or self._task.done():
            return
        if self.failure is None:
            self.failure = failure
        self._task.cancel()

    # ------------------------------------------------------------------ client actors

    def claim_slot(self, actor_name: str, actor_class: str) -> ActorSlot:
        """The slot a joining client actor takes (by name, or first free of its class)."""
        if self.state != TrialState.PENDING:
            raise CogmentGymError(f"trial {self.id!r} is {self.state.name}; client actors join PENDING trials only")
        if actor_name:
            slot = self._by_name.get(actor_name)
            if slot is None:
                raise CogmentGymError(f"trial {self.id!r} has no actor named {actor_name!r}; actors: {list(self._by_name)}")
            if actor_class and slot.actor_class != actor_class:
                raise CogmentGymError(f"actor {actor_name!r} of trial {self.id!r} is of class {slot.actor_class!r}, not {actor_class!r}")
            if not slot.is_client:
                raise CogmentGymError(f"actor {actor_name!r} of trial {self.id!r} is a service actor ({slot.params.endpoint})")
            if slot.joined is None or slot.joined.done():
                raise CogmentGymError(f"actor {actor_name!r} of trial {self.id!r} has already joined")
            return slot
        if actor_class:
            for slot in self.actors:
                if slot.is_client and slot.actor_class == actor_class and slot.joined is not None and not slot.joined.done():
                    return slot
            raise CogmentGymError(f"trial {self.id!r} has no free client slot of class {actor_class!r}")
        raise CogmentGymError("a joining client actor must give an actor_name or an actor_class")

    def init_input(self, slot: ActorSlot) -> ActorIn:
        init = common_pb2.ActorInitialInput(
            actor_name=slot.name,
            actor_class=slot.actor_class,
            impl_name=slot.params.implementation,
            env_name=self.env_name,
        )
        if slot.params.HasField("config"):
            init.config.CopyFrom(slot.params.config)
        return ActorIn(state=NORMAL, init_input=init)

    # ------------------------------------------------------------------ main

    async def _main(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._watchdog = Watchdog(task)
        try:
            try:
                await self._connect_actors()
                await self._connect_env()
                await self._run_ticks()
                await self._soft_end()
            except asyncio.CancelledError:
                if self._watchdog.expired is not None:
                    raise _Failed(failure_from_exception(self._watchdog.error(), origin=f"trial {self.id!r}", kind=FailureKind.TIMEOUT))
                if self.failure is not None:
                    raise _Failed(self.failure)
                raise
            except (PeerLostError, EndpointUnreachableError, PeerTimeoutError) as err:
                if isinstance(err, EndpointUnreachableError):
                    kind = FailureKind.UNREACHABLE
                elif isinstance(err, PeerTimeoutError):
                    kind = FailureKind.TIMEOUT
                else:
                    kind = FailureKind.PEER_LOST
                raise _Failed(Failure(kind.value, str(err), f"trial {self.id!r}", type(err).__name__))
            except TrialFailedError as err:
                raise _Failed(failure_from_exception(err, origin=f"trial {self.id!r}", kind=FailureKind.OTHER))
        except _Failed as failed:
            self.failure = failed.failure
            logger.info("trial %s ends hard: %s", self.id, failed.failure.summary)
            await self._hard_end(failed.failure)
        except Exception as err:  # a bug here must still end the trial for everyone
            logger.exception("trial %s: internal error", self.id)
            self.failure = failure_from_exception(err, origin="orchestrator", kind=FailureKind.OTHER)
            await self._hard_end(self.failure)
        finally:
            self._watchdog.disarm()
            await self._close_links()
            self._set_state(TrialState.ENDED)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return ((TRIAL_ID, self.id),)

    async def _connect_actors(self) -> None:
        async def connect(slot: ActorSlot) -> None:
            timeout = slot.params.initial_connection_timeout or UNBOUNDED_WAIT
            try:
                if slot.is_client:
                    assert slot.joined is not None
                    await asyncio.wait_for(asyncio.shield(slot.joined), timeout)
                else:
                    link = self.connector.service_actor(slot.params.endpoint, self._metadata(), slot.description)
                    slot.link = link
                    await link.write(self.init_input(slot))
                    await asyncio.wait_for(self._await_actor_init(slot, link), timeout)
                slot.available = True
            except (asyncio.TimeoutError, CogmentGymError) as err:
                if isinstance(err, asyncio.TimeoutError):
                    what = "join" if slot.is_client else "answer its init"
                    err = PeerTimeoutError(f"{slot.description} did not {what} within {timeout:g} s")
                if slot.params.optional:
                    logger.warning("trial %s: optional %s unavailable: %s", self.id, slot.description, err)
                    return
                raise

        if len(self.actors) == 1:
            await connect(self.actors[0])
        else:
            results = await asyncio.gather(*(connect(s) for s in self.actors), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    async def _await_actor_init(self, slot: ActorSlot, link: Link | ServerLink) -> None:
        while True:
            msg = await link.read()
            if msg is None:
                raise PeerLostError(f"{slot.description} closed its stream during init")
            if msg.state == HEARTBEAT:
                await link.write(_ACTOR_HEARTBEAT)
            elif msg.state == NORMAL and msg.HasField("init_output"):
                return
            elif msg.state == END:
                raise PeerLostError(f"{slot.description} ended during init: {msg.details}")
            else:
                raise PeerLostError(f"{slot.description} sent {msg.WhichOneof('data')} in state {msg.state} before init_output")

    async def _connect_env(self) -> None:
        env = self.params.environment
        self._env = link = self.connector.environment(env.endpoint, self._metadata(), f"environment {env.implementation or self.env_name!r} at {env.endpoint}")
        init = environment_pb2.EnvInitialInput(
            name=self.env_name,
            impl_name=env.implementation,
            tick_id=0,
            actors_in_trial=[common_pb2.TrialActor(name=s.name, actor_class=s.actor_class) for s in self.actors],
        )
        if env.HasField("config"):
            init.config.CopyFrom(env.config)
        watchdog = self._watchdog
        assert watchdog is not None
        watchdog.arm(self.env_timeout, f"the init answer of {link.description}")
        await link.write(EnvIn(state=NORMAL, init_input=init))
        while True:
            msg = await link.read()
            if msg is None:
                raise PeerLostError(f"{link.description} closed its stream during init")
            if msg.state == HEARTBEAT:
                await link.write(_ENV_HEARTBEAT)
            elif msg.state == NORMAL and msg.HasField("init_output"):
                break
            elif msg.state == END:
                raise _Failed(Failure.from_details(msg.details) if msg.details else Failure(FailureKind.PEER_LOST.value, "ended during init", link.description))
            else:
                raise PeerLostError(f"{link.description} sent {msg.WhichOneof('data')} in state {msg.state} before init_output")
        watchdog.disarm()

    # ------------------------------------------------------------------ ticks

    async def _read_observations(self) -> environment_pb2.ObservationSet:
        link = self._env
        assert link is not None and self._watchdog is not None
        self._watchdog.arm(self.env_timeout, f"observations from {link.description}")
        while True:
            msg = await link.read()
            if msg is None:
                raise PeerLostError(f"{link.description} closed its stream")
            state = msg.state
            if state == NORMAL:
                kind = msg.WhichOneof("data")
                if kind == "observation_set":
                    self._watchdog.disarm()
                    self.last_activity = time.monotonic()
                    return msg.observation_set
                if kind == "reward":
                    self._route_reward(msg.reward, self.env_name)
                elif kind == "message":
                    await self._route_message(msg.message, self.env_name)
            elif state == LAST:
                self._env_ending = True
            elif state == LAST_ACK:
                self._env_last_ack = True
            elif state == HEARTBEAT:
                await link.write(_ENV_HEARTBEAT)
            elif state == END:
                raise _Failed(Failure.from_details(msg.details) if msg.details else Failure(FailureKind.PEER_LOST.value, "the environment ended the trial", link.description))

    async def _run_ticks(self) -> None:
        obs_set = await self._read_observations()
        self._set_state(TrialState.RUNNING)
        max_steps = self.params.max_steps
        env = self._env
        assert env is not None
        while True:
            self.latest_observation = obs_set
            final = self._env_ending or self._last_sent
            if final:
                self._set_state(TrialState.TERMINATING)
            await self._dispatch(obs_set, final)
            if self._datalog is not None:
                self._datalog.observations(self.tick, obs_set)
            if final:
                return
            action_set = await self._gather_actions()
            if self.end_requested or (max_steps and self.tick >= max_steps):
                self._last_sent = True
                self._set_state(TrialState.TERMINATING)
                await env.write(_ENV_LAST)
            await env.write(EnvIn(state=NORMAL, action_set=action_set))
            for message in self._messages_to_env:
                await env.write(EnvIn(state=NORMAL, message=message))
            self._messages_to_env.clear()
            obs_set = await self._read_observations()
            self.tick += 1

    async def _dispatch(self, obs_set: environment_pb2.ObservationSet, final: bool) -> None:
        observations, actors_map = obs_set.observations, obs_set.actors_map
        if len(actors_map) != len(self.actors):
            raise _Failed(Failure(FailureKind.OTHER.value, f"observation set maps {len(actors_map)} actors, the trial has {len(self.actors)}", "environment"))
        for slot in self.actors:
            if not slot.available:
                continue
            link = slot.link
            assert link is not None
            try:
                if slot.rewards:
                    for tick in sorted(slot.rewards):
                        await link.write(ActorIn(state=NORMAL, reward=_aggregate(tick, slot.name, slot.rewards[tick])))
                    slot.rewards.clear()
                if final:
                    await link.write(_ACTOR_LAST)
                index = actors_map[slot.index]
                if not 0 <= index < len(observations):
                    raise _Failed(Failure(FailureKind.OTHER.value, f"actors_map[{slot.index}] = {index} is out of range", "environment"))
                await link.write(
                    ActorIn(
                        state=NORMAL,
                        observation=common_pb2.Observation(tick_id=self.tick, timestamp=obs_set.timestamp, content=observations[index]),
                    )
                )
            except (PeerLostError, EndpointUnreachableError) as err:
                self._disengage(slot, err)

    def _disengage(self, slot: ActorSlot, reason: object) -> None:
        if slot.available:
            logger.info("trial %s: %s disengaged: %s", self.id, slot.description, reason)
        slot.available = False
        if not slot.params.optional:
            raise _Failed(Failure(FailureKind.PEER_LOST.value, f"required {slot.description} is gone: {reason}", f"trial {self.id!r}"))

    async def _gather_actions(self) -> environment_pb2.ActionSet:
        contents: list[bytes | None]
        if len(self.actors) == 1:
            contents = [await self._action_of(self.actors[0])]
        else:
            contents = list(await asyncio.gather(*(self._action_of(s) for s in self.actors)))
        action_set = environment_pb2.ActionSet(tick_id=self.tick, timestamp=time.time_ns())
        missing = []
        for slot, content in zip(self.actors, contents):
            if content is None:
                if slot.params.HasField("default_action"):
                    content = slot.params.default_action.content
                else:
                    action_set.unavailable_actors.append(slot.index)
                    content = b""
                    if not slot.params.optional:
                        missing.append(slot.name)
            action_set.actions.append(content)
        if missing:
            raise _Failed(Failure(FailureKind.TIMEOUT.value, f"required actors {missing} gave no action at tick {self.tick}", f"trial {self.id!r}"))
        self.last_activity = time.monotonic()
        return action_set

    async def _action_of(self, slot: ActorSlot) -> bytes | None:
        """The slot's action for this tick, or None (unavailable, or response timeout)."""
        if not slot.available:
            return None
        link = slot.link
        assert link is not None
        response_timeout = slot.params.response_timeout
        deadline = time.monotonic() + (response_timeout if response_timeout > 0 else UNBOUNDED_WAIT)
        while True:
            try:
                msg = await self._read_slot(slot, deadline - time.monotonic())
            except (PeerLostError, EndpointUnreachableError) as err:
                self._disengage(slot, err)
                return None
            if msg is _TIMED_OUT:
                if response_timeout > 0:
                    return None
                raise PeerTimeoutError(f"no action from {slot.description} within {UNBOUNDED_WAIT:g} s")
            if msg is None:
                self._disengage(slot, "stream closed")
                return None
            state = msg.state
            if state == NORMAL:
                kind = msg.WhichOneof("data")
                if kind == "action":
                    if msg.action.tick_id in (-1, self.tick):
                        return msg.action.content
                    logger.debug("trial %s: dropped action of %s for tick %d", self.id, slot.description, msg.action.tick_id)
                elif kind == "reward":
                    self._route_reward(msg.reward, slot.name)
                elif kind == "message":
                    await self._route_message(msg.message, slot.name)
            elif state == HEARTBEAT:
                await link.write(_ACTOR_HEARTBEAT)
            elif state == END:
                self._disengage(slot, f"it ended its stream: {msg.details}" if msg.details else "it ended its stream")
                return None
            elif state == LAST_ACK:
                slot.got_last_ack = True

    async def _read_slot(self, slot: ActorSlot, timeout: float) -> Any:
        """Read one message; a timeout leaves the read pending for the next call."""
        link = slot.link
        assert link is not None
        pending = slot.pending_read
        if pending is None:
            if timeout >= UNBOUNDED_WAIT - 1 and self._watchdog is not None:
                # Common case: no response_timeout. Use the cheap watchdog instead of a task.
                self._watchdog.arm(timeout, f"an action from {slot.description}")
                try:
                    return await link.read()
                finally:
                    self._watchdog.disarm()
            pending = asyncio.ensure_future(link.read())
        done, _ = await asyncio.wait((pending,), timeout=max(timeout, 0.0))
        if not done:
            slot.pending_read = pending
            return _TIMED_OUT
        slot.pending_read = None
        return pending.result()

    # ------------------------------------------------------------------ rewards and messages

    def _route_reward(self, reward: common_pb2.Reward, sender: str) -> None:
        if reward.tick_id not in (-1, self.tick):
            logger.debug("trial %s: reward for past tick %d kept out of delivery", self.id, reward.tick_id)
            return
        sources = list(reward.sources) or [common_pb2.RewardSource(value=reward.value, confidence=1.0)]
        targets = [s for s in self.actors if _matches(reward.receiver_name, s.name, s.actor_class)]
        if not targets:
            logger.warning("trial %s: reward for unknown receiver %r dropped", self.id, reward.receiver_name)
        for slot in targets:
            bucket = slot.rewards.setdefault(self.tick, [])
            for source in sources:
                copy = common_pb2.RewardSource()
                copy.CopyFrom(source)
                copy.sender_name = sender
                bucket.append(copy)

    async def _route_message(self, message: common_pb2.Message, sender: str) -> None:
        if message.tick_id not in (-1, self.tick):
            return
        if message.receiver_name == self.env_name:
            routed = common_pb2.Message(tick_id=self.tick, sender_name=sender, receiver_name=self.env_name)
            routed.payload.CopyFrom(message.payload)
            self._messages_to_env.append(routed)
            return
        for slot in self.actors:
            if slot.available and _matches(message.receiver_name, slot.name, slot.actor_class):
                routed = common_pb2.Message(tick_id=self.tick, sender_name=sender, receiver_name=slot.name)
                routed.payload.CopyFrom(message.payload)
                assert slot.link is not None
                try:
                    await slot.link.write(ActorIn(state=NORMAL, message=routed))
                except (PeerLostError, EndpointUnreachableError) as err:
                    self._disengage(slot, err)

    # ------------------------------------------------------------------ ending

    async def _soft_end(self) -> None:
        env = self._env
        assert env is not None and self._watchdog is not None
        if not self._env_last_ack:
            self._watchdog.arm(ENV_LAST_ACK_TIMEOUT, f"LAST_ACK from {env.description}")
            try:
                while True:
                    msg = await env.read()
                    if msg is None or msg.state == LAST_ACK:
                        break
                    if msg.state == NORMAL and msg.HasField("reward"):
                        self._route_reward(msg.reward, self.env_name)
                    elif msg.state == END:
                        break
            finally:
                self._watchdog.disarm()
        for slot in self.actors:
            if not slot.available or slot.got_last_ack:
                continue
            deadline = time.monotonic() + ACTOR_LAST_ACK_TIMEOUT
            try:
                while True:
                    msg = await self._read_slot(slot, deadline - time.monotonic())
                    if msg is _TIMED_OUT:
                        logger.warning("trial %s: no LAST_ACK from %s", self.id, slot.description)
                        break
                    if msg is None or msg.state in (LAST_ACK, END):
                        break
            except (PeerLostError, EndpointUnreachableError):
                slot.available = False
        await _quietly(env.write(_ENV_END))
        for slot in self.actors:
            if slot.link is not None:
                await _quietly(slot.link.write(_ACTOR_END))

    async def _hard_end(self, failure: Failure) -> None:
        details = failure.to_details()
        if self._env is not None:
            await _quietly(self._env.write(EnvIn(state=END, details=details)))
        for slot in self.actors:
            if slot.link is not None:
                await _quietly(slot.link.write(ActorIn(state=END, details=details)))

    async def _close_links(self) -> None:
        if self._env is not None:
            await _quietly(self._env.close())
        for slot in self.actors:
            if slot.pending_read is not None:
                slot.pending_read.cancel()
            if slot.link is not None:
                await _quietly(slot.link.close())
            if slot.joined is not None and not slot.joined.done():
                slot.joined.cancel()
            if slot.released is not None and not slot.released.done():
                slot.released.set_result(None)

    # ------------------------------------------------------------------ info

    def info(self, *, latest_observation: bool = False, actor_list: bool = False) -> orchestrator_pb2.TrialInfo:
        end = self.ended_ns if self.ended_ns is not None else time.time_ns()
        info = orchestrator_pb2.TrialInfo(
            trial_id=self.id,
            state=int(self.state),
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


_TIMED_OUT = object()


def _aggregate(tick: int, receiver: str, sources: Sequence[common_pb2.RewardSource]) -> common_pb2.Reward:
    """Cogment's value: the confidence-weighted mean over sources with confidence > 0."""
    weight = sum(s.confidence for s in sources if s.confidence > 0)
    value = sum(s.value * s.confidence for s in sources if s.confidence > 0) / weight if weight > 0 else 0.0
    return common_pb2.Reward(tick_id=tick, receiver_name=receiver, value=value, sources=sources)


async def _quietly(awaitable: Any) -> None:
    """Best effort send/close at the end of a trial: the peer may already be gone."""
    try:
        await asyncio.wait_for(awaitable, 5.0)
    except (Exception, asyncio.CancelledError):
        logger.debug("best-effort send failed", exc_info=True)
