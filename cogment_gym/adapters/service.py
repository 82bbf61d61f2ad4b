"""``cogmentAPI.EnvironmentSP`` and ``cogment_gym.v1.EnvSpecSP`` for hosted environments.

The servicer methods use ``context.read()``/``context.write()`` so that the same code serves a
gRPC stream and a :class:`~cogment_gym.protocol.LocalCall` (same process, no serialisation).
Env code (construction, reset, step, render, close) never runs on the event loop: each trial's
calls run on the thread of its env instance (:mod:`cogment_gym.adapters.env_thread`), so a slow
or hanging env holds up its own trial only. ``step_timeout`` bounds each reset / step.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc

from cogment_gym._proto.cogment.api import common_pb2, environment_pb2, environment_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.adapters.batched_trial import BatchedGymTrial
from cogment_gym.adapters.env_thread import EnvCallTimeout
from cogment_gym.adapters.gym_trial import GymTrial, parse_env_config
from cogment_gym.adapters.hosting import EnvHost
from cogment_gym.adapters.pettingzoo_trial import PettingZooTrial, observation_set
from cogment_gym.adapters.pool import PooledTrial
from cogment_gym.codec.wire import Pieces, joined
from cogment_gym.errors import (
    CogmentGymError,
    MalformedMessageError,
    NoActionError,
    PeerTimeoutError,
    SpaceMismatchError,
    TrialSetupError,
    UnknownImplementationError,
)
from cogment_gym.protocol import (
    END,
    HEARTBEAT,
    LAST,
    LAST_ACK,
    NORMAL,
    Failure,
    FailureKind,
    failure_from_exception,
)
from cogment_gym.protocol.local import is_local_context
from cogment_gym.protocol.memory import LARGE_MESSAGE, keep_large_buffers
from cogment_gym.protocol.streams import StreamEnded, TrialStreamServicer

__all__ = ["EnvSpecServicer", "EnvironmentServicer", "add_environment_servicer", "check_step_timeout"]

logger = logging.getLogger(__name__)

Input = environment_pb2.EnvRunTrialInput
Output = environment_pb2.EnvRunTrialOutput

_HEARTBEAT_REPLY = Output(state=HEARTBEAT)
_LAST = Output(state=LAST)
_LAST_ACK = Output(state=LAST_ACK)


class EnvironmentServicer(TrialStreamServicer, environment_pb2_grpc.EnvironmentSPServicer):
    """Runs trials of the environments of an :class:`EnvHost`.

    Args:
        host: the hosted implementations.
        init_timeout: seconds to wait for the Orchestrator's init data.
        idle_timeout: seconds a running trial may wait for the Orchestrator's next message before
            it is abandoned (the Orchestrator waits on actors, humans included, so this is long).
        end_timeout: seconds to wait for END after this side sent LAST_ACK.
        step_timeout: seconds each ``reset`` / ``step`` (render included) of an env may take;
            past it the trial fails with :class:`~cogment_gym.errors.EnvironmentTimeoutError`
            and its env instance is abandoned, never reused. None (default): no deadline, as
            Cogment. Needs the host's env threads (``EnvHost(env_threads=True)``).
    """

    origin = "environment"
    heartbeat_reply = _HEARTBEAT_REPLY
    end_message = Output

    def __init__(
        self,
        host: EnvHost,
        *,
        init_timeout: float = 30.0,
        idle_timeout: float = 3600.0,
        end_timeout: float = 60.0,
        step_timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.host = host
        self.init_timeout = init_timeout
        self.idle_timeout = idle_timeout
        self.end_timeout = end_timeout
        self.step_timeout = check_step_timeout(step_timeout, env_threads=host.env_threads)

    async def _run(self, trial_id: str, context: Any) -> None:
        init = await self._read_init(context, trial_id, self.init_timeout, last_ack=_LAST_ACK)
        if init is None:
            return
        env_name = init.name or "env"
        origin = f"environment {init.impl_name or env_name!r}"
        trial: GymTrial | BatchedGymTrial | PettingZooTrial
        try:
            impl = self.host.get(init.impl_name)
            origin = f"environment {impl.name!r}"
            config = parse_env_config(init.config if init.HasField("config") else None)
            if impl.multi_agent:
                if config.num_envs:
                    raise TrialSetupError(
                        f"implementation {impl.name!r} is a multi-agent environment: batched trials (num_envs={config.num_envs}) "
                        "need a single-agent one"
                    )
                trial = PettingZooTrial(impl, list(init.actors_in_trial), config)  # type: ignore[arg-type]
            elif config.num_envs:
                trial = BatchedGymTrial(impl, list(init.actors_in_trial), config)  # type: ignore[arg-type]
            else:
                trial = GymTrial(impl, list(init.actors_in_trial), config)  # type: ignore[arg-type]
            await trial.open()
        except (CogmentGymError, ValueError, TypeError) as err:
            kind = FailureKind.BAD_REQUEST
            await self._fail(context, failure_from_exception(err, origin=origin, kind=kind), trial_id)
            return
        except Exception as err:  # the env constructor itself raised
            await self._fail(context, failure_from_exception(err, origin=origin, kind=FailureKind.ENV_EXCEPTION), trial_id)
            return
        try:
            if isinstance(trial, PettingZooTrial):
                await self._play_multi(trial_id, context, trial, env_name, origin)
            else:
                await self._play(trial_id, context, trial, env_name, origin)
        finally:
            instance = trial.instance
            # A call of this trial still running (a deadline passed, or the trial was cancelled);
            # once closed, the instance may already be playing another trial.
            if not trial.closed and instance is not None and instance.calls.busy:
                logger.warning(
                    "trial %s: %s: abandoning %s; that env instance is never reused", trial_id, origin, instance.calls.describe()
                )
            trial.close()

    async def _env_call(self, context: Any, trial_id: str, origin: str, trial: PooledTrial, what: str, fn: Any, *args: Any) -> Any:
        """``fn(*args)`` (the trial's ``what``: reset or step) on the env's thread, within
        ``step_timeout``. If it raises or times out, the trial fails in-band and this raises
        StreamEnded (the servicer then just returns)."""
        try:
            return await trial.run(what, fn, *args, timeout=self.step_timeout)
        except EnvCallTimeout as err:
            trial.failed = True
            calls = trial.instance.calls if trial.instance is not None else None
            failure = Failure(
                FailureKind.ENV_TIMEOUT.value,
                f"env.{err.what}() of trial {trial_id!r} did not return within {err.timeout:g} s (the service's "
                "step_timeout); the trial fails and that env instance is abandoned, never reused",
                origin,
                "EnvironmentTimeoutError",
                calls.stack() if calls is not None else "",
            )
        except Exception as err:
            trial.failed = True
            failure = failure_from_exception(err, origin=origin, kind=FailureKind.ENV_EXCEPTION)
        await self._fail(context, failure, trial_id)
        raise StreamEnded

    async def _play(self, trial_id: str, context: Any, trial: GymTrial | BatchedGymTrial, env_name: str, origin: str) -> None:
        await context.write(Output(state=NORMAL, init_output=environment_pb2.EnvInitialOutput()))
        wire = not is_local_context(context)
        payload = await self._env_call(context, trial_id, origin, trial, "reset", trial.reset)
        if len(payload) > LARGE_MESSAGE:  # large observations: keep their buffers (protocol.memory)
            keep_large_buffers()
        await context.write(_observations(0, payload, wire))
        ending = False
        actor = trial.actor_name
        while True:
            msg = await self._read(context, self.idle_timeout, f"actions of trial {trial_id!r}")
            state = msg.state
            if state == LAST:
                ending = True
                continue
            if state == END:
                return
            if state != NORMAL or not msg.HasField("action_set"):
                continue  # messages for the env, stray LAST_ACK: nothing to do
            action_set = msg.action_set
            tick = action_set.tick_id
            if len(action_set.actions) != 1 or 0 in action_set.unavailable_actors:
                await self._fail(
                    context,
                    Failure(FailureKind.INVALID_ACTION.value, f"no action from actor {actor!r} at tick {tick}", origin),
                    trial_id,
                )
                return
            try:
                action = trial.decode_action(action_set.actions[0])
            except (SpaceMismatchError, MalformedMessageError) as err:
                await self._fail(context, Failure(FailureKind.INVALID_ACTION.value, str(err), origin, type(err).__name__), trial_id)
                return
            result = await self._env_call(context, trial_id, origin, trial, "step", trial.step, action, ending)
            # Made now, while the payload's pieces (the env's own arrays) are this trial's alone.
            observations = _observations(tick + 1, result.payload, wire)
            done = result.terminated or result.truncated
            if done or ending:
                # The env is done with: back to the pool before the final observation leaves,
                # so that the next trial of the same client finds it there (and a reset with
                # seed=None continues its random generator, as with a direct env).
                trial.close()
            if done and not ending:
                await context.write(_LAST)
            if result.reward != 0.0 and trial.send_reward_messages:
                await context.write(_reward(tick, actor, env_name, result.reward))
            await context.write(observations)
            if done or ending:
                await context.write(_LAST_ACK)
                await self._await_end(context, trial_id)
                return

    async def _play_multi(self, trial_id: str, context: Any, trial: PettingZooTrial, env_name: str, origin: str) -> None:
        """Multi-agent trials: one env.step per tick (see ``pettingzoo_trial``)."""
        await context.write(Output(state=NORMAL, init_output=environment_pb2.EnvInitialOutput()))
        output = await self._env_call(context, trial_id, origin, trial, "reset", trial.reset)
        tick = 0
        ending = False
        while True:
            done = output.done
            if done or ending:
                trial.close()  # back to the pool before the final observations leave (see _play)
            if done and not ending:
                await context.write(_LAST)
            if trial.send_reward_messages and tick > 0:
                for actor, value in output.rewards:
                    await context.write(_reward(tick - 1, actor, env_name, value))
            msg = Output(state=NORMAL)
            msg.observation_set.CopyFrom(observation_set(tick, output))  # in place: codec.building
            await context.write(msg)
            if done or ending:
                await context.write(_LAST_ACK)
                await self._await_end(context, trial_id)
                return
            while True:
                msg = await self._read(context, self.idle_timeout, f"actions of trial {trial_id!r}")
                if msg.state == LAST:
                    ending = True
                elif msg.state == END:
                    return
                elif msg.state == NORMAL and msg.HasField("action_set"):
                    break
            action_set = msg.action_set
            tick = action_set.tick_id
            try:
                action = trial.decode_actions(action_set, tick)
            except (NoActionError, SpaceMismatchError, MalformedMessageError) as err:
                await self._fail(context, Failure(FailureKind.INVALID_ACTION.value, str(err), origin, type(err).__name__), trial_id)
                return
            output = await self._env_call(context, trial_id, origin, trial, "step", trial.step, action, ending)
            tick += 1

    async def _await_end(self, context: Any, trial_id: str) -> None:
        try:
            while True:
                msg = await self._read(context, self.end_timeout, f"END of trial {trial_id!r}")
                if msg.state == END:
                    return
        except PeerTimeoutError:
            logger.warning("trial %s: no END within %g s after LAST_ACK", trial_id, self.end_timeout)


def check_step_timeout(step_timeout: float | None, *, env_threads: bool = True) -> float | None:
    """``step_timeout`` if valid: None, or a positive number of seconds (with env threads)."""
    if step_timeout is None:
        return None
    if isinstance(step_timeout, bool) or not isinstance(step_timeout, (int, float)) or not step_timeout > 0:
        raise ValueError(f"step_timeout must be None or a number of seconds > 0, got {step_timeout!r}")
    if not env_threads:
        raise ValueError("step_timeout needs env threads: env calls that run on the event loop cannot be given a deadline (env_threads=False)")
    return float(step_timeout)


def _observation_set(tick: int, payload: bytes | Pieces) -> Output:
    msg = Output(state=NORMAL)
    obs_set = msg.observation_set  # filled in place (cogment_gym.codec.building says why)
    obs_set.tick_id = tick
    obs_set.timestamp = time.time_ns()
    obs_set.observations.append(joined(payload))
    obs_set.actors_map.append(0)
    return msg


def _observations(tick: int, payload: bytes | Pieces, wire: bool) -> Output | bytes:
    """What to write: over gRPC (``wire``), a payload in pieces (large observations) as the
    bytes of the message, joined in one copy (``add_environment_servicer`` passes bytes through);
    else the message (a LocalCall's peer takes it as it is; for small payloads protobuf is as fast)."""
    if wire and type(payload) is Pieces:
        return _observation_set_bytes(tick, payload)
    return _observation_set(tick, payload)


_NORMAL_BYTES = Output(state=NORMAL).SerializeToString()
_OBSERVATION_SET = Output.DESCRIPTOR.fields_by_name["observation_set"].number
_OBSERVATIONS = environment_pb2.ObservationSet.DESCRIPTOR.fields_by_name["observations"].number


def _observation_set_bytes(tick: int, payload: bytes | Pieces) -> bytes:
    """:func:`_observation_set`'s message serialised, the payload's bytes copied once."""
    head = environment_pb2.ObservationSet(tick_id=tick, timestamp=time.time_ns(), actors_map=(0,)).SerializeToString()
    obs_set = Pieces([head], len(head))
    obs_set.add_field(_OBSERVATIONS, payload)
    message = Pieces([_NORMAL_BYTES], len(_NORMAL_BYTES))
    message.add_field(_OBSERVATION_SET, obs_set)
    return message.join()


def _serialize_output(message: Output | bytes) -> bytes:
    return message if type(message) is bytes else message.SerializeToString()  # type: ignore[union-attr]


def add_environment_servicer(servicer: EnvironmentServicer, server: Any) -> None:
    """``environment_pb2_grpc.add_EnvironmentSPServicer_to_server``, but RunTrial's replies may
    also be bytes already serialised (observation sets: see ``_observation_set_bytes``)."""
    handlers = {
        "RunTrial": grpc.stream_stream_rpc_method_handler(
            servicer.RunTrial, request_deserializer=Input.FromString, response_serializer=_serialize_output,
        ),
        "Version": grpc.unary_unary_rpc_method_handler(
            servicer.Version, request_deserializer=common_pb2.VersionRequest.FromString,
            response_serializer=common_pb2.VersionInfo.SerializeToString,
        ),
        "Status": grpc.unary_unary_rpc_method_handler(
            servicer.Status, request_deserializer=common_pb2.StatusRequest.FromString,
            response_serializer=common_pb2.StatusReply.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("cogmentAPI.EnvironmentSP", handlers),))


def _reward(tick: int, receiver: str, sender: str, value: float) -> Output:
    return Output(
        state=NORMAL,
        reward=common_pb2.Reward(
            tick_id=tick,
            receiver_name=receiver,
            value=value,
            sources=[common_pb2.RewardSource(sender_name=sender, value=value, confidence=1.0)],
        ),
    )


class EnvSpecServicer(env_pb2_grpc.EnvSpecSPServicer):
    """Tells clients what the hosted environments look like before any trial."""

    def __init__(self, host: EnvHost, *, service_id: str = "", local_endpoint: str = "") -> None:
        self.host = host
        self.service_id = service_id
        self.local_endpoint = local_endpoint  # set once the server has bound its unix socket

    async def GetSpec(self, request: env_pb2.GetSpecRequest, context: Any) -> env_pb2.EnvSpec:
        try:
            spec = self.host.get(request.implementation).spec
        except UnknownImplementationError as err:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(err))
            raise  # abort raises; this line is for type checkers
        if not (self.service_id or self.local_endpoint):
            return spec
        reply = env_pb2.EnvSpec()
        reply.CopyFrom(spec)  # the pooled spec stays as the host made it
        reply.service_id = self.service_id
        reply.local_endpoint = self.local_endpoint
        return reply

    async def ListImplementations(self, request: env_pb2.ListImplementationsRequest, context: Any) -> env_pb2.ListImplementationsReply:
        return env_pb2.ListImplementationsReply(implementations=list(self.host.implementations))
