"""codec.wire: messages built from pieces parse as protobuf's own serialisation does."""

from __future__ import annotations

import numpy as np
import pytest

from cogment_gym._proto.cogment_gym.v1 import tensor_pb2, values_pb2
from cogment_gym.codec.wire import Pieces, field_header, joined


@pytest.mark.parametrize("length", [0, 1, 127, 128, 300, 2**14, 2**21 + 5, 2**35])
def test_a_field_header_is_protobufs(length: int) -> None:
    # The reference: a bytes field of that length, serialised by protobuf, minus its bytes.
    if 0 < length <= 2**21 + 5:  # (proto3 leaves an empty bytes field out)
        reference = tensor_pb2.Tensor(data=bytes(length)).SerializeToString()
        assert field_header(3, length) == reference[: len(reference) - length]
    # Varint lengths: 7 bits a byte, the high bit set on every byte but the last.
    header = field_header(3, length)
    assert header[0] == 3 << 3 | 2
    size = header[1:]
    assert all(b & 0x80 for b in size[:-1]) and not size[-1] & 0x80
    assert sum((b & 0x7F) << (7 * i) for i, b in enumerate(size)) == length


def test_nested_pieces_parse_as_the_message_they_describe() -> None:
    frames = [np.full((2, 3), i, dtype=np.float32) for i in range(4)]
    tensor = Pieces([tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT32, shape=(4, 2, 3)).SerializeToString()])
    tensor.add_field(3, Pieces(frames))
    value = Pieces()
    value.add_field(1, tensor)
    wire = value.join()
    assert len(wire) == len(value)
    parsed = values_pb2.Value.FromString(wire)
    assert parsed.WhichOneof("kind") == "array"
    assert list(parsed.array.shape) == [4, 2, 3]
    np.testing.assert_array_equal(np.frombuffer(parsed.array.data, np.float32).reshape(4, 2, 3), np.stack(frames))


def test_pieces_are_read_when_joined_and_sizes_add_up() -> None:
    array = np.zeros(4, dtype=np.uint8)
    pieces = Pieces([b"ab"])
    pieces.add(array)
    pieces.add_field(1, b"xyz")
    assert len(pieces) == 2 + 4 + 2 + 3
    array[:] = 7  # pieces are references: what is joined is what the arrays hold then
    assert pieces.join() == b"ab" + bytes([7] * 4) + b"\x0a\x03xyz"
    assert joined(b"plain") == b"plain" and joined(pieces) == pieces.join()


def test_a_non_contiguous_array_is_no_piece() -> None:
    with pytest.raises((TypeError, ValueError, BufferError)):
        Pieces([np.zeros((4, 4), np.uint8)[:, :2]]).join()


def test_fields_are_found_where_protobuf_put_them() -> None:
    from cogment_gym._proto.cogment.api import common_pb2
    from cogment_gym._proto.cogment_gym.v1 import env_pb2
    from cogment_gym.codec.wire import WireError, only_field, scan_fields

    # varint (tick_id), fixed32 (value: float), length-delimited (receiver_name, sources)
    reward = common_pb2.Reward(tick_id=300, receiver_name="player", value=1.5, sources=[common_pb2.RewardSource(sender_name="env")])
    data = b"prefix" + reward.SerializeToString()
    fields = scan_fields(data, 6)
    assert [(f.number, f.wire_type) for f in fields] == [(1, 0), (2, 2), (3, 5), (4, 2)]
    assert data[fields[1].value_start : fields[1].end] == b"player" and fields[-1].end == len(data)
    # fixed64 (reward: double); a sub-message found and read where it lies
    payload = env_pb2.ObservationPayload(reward=2.0, terminated=True)
    payload.value.array.data = b"\x01\x02\x03"
    wire = payload.SerializeToString()
    value = [f for f in scan_fields(wire) if f.number == 1][0]
    array = only_field(wire, value.value_start, value.end, 1)
    assert array is not None
    data_field = [f for f in scan_fields(wire, array.value_start, array.end) if f.number == 3][0]
    assert wire[data_field.value_start : data_field.end] == b"\x01\x02\x03"
    assert sorted((f.number, f.wire_type) for f in scan_fields(wire)) == [(1, 2), (2, 1), (3, 0)]
    assert only_field(wire, 0, len(wire), 1) is None  # several fields
    assert only_field(wire, 0, len(wire), 1, others=True) == value  # field 1 among others
    assert only_field(wire, 0, len(wire), 2, others=True) is None  # there, but not length-delimited
    twice = wire + wire[value.start : value.end]
    assert only_field(twice, 0, len(twice), 1, others=True) is None  # there twice
    for broken in (wire[:-1], b"\x0a\x05ab", b"\x80", b"\x00\x01", b"\x0b", b"\xff" * 11):
        with pytest.raises(WireError):
            scan_fields(broken)
