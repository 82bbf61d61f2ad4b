"""Protobuf wire bytes built from pieces, so that a large bytes field is copied once.

Building a message through protobuf's Python API copies a large bytes field at every level:
``array.tobytes()``, the field assignment, ``CopyFrom`` into the parent, ``SerializeToString``,
``append`` into a repeated bytes field and the outer ``SerializeToString``. For a batched trial of
32 uint8[84,84,3] observations that is six copies of 677 kB per tick. :class:`Pieces` holds a
serialized message as a list of bytes-like pieces (small serialized messages, field headers, the
sub-environments' arrays themselves) and their total length; nesting adds a field header in
front, and :meth:`Pieces.join` copies everything once, into the bytes that go on the wire.

What is built is ordinary protobuf: a message is the concatenation of its fields in any order,
each length-delimited field a tag, a varint length and its bytes (protobuf's encoding guide). Any
protobuf parser reads it as it reads ``SerializeToString``'s output; only the order of the fields
may differ.
"""

from __future__ import annotations

from typing import Any, Iterable

__all__ = ["Pieces", "field_header", "joined"]

_LENGTH_DELIMITED = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_header(field_number: int, length: int) -> bytes:
    """The tag and length of a length-delimited field (bytes, string, sub-message) of ``length`` bytes."""
    return _varint(field_number << 3 | _LENGTH_DELIMITED) + _varint(length)


class Pieces:
    """A serialized message as pieces, each bytes or a C-contiguous buffer (a numpy array).

    The pieces are read when :meth:`join` runs, not before: arrays must not change meanwhile.
    """

    __slots__ = ("parts", "nbytes")

    def __init__(self, parts: Iterable[Any] = (), nbytes: int | None = None) -> None:
        self.parts = list(parts)
        self.nbytes = sum(memoryview(part).nbytes for part in self.parts) if nbytes is None else nbytes

    def __len__(self) -> int:
        return self.nbytes

    def add(self, part: Any, nbytes: int | None = None) -> None:
        """Append a piece (``nbytes``: its size in bytes, when the caller knows it)."""
        self.parts.append(part)
        self.nbytes += memoryview(part).nbytes if nbytes is None else nbytes

    def add_field(self, field_number: int, inner: Pieces | bytes) -> None:
        """Append ``inner`` as length-delimited field ``field_number`` (a sub-message or bytes)."""
        size = len(inner)
        header = field_header(field_number, size)
        self.parts.append(header)
        if isinstance(inner, Pieces):
            self.parts.extend(inner.parts)
        else:
            self.parts.append(inner)
        self.nbytes += len(header) + size

    def join(self) -> bytes:
        """The message's bytes (one copy of every piece)."""
        return b"".join(self.parts)


def joined(message: Pieces | bytes) -> bytes:
    """``message`` as bytes."""
    return message.join() if isinstance(message, Pieces) else message
