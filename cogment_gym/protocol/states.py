"""Cogment communication states (``cogmentAPI.CommunicationState``).

A RunTrial stream carries NORMAL messages (with data) and control messages:

- HEARTBEAT: no data; whoever receives one answers with one.
- Soft end: the Orchestrator or the environment sends LAST; the final NORMAL data follows; the
  component sends LAST_ACK and sends nothing more; the Orchestrator sends END.
- Hard end: END without LAST/LAST_ACK, possibly with ``details`` saying why.
"""

from __future__ import annotations

from cogment_gym._proto.cogment.api import common_pb2

__all__ = ["END", "HEARTBEAT", "LAST", "LAST_ACK", "NORMAL", "state_name"]

NORMAL = common_pb2.NORMAL
HEARTBEAT = common_pb2.HEARTBEAT
LAST = common_pb2.LAST
LAST_ACK = common_pb2.LAST_ACK
END = common_pb2.END


def state_name(state: int) -> str:
    """``"LAST_ACK"`` for 4; the number itself for values outside the enum."""
    try:
        return common_pb2.CommunicationState.Name(state)
    except ValueError:
        return str(state)
