"""The trial file: one recorded trial, append-only, readable after a crash.

Layout (all integers little-endian)::

    magic     8 bytes   b"\\x89CGTRL\\r\\n"  (the \\x89 and \\r\\n catch text-mode mangling)
    version   u16       FORMAT_VERSION (1)
    reserved  u16       0
    records, each:
      kind    u8        HEADER (1), SAMPLE (2) or END (3)
      length  u32       bytes of body
      crc32   u32       zlib.crc32 of the kind byte followed by the body
      body    length bytes

The first record is a ``cogment_gym.v1.TrialFileHeader`` (trial id, user id, the trial params);
then one record per ``cogmentAPI.DatalogSample``, exactly as the Orchestrator sent it; then a
``cogment_gym.v1.TrialFileEnd`` when the datalog stream ended. Each record goes to the kernel in
one ``write``; the file is fsync'd (and its directory) once the END record is written, so a trial
counts as complete only once its end is on disk. A writer killed mid-trial leaves a file whose
records are intact up to the last whole one: readers report it as incomplete (no END) or cut off
(a partial record), never as a finished trial.

Reading distinguishes a file that was cut off (:class:`~cogment_gym.errors.TruncatedTrialFileError`,
the bytes just stop) from one that was damaged (:class:`~cogment_gym.errors.CorruptTrialFileError`:
wrong magic or version, a checksum that does not match, an unknown record kind, a body that does
not parse); both name the file and the byte offset.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, TypeVar

from google.protobuf.message import DecodeError, Message

from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2
from cogment_gym._proto.cogment_gym.v1 import datalog_pb2 as file_pb2
from cogment_gym._version import __version__
from cogment_gym.errors import CorruptTrialFileError, TruncatedTrialFileError

__all__ = [
    "END",
    "FILE_SUFFIX",
    "FORMAT_VERSION",
    "HEADER",
    "MAGIC",
    "SAMPLE",
    "TrialFile",
    "TrialFileWriter",
    "iter_records",
    "read_header",
    "read_trial_file",
]

logger = logging.getLogger(__name__)

_M = TypeVar("_M", bound=Message)

MAGIC = b"\x89CGTRL\r\n"
FORMAT_VERSION = 1
FILE_SUFFIX = ".cgtrial"
HEADER, SAMPLE, END = 1, 2, 3
_KINDS = {HEADER: "header", SAMPLE: "sample", END: "end"}
_PREAMBLE = struct.Struct("<8sHH")
_RECORD = struct.Struct("<BII")
# A record is at most one gRPC message (64 MiB) plus room; a larger length is damage.
MAX_RECORD = 80 * 1024 * 1024


def _record(kind: int, body: bytes) -> bytes:
    kind_byte = bytes((kind,))
    return _RECORD.pack(kind, len(body), zlib.crc32(body, zlib.crc32(kind_byte))) + body


class TrialFileWriter:
    """Writes one trial file; every record reaches the kernel at once, the end is fsync'd.

    Args:
        path: the file to create (it must not exist).
        trial_id, user_id: from the datalog stream's metadata.
        params: the trial's parameters (the stream's first message).
        started: when the trial started, in ns since the epoch (default: now); files are listed
            oldest first by it.

    Example:
        >>> writer = TrialFileWriter(path, "t1", "me", params)   # doctest: +SKIP
        >>> writer.sample(sample); writer.close()                # doctest: +SKIP
    """

    def __init__(
        self, path: str | os.PathLike[str], trial_id: str, user_id: str, params: common_pb2.TrialParams, *, started: int | None = None
    ) -> None:
        self.path = Path(path)
        self.trial_id = trial_id
        self.samples = 0
        self.last_state = 0
        self.closed = False
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        try:
            header = file_pb2.TrialFileHeader(
                trial_id=trial_id, user_id=user_id, trial_params=params.SerializeToString(),
                started=started if started else time.time_ns(), writer=f"cogment_gym {__version__}",
            )
            self._write(_PREAMBLE.pack(MAGIC, FORMAT_VERSION, 0) + _record(HEADER, header.SerializeToString()))
        except BaseException:
            os.close(self._fd)
            raise

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # os.write may write less than asked (signals, full disks)
            written = os.write(self._fd, view)
            view = view[written:]

    def sample(self, sample: datalog_pb2.DatalogSample) -> None:
        """Append one sample (as received)."""
        self.sample_bytes(sample.SerializeToString(), int(sample.info.state))

    def sample_bytes(self, body: bytes, state: int) -> None:
        """Append one serialized DatalogSample whose ``info.state`` is ``state``."""
        self._write(_record(SAMPLE, body))
        self.samples += 1
        if state:
            self.last_state = state

    def close(self, error: str = "") -> None:
        """Write the END record (``error``: why the stream broke, "" if it ended normally), fsync
        the file and its directory, close. Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            end = file_pb2.TrialFileEnd(ended=time.time_ns(), samples=self.samples, last_state=self.last_state, error=error)
            self._write(_record(END, end.SerializeToString()))
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
        _fsync_directory(self.path.parent)

    def abandon(self) -> None:
        """Close without an END record (the process is going down): the file reads as incomplete."""
        if not self.closed:
            self.closed = True
            os.close(self._fd)


def _fsync_directory(folder: Path) -> None:
    """Make the file's directory entry durable too (POSIX: a new file's name lives in its directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------- reading


@dataclass
class TrialFile:
    """What a trial file holds.

    Attributes:
        path: the file.
        header: its TrialFileHeader.
        params: the trial's parameters.
        samples: serialized DatalogSample bodies, in order (parse with :meth:`sample`).
        end: the TrialFileEnd, None when the file has none (the trial was in flight).
        cut_off: the file ends inside a record (its writer was killed while writing).
        size: bytes read (the offset just after the last whole record).
    """

    path: Path
    header: file_pb2.TrialFileHeader
    params: common_pb2.TrialParams
    samples: list[bytes] = field(default_factory=list)
    end: file_pb2.TrialFileEnd | None = None
    cut_off: bool = False
    size: int = 0

    @property
    def trial_id(self) -> str:
        return self.header.trial_id

    @property
    def complete(self) -> bool:
        """The trial's stream ended normally and every record is intact."""
        return self.end is not None and not self.end.error and not self.cut_off

    @property
    def status(self) -> str:
        """"complete", "cut off", "in flight or interrupted" (no end), or "stream failed: ..."."""
        if self.cut_off:
            return "cut off"
        if self.end is None:
            return "in flight or interrupted"
        if self.end.error:
            return f"stream failed: {self.end.error}"
        return "complete"

    def sample(self, index: int) -> datalog_pb2.DatalogSample:
        return datalog_pb2.DatalogSample.FromString(self.samples[index])


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    return data if data is not None else b""


def _check_preamble(stream: BinaryIO, path: Path) -> None:
    raw = _read_exact(stream, _PREAMBLE.size)
    if len(raw) < _PREAMBLE.size:
        if MAGIC.startswith(raw[: len(MAGIC)]):
            raise TruncatedTrialFileError(f"{path}: cut off at byte {len(raw)}, inside the file preamble", str(path), 0)
        raise CorruptTrialFileError(f"{path}: not a cogment_gym trial file (no magic {MAGIC!r} at byte 0)", str(path), 0)
    magic, version, _ = _PREAMBLE.unpack(raw)
    if magic != MAGIC:
        raise CorruptTrialFileError(f"{path}: not a cogment_gym trial file: expected magic {MAGIC!r} at byte 0, got {magic!r}", str(path), 0)
    if version != FORMAT_VERSION:
        raise CorruptTrialFileError(
            f"{path}: trial file format version {version} is not supported (this cogment_gym reads version {FORMAT_VERSION})",
            str(path), 8,
        )


def iter_records(stream: BinaryIO, path: Path, *, start: int | None = None) -> Iterator[tuple[int, int, bytes]]:
    """``(offset, kind, body)`` of each whole record; checks the preamble first unless ``start``
    (a record offset) is given. Raises TruncatedTrialFileError at a partial record and
    CorruptTrialFileError at a damaged one."""
    if start is None:
        _check_preamble(stream, path)
        offset = _PREAMBLE.size
    else:
        stream.seek(start)
        offset = start
    while True:
        head = _read_exact(stream, _RECORD.size)
        if not head:
            return
        if len(head) < _RECORD.size:
            raise TruncatedTrialFileError(f"{path}: cut off at byte {offset + len(head)}, inside the record that starts at byte {offset}", str(path), offset)
        kind, length, crc = _RECORD.unpack(head)
        if kind not in _KINDS:
            raise CorruptTrialFileError(f"{path}: damaged at byte {offset}: unknown record kind {kind} (expected 1, 2 or 3)", str(path), offset)
        if length > MAX_RECORD:
            raise CorruptTrialFileError(f"{path}: damaged at byte {offset}: a {_KINDS[kind]} record of {length} bytes (at most {MAX_RECORD})", str(path), offset)
        body = _read_exact(stream, length)
        if len(body) < length:
            raise TruncatedTrialFileError(
                f"{path}: cut off at byte {offset + _RECORD.size + len(body)}, inside the {_KINDS[kind]} record that starts at byte {offset} "
                f"({len(body)} of its {length} bytes are there)", str(path), offset,
            )
        if zlib.crc32(body, zlib.crc32(bytes((kind,)))) != crc:
            raise CorruptTrialFileError(f"{path}: damaged at byte {offset}: the {_KINDS[kind]} record's checksum does not match its {length} bytes", str(path), offset)
        yield offset, kind, body
        offset += _RECORD.size + length


def _parse(message_type: type[_M], body: bytes, path: Path, offset: int, what: str) -> _M:
    try:
        return message_type.FromString(body)
    except DecodeError as err:
        raise CorruptTrialFileError(f"{path}: damaged at byte {offset}: the {what} record does not parse ({err})", str(path), offset) from None


def _header_of(offset: int, kind: int, body: bytes, path: Path) -> tuple[file_pb2.TrialFileHeader, common_pb2.TrialParams]:
    if kind != HEADER:
        raise CorruptTrialFileError(f"{path}: damaged at byte {offset}: expected the header record first, got a {_KINDS[kind]} record", str(path), offset)
    header = _parse(file_pb2.TrialFileHeader, body, path, offset, "header")
    return header, _parse(common_pb2.TrialParams, header.trial_params, path, offset, "header's trial params")


def read_header(path: str | os.PathLike[str]) -> tuple[file_pb2.TrialFileHeader, common_pb2.TrialParams]:
    """The header record and trial params of a trial file (reads only the file's start)."""
    path = Path(path)
    with open(path, "rb") as stream:
        for offset, kind, body in iter_records(stream, path):
            return _header_of(offset, kind, body, path)
    raise TruncatedTrialFileError(f"{path}: cut off at byte {_PREAMBLE.size}: no header record", str(path), _PREAMBLE.size)


def read_trial_file(path: str | os.PathLike[str], *, allow_cut_off: bool = True) -> TrialFile:
    """Read a whole trial file.

    Args:
        path: the file.
        allow_cut_off: a file that ends inside a record (after its header) is returned with
            ``cut_off=True`` and the records before the cut; False raises TruncatedTrialFileError.

    Raises:
        CorruptTrialFileError: damaged bytes (with the file and the offset).
        TruncatedTrialFileError: cut off before its header ends, or anywhere if not ``allow_cut_off``.
    """
    path = Path(path)
    trial: TrialFile | None = None
    with open(path, "rb") as stream:
        records = iter_records(stream, path)
        try:
            for offset, kind, body in records:
                if trial is None:
                    header, params = _header_of(offset, kind, body, path)
                    trial = TrialFile(path=path, header=header, params=params)
                elif trial.end is not None:
                    raise CorruptTrialFileError(f"{path}: damaged at byte {offset}: a {_KINDS[kind]} record after the end record", str(path), offset)
                elif kind == SAMPLE:
                    trial.samples.append(body)
                elif kind == END:
                    trial.end = _parse(file_pb2.TrialFileEnd, body, path, offset, "end")
                else:
                    raise CorruptTrialFileError(f"{path}: damaged at byte {offset}: a second header record", str(path), offset)
                trial.size = offset + _RECORD.size + len(body)
        except TruncatedTrialFileError:
            if trial is None or not allow_cut_off:
                raise
            trial.cut_off = True
    if trial is None:
        raise TruncatedTrialFileError(f"{path}: cut off at byte {_PREAMBLE.size}: no header record", str(path), _PREAMBLE.size)
    if trial.end is not None and trial.end.samples != len(trial.samples):
        raise CorruptTrialFileError(
            f"{path}: damaged: its end record counts {trial.end.samples} samples, the file holds {len(trial.samples)}",
            str(path), trial.size,
        )
    return trial
