"""Cogment peers written against the raw gRPC API, for testing the Orchestrator over the wire.

Everything here speaks the Cogment 2.x protocol directly (generated stubs, grpc.aio, port 0 on
127.0.0.1): a scripted environment, a scripted service actor that can be made slow or crashing,
a raw client actor, pre-trial hooks and a datalog service. Each records what it received; tests
wait on those records with :meth:`Recorder.until` (an event per change, a deadline, no sleeps).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Sequence

import grpc

from cogment_gym._proto.cogment.api import (
    agent_pb2_grpc,
    common_pb2,
    datalog_pb2,
    datalog_pb2_grpc,
    environment_pb2,
    environment_pb2_grpc,
    hooks_pb2,
    hooks_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
)

NORMAL, HEARTBEAT, LAST, LAST_ACK, END = (common_pb2.NORMAL, common_pb2.HEARTBEAT, common_pb2.LAST, common_pb2.LAST_ACK, common_pb2.END)
EnvOut = environment_pb2.EnvRunTrialOutput
ActorIn = common_pb2.ActorRunTrialInput
ActorOut = common_pb2.ActorRunTrialOutput
WAIT = 15.0  # generous deadline for anything a test waits on (reached only when a test fails)


def run(coro: Awaitable[Any], timeout: float = 60.0) -> Any:
    """Run one test scenario in a fresh event loop, with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


class Recorder:
    """Something tests wait on: ``await rec.until(lambda: cond, "what")``; several waiters at once.

    Each change sets the current event and starts a new one (never cleared): a waiter that read
    the state after taking the event is woken by the next change, however the loop schedules
    the other waiters (clearing one shared event lost wake-ups between two waiters).
    """

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass


async def start_server(*servicers: Any) -> tuple[grpc.aio.Server, str]:
    """A grpc.aio server on 127.0.0.1:0 serving ``servicers``; returns it and its endpoint."""
    server = grpc.aio.server()
    for servicer in servicers:
        servicer.add_to(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"grpc://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def serving(*servicers: Any) -> AsyncIterator[str]:
    """Serve ``servicers`` for the duration of the block; yields the endpoint."""
    server, endpoint = await start_server(*servicers)
    try:
        yield endpoint
    finally:
        await server.stop(0)


@contextlib.asynccontextmanager
async def orchestrator(**kwargs: Any) -> AsyncIterator[tuple[Any, grpc.aio.Channel]]:
    """An OrchestratorServer (its own thread and loop) and a channel to it from this loop."""
    from cogment_gym.orchestrator.server import OrchestratorServer

    server = await asyncio.to_thread(OrchestratorServer, **kwargs)
    try:
        async with connect(server) as channel:
            yield server, channel
    finally:
        await asyncio.to_thread(server.stop)


def connect(server: Any) -> grpc.aio.Channel:
    """A channel to an OrchestratorServer's lifecycle (and client actor) endpoint."""
    return grpc.aio.insecure_channel(server.lifecycle_endpoint[len("grpc://"):])


def metadata_dict(context: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in context.invocation_metadata() or ():
        out.setdefault(key, []).append(value)
    return out


def obs_content(tick: int, actor: str) -> bytes:
    return f"obs {tick} {actor}".encode()


def action_content(tick: int, actor: str) -> bytes:
    return f"act {tick} {actor}".encode()


# ------------------------------------------------------------------------------------- environment


@dataclass
class EnvTrial:
    metadata: dict[str, list[str]]
    init: environment_pb2.EnvInitialInput | None = None
    action_sets: list[environment_pb2.ActionSet] = field(default_factory=list)
    last_before: int | None = None  # index in action_sets of the set that followed LAST
    messages: list[common_pb2.Message] = field(default_factory=list)
    sequence: list[str] = field(default_factory=list)  # "actions 3", "message a1", "LAST"
    end_details: str | None = None
    got_end: bool = False
    finished: bool = False


class ScriptedEnv(Recorder, environment_pb2_grpc.EnvironmentSPServicer):
    """EnvironmentSP: observation ``obs <tick> <actor>`` for each actor, every tick.

    Args:
        extra: ``extra(tick, action_set)`` -> outputs (rewards, messages) sent before the
            observation set that answers ActionSet ``tick`` (tick -1: before the first one).
        end_after: the environment ends the trial itself with observation ``end_after``.
        hang_at: never answer ActionSet of this tick.
        crash_at: raise (an RPC error) on ActionSet of this tick.
        before_answer: awaited with the tick before the observations answering its ActionSet
            are sent (a test orders what other streams send before them).
    """

    def __init__(
        self,
        *,
        extra: Callable[[int, environment_pb2.ActionSet | None], Iterable[EnvOut]] | None = None,
        end_after: int | None = None,
        hang_at: int | None = None,
        crash_at: int | None = None,
        before_answer: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__()
        self.before_answer = before_answer
        self.extra = extra
        self.end_after = end_after
        self.hang_at = hang_at
        self.crash_at = crash_at
        self.trials: dict[str, EnvTrial] = {}

    def add_to(self, server: grpc.aio.Server) -> None:
        environment_pb2_grpc.add_EnvironmentSPServicer_to_server(self, server)

    async def trial(self, trial_id: str) -> EnvTrial:
        return await self.until(lambda: self.trials.get(trial_id), f"the environment to open trial {trial_id}")

    def _observations(self, tick: int, names: Sequence[str]) -> EnvOut:
        return EnvOut(
            state=NORMAL,
            observation_set=environment_pb2.ObservationSet(
                tick_id=tick,
                timestamp=time.time_ns(),
                observations=[obs_content(tick, n) for n in names],
                actors_map=list(range(len(names))),
            ),
        )

    async def RunTrial(self, request_iterator: Any, context: Any) -> None:
        metadata = metadata_dict(context)
        record = EnvTrial(metadata)
        self.trials[metadata["trial-id"][0]] = record
        self.touch()
        try:
            await self._run(context, record)
        finally:
            record.finished = True
            self.touch()

    async def _run(self, context: Any, record: EnvTrial) -> None:
        msg = await context.read()
        if msg is grpc.aio.EOF or not msg.HasField("init_input"):
            return
        record.init = msg.init_input
        names = [a.name for a in msg.init_input.actors_in_trial]
        self.touch()
        await context.write(EnvOut(state=NORMAL, init_output=environment_pb2.EnvInitialOutput()))
        for out in self.extra(-1, None) if self.extra else ():
            await context.write(out)
        await context.write(self._observations(0, names))
        ending = False
        while True:
            msg = await context.read()
            if msg is grpc.aio.EOF:
                return
            if msg.state == LAST:
                ending = True
                record.last_before = len(record.action_sets)
                record.sequence.append("LAST")
            elif msg.state == END:
                record.sequence.append("END")
                record.got_end = True
                record.end_details = msg.details
                self.touch()
                return
            elif msg.HasField("message"):
                record.messages.append(msg.message)
                record.sequence.append(f"message {msg.message.sender_name}")
            elif msg.HasField("action_set"):
                action_set = msg.action_set
                record.action_sets.append(action_set)
                record.sequence.append(f"actions {action_set.tick_id}")
                self.touch()
                tick = action_set.tick_id
                if tick == self.crash_at:
                    raise RuntimeError(f"scripted environment crash at tick {tick}")
                if tick == self.hang_at:
                    await asyncio.Event().wait()  # until the call is cancelled
                if self.before_answer is not None:
                    await self.before_answer(tick)
                for out in self.extra(tick, action_set) if self.extra else ():
                    await context.write(out)
                env_end = self.end_after is not None and tick + 1 >= self.end_after
                if env_end and not ending:
                    await context.write(EnvOut(state=LAST))
                await context.write(self._observations(tick + 1, names))
                if ending or env_end:
                    await context.write(EnvOut(state=LAST_ACK))
            self.touch()


def env_reward(receiver: str, value: float, confidence: float = 1.0, sender: str = "env", tick: int = -1) -> EnvOut:
    return EnvOut(
        state=NORMAL,
        reward=common_pb2.Reward(
            tick_id=tick,
            receiver_name=receiver,
            value=value,
            sources=[common_pb2.RewardSource(sender_name=sender, value=value, confidence=confidence)],
        ),
    )


def env_message(receiver: str, text: str) -> EnvOut:
    return EnvOut(state=NORMAL, message=_message(receiver, text))


def actor_reward(receiver: str, value: float, confidence: float = 1.0) -> ActorOut:
    source = common_pb2.RewardSource(sender_name="whoever", value=value, confidence=confidence)  # the sender is rewritten
    return ActorOut(state=NORMAL, reward=common_pb2.Reward(tick_id=-1, receiver_name=receiver, value=value, sources=[source]))


def actor_message(receiver: str, text: str) -> ActorOut:
    return ActorOut(state=NORMAL, message=_message(receiver, text))


def _message(receiver: str, text: str) -> common_pb2.Message:
    message = common_pb2.Message(tick_id=-1, receiver_name=receiver)
    message.payload.Pack(common_pb2.TrialActor(name=text))  # any message type does as payload
    return message


def message_text(message: common_pb2.Message) -> str:
    payload = common_pb2.TrialActor()
    message.payload.Unpack(payload)
    return payload.name


# ------------------------------------------------------------------------------------- actors


@dataclass
class ActorTrial:
    """What one actor (service or client) received in one trial."""

    init: common_pb2.ActorInitialInput | None = None
    observations: list[common_pb2.Observation] = field(default_factory=list)
    rewards: list[common_pb2.Reward] = field(default_factory=list)
    messages: list[common_pb2.Message] = field(default_factory=list)
    sequence: list[str] = field(default_factory=list)  # "reward 3", "obs 4", "LAST", "END"...
    sent_after: list[int] = field(default_factory=list)  # ticks whose after_act outputs were written
    got_last: bool = False
    end_details: str | None = None
    got_end: bool = False
    finished: bool = False
    error: str | None = None


class ScriptedActor(Recorder, agent_pb2_grpc.ServiceActorSPServicer):
    """ServiceActorSP acting ``act <tick> <name>``; per actor name a behaviour:

    ``"act"`` (default), ``"never"`` (joins, never acts), ``"mute"`` (joins, then never writes
    again, not even LAST_ACK), ``"noinit"`` (reads, never answers init),
    ``"crash@N"`` (raises when observation N arrives), ``"late@N"`` (from observation N on,
    answers only after the next observation arrived, i.e. too late).
    """

    def __init__(self, behaviours: dict[str, str] | None = None, *, gates: dict[str, asyncio.Event] | None = None,
                 after_act: dict[str, Callable[[common_pb2.Observation], Iterable[ActorOut]]] | None = None,
                 before_ack: dict[str, Callable[[common_pb2.Observation], Iterable[ActorOut]]] | None = None) -> None:
        super().__init__()
        self.behaviours = behaviours or {}
        self.gates = gates or {}  # per actor name: after its LAST_ACK, read on only once set
        self.after_act = after_act or {}  # per actor name: what it sends right after its action
        self.before_ack = before_ack or {}  # per actor name: what it sends before its LAST_ACK
        self.trials: dict[tuple[str, str], ActorTrial] = {}

    def add_to(self, server: grpc.aio.Server) -> None:
        agent_pb2_grpc.add_ServiceActorSPServicer_to_server(self, server)

    async def RunTrial(self, request_iterator: Any, context: Any) -> None:
        trial_id = metadata_dict(context)["trial-id"][0]
        msg = await context.read()
        if msg is grpc.aio.EOF or not msg.HasField("init_input"):
            return
        name = msg.init_input.actor_name
        record = ActorTrial(init=msg.init_input)
        self.trials[(trial_id, name)] = record
        self.touch()
        behaviour = self.behaviours.get(name, "act")
        try:
            if behaviour == "noinit":  # reads on, never answers init
                while (msg := await context.read()) is not grpc.aio.EOF:
                    if msg.state == END:
                        record.got_end, record.end_details = True, msg.details
                        return
                return
            await context.write(ActorOut(state=NORMAL, init_output=common_pb2.ActorInitialOutput()))
            await _actor_loop(context.read, context.write, record, name, behaviour, self.touch, gate=self.gates.get(name),
                              after_act=self.after_act.get(name), before_ack=self.before_ack.get(name))
        finally:
            record.finished = True
            self.touch()


async def _actor_loop(
    read: Callable[[], Awaitable[Any]],
    write: Callable[[Any], Awaitable[None]],
    record: ActorTrial,
    name: str,
    behaviour: str,
    touch: Callable[[], None],
    act: Callable[[common_pb2.Observation], bytes | None] | None = None,
    before_act: Callable[[common_pb2.Observation], Iterable[ActorOut]] | None = None,
    gate: asyncio.Event | None = None,
    after_act: Callable[[common_pb2.Observation], Iterable[ActorOut]] | None = None,
    before_ack: Callable[[common_pb2.Observation], Iterable[ActorOut]] | None = None,
) -> None:
    """``after_act(obs)``: sent right after the action (the SDK idiom "do_action, then add_reward /
    send_message"); ``before_ack(obs)``: sent after the final observation, before LAST_ACK."""
    ending = False
    late_from = int(behaviour.split("@")[1]) if behaviour.startswith("late@") else None
    crash_at = int(behaviour.split("@")[1]) if behaviour.startswith("crash@") else None
    owed: common_pb2.Observation | None = None
    while True:
        msg = await read()
        if msg is grpc.aio.EOF or msg is None:
            return
        if msg.state == LAST:
            ending = record.got_last = True
            record.sequence.append("LAST")
        elif msg.state == END:
            record.got_end = True
            record.end_details = msg.details
            record.sequence.append("END")
            touch()
            return
        elif msg.HasField("reward"):
            record.rewards.append(msg.reward)
            record.sequence.append(f"reward {msg.reward.tick_id}")
        elif msg.HasField("message"):
            record.messages.append(msg.message)
            record.sequence.append(f"message {msg.message.sender_name}")
        elif msg.HasField("observation"):
            obs = msg.observation
            record.observations.append(obs)
            record.sequence.append(f"obs {obs.tick_id}")
            touch()
            if behaviour == "mute":
                pass
            elif ending:
                for out in before_ack(obs) if before_ack is not None else ():
                    await write(out)
                await write(ActorOut(state=LAST_ACK))
                if gate is not None:
                    record.sequence.append("LAST_ACK")
                    touch()
                    await gate.wait()  # busy elsewhere: reads END late
            elif crash_at is not None and obs.tick_id >= crash_at:
                raise RuntimeError(f"scripted actor {name} crashed at tick {obs.tick_id}")
            elif behaviour == "never":
                pass
            elif late_from is not None and obs.tick_id >= late_from:
                if owed is not None:  # the answer to the previous observation, too late
                    await write(ActorOut(state=NORMAL, action=common_pb2.Action(tick_id=owed.tick_id, content=action_content(owed.tick_id, name))))
                owed = obs
            else:
                for out in before_act(obs) if before_act is not None else ():
                    await write(out)
                content = act(obs) if act is not None else action_content(obs.tick_id, name)
                if content is not None:
                    await write(ActorOut(state=NORMAL, action=common_pb2.Action(tick_id=obs.tick_id, timestamp=time.time_ns(), content=content)))
                if after_act is not None:
                    for out in after_act(obs):
                        await write(out)
                    record.sent_after.append(obs.tick_id)
        touch()


class ClientActor(Recorder):
    """A client actor joining through ``ClientActorSP.RunTrial`` (raw stream)."""

    def __init__(self, channel: grpc.aio.Channel, trial_id: str, *, name: str = "", actor_class: str = "", behaviour: str = "act",
                 act: Callable[[common_pb2.Observation], bytes | None] | None = None,
                 before_act: Callable[[common_pb2.Observation], Iterable[ActorOut]] | None = None,
                 after_act: Callable[[common_pb2.Observation], Iterable[ActorOut]] | None = None,
                 before_ack: Callable[[common_pb2.Observation], Iterable[ActorOut]] | None = None,
                 metadata: Sequence[tuple[str, str]] = (),
                 call: Any = None) -> None:
        """``call``: an open ClientActorSP.RunTrial call (e.g. a LocalCall to an embedded
        Orchestrator); by default one is opened on ``channel``."""
        super().__init__()
        self.trial_id = trial_id
        self.name = name
        self.actor_class = actor_class
        self.behaviour = behaviour
        self.record = ActorTrial()
        self.call = call if call is not None else orchestrator_pb2_grpc.ClientActorSPStub(channel).RunTrial(metadata=(("trial-id", trial_id), *metadata))
        self.code: grpc.StatusCode | None = None
        self.details: str | None = None
        self._act = act
        self._before_act = before_act
        self._after_act = after_act
        self._before_ack = before_ack
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            selection = common_pb2.ActorInitialOutput(actor_name=self.name) if self.name else common_pb2.ActorInitialOutput(actor_class=self.actor_class)
            await self.call.write(ActorOut(state=NORMAL, init_output=selection))
            msg = await self.call.read()
            if msg is grpc.aio.EOF:
                return
            self.record.init = msg.init_input
            self.touch()
            await _actor_loop(self.call.read, self.call.write, self.record, self.name, self.behaviour, self.touch, self._act, self._before_act,
                              after_act=self._after_act, before_ack=self._before_ack)
        except grpc.aio.AioRpcError as err:
            self.record.error = f"{err.code().name}: {err.details()}"
        finally:
            try:
                if hasattr(self.call, "code"):
                    self.code = await asyncio.wait_for(self.call.code(), WAIT)
                    self.details = await self.call.details()
            except Exception:  # the call ended some other way; code stays None
                pass
            self.record.finished = True
            self.touch()

    async def finished(self) -> ActorTrial:
        await self.until(lambda: self.record.finished, f"client actor {self.name or self.actor_class} to finish")
        return self.record

    def cancel(self) -> None:
        self.call.cancel()


# ------------------------------------------------------------------------------------- hooks, datalog


class Hook(Recorder, hooks_pb2_grpc.TrialHooksSPServicer):
    """TrialHooksSP: records each call, applies ``modify`` to the params, or fails with ``fail``."""

    def __init__(self, modify: Callable[[common_pb2.TrialParams], None] | None = None, fail: str | None = None) -> None:
        super().__init__()
        self.modify = modify
        self.fail = fail
        self.calls: list[tuple[dict[str, list[str]], common_pb2.TrialParams]] = []

    def add_to(self, server: grpc.aio.Server) -> None:
        hooks_pb2_grpc.add_TrialHooksSPServicer_to_server(self, server)

    async def OnPreTrial(self, request: hooks_pb2.PreTrialParams, context: Any) -> hooks_pb2.PreTrialParams:
        params = common_pb2.TrialParams()
        params.CopyFrom(request.params)
        self.calls.append((metadata_dict(context), params))
        self.touch()
        if self.fail is not None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, self.fail)
        reply = common_pb2.TrialParams()
        reply.CopyFrom(params)
        if self.modify is not None:
            self.modify(reply)
        return hooks_pb2.PreTrialParams(params=reply)


@dataclass
class DatalogStream:
    metadata: dict[str, list[str]]
    messages: list[datalog_pb2.RunTrialDatalogInput] = field(default_factory=list)
    closed: bool = False

    @property
    def samples(self) -> list[datalog_pb2.DatalogSample]:
        return [m.sample for m in self.messages if m.HasField("sample")]


class Datalog(Recorder, datalog_pb2_grpc.DatalogSPServicer):
    """DatalogSP: records every stream; ``fail`` makes it abort after the params."""

    def __init__(self, fail: str | None = None) -> None:
        super().__init__()
        self.fail = fail
        self.streams: dict[str, DatalogStream] = {}

    def add_to(self, server: grpc.aio.Server) -> None:
        datalog_pb2_grpc.add_DatalogSPServicer_to_server(self, server)

    async def stream(self, trial_id: str) -> DatalogStream:
        return await self.until(lambda: self.streams.get(trial_id), f"the datalog stream of trial {trial_id}")

    async def RunTrialDatalog(self, request_iterator: Any, context: Any) -> None:
        metadata = metadata_dict(context)
        stream = DatalogStream(metadata)
        self.streams[metadata["trial-id"][0]] = stream
        self.touch()
        try:
            while True:
                msg = await context.read()
                if msg is grpc.aio.EOF:
                    return
                stream.messages.append(msg)
                self.touch()
                if self.fail is not None:
                    await context.abort(grpc.StatusCode.INTERNAL, self.fail)
        finally:
            stream.closed = True
            self.touch()


# ------------------------------------------------------------------------------------- lifecycle


class Lifecycle:
    """TrialLifecycleSP calls with Cogment's metadata conventions (``metadata``: added to every call)."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]] = ()) -> None:
        self.stub = orchestrator_pb2_grpc.TrialLifecycleSPStub(channel)
        self.metadata = tuple(metadata)

    async def start(self, params: common_pb2.TrialParams | None = None, *, config: bytes | None = None, trial_id: str = "", user_id: str = "tester") -> str:
        request = orchestrator_pb2.TrialStartRequest(trial_id_requested=trial_id, user_id=user_id)
        if params is not None:
            request.params.CopyFrom(params)
        if config is not None:
            request.config.content = config
        reply = await self.stub.StartTrial(request, timeout=WAIT, metadata=self.metadata)
        return reply.trial_id

    async def terminate(self, *trial_ids: str, hard: bool) -> None:
        await self.stub.TerminateTrial(
            orchestrator_pb2.TerminateTrialRequest(hard_termination=hard), metadata=[("trial-id", t) for t in trial_ids] + list(self.metadata),
            timeout=WAIT,
        )

    async def info(self, *trial_ids: str, observation: bool = False, actors: bool = False) -> list[orchestrator_pb2.TrialInfo]:
        reply = await self.stub.GetTrialInfo(
            orchestrator_pb2.TrialInfoRequest(get_latest_observation=observation, get_actor_list=actors),
            metadata=[("trial-id", t) for t in trial_ids] + list(self.metadata),
            timeout=WAIT,
        )
        return list(reply.trial)

    async def state(self, trial_id: str) -> int:
        infos = await self.info(trial_id)
        return infos[0].state if infos else common_pb2.UNKNOWN

    async def wait_state(self, trial_id: str, state: int, timeout: float = WAIT) -> None:
        """Follow WatchTrials until ``trial_id`` reaches ``state`` (no polling)."""
        call = self.stub.WatchTrials(orchestrator_pb2.TrialListRequest(), metadata=self.metadata)
        try:
            async def follow() -> None:
                async for entry in call:
                    if entry.trial_id == trial_id and entry.state == state:
                        return
                raise AssertionError(f"WatchTrials ended before trial {trial_id} reached state {state}")

            await asyncio.wait_for(follow(), timeout)
        finally:
            call.cancel()


def trial_params(
    env_endpoint: str,
    actors: Sequence[common_pb2.ActorParams],
    **fields: Any,
) -> common_pb2.TrialParams:
    params = common_pb2.TrialParams(environment=common_pb2.EnvironmentParams(endpoint=env_endpoint), actors=list(actors), **fields)
    return params


def client(name: str, actor_class: str = "player", **fields: Any) -> common_pb2.ActorParams:
    return common_pb2.ActorParams(name=name, actor_class=actor_class, endpoint="cogment://client", **fields)


def service(name: str, endpoint: str, actor_class: str = "player", **fields: Any) -> common_pb2.ActorParams:
    return common_pb2.ActorParams(name=name, actor_class=actor_class, endpoint=endpoint, **fields)
