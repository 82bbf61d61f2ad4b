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

    def recv(self, timeout: float = 30.0) -> Any:
        """The next reply; fails if the call ended instead."""
        item = self._next(timeout)
        if isinstance(item, StreamEnd):
            raise AssertionError(f"stream ended ({item.code}, {item.details!r}) instead of a reply; "
                                 f"received: {self.describe()}")
        return item

    def expect_end(self, timeout: float = 30.0) -> StreamEnd:
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


# ---- an orchestrator's WatchTrials, followed by a thread --------------------------------------


class TrialWatcher:
    """Follows ``TrialLifecycleSP.WatchTrials`` of an orchestrator (all trials, all states) with
    our stubs; :meth:`wait_state` waits, with a timeout, until a trial was seen in a state.

    Open it before starting the trials to follow: the stream first lists the existing trials
    (current state), then every state change.
    """

    def __init__(self, endpoint: str) -> None:
        from cogment_gym._proto.cogment.api import orchestrator_pb2, orchestrator_pb2_grpc

        target = endpoint.removeprefix("grpc://")
        self._channel = grpc.insecure_channel(target)
        stub = orchestrator_pb2_grpc.TrialLifecycleSPStub(self._channel)
        self._call = stub.WatchTrials(orchestrator_pb2.TrialListRequest(), timeout=300)
        self._cond = threading.Condition()
        self.seen: list[tuple[str, str]] = []  # (trial id, state name), in order
        self.ended: StreamEnd | None = None
        self._names = {value: name for name, value in common_pb2.TrialState.items()}
        self._reader = threading.Thread(target=self._read, name="watch-trials", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for entry in self._call:
                with self._cond:
                    self.seen.append((entry.trial_id, self._names.get(entry.state, str(entry.state))))
                    self._cond.notify_all()
            end = StreamEnd(grpc.StatusCode.OK, None)
        except grpc.RpcError as exc:
            end = StreamEnd(exc.code(), exc.details())
        with self._cond:
            self.ended = end
            self._cond.notify_all()

    def states(self, trial_id: str) -> list[str]:
        with self._cond:
            return [state for tid, state in self.seen if tid == trial_id]

    def trial_ids(self) -> list[str]:
        """The ids of the trials seen, in the order they were first seen."""
        with self._cond:
            return list(dict.fromkeys(tid for tid, _ in self.seen))

    def wait_trials(self, count: int, timeout: float) -> list[str]:
        """Wait until ``count`` distinct trials were seen; return their ids (first seen first)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.trial_ids()) >= count or self.ended is not None, timeout):
                raise AssertionError(f"{count} trials not seen within {timeout}s; seen {self.seen}")
            if len(self.trial_ids()) < count:
                raise AssertionError(f"WatchTrials ended ({self.ended}) before {count} trials were seen; seen {self.seen}")
            return self.trial_ids()

    def wait_state(self, trial_id: str, state: str, timeout: float) -> list[str]:
        """Wait until ``trial_id`` was seen in ``state``; return its states seen so far."""
        def reached() -> bool:
            return state in self.states(trial_id) or self.ended is not None

        with self._cond:
            if not self._cond.wait_for(reached, timeout):
                raise AssertionError(f"trial {trial_id} not seen {state} within {timeout}s; states {self.states(trial_id)}")
            if state not in self.states(trial_id):
                raise AssertionError(f"WatchTrials ended ({self.ended}) before trial {trial_id} was {state}; "
                                     f"states {self.states(trial_id)}")
        return self.states(trial_id)

    def close(self) -> None:
        self._call.cancel()
        self._reader.join(timeout=10)
        self._channel.close()

    def __enter__(self) -> "TrialWatcher":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# Trial states in the order a trial goes through them.
TRIAL_STATE_ORDER = ("INITIALIZING", "PENDING", "RUNNING", "TERMINATING", "ENDED")


def assert_state_progression(states: list[str]) -> None:
    """States seen for one trial: in lifecycle order (repeats allowed), ENDED last."""
    ranks = [TRIAL_STATE_ORDER.index(state) for state in states]
    assert ranks == sorted(ranks), states
    assert states and states[-1] == "ENDED", states


# ---- CartPole, replayed locally ----------------------------------------------------------------


def replay_cartpole(seed: int, actions: list[int]) -> tuple[list[list[float]], list[list[bool]]]:
    """Observations (as lists of floats) and ``[terminated, truncated]`` flags of a local
    ``CartPole-v1`` reset with ``seed`` and stepped with ``actions``: what a served CartPole
    playing those actions must have sent (initial observation first, flags ``[False, False]``)."""
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    try:
        obs, _ = env.reset(seed=seed)
        observations, flags = [obs.tolist()], [[False, False]]
        for action in actions:
            obs, _, terminated, truncated, _ = env.step(action)
            observations.append(obs.tolist())
            flags.append([bool(terminated), bool(truncated)])
    finally:
        env.close()
    return observations, flags


# ---- the end of a trial, as an SDK-side component saw it ----------------------------------------


def assert_sdk_soft_end(summary: dict, expected: str) -> list[str]:
    """Check that an SDK env (``ended_by``) or actor (``ended``) summary shows a soft end labelled
    ``expected`` ("env", "orchestrator", "final"): its FINAL event came (END after LAST); return
    its event types without that FINAL event.

    ``rpc_cancelled`` in a failing summary means the orchestrator cancelled the component's
    RunTrial call instead of letting it read END (see
    test_interop_orchestrator.py::test_component_reading_end_late_still_gets_it).
    """
    key = "ended_by" if "ended_by" in summary else "ended"
    events = list(summary["event_types"])
    assert summary[key] == expected, summary
    assert events[-1:] == ["FINAL"] and not summary["rpc_cancelled"], summary
    return events[:-1]
