"""Spaces survive ``space_to_proto`` / ``space_from_proto``, in memory and through bytes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from cogment_gym._proto.cogment_gym.v1 import env_pb2, spaces_pb2, tensor_pb2, values_pb2
from cogment_gym.codec import array_to_tensor, decode, encode, space_from_proto, space_to_proto
from cogment_gym.codec.spaces import MAX_MULTI_BINARY_SIZE
from cogment_gym.errors import CogmentGymError, MalformedMessageError, UnsupportedSpaceError

from .space_zoo import ALL_NUMERIC_DTYPES, SPACE_ZOO, make_space_zoo

ZOO_IDS = list(SPACE_ZOO)


def _through_bytes(space: spaces.Space[Any]) -> spaces.Space[Any]:
    data = space_to_proto(space).SerializeToString()
    return space_from_proto(spaces_pb2.Space.FromString(data))


@pytest.mark.parametrize("name", ZOO_IDS)
def test_space_round_trip(name: str) -> None:
    space = SPACE_ZOO[name]
    rebuilt = space_from_proto(space_to_proto(space))
    assert type(rebuilt) is type(space)
    assert rebuilt == space, f"{space!r} came back as {rebuilt!r}"


@pytest.mark.parametrize("name", ZOO_IDS)
def test_space_round_trip_through_bytes(name: str) -> None:
    space = SPACE_ZOO[name]
    rebuilt = _through_bytes(space)
    assert rebuilt == space
    # Serialization is deterministic for equal spaces: describing the rebuilt space gives the same bytes.
    assert space_to_proto(rebuilt).SerializeToString() == space_to_proto(space).SerializeToString()


@pytest.mark.parametrize("name", ZOO_IDS)
def test_rebuilt_space_keeps_dtype_and_shape(name: str) -> None:
    space = SPACE_ZOO[name]
    rebuilt = _through_bytes(space)
    assert rebuilt.dtype == space.dtype
    if space.dtype is not None or isinstance(space, spaces.Box):
        assert rebuilt.shape == space.shape


def test_zoo_covers_the_required_edge_cases() -> None:
    """Guards the zoo itself: removing an edge case from it must fail here."""
    zoo = list(SPACE_ZOO.values())
    boxes = [s for s in zoo if isinstance(s, spaces.Box)]
    assert {b.dtype for b in boxes} >= set(ALL_NUMERIC_DTYPES)
    assert any(np.all(np.isinf(b.low)) and np.all(np.isinf(b.high)) for b in boxes)
    assert any(np.all(np.isfinite(b.low)) and np.all(np.isposinf(b.high)) for b in boxes)
    assert any(np.all(np.isneginf(b.low)) and np.all(np.isfinite(b.high)) for b in boxes)
    assert any(len(np.unique(b.low)) > 1 and len(np.unique(b.high)) > 1 for b in boxes)
    assert any(b.shape == () for b in boxes) and any(len(b.shape) >= 3 for b in boxes)
    assert spaces.Box(0, 255, (84, 84, 3), np.uint8) in boxes
    assert spaces.Discrete(3, start=-1) in zoo
    assert any(isinstance(s, spaces.Discrete) and s.dtype == np.int32 for s in zoo)
    assert any(isinstance(s, spaces.MultiDiscrete) and s.nvec.ndim == 2 and np.any(s.start != 0) for s in zoo)
    assert any(isinstance(s, spaces.MultiBinary) and isinstance(s.n, int) for s in zoo)
    assert any(isinstance(s, spaces.MultiBinary) and isinstance(s.n, tuple) for s in zoo)
    assert any(isinstance(s, spaces.Text) and s.min_length > 1 and len(s.character_set) < 20 for s in zoo)
    seqs = [s for s in zoo if isinstance(s, spaces.Sequence)]
    for feature in (spaces.Box, spaces.Discrete, spaces.Dict):
        for stack in (False, True):
            assert any(isinstance(s.feature_space, feature) and s.stack is stack for s in seqs), (feature, stack)
    graphs = [s for s in zoo if isinstance(s, spaces.Graph)]
    assert any(g.edge_space is None for g in graphs)
    assert any(isinstance(g.node_space, spaces.Box) and isinstance(g.edge_space, spaces.Box) for g in graphs)
    assert any(isinstance(g.node_space, spaces.Discrete) and isinstance(g.edge_space, spaces.Discrete) for g in graphs)
    assert any(isinstance(s, spaces.OneOf) for s in zoo)
    assert any(isinstance(s, spaces.Tuple) for s in zoo)
    nested = SPACE_ZOO["deeply-nested"]
    kinds = set()

    def walk(s: spaces.Space[Any], depth: int) -> int:
        kinds.add(type(s))
        subs: list[spaces.Space[Any]] = []
        if isinstance(s, spaces.Dict):
            subs = list(s.spaces.values())
        elif isinstance(s, (spaces.Tuple, spaces.OneOf)):
            subs = list(s.spaces)
        elif isinstance(s, spaces.Sequence):
            subs = [s.feature_space]
        return max([walk(x, depth + 1) for x in subs], default=depth)

    assert walk(nested, 0) >= 4
    assert {spaces.Dict, spaces.Tuple, spaces.Sequence, spaces.OneOf, spaces.Graph} <= kinds


def test_dict_key_order_survives() -> None:
    space = SPACE_ZOO["dict-unsorted-keys"]
    rebuilt = _through_bytes(space)
    assert list(rebuilt.spaces) == ["zeta", "alpha", "mid", "Beta"]
    # Gymnasium's Dict equality ignores order, so check the nested Dicts explicitly too.
    nested = _through_bytes(SPACE_ZOO["deeply-nested"])
    assert list(nested.spaces) == ["obs", "aux", "empty"]
    assert list(nested["obs"][0].spaces) == ["camera", "history", "stacked"]


def test_box_bounds_are_exact() -> None:
    for space in SPACE_ZOO.values():
        if not isinstance(space, spaces.Box):
            continue
        rebuilt = _through_bytes(space)
        assert rebuilt.low.dtype == space.dtype and rebuilt.high.dtype == space.dtype
        assert rebuilt.low.tobytes() == space.low.tobytes(), space
        assert rebuilt.high.tobytes() == space.high.tobytes(), space


def test_box_bounds_travel_in_the_box_dtype() -> None:
    msg = space_to_proto(spaces.Box(-1.0, 1.0, (2, 3), np.float16))
    assert msg.box.low.dtype == tensor_pb2.DTYPE_FLOAT16
    assert list(msg.box.low.shape) == [2, 3]
    assert len(msg.box.low.data) == 2 * 3 * 2


def test_text_charset_and_lengths_survive() -> None:
    space = spaces.Text(10, min_length=3, charset="zyx é")
    msg = space_to_proto(space)
    assert (msg.text.min_length, msg.text.max_length) == (3, 10)
    assert set(msg.text.charset) == set("zyx é")
    rebuilt = _through_bytes(space)
    assert rebuilt.character_set == frozenset("zyx é")


def test_multi_binary_one_element_list_form_round_trips() -> None:
    space = spaces.MultiBinary([4])
    assert space_from_proto(space_to_proto(space)) == space


def test_fresh_zoo_is_equal_to_shared_zoo() -> None:
    assert make_space_zoo().keys() == SPACE_ZOO.keys()
    for name, space in make_space_zoo().items():
        assert space == SPACE_ZOO[name] and space is not SPACE_ZOO[name]


# ---------------------------------------------------------------------------------------------
# Rejections


class NotASpace(spaces.Space[Any]):
    def __init__(self) -> None:
        super().__init__((), None)


def test_unknown_space_type_raises_unsupported() -> None:
    with pytest.raises(UnsupportedSpaceError, match="NotASpace"):
        space_to_proto(NotASpace())
    with pytest.raises(UnsupportedSpaceError, match="NotASpace"):
        space_to_proto(spaces.Dict({"inner": NotASpace()}))


def test_non_str_dict_keys_raise_unsupported() -> None:
    with pytest.raises(UnsupportedSpaceError, match="keys must be str"):
        space_to_proto(spaces.Dict({1: spaces.Discrete(2)}))


def test_unregistered_custom_space_name_raises_unsupported() -> None:
    msg = spaces_pb2.Space(custom=spaces_pb2.CustomSpace(type_name="nobody.Registered", parameters=b"x"))
    with pytest.raises(UnsupportedSpaceError, match="nobody.Registered"):
        space_from_proto(msg)
    nested = spaces_pb2.Space(tuple=spaces_pb2.TupleSpace(spaces=[msg]))
    with pytest.raises(UnsupportedSpaceError, match="nobody.Registered"):
        space_from_proto(nested)


def _tensor(array: Any) -> tensor_pb2.Tensor:
    return array_to_tensor(np.asarray(array))


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param(spaces_pb2.Space(), id="no-kind"),
        pytest.param(spaces_pb2.Space(discrete=spaces_pb2.DiscreteSpace(n=0, dtype=tensor_pb2.DTYPE_INT64)), id="discrete-n0"),
        pytest.param(spaces_pb2.Space(discrete=spaces_pb2.DiscreteSpace(n=3)), id="discrete-no-dtype"),
        pytest.param(
            spaces_pb2.Space(discrete=spaces_pb2.DiscreteSpace(n=3, dtype=tensor_pb2.DTYPE_FLOAT32)), id="discrete-float"
        ),
        pytest.param(
            spaces_pb2.Space(box=spaces_pb2.BoxSpace(low=_tensor(np.zeros(2, np.float32)), high=_tensor(np.ones(3, np.float32)))),
            id="box-shape-disagrees",
        ),
        pytest.param(
            spaces_pb2.Space(box=spaces_pb2.BoxSpace(low=_tensor(np.zeros(2, np.float32)), high=_tensor(np.ones(2, np.float64)))),
            id="box-dtype-disagrees",
        ),
        pytest.param(
            spaces_pb2.Space(box=spaces_pb2.BoxSpace(low=_tensor(np.ones(2, np.float32)), high=_tensor(np.zeros(2, np.float32)))),
            id="box-low-above-high",
        ),
        pytest.param(
            spaces_pb2.Space(
                box=spaces_pb2.BoxSpace(
                    low=tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT32, shape=[2], data=b"\0" * 7),
                    high=_tensor(np.ones(2, np.float32)),
                )
            ),
            id="box-truncated-bounds",
        ),
        pytest.param(
            spaces_pb2.Space(
                multi_discrete=spaces_pb2.MultiDiscreteSpace(nvec=_tensor(np.ones(2, np.float32)), start=_tensor(np.zeros(2, np.float32)))
            ),
            id="multi-discrete-float",
        ),
        pytest.param(
            spaces_pb2.Space(
                multi_discrete=spaces_pb2.MultiDiscreteSpace(nvec=_tensor(np.array([0, 2])), start=_tensor(np.zeros(2, np.int64)))
            ),
            id="multi-discrete-zero-n",
        ),
        pytest.param(
            spaces_pb2.Space(text=spaces_pb2.TextSpace(min_length=5, max_length=2, charset="ab")), id="text-min-above-max"
        ),
        pytest.param(
            spaces_pb2.Space(
                dict=spaces_pb2.DictSpace(
                    entries=[
                        spaces_pb2.DictSpaceEntry(key="a", space=space_to_proto(spaces.Discrete(2))),
                        spaces_pb2.DictSpaceEntry(key="a", space=space_to_proto(spaces.Discrete(3))),
                    ]
                )
            ),
            id="dict-repeated-key",
        ),
        pytest.param(spaces_pb2.Space(tuple=spaces_pb2.TupleSpace(spaces=[spaces_pb2.Space()])), id="tuple-of-empty"),
        pytest.param(spaces_pb2.Space(sequence=spaces_pb2.SequenceSpace()), id="sequence-no-feature"),
        pytest.param(spaces_pb2.Space(graph=spaces_pb2.GraphSpace()), id="graph-no-node-space"),
        pytest.param(spaces_pb2.Space(one_of=spaces_pb2.OneOfSpace()), id="one-of-empty"),
    ],
)
def test_invalid_space_descriptions_raise_malformed(msg: spaces_pb2.Space) -> None:
    with pytest.raises(MalformedMessageError) as info:
        space_from_proto(spaces_pb2.Space.FromString(msg.SerializeToString()))
    assert isinstance(info.value, CogmentGymError) and isinstance(info.value, ValueError)


def test_space_from_proto_rejects_other_message_types() -> None:
    with pytest.raises(MalformedMessageError, match="Space"):
        space_from_proto(values_pb2.Value())  # type: ignore[arg-type]


def _nested_dicts(levels: int) -> spaces.Space[Any]:
    space: spaces.Space[Any] = spaces.Discrete(2)
    for _ in range(levels):
        space = spaces.Dict({"k": space})
    return space


@pytest.mark.parametrize("levels", [40, 100])
def test_spaces_too_deep_for_protobuf_are_refused_when_described(levels: int) -> None:
    with pytest.raises(UnsupportedSpaceError, match="nested too deep"):
        space_to_proto(_nested_dicts(levels))
    space = spaces.Discrete(2)
    for _ in range(2 * levels):  # 2 message levels per Tuple level
        space = spaces.Tuple((space,))
    with pytest.raises(UnsupportedSpaceError, match="nested too deep"):
        space_to_proto(space)


def test_the_deepest_describable_space_round_trips_inside_an_env_spec() -> None:
    deepest = next(n for n in range(40, 0, -1) if _describes(_nested_dicts(n)))
    assert deepest == 31  # 3 levels per Dict + 3 for the Discrete: 96 = MAX_SPACE_DEPTH
    spec = env_pb2.EnvSpec()
    spec.actors.add(name="a").observation_space.CopyFrom(space_to_proto(_nested_dicts(deepest)))
    back = env_pb2.EnvSpec.FromString(spec.SerializeToString())  # as a client receives it
    assert space_from_proto(back.actors[0].observation_space) == _nested_dicts(deepest)


def _describes(space: spaces.Space[Any]) -> bool:
    try:
        space_to_proto(space)
    except UnsupportedSpaceError:
        return False
    return True


def test_values_too_deep_for_protobuf_are_refused_when_encoded() -> None:
    space = _nested_dicts(32)  # 3 * 32 + 3 (Value > exact > Tensor) = 99 message levels > MAX_VALUE_DEPTH
    with pytest.raises(UnsupportedSpaceError, match="99 message levels"):
        encode(space, space.sample())


def test_the_deepest_encodable_value_still_parses_inside_a_batched_payload() -> None:
    space = _nested_dicts(31)  # 3 * 31 + 3 = 96 levels, + 3 for ObservationPayload > BatchedStep > SubEnvEnd
    value = space.sample()
    leaf_int32: Any = np.int32(1)  # the deepest leaf form: Value > exact Value > Tensor
    for _ in range(31):
        leaf_int32 = {"k": leaf_int32}
    for given in (value, leaf_int32):
        payload = env_pb2.ObservationPayload()
        payload.batch.ends.add(index=0).observation.CopyFrom(encode(space, given))
        back = env_pb2.ObservationPayload.FromString(payload.SerializeToString())
        assert decode(space, back.batch.ends[0].observation) == given


def test_multi_binary_size_is_capped_on_both_sides() -> None:
    """A MultiBinary is described by its shape alone: a few bytes must not make a peer allocate 1 EiB."""
    largest = spaces.MultiBinary([MAX_MULTI_BINARY_SIZE // 4, 4])
    assert space_from_proto(space_to_proto(largest)) == largest
    too_big = spaces.MultiBinary([MAX_MULTI_BINARY_SIZE, 2])
    with pytest.raises(UnsupportedSpaceError, match="elements"):
        space_to_proto(too_big)
    with pytest.raises(MalformedMessageError, match="elements"):
        space_from_proto(spaces_pb2.Space(multi_binary=spaces_pb2.MultiBinarySpace(shape=[781, 730, 1829870536771])))
    with pytest.raises(MalformedMessageError, match="dimensions"):
        space_from_proto(spaces_pb2.Space(multi_binary=spaces_pb2.MultiBinarySpace(shape=[1] * 33)))
    nested = spaces_pb2.Space(
        sequence=spaces_pb2.SequenceSpace(
            feature_space=spaces_pb2.Space(multi_binary=spaces_pb2.MultiBinarySpace(shape=[2**40])), stack=True
        )
    )
    with pytest.raises(MalformedMessageError, match="elements"):
        space_from_proto(nested)
