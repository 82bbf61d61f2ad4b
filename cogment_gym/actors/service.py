"""``cogmentAPI.ServiceActorSP`` for Python policies.

For every trial: the init data (which implementation, the ActorConfig with the agent's spaces),
then per tick: decode the observation payload, call the policy when the agent acts at this tick,
send an empty action otherwise (off-turn, a done agent's dead step, an agent not in the
episode), as the wire contract asks (``protos/cogment_gym/v1/env.proto``). A policy that raises
ends the actor's stream with an in-band failure; the Orchestrator then applies the actor's
``optional`` / ``default_action`` parameters.

Written against ``context.read()`` / ``context.write()``: the same code serves gRPC streams and
in-process :class:`~cogment_gym.protocol.LocalCall` streams.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
import logging
import time
from typing import Any, Mapping

import grpc

from cogment_gym._proto.cogment.api import agent_pb2_grpc, common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.codec.payloads import ACTING, LEAVING, NO_ACTION, AgentSpaces, action_content
from cogment_gym.codec.payloads.agents import read_payload
from cogment_gym.actors.policy import ActorContext, Policy, TrialPolicy, acts_now, is_async, is_trial_policy_class
from cogment_gym.codec import decode_object, parse_message, space_from_proto
from cogment_gym.errors import AuthenticationError, CogmentGymError, EndpointUnreachableError, PeerLostError, PeerTimeoutError, UnknownPolicyError
from cogment_gym.protocol import END, HEARTBEAT, LAST, LAST_ACK, NORMAL, Failure, FailureKind, failure_from_exception, parse_endpoint
from cogment_gym.protocol.deadlines import wait_for
from cogment_gym.protocol.links import GRPC_OPTIONS
from cogment_gym.protocol.security import NO_SECURITY, Security, new_channel
from cogment_gym.protocol.streams import TrialStreamServicer

__all__ = ["ServiceActorServicer"]

logger = logging.getLogger(__name__)

Out = common_pb2.ActorRunTrialOutput
_HEARTBEAT = Out(state=HEARTBEAT)
_LAST_ACK = Out(state=LAST_ACK)


class ServiceActorServicer(TrialStreamServicer, agent_pb2_grpc.ServiceActorSPServicer):
    """Plays trials with Python policies.

    Args:
        policies: implementation name -> policy (a function ``policy(observation, context)``
            returning an action, or a :class:`TrialPolicy` subclass instantiated per trial). A
            trial's ``implementation`` selects one; an empty or unknown one gets the first (as
            the official SDK does) unless ``strict`` is set.
        actor_classes: serve only these actor classes (None: any).
        spaces: actor name or class -> (observation_space, action_space), for trials whose
            ActorConfig does not carry the spaces.
        environment, env_implementation: a cogment_gym environment server to ask for its spec
            (GetSpec), for the same purpose.
        security: how that environment server is dialed (TLS, client certificate, token).
        run_in_thread: call plain (non-async) policies in a worker thread, so that a slow policy
            (a human at a keyboard) holds up no other trial of this server.
        init_timeout, idle_timeout: seconds to wait for the init data, and for any next message.
        end_timeout: seconds a policy's ``end`` may still run once the trial is over; past that
            it is left running and the trial's stream is closed without it (a warning says so).
    """

    origin = "service actor"
    heartbeat_reply = _HEARTBEAT
    end_message = Out

    def __init__(
        self,
        policies: Mapping[str, Policy],
        *,
        actor_classes: list[str] | None = None,
        spaces: Mapping[str, tuple[Any, Any]] | None = None,
        environment: str | None = None,
        env_implementation: str = "",
        run_in_thread: bool = True,
        strict: bool = False,
        init_timeout: float = 30.0,
        idle_timeout: float = 3600.0,
        end_timeout: float = 60.0,
        security: Security = NO_SECURITY,
    ) -> None:
        if not policies:
            raise ValueError("no policy to serve")
        super().__init__()
        self.policies = dict(policies)
        self.actor_classes = set(actor_classes) if actor_classes else None
        self.spaces = dict(spaces or {})
        self.environment = environment
        self.env_implementation = env_implementation
        self.run_in_thread = run_in_thread
        self.strict = strict
        self.init_timeout = init_timeout
        self.idle_timeout = idle_timeout
        self.end_timeout = end_timeout
        self.security = security
        self._spec: env_pb2.EnvSpec | None = None
        if environment is not None:
            parse_endpoint(environment)

    # ------------------------------------------------------------------ init

    def _policy_for(self, impl_name: str, actor_class: str) -> tuple[str, Policy]:
        if self.actor_classes is not None and actor_class not in self.actor_classes:
            raise UnknownPolicyError(f"actor class {actor_class!r} is not served here; served: {sorted(self.actor_classes)}")
        if impl_name in self.policies:
            return impl_name, self.policies[impl_name]
        if impl_name and self.strict:
            raise UnknownPolicyError(f"implementation {impl_name!r} is not served here; served: {sorted(self.policies)}")
        name = next(iter(self.policies))
        return name, self.policies[name]

    async def _spaces_for(self, init: common_pb2.ActorInitialInput, config: env_pb2.ActorConfig) -> AgentSpaces:
        spaces = AgentSpaces()
        name = init.actor_name
        if config.HasField("observation_space") or config.HasField("action_space"):
            spaces.set(
                name,
                space_from_proto(config.observation_space) if config.HasField("observation_space") else None,
                space_from_proto(config.action_space) if config.HasField("action_space") else None,
            )
            return spaces
        given = self.spaces.get(name) or self.spaces.get(init.actor_class)
        if given is not None:
            spaces.set(name, given[0], given[1])
            return spaces
        if self.environment is not None:
            spec = await self._fetch_spec(self.environment)
            for actor in spec.actors:
                if actor.name == name and actor.HasField("observation_space"):
                    spaces.set(name, space_from_proto(actor.observation_space), space_from_proto(actor.action_space))
                    break
        # Otherwise: agent slots tell their spaces in their payloads; anything else fails clearly
        # at the first observation.
        return spaces

    async def _fetch_spec(self, environment: str) -> env_pb2.EnvSpec:
        if self._spec is None:
            target = parse_endpoint(environment).grpc_target
            async with new_channel(target, self.security, GRPC_OPTIONS) as channel:
                try:
                    self._spec = await env_pb2_grpc.EnvSpecSPStub(channel).GetSpec(
                        env_pb2.GetSpecRequest(implementation=self.env_implementation), timeout=self.init_timeout,
                        metadata=self.security.call_metadata,
                    )
                except grpc.aio.AioRpcError as err:
                    code = err.code()
                    error = (AuthenticationError if code == grpc.StatusCode.UNAUTHENTICATED
                             else EndpointUnreachableError if code == grpc.StatusCode.UNAVAILABLE else PeerLostError)
                    raise error(f"the environment server at {environment}, asked for its spaces, failed: "
                                f"{code.name}: {err.details()}") from None
        return self._spec

    # ------------------------------------------------------------------ trial

    async def _run(self, trial_id: str, context: Any) -> None:
        init = await self._read_init(context, trial_id, self.init_timeout)
        if init is None:
            return
        origin = f"service actor {init.actor_name!r}"
        try:
            impl_name, policy = self._policy_for(init.impl_name, init.actor_class)
            origin = f"service actor {init.actor_name!r} (policy {impl_name!r})"
            config = parse_message(env_pb2.ActorConfig, init.config.content if init.HasField("config") else b"", "actor config")
            settings = decode_object(config.settings, "settings") if config.HasField("settings") else None
            spaces = await self._spaces_for(init, config)
            ctx = ActorContext(
                trial_id=trial_id, actor_name=init.actor_name, actor_class=init.actor_class,
                implementation=impl_name, env_name=init.env_name, settings=settings, spaces=spaces,
            )
        except Exception as err:
            await self._fail(context, failure_from_exception(err, origin=origin, kind=FailureKind.BAD_REQUEST), trial_id)
            return
        player = _Player(policy, ctx, self.run_in_thread, self.end_timeout)
        try:
            await player.start()
        except Exception as err:
            await self._fail(context, failure_from_exception(err, origin=origin, kind=FailureKind.ACTOR_EXCEPTION), trial_id)
            return
        await context.write(Out(state=NORMAL, init_output=common_pb2.ActorInitialOutput()))
        try:
            await self._play(trial_id, context, player, ctx, origin)
        finally:
            await player.finish()

    async def _play(self, trial_id: str, context: Any, player: _Player, ctx: ActorContext, origin: str) -> None:
        """Read the stream here; a worker task answers the observations. A policy that takes
        long (a human) or never answers then holds up nothing: the end of the trial (END, the
        stream closing) cancels the worker at once."""
        inbox: deque[common_pb2.ActorRunTrialInput] = deque()
        arrived = asyncio.Event()
        writer = _Writer(context)
        worker = asyncio.ensure_future(self._work(trial_id, writer, player, ctx, origin, inbox, arrived))
        reader: asyncio.Future[Any] | None = None
        ending = False
        try:
            while True:
                if reader is None:
                    reader = asyncio.ensure_future(self._read(context, self.idle_timeout, f"the next message of trial {trial_id!r}"))
                await asyncio.wait((reader, worker), return_when=asyncio.FIRST_COMPLETED)
                if worker.done():
                    return  # it ended the actor's part (a failure it reported)
                msg = reader.result()  # raises StreamEnded at EOF
                reader = None
                if msg.state == END:
                    if msg.details:
                        logger.info("trial %s ended: %s", trial_id, Failure.from_details(msg.details).summary)
                    # The final observation may still be in the inbox: unless the policy is busy
                    # acting (it may never answer), the worker reads it and calls end() first.
                    inbox.append(msg)
                    arrived.set()
                    if not player.acting:
                        await asyncio.wait((worker,))
                    return
                if msg.state == LAST:
                    ending = True
                elif ending and msg.state == NORMAL and msg.HasField("observation"):
                    # Acknowledged here, at once (as the SDK does), even if the policy is busy.
                    await writer.write(_LAST_ACK)
                inbox.append(msg)
                arrived.set()
        finally:
            for task in (reader, worker):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def _work(
        self, trial_id: str, context: _Writer, player: _Player, ctx: ActorContext, origin: str,
        inbox: deque[common_pb2.ActorRunTrialInput], arrived: asyncio.Event,
    ) -> None:
        ending = False
        while True:
            while not inbox:
                arrived.clear()
                await arrived.wait()
            msg = inbox.popleft()
            state = msg.state
            if state == END:
                return
            if state == LAST:
                ending = True
                continue
            if state != NORMAL:
                continue
            kind = msg.WhichOneof("data")
            if kind == "reward":
                ctx.cogment_rewards.append(msg.reward.value)
                continue
            if kind != "observation":
                continue
            observation = msg.observation
            try:
                tick = read_payload(observation.content, ctx.spaces, default_agent=ctx.actor_name)
            except CogmentGymError as err:
                await self._fail(context, failure_from_exception(err, origin=origin, kind=FailureKind.BAD_REQUEST), trial_id)
                return
            ctx.update(tick, observation.tick_id)
            if ending:  # the final observation (acknowledged by the reader)
                ctx.final = True
                await player.end()
                continue
            content = NO_ACTION
            # A newer observation is already here: this one's tick is over (the Orchestrator
            # took no action, or a default one); the policy is asked about the newest only.
            stale = any(m.HasField("observation") for m in inbox)
            if acts_now(tick) and not stale:
                try:
                    action = await player.act(tick.observation)
                    content = action_content(ctx.action_space, action, f"action of {ctx.actor_name!r}")
                except Exception as err:
                    await self._fail(context, failure_from_exception(err, origin=origin, kind=FailureKind.ACTOR_EXCEPTION), trial_id)
                    return
            elif tick.done and tick.status in (ACTING, LEAVING):
                await player.end()  # the agent's last data (AEC dead step, parallel leaving)
            await context.write(Out(state=NORMAL, action=common_pb2.Action(tick_id=observation.tick_id, timestamp=time.time_ns(), content=content)))


class _Writer:
    """Writes of the reader and the worker, one at a time."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self._lock = asyncio.Lock()

    async def write(self, message: Any) -> None:
        async with self._lock:
            await self._context.write(message)


class _Player:
    """Calls one trial's policy: in a worker thread unless it is async or ``in_thread`` is off."""

    def __init__(self, policy: Policy, ctx: ActorContext, in_thread: bool, end_timeout: float = 60.0) -> None:
        self.policy = policy
        self.ctx = ctx
        self.in_thread = in_thread
        self.end_timeout = end_timeout
        self.instance: TrialPolicy | None = None
        self.acting = False
        self._ending: asyncio.Future[Any] | None = None

    async def _call(self, function: Any, *args: Any) -> Any:
        if is_async(function):
            return await function(*args)
        if self.in_thread:
            return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args))
        return function(*args)

    async def start(self) -> None:
        if is_trial_policy_class(self.policy):
            self.instance = await self._call(self.policy, self.ctx)

    async def act(self, observation: Any) -> Any:
        self.acting = True
        try:
            if self.instance is not None:
                return await self._call(self.instance.act, observation, self.ctx)
            return await self._call(self.policy, observation, self.ctx)
        finally:
            self.acting = False

    async def end(self) -> None:
        """Calls the policy's ``end`` once. The call is shielded: cancelling the caller (the trial's
        END arriving meanwhile) neither skips nor interrupts it, and ``finish`` waits for it."""
        if self.instance is None:
            return
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end(self.instance))
        await asyncio.shield(self._ending)

    async def _end(self, instance: TrialPolicy) -> None:
        try:
            await self._call(instance.end, self.ctx)
        except Exception:  # the trial is over: report, do not fail it
            logger.exception("trial %s: the policy's end() raised", self.ctx.trial_id)

    async def finish(self) -> None:
        """The trial is over: let ``end`` complete, for at most ``end_timeout`` seconds."""
        try:
            await wait_for(self.end(), self.end_timeout, "the policy's end()")
        except PeerTimeoutError as err:
            logger.warning("trial %s: %s; the trial's stream closes without it", self.ctx.trial_id, err)
