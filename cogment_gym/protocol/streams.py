"""Reading a RunTrial stream on the serving side (``context.read()`` / ``context.write()``: a
gRPC stream or a :class:`~cogment_gym.protocol.LocalCall`)."""

from __future__ import annotations

from typing import Any

import grpc

from cogment_gym.protocol.deadlines import wait_for
from cogment_gym.protocol.states import HEARTBEAT

__all__ = ["read_answering_heartbeats"]

EOF_ = grpc.aio.EOF


async def read_answering_heartbeats(context: Any, timeout: float, what: str, heartbeat_reply: Any) -> Any | None:
    """The next message that is not a heartbeat (each heartbeat is answered with
    ``heartbeat_reply``); None once the stream is over (EOF).

    Raises:
        PeerTimeoutError: no message within ``timeout`` seconds (``what`` names the wait).
    """
    while True:
        msg = await wait_for(context.read(), timeout, what)
        if msg is EOF_ or msg is None:
            return None
        if msg.state == HEARTBEAT:
            await context.write(heartbeat_reply)
            continue
        return msg
