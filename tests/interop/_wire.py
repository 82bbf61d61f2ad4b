"""Test-side helpers for the interop tests: our generated stubs, driven by hand over real gRPC.

:class:`BidiStream` wraps a synchronous bidirectional-streaming call so that a test can play
the orchestrator's side message by message: ``send()`` queues a request, ``recv(timeout)`` waits
for the next reply, ``expect_end(timeout)`` waits for the server to finish the call. Replies are
read by a thread into a queue, so every wait has a timeout.
"""

from __future__ import annotations

import dataclasses
import queue
import struct
import threading
from typing import Any, Callable, Iterator

import grpc

from cogment_gym._proto.cogment.api import common_pb2
from cogment_gym._proto.cogment_gym.v1 import env_pb2, tensor_pb2, values_pb2

CS = common_pb2.CommunicationState
STATE_NAMES = {value: name for name, value in CS.items()}

_DONE = object()


@dataclasses.dataclass(frozen=True)
class StreamEnd:
    """The call finished: its status code and details."""

    code: grpc.StatusCode
    details: str | None


class BidiStream:
    def __init__(self, method: Callable[..., Any], *, metadata: tuple = (), timeout: float = 60.0):
        self._requests: "queue.Queue[Any]" = queue.Queue()
        self._replies: "queue.Queue[Any]" = queue.Queue()
        self._call = method(self._request_iterator(), metadata=metadata, timeout=timeout)
        self._reader = threading.Thread(target=self._read, name="bidi-reader", daemon=True)
        self._reader.start()
        self.received: list[Any] = []
        self.ended: StreamEnd | None = None

    def _request_iterator(self) -> Iterator[Any]:
        while True:
            item = self._requests.get()
            if item is _DONE:
                return
            yield item

    def _read(self) -> None:
        try:
            for reply in self._call:
                self._replies.put(reply)
            self._replies.put(StreamEnd(grpc.StatusCode.OK, None))
        except grpc.RpcError as exc:
            self._replies.put(StreamEnd(exc.code(), exc.details()))

    def send(self, *messages: Any) -> None:
        for message in messages:
            self._requests.put(message)

    def done_writing(self) -> None:
        self._requests.put(_DONE)

    def _next(self, timeout: float) -> Any:
        try:
            item = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no reply within {timeout}s; received so far: {self.describe()}") from None
        if isinstance(item, StreamEnd):
            self.ended = item
        else:
            self.received.append(item)
        return item

    def recv(self, timeout: float = 10.0) -> Any:
        """The next reply; fails if the call ended instead."""
        item = self._next(timeout)
        if isinstance(item, StreamEnd):
            raise AssertionError(f"stream ended ({item.code}, {item.details!r}) instead of a reply; "
                                 f"received: {self.describe()}")
        return item

    def expect_end(self, timeout: float = 10.0) -> StreamEnd:
        """Wait for the end of the call; fails if a reply comes instead."""
        item = self._next(timeout)
        if not isinstance(item, StreamEnd):
            raise AssertionError(f"expected the end of the stream, got {describe(item)}; "
                                 f"received: {self.describe()}")
        return item

    def describe(self) -> list[str]:
        return [describe(message) for message in self.received]

    def close(self) -> None:
        """Stop feeding requests and cancel the call if it is still running."""
        self.done_writing()
        if self.ended is None:
            self._call.cancel()
        self._reader.join(timeout=10)


def describe(message: Any) -> str:
    """``STATE`` or ``STATE:field`` for a RunTrial message (for readable sequences)."""
    state = STATE_NAMES.get(message.state, str(message.state))
    data = message.WhichOneof("data")
    return f"{state}:{data}" if data else state


# ---- payload values ------------------------------------------------------------------------


def int64_scalar(n: int) -> values_pb2.Value:
    return values_pb2.Value(
        scalar=tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_INT64, shape=[], data=struct.pack("<q", n))
    )


def decode_int64_scalar(value: values_pb2.Value) -> int:
    assert value.WhichOneof("kind") == "scalar", value
    tensor = value.scalar
    assert tensor.dtype == tensor_pb2.DTYPE_INT64, tensor
    assert list(tensor.shape) == [], tensor
    assert len(tensor.data) == 8, tensor
    return struct.unpack("<q", tensor.data)[0]


def dict_value(**entries: values_pb2.Value) -> values_pb2.Value:
    value = values_pb2.Value()
    value.dict.SetInParent()
    for key, item in entries.items():
        value.dict.entries.add(str_key=key, value=item)
    return value


def dict_get(value: values_pb2.Value, key: str) -> values_pb2.Value:
    assert value.WhichOneof("kind") == "dict", value
    for entry in value.dict.entries:
        if entry.WhichOneof("key") == "str_key" and entry.str_key == key:
            return entry.value
    raise KeyError(key)


def action_bytes(n: int) -> bytes:
    return env_pb2.ActionPayload(value=int64_scalar(n)).SerializeToString()


def observation_bytes(n: int, *, reward: float = 0.0, terminated: bool = False) -> bytes:
    return env_pb2.ObservationPayload(value=int64_scalar(n), reward=reward, terminated=terminated).SerializeToString()
