"""Fuzz: hostile bytes into the decoders raise only CogmentGymError subclasses, and never hang.

Inputs: random bytes, truncations of valid encodings, valid encodings of the wrong message type,
and hypothesis-mutated valid encodings (bytes flipped, inserted, deleted). Each is fed through
``parse_value`` + ``decode(space, ...)``, ``decode_info`` and ``space_from_proto``.
``Space.FromString`` itself is protobuf's parser; its ``DecodeError`` is the one foreign exception
accepted, and only from that call.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from gymnasium import spaces
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cogment_gym._proto.cogment_gym.v1 import env_pb2, spaces_pb2, tensor_pb2, values_pb2
from cogment_gym.codec import decode, decode_info, encode, encode_info, parse_value, space_from_proto, space_to_proto
from cogment_gym.codec.tensor import DTYPES
from cogment_gym.errors import CogmentGymError

from .space_zoo import SPACE_ZOO, make_space_zoo

# One call must finish well within this; a hang fails the test instead of blocking the run.
CALL_BUDGET_S = 2.0
TEST_BUDGET_S = 120

FUZZ_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """Fail (rather than block the suite) if a test runs away; SIGALRM is the only portable timer."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"fuzz test exceeded {TEST_BUDGET_S} s: a decoder hangs")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_BUDGET_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _only_codec_errors(call: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    try:
        return call()
    except CogmentGymError:
        return None
    finally:
        elapsed = time.perf_counter() - start
        assert elapsed < CALL_BUDGET_S, f"a decoder call took {elapsed:.2f} s"


# ---------------------------------------------------------------------------------------------
# Corpus: valid encodings of every zoo space, its values, and info dicts.

FUZZ_SPACES = {name: space for name, space in SPACE_ZOO.items() if name != "box-uint8-84x84x3"}
FUZZ_SPACES["frame-small"] = spaces.Box(0, 255, (4, 4, 3), np.uint8)

INFO_SAMPLES: list[dict[Any, Any]] = [
    {"lives": 3, "pos": np.zeros(2, np.float32), "ok": True, "name": "x", 7: None},
    {"nested": {"a": [1, 2.5, (np.int16(3), b"\x00")], "big": 2**70}, "f": np.float64(-0.0)},
    {},
]


def _space_corpus() -> list[tuple[spaces.Space[Any], bytes]]:
    corpus = []
    for name, space in make_space_zoo().items():
        if name == "box-uint8-84x84x3":
            continue
        space.seed(11)
        corpus.append((space, encode(space, space.sample()).SerializeToString()))
    corpus.append((FUZZ_SPACES["frame-small"], encode(FUZZ_SPACES["frame-small"], np.ones((4, 4, 3), np.uint8)).SerializeToString()))
    return corpus


VALUE_CORPUS = _space_corpus()
SPACE_DESCRIPTIONS = [space_to_proto(space).SerializeToString() for space in FUZZ_SPACES.values()]
INFO_CORPUS = [encode_info(info).SerializeToString() for info in INFO_SAMPLES]
SPACE_LIST = list(FUZZ_SPACES.values())


def _feed_value_bytes(data: bytes, spaces_to_try: list[spaces.Space[Any]]) -> None:
    msg = _only_codec_errors(lambda: parse_value(data))
    if msg is None:
        return
    for space in spaces_to_try:
        _only_codec_errors(lambda: decode(space, msg, path="obs"))
    _only_codec_errors(lambda: decode_info(msg))


def _feed_space_bytes(data: bytes) -> None:
    try:
        msg = spaces_pb2.Space.FromString(data)
    except DecodeError:
        return
    space = _only_codec_errors(lambda: space_from_proto(msg))
    if space is not None:
        # Whatever was accepted can be described again.
        _only_codec_errors(lambda: space_to_proto(space))


def _feed_everything(data: bytes, spaces_to_try: list[spaces.Space[Any]]) -> None:
    _feed_value_bytes(data, spaces_to_try)
    _feed_space_bytes(data)


# ---------------------------------------------------------------------------------------------
# Random bytes


@FUZZ_SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _feed_everything(data, SPACE_LIST)


# ---------------------------------------------------------------------------------------------
# Truncations (deterministic: every cut point of every valid encoding)


@pytest.mark.parametrize("index", range(len(VALUE_CORPUS)), ids=[n for n in FUZZ_SPACES])
def test_truncated_value_encodings(index: int) -> None:
    space, data = VALUE_CORPUS[index]
    for cut in range(len(data)):
        _feed_value_bytes(data[:cut], [space])


def test_truncated_space_and_info_encodings() -> None:
    for data in SPACE_DESCRIPTIONS:
        for cut in range(len(data)):
            _feed_space_bytes(data[:cut])
    for data in INFO_CORPUS:
        for cut in range(len(data)):
            _feed_value_bytes(data[:cut], [])


# ---------------------------------------------------------------------------------------------
# Valid encodings of the wrong message type


def _other_messages() -> list[bytes]:
    frame = tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_UINT8, shape=[2, 2], data=b"\x01\x02\x03\x04")
    payload = env_pb2.ObservationPayload(value=encode(spaces.Discrete(3), 1), reward=1.5, terminated=True, frame=frame)
    spec = env_pb2.EnvSpec(
        implementation="x",
        actors=[env_pb2.ActorSpec(name="p", observation_space=space_to_proto(spaces.Discrete(2)))],
    )
    return [
        *SPACE_DESCRIPTIONS,
        *(data for _, data in VALUE_CORPUS),
        *INFO_CORPUS,
        frame.SerializeToString(),
        payload.SerializeToString(),
        spec.SerializeToString(),
        env_pb2.EnvConfig(seed=3, options=encode_info({"a": 1})).SerializeToString(),
    ]


OTHER_MESSAGES = _other_messages()


@pytest.mark.parametrize("index", range(len(OTHER_MESSAGES)))
def test_wrong_message_types(index: int) -> None:
    _feed_everything(OTHER_MESSAGES[index], SPACE_LIST)


def test_space_description_decoded_as_every_value() -> None:
    """The classic mix-up: a serialized Space handed to parse_value, and the reverse."""
    for data in SPACE_DESCRIPTIONS:
        _feed_value_bytes(data, SPACE_LIST)
    for _, data in VALUE_CORPUS:
        _feed_space_bytes(data)


# ---------------------------------------------------------------------------------------------
# Mutations of valid encodings


@st.composite
def _mutated(draw: st.DrawFn, corpus: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(corpus)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 4))]
    return bytes(data)


@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_values_decoded_by_their_space(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(VALUE_CORPUS) - 1))
    space, valid = VALUE_CORPUS[index]
    mutated = data.draw(_mutated([valid]))
    _feed_value_bytes(mutated, [space])


@FUZZ_SETTINGS
@given(data=_mutated(SPACE_DESCRIPTIONS))
def test_mutated_space_descriptions(data: bytes) -> None:
    _feed_space_bytes(data)


@FUZZ_SETTINGS
@given(data=_mutated(INFO_CORPUS))
def test_mutated_info(data: bytes) -> None:
    _feed_value_bytes(data, [])


# ---------------------------------------------------------------------------------------------
# Structured nonsense: well-formed messages with hostile contents


_ITEMSIZE = {code: np.dtype(dtype).itemsize for dtype, code in DTYPES.items()}


@st.composite
def _tensor(draw: st.DrawFn) -> tensor_pb2.Tensor:
    """Tensors whose byte count often matches their shape, with absurd shapes and dtypes mixed in."""
    dtype = draw(st.one_of(st.integers(1, 14), st.integers(0, 16)))
    shape = draw(
        st.one_of(
            st.lists(st.integers(0, 4), max_size=4),
            # Empty tensors claiming absurd dimensions: no bytes needed, numpy may still refuse.
            st.lists(st.sampled_from([0, 1, 2**31, 2**40, 2**61, 2**62, 2**63, 2**64 - 1]), min_size=2, max_size=4),
            st.lists(st.sampled_from([0, 1]), min_size=30, max_size=70),
        )
    )
    size = math.prod(shape) * _ITEMSIZE.get(dtype, 1)
    exact = draw(st.binary(min_size=size, max_size=size)) if size <= 64 else b""
    data = draw(st.one_of(st.just(exact), st.binary(max_size=40)))
    return tensor_pb2.Tensor(dtype=dtype, shape=shape, data=data)


_tensors = _tensor()


def _values() -> st.SearchStrategy[values_pb2.Value]:
    leaves = st.one_of(
        _tensors.map(lambda t: values_pb2.Value(array=t)),
        _tensors.map(lambda t: values_pb2.Value(scalar=t)),
        st.text(max_size=8).map(lambda s: values_pb2.Value(text=s)),
        st.integers(-(2**63), 2**63 - 1).map(lambda i: values_pb2.Value(int_value=i)),
        st.text(max_size=30).map(lambda s: values_pb2.Value(big_int=values_pb2.BigInt(decimal=s))),
        st.just(values_pb2.Value()),
        st.binary(max_size=30).map(lambda b: values_pb2.Value(custom=b)),
        st.builds(
            lambda n, e, l: values_pb2.Value(graph=values_pb2.GraphValue(nodes=n, edges=e, edge_links=l)),
            _tensors, _tensors, _tensors,
        ),
    )

    def extend(children: st.SearchStrategy[values_pb2.Value]) -> st.SearchStrategy[values_pb2.Value]:
        entries = st.lists(
            st.tuples(st.one_of(st.text(max_size=6), st.integers(-3, 3)), children).map(
                lambda kv: values_pb2.MapEntry(str_key=kv[0], value=kv[1])
                if isinstance(kv[0], str)
                else values_pb2.MapEntry(int_key=kv[0], value=kv[1])
            ),
            max_size=4,
        )
        return st.one_of(
            entries.map(lambda es: values_pb2.Value(dict=values_pb2.MapValue(entries=es))),
            st.lists(children, max_size=4).map(lambda vs: values_pb2.Value(tuple=values_pb2.ListValue(items=vs))),
            st.lists(children, max_size=4).map(lambda vs: values_pb2.Value(list=values_pb2.ListValue(items=vs))),
            st.tuples(st.integers(0, 2**64 - 1), children).map(
                lambda iv: values_pb2.Value(one_of=values_pb2.OneOfValue(index=iv[0], value=iv[1]))
            ),
        )

    return st.recursive(leaves, extend, max_leaves=12)


@FUZZ_SETTINGS
@given(msg=_values())
# Regressions: empty tensors with dimensions numpy refuses; more dimensions than numpy allows.
@example(msg=values_pb2.Value(array=tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_INT64, shape=[0, 2**62])))
@example(msg=values_pb2.Value(array=tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_UINT8, shape=[1] * 65, data=b"\x01")))
def test_hostile_well_formed_values(msg: values_pb2.Value) -> None:
    _feed_value_bytes(msg.SerializeToString(), SPACE_LIST)


def _space_messages() -> st.SearchStrategy[spaces_pb2.Space]:
    leaves = st.one_of(
        st.builds(lambda lo, hi: spaces_pb2.Space(box=spaces_pb2.BoxSpace(low=lo, high=hi)), _tensors, _tensors),
        st.builds(
            lambda n, s, d: spaces_pb2.Space(discrete=spaces_pb2.DiscreteSpace(n=n, start=s, dtype=d)),
            st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1), st.integers(0, 16),
        ),
        st.builds(
            lambda n, s: spaces_pb2.Space(multi_discrete=spaces_pb2.MultiDiscreteSpace(nvec=n, start=s)), _tensors, _tensors
        ),
        st.lists(st.integers(0, 2**64 - 1), max_size=3).map(
            lambda sh: spaces_pb2.Space(multi_binary=spaces_pb2.MultiBinarySpace(shape=sh))
        ),
        st.builds(
            lambda lo, hi, cs: spaces_pb2.Space(text=spaces_pb2.TextSpace(min_length=lo, max_length=hi, charset=cs)),
            st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.text(max_size=5),
        ),
        st.builds(
            lambda name, p: spaces_pb2.Space(custom=spaces_pb2.CustomSpace(type_name=name, parameters=p)),
            st.sampled_from(["example.Circle", "tests.codec.Grid", "unknown"]), st.binary(max_size=12),
        ),
        st.just(spaces_pb2.Space()),
    )

    def extend(children: st.SearchStrategy[spaces_pb2.Space]) -> st.SearchStrategy[spaces_pb2.Space]:
        return st.one_of(
            st.lists(st.tuples(st.text(max_size=4), children), max_size=3).map(
                lambda kvs: spaces_pb2.Space(
                    dict=spaces_pb2.DictSpace(entries=[spaces_pb2.DictSpaceEntry(key=k, space=v) for k, v in kvs])
                )
            ),
            st.lists(children, max_size=3).map(lambda ss: spaces_pb2.Space(tuple=spaces_pb2.TupleSpace(spaces=ss))),
            st.lists(children, max_size=3).map(lambda ss: spaces_pb2.Space(one_of=spaces_pb2.OneOfSpace(spaces=ss))),
            st.tuples(children, st.booleans()).map(
                lambda fs: spaces_pb2.Space(sequence=spaces_pb2.SequenceSpace(feature_space=fs[0], stack=fs[1]))
            ),
            st.tuples(children, st.one_of(st.none(), children)).map(
                lambda ne: spaces_pb2.Space(
                    graph=spaces_pb2.GraphSpace(node_space=ne[0], **({} if ne[1] is None else {"edge_space": ne[1]}))
                )
            ),
        )

    return st.recursive(leaves, extend, max_leaves=8)


@FUZZ_SETTINGS
@given(msg=_space_messages())
# Regression: a MultiBinary of 10**18 elements made Gymnasium allocate them (MemoryError).
@example(
    msg=spaces_pb2.Space(
        sequence=spaces_pb2.SequenceSpace(
            feature_space=spaces_pb2.Space(
                graph=spaces_pb2.GraphSpace(
                    node_space=spaces_pb2.Space(multi_binary=spaces_pb2.MultiBinarySpace(shape=[781, 730, 1829870536771]))
                )
            )
        )
    )
)
def test_hostile_well_formed_space_descriptions(msg: spaces_pb2.Space) -> None:
    _feed_space_bytes(msg.SerializeToString())


def test_many_items_do_not_hang() -> None:
    """A large but legal payload decodes in bounded time (no quadratic behaviour)."""
    items = [encode(spaces.Discrete(2), 1)] * 20000
    msg = values_pb2.Value(tuple=values_pb2.ListValue(items=items))
    start = time.perf_counter()
    decoded = decode(spaces.Sequence(spaces.Discrete(2), stack=True), parse_value(msg.SerializeToString()))
    assert decoded.shape == (20000,)
    assert time.perf_counter() - start < CALL_BUDGET_S
