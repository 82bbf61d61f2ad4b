"""Play the Orchestrator's side of ``cogmentAPI.EnvironmentSP.RunTrial`` by hand, over real gRPC.

Every wait has a deadline (:data:`WAIT`), so a wire behaviour that differs from the expected one
fails the test quickly instead of hanging it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

import grpc
from gymnasium import spaces

from cogment_gym._proto.cogment.api import common_pb2, environment_pb2, environment_pb2_grpc
from cogment_gym._proto.cogment_gym.v1 import env_pb2, env_pb2_grpc
from cogment_gym.codec import decode, decode_info, encode, encode_object
from cogment_gym.protocol import END, HEARTBEAT, LAST, LAST_ACK, NORMAL, parse_endpoint, state_name

__all__ = [
    "END", "HEARTBEAT", "LAST", "LAST_ACK", "NORMAL", "WAIT",
    "Decoded", "RawTrial", "action_content", "channel_to", "env_config", "run", "spec_of",
]

EnvIn = environment_pb2.EnvRunTrialInput
EnvOut = environment_pb2.EnvRunTrialOutput

# Seconds any single answer may take before the test fails.
WAIT = 10.0


def run(coro: Any, timeout: float = 60.0) -> Any:
    """Run a test coroutine with an overall deadline."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def channel_to(endpoint: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(parse_endpoint(endpoint).grpc_target)


def env_config(seed: int | None = None, options: Any = None, render_mode: str = "") -> common_pb2.SerializedMessage:
    config = env_pb2.EnvConfig(render_mode=render_mode)
    if seed is not None:
        config.seed = seed
    if options is not None:
        config.options.CopyFrom(encode_object(options, "options"))
    return common_pb2.SerializedMessage(content=config.SerializeToString())


def action_content(space: spaces.Space[Any], action: Any) -> bytes:
    return env_pb2.ActionPayload(value=encode(space, action, "action")).SerializeToString()


class Decoded:
    """An ObservationPayload decoded with an observation space."""

    def __init__(self, content: bytes, observation_space: spaces.Space[Any]) -> None:
        payload = env_pb2.ObservationPayload()
        payload.ParseFromString(content)
        self.payload = payload
        self.obs = decode(observation_space, payload.value, "obs")
        self.reward = payload.reward
        self.terminated = payload.terminated
        self.truncated = payload.truncated
        self.info = decode_info(payload.info) if payload.HasField("info") else {}


class RawTrial:
    """One RunTrial stream, driven message by message."""

    def __init__(self, channel: grpc.aio.Channel, trial_id: str, metadata: Sequence[tuple[str, str]] | None = None) -> None:
        self.trial_id = trial_id
        stub = environment_pb2_grpc.EnvironmentSPStub(channel)
        self.call = stub.RunTrial(metadata=tuple(metadata) if metadata is not None else (("trial-id", trial_id),))

    async def send(self, message: Any) -> None:
        await asyncio.wait_for(self.call.write(message), WAIT)

    async def recv(self, timeout: float = WAIT) -> Any:
        """The next message; fails on end of stream."""
        msg = await asyncio.wait_for(self.call.read(), timeout)
        assert msg is not grpc.aio.EOF, "the environment ended the stream"
        return msg

    async def recv_state(self, state: int) -> Any:
        msg = await self.recv()
        assert msg.state == state, f"expected {state_name(state)}, got {state_name(msg.state)} {msg.WhichOneof('data')}"
        return msg

    async def recv_data(self, kind: str) -> Any:
        msg = await self.recv()
        assert msg.state == NORMAL and msg.WhichOneof("data") == kind, (
            f"expected NORMAL {kind}, got {state_name(msg.state)} {msg.WhichOneof('data')} {msg}"
        )
        return getattr(msg, kind)

    async def expect_eof(self) -> grpc.StatusCode:
        """The server finishes the call (no further message); returns its status code."""
        msg = await asyncio.wait_for(self.call.read(), WAIT)
        assert msg is grpc.aio.EOF, f"expected the end of the stream, got {state_name(msg.state)} {msg.WhichOneof('data')}"
        return await asyncio.wait_for(self.call.code(), WAIT)

    async def init(
        self,
        impl_name: str = "",
        config: common_pb2.SerializedMessage | None = None,
        actors: Sequence[tuple[str, str]] = (("player", "player"),),
        env_name: str = "env",
    ) -> None:
        init = environment_pb2.EnvInitialInput(
            name=env_name,
            impl_name=impl_name,
            tick_id=0,
            actors_in_trial=[common_pb2.TrialActor(name=n, actor_class=c) for n, c in actors],
        )
        if config is not None:
            init.config.CopyFrom(config)
        await self.send(EnvIn(state=NORMAL, init_input=init))

    async def start(self, impl_name: str = "", config: common_pb2.SerializedMessage | None = None) -> environment_pb2.ObservationSet:
        """init_input -> init_output -> first ObservationSet (returned)."""
        await self.init(impl_name, config)
        await self.recv_data("init_output")
        return await self.recv_data("observation_set")

    async def act(self, tick: int, content: bytes) -> None:
        await self.send(EnvIn(state=NORMAL, action_set=environment_pb2.ActionSet(tick_id=tick, timestamp=1, actions=[content])))

    async def send_state(self, state: int, details: str = "") -> None:
        msg = EnvIn(state=state)
        if details:
            msg.details = details
        await self.send(msg)

    async def end(self) -> grpc.StatusCode:
        """END, half-close, and wait for the server to finish the call."""
        await self.send_state(END)
        await asyncio.wait_for(self.call.done_writing(), WAIT)
        return await self.expect_eof()

    def cancel(self) -> None:
        self.call.cancel()


async def spec_of(channel: grpc.aio.Channel, implementation: str = "") -> env_pb2.EnvSpec:
    return await env_pb2_grpc.EnvSpecSPStub(channel).GetSpec(env_pb2.GetSpecRequest(implementation=implementation), timeout=WAIT)

