"""A small environment service written directly against the generated stubs (no cogment_gym
adapters), correct by default and broken on request, to prove that each compliance property can
fail: every fault breaks one thing a property checks.

Implementation ``fake``: one actor, observation ``Box(0, 1000, (2,), int64)`` = ``[t, seed]``,
action ``Discrete(2)``, reward 1.0 per step, ``terminated`` at step ``EPISODE``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import numpy as np
from gymnasium import spaces

from cogment_gym._proto.cogment.api import environment_pb2, environment_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.codec import decode, encode, space_to_proto
from cogment_gym.errors import CogmentGymError
from cogment_gym.protocol import END, HEARTBEAT, LAST, LAST_ACK, NORMAL, Failure, FailureKind, version_info
from cogment_gym.protocol.serving import BackgroundServer

__all__ = ["FAULTS", "FakeEnvService"]

OBS = spaces.Box(0, 1000, (2,), np.int64)
WRONG_OBS = spaces.Box(0, 1000, (3,), np.int64)
ACT = spaces.Discrete(2)
EPISODE = 5
Out = environment_pb2.EnvRunTrialOutput

#: fault -> what it breaks.
FAULTS = {
    "silent_init": "never answers init_input",
    "no_heartbeat": "does not answer HEARTBEATs",
    "no_last_ack": "never sends LAST_ACK after the Orchestrator's LAST",
    "hangs_after_end": "does not finish the call after END",
    "wrong_space": "observations of shape (3,) where the spec says (2,)",
    "flags_at_reset": "the first observation says terminated",
    "no_end_flag": "ends its episodes without terminated or truncated",
    "no_last": "says terminated but never ends the trial",
    "random": "observations from an unseeded generator",
    "accepts_bad_actions": "plays on with actions outside its space",
    "silent_on_bad_bytes": "stops answering after an action that does not parse",
    "accepts_unknown_implementation": "plays trials of any implementation",
}


def _obs_set(tick: int, value: Any, space: spaces.Space[Any], reward: float = 0.0, terminated: bool = False) -> Any:
    payload = env_pb2.ObservationPayload(reward=reward, terminated=terminated, value=encode(space, value, "observation", bounds=False))
    return Out(state=NORMAL, observation_set=environment_pb2.ObservationSet(
        tick_id=tick, timestamp=1, observations=[payload.SerializeToString()], actors_map=[0]))


class _Servicer(environment_pb2_grpc.EnvironmentSPServicer):
    def __init__(self, fault: str) -> None:
        self.fault = fault
        self.rng = np.random.default_rng()

    async def Version(self, request: Any, context: Any) -> Any:
        return version_info()

    async def _read(self, context: Any) -> Any:
        while True:
            msg = await context.read()
            if msg is grpc.aio.EOF:
                return None
            if msg.state == HEARTBEAT:
                if self.fault != "no_heartbeat":
                    await context.write(Out(state=HEARTBEAT))
                continue
            return msg

    async def _fail(self, context: Any, message: str) -> None:
        await context.write(Out(state=END, details=Failure(FailureKind.INVALID_ACTION.value, message, "environment 'fake'").to_details()))

    async def _forever(self) -> None:
        await asyncio.Event().wait()  # until the call is cancelled

    async def RunTrial(self, request_iterator: Any, context: Any) -> None:
        while True:
            msg = await self._read(context)
            if msg is None or msg.state == END:
                return
            if msg.state == NORMAL and msg.HasField("init_input"):
                init = msg.init_input
                break
        if self.fault == "silent_init":
            await self._forever()
        if init.impl_name not in ("", "fake") and self.fault != "accepts_unknown_implementation":
            await context.write(Out(state=END, details=Failure(FailureKind.BAD_REQUEST.value, f"no implementation {init.impl_name!r}", "fake").to_details()))
            return
        config = env_pb2.EnvConfig()
        config.ParseFromString(init.config.content)
        seed = config.seed
        space = WRONG_OBS if self.fault == "wrong_space" else OBS
        await context.write(Out(state=NORMAL, init_output=environment_pb2.EnvInitialOutput()))
        await context.write(_obs_set(0, self._value(space, 0, seed), space, terminated=self.fault == "flags_at_reset"))
        t, ending = 0, False
        while True:
            msg = await self._read(context)
            if msg is None:
                return
            if msg.state == END:
                return await self._end()
            if msg.state == LAST:
                ending = True
                continue
            if not (msg.state == NORMAL and msg.HasField("action_set")):
                continue
            content = msg.action_set.actions[0]
            try:
                payload = env_pb2.ActionPayload()
                payload.ParseFromString(content)
            except Exception:
                if self.fault == "silent_on_bad_bytes":
                    await self._forever()
                await self._fail(context, "an action that does not parse")
                return
            try:
                decode(ACT, payload.value, "action")
            except CogmentGymError as err:
                if self.fault != "accepts_bad_actions":
                    await self._fail(context, str(err))
                    return
            t += 1
            done = t >= EPISODE
            ends = (done and self.fault != "no_last") or ending
            if ends and not ending:
                await context.write(Out(state=LAST))
            await context.write(_obs_set(t, self._value(space, t, seed), space, 1.0, done and self.fault != "no_end_flag"))
            if ends:
                if not (ending and self.fault == "no_last_ack"):
                    await context.write(Out(state=LAST_ACK))
                while True:
                    msg = await self._read(context)
                    if msg is None:
                        return
                    if msg.state == END:
                        return await self._end()

    async def _end(self) -> None:
        if self.fault == "hangs_after_end":
            await self._forever()

    def _value(self, space: spaces.Space[Any], t: int, seed: int) -> Any:
        n = space.shape[0]  # type: ignore[index]
        if self.fault == "random":
            return self.rng.integers(0, 1000, n)
        return np.array([t, seed % 1000] + [0] * (n - 2), np.int64)


class _SpecServicer(env_pb2_grpc.EnvSpecSPServicer):
    async def GetSpec(self, request: Any, context: Any) -> Any:
        if request.implementation not in ("", "fake"):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no implementation {request.implementation!r}")
        return env_pb2.EnvSpec(implementation="fake", actors=[env_pb2.ActorSpec(
            name="player", actor_class="player", observation_space=space_to_proto(OBS), action_space=space_to_proto(ACT))])

    async def ListImplementations(self, request: Any, context: Any) -> Any:
        return env_pb2.ListImplementationsReply(implementations=["fake"])


class FakeEnvService(BackgroundServer):
    """The fake service on 127.0.0.1 (port 0), with ``fault`` (one of :data:`FAULTS`) or none."""

    def __init__(self, fault: str = "") -> None:
        if fault and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; faults: {sorted(FAULTS)}")
        self.fault = fault
        super().__init__("127.0.0.1:0", thread_name=f"fake-env-{fault or 'good'}")

    def _add_services(self, server: grpc.aio.Server) -> None:
        environment_pb2_grpc.add_EnvironmentSPServicer_to_server(_Servicer(self.fault), server)
        env_pb2_grpc.add_EnvSpecSPServicer_to_server(_SpecServicer(), server)

    def stop(self, grace: float | None = 0.0) -> None:
        super().stop(grace)

