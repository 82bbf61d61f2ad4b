"""A compliance check of a served environment: any ``cogmentAPI.EnvironmentSP`` endpoint (a
``cogment_gym.serve`` one, or one written with the official Cogment SDK) whose observations and
actions are ``cogment_gym.v1`` payloads.

The check plays the Orchestrator's side of ``EnvironmentSP.RunTrial`` over real gRPC, message by
message, as docs/protocol.md §1 describes it, and reports each property as PASS, FAIL or SKIP:

=============================  =================================================================
``handshake.version``          ``Version`` answers
``handshake.init``             ``init_input`` is answered by ``init_output``, then the first
                               ObservationSet (tick -1 or 0, one entry per actor)
``handshake.heartbeat``        a HEARTBEAT is answered with a HEARTBEAT, before and after init
``handshake.orchestrator_end`` LAST, then the tick's actions: the final ObservationSet, then
                               LAST_ACK; END then finishes the call (status OK)
``handshake.hard_end``         END with details in the middle of a trial finishes the call
``spec``                       ``EnvSpecSP.GetSpec`` (when served) describes the implementation:
                               one actor spec each, spaces that decode, listed by
                               ``ListImplementations`` (SKIP when not served)
``reset``                      the first observations decode in the announced spaces, with
                               ``terminated`` / ``truncated`` false and reward 0
``step``                       seeded random actions for up to ``steps`` ticks: every observation
                               decodes, rewards are finite, ``terminated`` / ``truncated`` are
                               booleans
``step.episode_end``           an episode that ends is ended by the env: LAST, the final
                               observations (with ``terminated`` or ``truncated``), LAST_ACK; and
                               a trial the env ends has such a final observation
``determinism``                two trials with the same seed and actions give the same
                               observations, rewards and flags
``errors.bad_action``          an action outside the action space makes the env fail the trial
                               (a hard END with details, or an RPC error), neither a hang nor a
                               next observation
``errors.unparsable_action``   the same for action bytes that are no ``ActionPayload``
``errors.unknown_implementation``  the same for a trial of an implementation not served
``deadlines``                  every answer came within the check's ``timeout``
=============================  =================================================================

Every wait has a deadline (``timeout``, seconds), so the check ends even against an env that
never answers; that wait then fails its property and ``deadlines``.

Two ways to run it: :func:`check_environment` (a :class:`ComplianceReport`), or
``cogment-gym check ENDPOINT`` (one line per property; exit code 1 when one fails). For a test
suite: subclass :class:`EnvironmentCompliance` (a ``unittest.TestCase``: one test per property).

Example:
    >>> import cogment_gym
    >>> from cogment_gym.testing import check_environment
    >>> with cogment_gym.serve("CartPole-v1") as server:
    ...     report = check_environment(server.endpoint, steps=50)
    >>> report.passed
    True
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import unittest
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, ClassVar, Sequence

import grpc
import gymnasium as gym
import numpy as np

from cogment_gym._proto.cogment.api import common_pb2, environment_pb2, environment_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc, values_pb2
from cogment_gym.codec import decode, encode, space_from_proto
from cogment_gym.errors import CogmentGymError
from cogment_gym.protocol import END, HEARTBEAT, LAST, LAST_ACK, NORMAL, Failure, parse_endpoint, state_name
from cogment_gym.protocol.links import GRPC_OPTIONS
from cogment_gym.protocol.security import NO_SECURITY, Security, new_channel
from cogment_gym.testing.env_match import assert_data_equal

__all__ = [
    "PROPERTIES",
    "ComplianceReport",
    "EnvironmentCompliance",
    "PropertyResult",
    "check_environment",
]

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

#: The properties, in the order they are checked and reported.
PROPERTIES: tuple[str, ...] = (
    "handshake.version",
    "handshake.init",
    "handshake.heartbeat",
    "handshake.orchestrator_end",
    "handshake.hard_end",
    "spec",
    "reset",
    "step",
    "step.episode_end",
    "determinism",
    "errors.bad_action",
    "errors.unparsable_action",
    "errors.unknown_implementation",
    "deadlines",
)

EnvIn = environment_pb2.EnvRunTrialInput
EOF_ = grpc.aio.EOF
# Bytes that no ActionPayload parses from (a field 1 whose length prefix runs past the end).
_UNPARSABLE = b"\x0a\xff\xff\xff\x0f"
_NO_SUCH_IMPLEMENTATION = "cogment-gym-check-no-such-implementation"


@dataclass(frozen=True)
class PropertyResult:
    """The outcome of one property: ``status`` is ``"PASS"``, ``"FAIL"`` or ``"SKIP"``."""

    name: str
    status: str
    detail: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def line(self) -> str:
        return f"{self.status}  {self.name:<30} {self.detail}"


@dataclass
class ComplianceReport:
    """Every property's result, in :data:`PROPERTIES` order."""

    endpoint: str
    implementation: str
    results: list[PropertyResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """No property failed (skipped ones do not count)."""
        return not self.failures

    @property
    def failures(self) -> list[PropertyResult]:
        return [r for r in self.results if r.failed]

    def __getitem__(self, name: str) -> PropertyResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no property {name!r} in this report; properties: {[r.name for r in self.results]}")

    def summary(self) -> str:
        counts = {status: sum(r.status == status for r in self.results) for status in (PASS, FAIL, SKIP)}
        return f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped"

    def format(self) -> str:
        """One line per property, then the summary."""
        return "\n".join([r.line() for r in self.results] + [self.summary()])


class _Failed(Exception):
    """A property does not hold (the message says how)."""


class _Skipped(Exception):
    """A property cannot be checked here (the message says why)."""


class _NoAnswer(_Failed):
    """A wait on the env passed its deadline."""


@dataclass
class _Actor:
    name: str
    actor_class: str
    observation_space: gym.Space[Any] | None
    action_space: gym.Space[Any] | None


@dataclass
class _Tick:
    """What the env sent for one tick: one payload per actor, and its decoded value (None when
    it has none, or no space is known)."""

    tick: int
    payloads: list[env_pb2.ObservationPayload]
    values: list[Any]


class _Stream:
    """One ``RunTrial`` call, driven message by message with a deadline on every wait."""

    def __init__(self, check: _Check, trial_id: str) -> None:
        self.check = check
        self.trial_id = trial_id
        self.call = environment_pb2_grpc.EnvironmentSPStub(check.channel).RunTrial(metadata=(("trial-id", trial_id), *check.metadata))
        self.ended = False

    async def send(self, message: Any) -> None:
        await self.check.bounded(self.call.write(message), f"the env to take a message of trial {self.trial_id!r}")

    async def send_state(self, state: Any, details: str = "") -> None:
        message = EnvIn(state=state)
        if details:
            message.details = details
        await self.send(message)

    async def recv(self, what: str) -> Any:
        """The next message (EOF at the end of the stream); raises _NoAnswer after the deadline,
        _Failed on an RPC error."""
        try:
            message = await self.check.bounded(self.call.read(), what)
        except grpc.aio.AioRpcError as err:
            raise _Failed(f"the call failed while waiting for {what}: {err.code().name} {err.details()!r}") from None
        return message

    async def init(self, impl_name: str, actors: Sequence[_Actor], seed: int | None) -> None:
        config = env_pb2.EnvConfig()
        if seed is not None:
            config.seed = seed
        init = environment_pb2.EnvInitialInput(
            name="env", impl_name=impl_name, tick_id=0,
            actors_in_trial=[common_pb2.TrialActor(name=a.name, actor_class=a.actor_class) for a in actors],
        )
        init.config.CopyFrom(common_pb2.SerializedMessage(content=config.SerializeToString()))
        await self.send(EnvIn(state=NORMAL, init_input=init))

    async def until_observations(self, what: str) -> tuple[environment_pb2.ObservationSet, bool]:
        """Skip rewards, messages and HEARTBEAT answers until an ObservationSet; returns it and
        whether LAST came first. Anything else fails."""
        last = False
        while True:
            msg = await self.recv(what)
            if msg is EOF_:
                raise _Failed(f"the env ended the call while {what} was expected{await self.status_text()}")
            if msg.state == LAST:
                last = True
                continue
            if msg.state == HEARTBEAT:
                continue
            if msg.state == END:
                raise _Failed(f"the env ended the trial while {what} was expected: {_end_text(msg)}")
            if msg.state == NORMAL and msg.WhichOneof("data") in ("reward", "message"):
                continue
            if msg.state == NORMAL and msg.WhichOneof("data") == "observation_set":
                return msg.observation_set, last
            raise _Failed(f"expected {what}, got {_describe(msg)}")

    async def start(self, impl_name: str, actors: Sequence[_Actor], seed: int | None) -> environment_pb2.ObservationSet:
        """init_input -> init_output -> the first ObservationSet (returned)."""
        await self.init(impl_name, actors, seed)
        while True:
            msg = await self.recv("init_output")
            if msg is EOF_:
                raise _Failed(f"the env ended the call instead of sending init_output{await self.status_text()}")
            if msg.state == HEARTBEAT:  # the env may send heartbeats during init: answered
                await self.send_state(HEARTBEAT)
                continue
            if msg.state == NORMAL and msg.WhichOneof("data") == "init_output":
                break
            if msg.state == END:
                raise _Failed(f"the env ended the trial instead of sending init_output: {_end_text(msg)}")
            raise _Failed(f"expected init_output, got {_describe(msg)}")
        first, last = await self.until_observations("the first ObservationSet")
        if last:
            raise _Failed("the env sent LAST before its first observations")
        if first.tick_id not in (-1, 0):
            raise _Failed(f"the first ObservationSet has tick_id {first.tick_id}: expected 0 (or -1, 'the current tick')")
        _check_actors_map(first, len(actors))
        return first

    async def act(self, tick: int, contents: Sequence[bytes]) -> None:
        await self.send(EnvIn(state=NORMAL, action_set=environment_pb2.ActionSet(tick_id=tick, timestamp=time.time_ns(), actions=list(contents))))

    async def expect_last_ack(self, what: str) -> None:
        while True:
            msg = await self.recv(what)
            if msg is not EOF_ and msg.state == LAST_ACK:
                return
            if msg is not EOF_ and (msg.state == HEARTBEAT or (msg.state == NORMAL and msg.WhichOneof("data") in ("reward", "message"))):
                continue
            raise _Failed(f"expected LAST_ACK ({what}), got {_describe(msg) if msg is not EOF_ else 'the end of the call'}")

    async def end(self, details: str = "") -> grpc.StatusCode:
        """END (with ``details``: a hard end), half-close; the call must then finish."""
        await self.send_state(END, details)
        await self.check.bounded(self.call.done_writing(), "the env to take the end of the stream")
        self.ended = True
        while True:
            msg = await self.recv("the env to finish the call after END")
            if msg is EOF_:
                break
        code: grpc.StatusCode = await self.check.bounded(self.call.code(), "the status of the finished call")
        return code

    async def status_text(self) -> str:
        try:
            code = await self.check.bounded(self.call.code(), "the status of the finished call")
            details = await self.check.bounded(self.call.details(), "the status details")
        except _Failed:
            return ""
        return f" (status {code.name}{': ' + repr(details) if details else ''})"

    async def outcome_after_bad_input(self, what: str) -> str:
        """What the env did after bad input: 'in-band' (END with details) or 'status' (the call
        failed); raises _Failed when it answered normally or stayed silent."""
        while True:
            try:
                msg = await self.check.bounded(self.call.read(), f"the env to fail the trial after {what}")
            except grpc.aio.AioRpcError as err:
                return f"the call failed with status {err.code().name} {err.details()!r} (not in-band, but no hang)"
            if msg is EOF_:
                code = await self.check.bounded(self.call.code(), "the status of the finished call")
                if code == grpc.StatusCode.OK:
                    raise _Failed(f"after {what} the env closed the call without saying why (status OK, no END details)")
                details = await self.check.bounded(self.call.details(), "the status details")
                return f"the call failed with status {code.name} {details!r} (not in-band, but no hang)"
            if msg.state == END:
                if not msg.details:
                    raise _Failed(f"after {what} the env sent END without details: the reason is lost")
                return f"in-band END: {Failure.from_details(msg.details).summary[:160]}"
            if msg.state == HEARTBEAT or (msg.state == NORMAL and msg.WhichOneof("data") in ("reward", "message")):
                continue
            raise _Failed(f"after {what} the env went on as if nothing happened: {_describe(msg)}")

    async def close(self) -> None:
        """Finish the call if it is not over: half-close and read to its end (the env has ended
        the trial, or will on this side's end of the stream), else cancel it; then wait for its
        status (no completion of it may arrive once the check's event loop is closed)."""
        if not self.call.done():
            try:
                if not self.ended:
                    await asyncio.wait_for(self.call.done_writing(), self.check.timeout)
                for _ in range(1000):  # (an env that keeps talking is cut short)
                    if await asyncio.wait_for(self.call.read(), self.check.timeout) is EOF_:
                        break
                else:
                    self.call.cancel()
            except (asyncio.TimeoutError, grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
                self.call.cancel()
        try:
            await asyncio.wait_for(self.call.code(), self.check.timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError, grpc.aio.AioRpcError):
            pass


def _describe(msg: Any) -> str:
    data = msg.WhichOneof("data")
    text = state_name(msg.state) + (f" {data}" if data else "")
    if data == "observation_set":
        text += f" (tick {msg.observation_set.tick_id})"
    return text


def _end_text(msg: Any) -> str:
    return Failure.from_details(msg.details).summary[:200] if msg.details else "END without details"


def _check_actors_map(obs_set: environment_pb2.ObservationSet, actors: int) -> None:
    if len(obs_set.actors_map) != actors:
        raise _Failed(f"ObservationSet (tick {obs_set.tick_id}) maps {len(obs_set.actors_map)} actors, the trial has {actors}")
    for index in obs_set.actors_map:
        if not 0 <= index < len(obs_set.observations):
            raise _Failed(f"ObservationSet (tick {obs_set.tick_id}): actors_map entry {index} is out of range ({len(obs_set.observations)} observations)")


class _Check:
    """One run of the check against one endpoint."""

    def __init__(
        self,
        endpoint: str,
        implementation: str,
        observation_space: gym.Space[Any] | None,
        action_space: gym.Space[Any] | None,
        actors: Sequence[tuple[str, str]] | None,
        seed: int,
        steps: int,
        timeout: float,
        security: Security,
    ) -> None:
        self.endpoint = endpoint
        self.security = security
        self.metadata = security.call_metadata  # the token (if any), on every call
        self.implementation = implementation
        self.given_spaces = (observation_space, action_space)
        self.given_actors = list(actors) if actors else None
        self.seed = seed
        self.steps = steps
        self.timeout = timeout
        self.actors: list[_Actor] = []
        self.spec: env_pb2.EnvSpec | None = None
        self.spec_error = ""
        self.waits = 0
        self.slowest = (0.0, "")
        self.timeouts: list[str] = []
        self.trials = 0
        self.run_id = uuid.uuid4().hex[:8]
        self.channel: grpc.aio.Channel
        self._episode_record: tuple[list[_Tick], str] | None = None  # what the step property played

    # ------------------------------------------------------------------ waiting

    async def bounded(self, awaitable: Awaitable[Any], what: str) -> Any:
        """``awaitable`` within the check's timeout; the slowest answer is kept for ``deadlines``."""
        started = time.monotonic()
        self.waits += 1
        try:
            result = await asyncio.wait_for(awaitable, self.timeout)
        except asyncio.TimeoutError:
            self.timeouts.append(what)
            raise _NoAnswer(f"no answer within {self.timeout:g} s while waiting for {what}") from None
        elapsed = time.monotonic() - started
        if elapsed > self.slowest[0]:
            self.slowest = (elapsed, what)
        return result

    def stream(self) -> _Stream:
        self.trials += 1
        # Unique across runs: a service may refuse a second session of a trial id it still knows.
        return _Stream(self, f"cogment-gym-check-{self.run_id}-{self.trials}")

    # ------------------------------------------------------------------ running

    async def run(self) -> ComplianceReport:
        report = ComplianceReport(self.endpoint, self.implementation)
        target = parse_endpoint(self.endpoint).grpc_target
        async with new_channel(target, self.security, GRPC_OPTIONS) as channel:  # keepalive: a vanished peer is found
            self.channel = channel
            try:
                await self.bounded(channel.channel_ready(), f"a connection to {self.endpoint}")
            except _NoAnswer:
                detail = f"nothing answers at {self.endpoint} (no connection within {self.timeout:g} s)"
                report.results.append(PropertyResult(PROPERTIES[0], FAIL, detail))
                report.results += [PropertyResult(name, SKIP, "nothing answers at the endpoint") for name in PROPERTIES[1:]]
                return report
            await self._describe()
            report.implementation = self.implementation
            for name in PROPERTIES:
                method: Callable[[], Awaitable[str]] = getattr(self, "_" + name.replace(".", "_"))
                started = time.monotonic()
                try:
                    detail = await method()
                    status = PASS
                except _Skipped as err:
                    status, detail = SKIP, str(err)
                except _Failed as err:
                    status, detail = FAIL, str(err)
                except grpc.aio.AioRpcError as err:
                    status, detail = FAIL, f"a call failed: {err.code().name} {err.details()!r}"
                except (CogmentGymError, ValueError, TypeError) as err:
                    status, detail = FAIL, f"{type(err).__name__}: {err}"
                report.results.append(PropertyResult(name, status, detail, time.monotonic() - started))
            # gRPC's own tasks of finished calls (their final status): done before the loop closes,
            # else their completions would reach a closed loop.
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if pending:
                await asyncio.wait(pending, timeout=self.timeout)
        return report

    async def _describe(self) -> None:
        """The actors and spaces: from the spec, else the given spaces (one actor "player")."""
        stub = env_pb2_grpc.EnvSpecSPStub(self.channel)
        try:
            request = env_pb2.GetSpecRequest(implementation=self.implementation)
            self.spec = await self.bounded(stub.GetSpec(request, metadata=self.metadata), "GetSpec")
        except grpc.aio.AioRpcError as err:
            self.spec_error = f"{err.code().name}: {err.details()}"
        except _NoAnswer as err:
            self.spec_error = str(err)
        observation_space, action_space = self.given_spaces
        if self.spec is not None and self.spec.actors:
            for actor in self.spec.actors:
                try:
                    obs = space_from_proto(actor.observation_space) if actor.HasField("observation_space") else None
                    act = space_from_proto(actor.action_space) if actor.HasField("action_space") else None
                except CogmentGymError:
                    obs = act = None  # the spec property says why
                self.actors.append(_Actor(actor.name, actor.actor_class, obs or observation_space, act or action_space))
            if not self.implementation:
                self.implementation = self.spec.implementation
        else:
            for name, actor_class in self.given_actors or [("player", "player")]:
                self.actors.append(_Actor(name, actor_class, observation_space, action_space))

    # ------------------------------------------------------------------ actions and observations

    def _rng(self, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])

    def _action(self, actor: _Actor, payload: env_pb2.ObservationPayload, value: Any, rng: np.random.Generator) -> bytes:
        """A random valid action for an acting actor (respecting an ``action_mask``); empty for
        one whose action is not used this tick."""
        if payload.status in (env_pb2.AGENT_STATUS_WAITING, env_pb2.AGENT_STATUS_ABSENT, env_pb2.AGENT_STATUS_LEAVING):
            return b""
        space = actor.action_space
        if space is None:
            return env_pb2.ActionPayload().SerializeToString()
        space.seed(int(rng.integers(2**31)))
        mask = value.get("action_mask") if isinstance(value, dict) else None
        if isinstance(space, gym.spaces.Discrete) and mask is not None and np.any(mask):
            action = space.sample(mask=np.asarray(mask, dtype=np.int8))
        else:
            action = space.sample()
        return env_pb2.ActionPayload(value=encode(space, action, f"action of actor {actor.name!r}")).SerializeToString()

    def _read(self, obs_set: environment_pb2.ObservationSet, tick: int) -> _Tick:
        """Parse and decode one ObservationSet, per actor; raises _Failed naming what is wrong."""
        _check_actors_map(obs_set, len(self.actors))
        payloads, values = [], []
        for index, actor in enumerate(self.actors):
            content = obs_set.observations[obs_set.actors_map[index]]
            payload = env_pb2.ObservationPayload()
            try:
                payload.ParseFromString(content)
            except Exception as err:  # protobuf's DecodeError
                raise _Failed(f"tick {tick}, actor {actor.name!r}: the observation is no cogment_gym.v1 ObservationPayload ({err})") from None
            value: Any = None
            if payload.HasField("value") and actor.observation_space is not None:
                try:
                    value = decode(actor.observation_space, payload.value, f"observation of actor {actor.name!r}", bounds=False)
                except CogmentGymError as err:
                    raise _Failed(f"tick {tick}: the observation does not decode in the announced space {actor.observation_space}: {err}") from None
            elif not payload.HasField("value") and payload.status in (env_pb2.AGENT_STATUS_ACTING,) and not self._multi:
                raise _Failed(f"tick {tick}, actor {actor.name!r}: the observation has no value")
            if not math.isfinite(payload.reward):
                raise _Failed(f"tick {tick}, actor {actor.name!r}: reward {payload.reward} is not finite")
            payloads.append(payload)
            values.append(value)
        return _Tick(tick, payloads, values)

    @property
    def _multi(self) -> bool:
        return bool(self.spec is not None and self.spec.multi_agent)

    def _needs_spaces(self) -> None:
        if any(a.observation_space is None for a in self.actors):
            why = f"no EnvSpecSP ({self.spec_error})" if self.spec is None else "the spec has no observation space"
            raise _Skipped(f"{why} and no observation_space given: observations cannot be decoded")

    async def _play(self, stream: _Stream, salt: int, max_ticks: int) -> tuple[list[_Tick], str]:
        """Start a trial and step it with seeded random actions until the env ends it or
        ``max_ticks`` ticks passed (then this side ends it softly). Returns the ticks and how the
        trial ended ("env" or "orchestrator"); the call is finished."""
        first = await stream.start(self.implementation, self.actors, self.seed)
        ticks = [self._read(first, 0)]
        rng = self._rng(salt)
        tick = 0
        how = "orchestrator"
        while True:
            current = ticks[-1]
            contents = [self._action(a, p, v, rng) for a, p, v in zip(self.actors, current.payloads, current.values)]
            ending = tick + 1 >= max_ticks
            if ending:
                await stream.send_state(LAST)
            await stream.act(tick, contents)
            obs_set, last = await stream.until_observations(f"the observations answering the actions of tick {tick}")
            tick += 1
            if obs_set.tick_id not in (-1, tick):
                raise _Failed(f"the ObservationSet answering tick {tick - 1} has tick_id {obs_set.tick_id}: expected {tick} (or -1)")
            ticks.append(self._read(obs_set, tick))
            if last or ending:
                how = "env" if last and not ending else "orchestrator"
                await stream.expect_last_ack(f"after the final observations of tick {tick}")
                code = await stream.end()
                if code != grpc.StatusCode.OK:
                    raise _Failed(f"after END the call finished with status {code.name}")
                return ticks, how

    async def _episode(self, salt: int = 1) -> tuple[list[_Tick], str]:
        stream = self.stream()
        try:
            return await self._play(stream, salt, self.steps)
        finally:
            await stream.close()

    # ------------------------------------------------------------------ properties

    async def _handshake_version(self) -> str:
        stub = environment_pb2_grpc.EnvironmentSPStub(self.channel)
        try:
            reply = await self.bounded(stub.Version(common_pb2.VersionRequest(), metadata=self.metadata), "Version")
        except grpc.aio.AioRpcError as err:
            raise _Failed(f"Version failed: {err.code().name} {err.details()!r}") from None
        versions = ", ".join(f"{v.name} {v.version}" for v in reply.versions)
        return f"versions: {versions or '(none listed)'}"

    async def _handshake_init(self) -> str:
        stream = self.stream()
        try:
            first = await stream.start(self.implementation, self.actors, self.seed)
            code = await stream.end()
            return f"init_output, then the first ObservationSet (tick {first.tick_id}, {len(first.observations)} observation(s)); END -> status {code.name}"
        finally:
            await stream.close()

    async def _handshake_heartbeat(self) -> str:
        stream = self.stream()
        try:
            await stream.send_state(HEARTBEAT)
            await self._heartbeat_reply(stream, "before init")
            await stream.start(self.implementation, self.actors, self.seed)
            await stream.send_state(HEARTBEAT)
            await self._heartbeat_reply(stream, "after init")
            await stream.end()
            return "answered before and after init"
        finally:
            await stream.close()

    async def _heartbeat_reply(self, stream: _Stream, when: str) -> None:
        while True:
            msg = await stream.recv(f"the answer to a HEARTBEAT {when}")
            if msg is EOF_:
                raise _Failed(f"the env ended the call instead of answering a HEARTBEAT {when}")
            if msg.state == HEARTBEAT:
                return
            if msg.state == NORMAL and msg.WhichOneof("data") in ("reward", "message"):
                continue
            raise _Failed(f"a HEARTBEAT {when} was answered with {_describe(msg)}, not HEARTBEAT")

    async def _handshake_orchestrator_end(self) -> str:
        stream = self.stream()
        try:
            first = await stream.start(self.implementation, self.actors, self.seed)
            current = self._read(first, 0)
            rng = self._rng(2)
            await stream.send_state(LAST)
            await stream.act(0, [self._action(a, p, v, rng) for a, p, v in zip(self.actors, current.payloads, current.values)])
            obs_set, _ = await stream.until_observations("the final observations after LAST and the actions of tick 0")
            self._read(obs_set, 1)
            await stream.expect_last_ack("after the final observations")
            code = await stream.end()
            if code != grpc.StatusCode.OK:
                raise _Failed(f"after LAST_ACK and END the call finished with status {code.name}")
            return "LAST + actions -> final observations, LAST_ACK; END -> status OK"
        finally:
            await stream.close()

    async def _handshake_hard_end(self) -> str:
        stream = self.stream()
        try:
            await stream.start(self.implementation, self.actors, self.seed)
            code = await stream.end("cogment-gym check: a hard end in the middle of a trial")
            return f"the call finished (status {code.name})"
        finally:
            await stream.close()

    async def _spec(self) -> str:
        if self.spec is None:
            raise _Skipped(f"no EnvSpecSP ({self.spec_error}); spaces: {'given' if self.given_spaces[0] is not None else 'none given'}")
        spec = self.spec
        if spec.implementation != self.implementation:
            raise _Failed(f"GetSpec({self.implementation!r}) describes implementation {spec.implementation!r}")
        if not spec.actors:
            raise _Failed("the spec has no actor")
        for actor in spec.actors:
            if not actor.name or not actor.actor_class:
                raise _Failed(f"an actor spec without a name or class: {actor.name!r} / {actor.actor_class!r}")
            for kind in ("observation_space", "action_space"):
                if not actor.HasField(kind) and not spec.agent_slots:
                    raise _Failed(f"actor {actor.name!r} has no {kind}")
                if actor.HasField(kind):
                    try:
                        space_from_proto(getattr(actor, kind))
                    except CogmentGymError as err:
                        raise _Failed(f"actor {actor.name!r}: its {kind} does not decode: {err}") from None
        stub = env_pb2_grpc.EnvSpecSPStub(self.channel)
        listed = await self.bounded(stub.ListImplementations(env_pb2.ListImplementationsRequest(), metadata=self.metadata), "ListImplementations")
        if spec.implementation not in listed.implementations:
            raise _Failed(f"ListImplementations {list(listed.implementations)} does not list {spec.implementation!r}")
        obs, act = self.given_spaces
        if obs is not None and self.actors[0].observation_space != obs:
            raise _Failed(f"the given observation space {obs} differs from the spec's {self.actors[0].observation_space}")
        if act is not None and self.actors[0].action_space != act:
            raise _Failed(f"the given action space {act} differs from the spec's {self.actors[0].action_space}")
        spaces = "; ".join(f"{a.name}: {a.observation_space} -> {a.action_space}" for a in self.actors[:3])
        return f"implementation {spec.implementation!r}, {len(spec.actors)} actor(s) ({spaces}{'; ...' if len(self.actors) > 3 else ''})"

    async def _reset(self) -> str:
        self._needs_spaces()
        stream = self.stream()
        try:
            first = await stream.start(self.implementation, self.actors, self.seed)
            tick = self._read(first, 0)
            for actor, payload in zip(self.actors, tick.payloads):
                if payload.terminated or payload.truncated:
                    raise _Failed(f"actor {actor.name!r}: the first observation says terminated={payload.terminated}, truncated={payload.truncated}")
                if payload.reward != 0.0:
                    raise _Failed(f"actor {actor.name!r}: the first observation has reward {payload.reward}, expected 0")
            outside = [a.name for a, v in zip(self.actors, tick.values) if v is not None and not _contains(a.observation_space, v)]
            await stream.end()
            note = f"; outside the space's bounds for {outside} (Gymnasium tolerates it)" if outside else ""
            return f"the first observation of each of {len(self.actors)} actor(s) decodes in its space{note}"
        finally:
            await stream.close()

    async def _step(self) -> str:
        self._needs_spaces()
        ticks, how = await self._episode()
        self._episode_record = (ticks, how)
        outside = sum(1 for t in ticks for a, v in zip(self.actors, t.values) if v is not None and not _contains(a.observation_space, v))
        note = f"; {outside} observation(s) outside the space's bounds (Gymnasium tolerates it)" if outside else ""
        ended = "the env ended the episode" if how == "env" else f"no episode end within {self.steps} ticks: ended by LAST"
        return f"{len(ticks) - 1} tick(s), every observation decodes, rewards finite; {ended}{note}"

    async def _step_episode_end(self) -> str:
        record = self._episode_record
        if record is None:
            raise _Skipped("the step property did not complete")
        ticks, how = record
        done_at = next((t for t in ticks if _all_done(t)), None)
        if how == "env":
            final = ticks[-1]
            if not _all_done(final):
                flags = [(p.terminated, p.truncated) for p in final.payloads]
                raise _Failed(f"the env ended the trial at tick {final.tick} without terminated or truncated (terminated, truncated per actor: {flags})")
            if done_at is not final and not self._multi:  # (multi-agent: agents leave one by one, AEC dead steps follow)
                raise _Failed(f"the episode was over at tick {done_at.tick if done_at else '?'} but the env went on to tick {final.tick}")
            return f"at tick {final.tick}: LAST, the final observations ({_flags(final)}), LAST_ACK"
        if done_at is not None and done_at is not ticks[-1] and not self._multi:
            raise _Failed(f"tick {done_at.tick} says the episode is over ({_flags(done_at)}) but the env did not end the trial (no LAST)")
        raise _Skipped(f"no episode ended within {self.steps} ticks (raise steps to see one end)")

    async def _determinism(self) -> str:
        self._needs_spaces()
        horizon = min(self.steps, 50)
        first, _ = await self._episode_n(7, horizon)
        second, _ = await self._episode_n(7, horizon)
        if len(first) != len(second):
            raise _Failed(f"the same seed and actions gave episodes of {len(first) - 1} and {len(second) - 1} ticks")
        for a, b in zip(first, second):
            for actor, pa, pb, va, vb in zip(self.actors, a.payloads, b.payloads, a.values, b.values):
                where = f"tick {a.tick}, actor {actor.name!r}"
                if (pa.reward, pa.terminated, pa.truncated) != (pb.reward, pb.terminated, pb.truncated):
                    raise _Failed(f"{where}: (reward, terminated, truncated) {(pa.reward, pa.terminated, pa.truncated)} then {(pb.reward, pb.terminated, pb.truncated)}")
                try:
                    assert_data_equal(va, vb, "observation")
                except AssertionError as err:
                    raise _Failed(f"{where}: same seed, same actions, different observations: {err}") from None
        return f"seed {self.seed}: 2 trials of {len(first) - 1} tick(s) gave the same observations, rewards and flags"

    async def _episode_n(self, salt: int, horizon: int) -> tuple[list[_Tick], str]:
        stream = self.stream()
        try:
            return await self._play(stream, salt, horizon)
        finally:
            await stream.close()

    async def _errors_bad_action(self) -> str:
        actor = self.actors[0]
        if actor.action_space is None:
            raise _Skipped("no action space known: what fits it cannot be told")
        # A None value fits no action space.
        bad = env_pb2.ActionPayload(value=values_pb2.Value(none=values_pb2.NoneValue())).SerializeToString()
        return await self._bad_input(bad, "an action outside the action space (a None value)")

    async def _errors_unparsable_action(self) -> str:
        return await self._bad_input(_UNPARSABLE, "action bytes that are no ActionPayload")

    async def _bad_input(self, content: bytes, what: str) -> str:
        """Start a trial, send ``content`` as the action of the first actor whose action is used
        (valid actions for the others), and see the env fail the trial."""
        stream = self.stream()
        try:
            first = await stream.start(self.implementation, self.actors, self.seed)
            known = all(a.observation_space is not None for a in self.actors)
            tick = self._read(first, 0) if known else None
            idle = (env_pb2.AGENT_STATUS_WAITING, env_pb2.AGENT_STATUS_ABSENT, env_pb2.AGENT_STATUS_LEAVING)
            target = 0 if tick is None else next((i for i, p in enumerate(tick.payloads) if p.status not in idle), 0)
            rng = self._rng(3)
            contents = []
            for index, actor in enumerate(self.actors):
                if index == target:
                    contents.append(content)
                elif tick is None:
                    contents.append(b"")
                else:
                    contents.append(self._action(actor, tick.payloads[index], tick.values[index], rng))
            await stream.act(0, contents)
            return await stream.outcome_after_bad_input(what)
        finally:
            await stream.close()

    async def _errors_unknown_implementation(self) -> str:
        stream = self.stream()
        try:
            await stream.init(_NO_SUCH_IMPLEMENTATION, self.actors, self.seed)
            while True:
                try:
                    msg = await self.bounded(stream.call.read(), "the env to refuse a trial of an implementation it does not serve")
                except grpc.aio.AioRpcError as err:
                    return f"the call failed with status {err.code().name} {err.details()!r} (not in-band, but no hang)"
                if msg is EOF_:
                    code = await self.bounded(stream.call.code(), "the status of the finished call")
                    if code == grpc.StatusCode.OK:
                        raise _Failed("the env closed the call without saying why (status OK, no END details)")
                    return f"the call failed with status {code.name} (not in-band, but no hang)"
                if msg.state == HEARTBEAT:
                    continue
                if msg.state == END and msg.details:
                    return f"in-band END: {Failure.from_details(msg.details).summary[:160]}"
                raise _Failed(f"a trial of implementation {_NO_SUCH_IMPLEMENTATION!r} was answered with {_describe(msg)}")
        finally:
            await stream.close()

    async def _deadlines(self) -> str:
        if self.timeouts:
            listed = "; ".join(self.timeouts[:3]) + ("; ..." if len(self.timeouts) > 3 else "")
            raise _Failed(f"{len(self.timeouts)} of {self.waits} waits got no answer within {self.timeout:g} s: {listed}")
        seconds, what = self.slowest
        return f"{self.waits} waits, each answered within {self.timeout:g} s (slowest: {1000 * seconds:.0f} ms, {what})"


def _contains(space: gym.Space[Any] | None, value: Any) -> bool:
    try:
        return space is None or bool(space.contains(value))
    except Exception:  # some spaces' contains() cannot take what decode gives for odd values
        return False


def _all_done(tick: _Tick) -> bool:
    acting = [p for p in tick.payloads if p.status != env_pb2.AGENT_STATUS_ABSENT]
    return bool(acting) and all(p.terminated or p.truncated for p in acting) or (not acting and bool(tick.payloads))


def _flags(tick: _Tick) -> str:
    p = tick.payloads[0]
    return f"terminated={p.terminated}, truncated={p.truncated}" + (f" (+{len(tick.payloads) - 1} actors)" if len(tick.payloads) > 1 else "")


def check_environment(
    endpoint: str,
    *,
    implementation: str = "",
    observation_space: gym.Space[Any] | None = None,
    action_space: gym.Space[Any] | None = None,
    actors: Sequence[tuple[str, str]] | None = None,
    seed: int = 0,
    steps: int = 200,
    timeout: float = 10.0,
    security: Security | None = None,
) -> ComplianceReport:
    """Check the environment service at ``endpoint`` (see the module docstring for the properties).

    Args:
        endpoint: ``grpc://host:port`` or ``unix:///path``.
        implementation: the implementation to check (default: the service's first).
        observation_space, action_space: the spaces, for a service without ``EnvSpecSP`` (e.g.
            one written with the official SDK); with a spec they must equal its spaces.
        actors: ``(name, class)`` of the trial's actors without a spec (default: one
            ``("player", "player")``).
        seed: the seed of every trial (``EnvConfig.seed``) and of the random actions.
        steps: ticks to play at most before ending a trial from this side.
        timeout: seconds every answer may take.
        security: how to dial a service that serves TLS or wants a token
            (:class:`~cogment_gym.protocol.security.Security`; default: plaintext, no token).

    Returns:
        The report; ``report.passed`` is False when a property failed.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    parse_endpoint(endpoint)  # a bad endpoint is a ValueError here, not a failed property
    check = _Check(endpoint, implementation, observation_space, action_space, actors, seed, steps, timeout, security or NO_SECURITY)
    return _run(check.run)


def _run(main: Callable[[], Awaitable[ComplianceReport]]) -> ComplianceReport:
    """``asyncio.run(main())``, in a thread of its own when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())  # type: ignore[arg-type]
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(main()))  # type: ignore[arg-type]
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=target, name="cogment-gym-check")
    thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]  # type: ignore[no-any-return]


class EnvironmentCompliance(unittest.TestCase):
    """Compliance tests of a served environment: subclass, say where it is, run with unittest
    or pytest; one test per property (skipped properties are skipped tests).

    Set ``endpoint`` (a class attribute, or in ``setUpClass`` before calling super's, e.g. after
    starting the service), and as needed ``implementation``, ``observation_space`` /
    ``action_space`` (no EnvSpecSP), ``seed``, ``steps``, ``timeout``, ``security``. The check runs once per
    class; each test reports its property.

    Example::

        class CartPoleCompliance(EnvironmentCompliance):
            @classmethod
            def setUpClass(cls):
                cls.server = cogment_gym.serve("CartPole-v1")
                cls.endpoint = cls.server.endpoint
                super().setUpClass()

            @classmethod
            def tearDownClass(cls):
                cls.server.stop()
    """

    # pytest collects TestCase subclasses it sees: not this base (imported into a test module),
    # only subclasses (see __init_subclass__).
    __test__ = False
    endpoint: ClassVar[str] = ""
    implementation: ClassVar[str] = ""
    observation_space: ClassVar[gym.Space[Any] | None] = None
    action_space: ClassVar[gym.Space[Any] | None] = None
    seed: ClassVar[int] = 0
    steps: ClassVar[int] = 200
    timeout: ClassVar[float] = 10.0
    security: ClassVar[Security | None] = None
    report: ClassVar[ComplianceReport]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__test__ = True

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if not cls.endpoint:
            raise unittest.SkipTest(f"{cls.__name__}: no endpoint set (a subclass says which service to check)")
        cls.report = check_environment(
            cls.endpoint, implementation=cls.implementation, observation_space=cls.observation_space,
            action_space=cls.action_space, seed=cls.seed, steps=cls.steps, timeout=cls.timeout, security=cls.security,
        )

    def _check(self, name: str) -> None:
        result = self.report[name]
        if result.status == SKIP:
            self.skipTest(result.detail)
        if result.failed:
            self.fail(f"{name}: {result.detail}")

    def test_handshake_version(self) -> None:
        self._check("handshake.version")

    def test_handshake_init(self) -> None:
        self._check("handshake.init")

    def test_handshake_heartbeat(self) -> None:
        self._check("handshake.heartbeat")

    def test_handshake_orchestrator_end(self) -> None:
        self._check("handshake.orchestrator_end")

    def test_handshake_hard_end(self) -> None:
        self._check("handshake.hard_end")

    def test_spec(self) -> None:
        self._check("spec")

    def test_reset(self) -> None:
        self._check("reset")

    def test_step(self) -> None:
        self._check("step")

    def test_step_episode_end(self) -> None:
        self._check("step.episode_end")

    def test_determinism(self) -> None:
        self._check("determinism")

    def test_errors_bad_action(self) -> None:
        self._check("errors.bad_action")

    def test_errors_unparsable_action(self) -> None:
        self._check("errors.unparsable_action")

    def test_errors_unknown_implementation(self) -> None:
        self._check("errors.unknown_implementation")

    def test_deadlines(self) -> None:
        self._check("deadlines")
