"""A directory of trial files: where the datalog service writes and the datastore reads.

One file per trial (``<trial id>.cgtrial``, characters outside ``[A-Za-z0-9._-]`` written as
``%XX``; a second recording of the same id gets ``-2``, ``-3``... ). The store knows which trials
this process is writing right now, so that a reader in the same process can follow them as they
grow; it tells waiters (in any thread or event loop) when something changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2
from cogment_gym.datastore.fileformat import FILE_SUFFIX, TrialFileWriter, read_trial_file
from cogment_gym.errors import TrialFileError

__all__ = ["StoredTrial", "TrialStore", "trial_file_name"]

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_STEM = 180


def trial_file_name(trial_id: str, copy: int = 1) -> str:
    """The file name of a trial id (``copy`` > 1: a later recording of the same id)."""
    stem = _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), trial_id) or "%"
    if stem.startswith("."):  # no hidden files
        stem = "%2E" + stem[1:]
    if len(stem) > _MAX_STEM:  # file names have a length limit; keep them unique
        stem = stem[: _MAX_STEM - 17] + "~" + hashlib.sha256(trial_id.encode()).hexdigest()[:16]
    return f"{stem}{'' if copy == 1 else f'-{copy}'}{FILE_SUFFIX}"


@dataclass
class StoredTrial:
    """One trial of the store, as listed (its samples are read on demand).

    Attributes:
        path: its file.
        trial_id, user_id, params, started: from the file's header.
        samples: sample records in the file so far.
        last_state: the last trial state its samples reported (a cogmentAPI.TrialState number).
        status: "complete", "recording" (this process writes it now), "in flight or interrupted",
            "cut off" or "stream failed: ...".
    """

    path: Path
    trial_id: str
    user_id: str
    params: common_pb2.TrialParams
    started: int
    samples: int
    last_state: int
    status: str

    @property
    def complete(self) -> bool:
        return self.status == "complete"


class _Changes:
    """A change counter that waiters in any thread's event loop can await."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def notify(self) -> None:
        with self._lock:
            self.version += 1
            waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # that loop is closed: its waiter is gone
                pass

    async def wait(self, seen: int, timeout: float | None) -> int:
        """Until the version moves past ``seen`` (or ``timeout`` s passed); returns the version."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self.version != seen:
                return self.version
            entry = (loop, future)
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(entry)
        return self.version


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class TrialStore:
    """The trial files of one directory (created if missing).

    Example:
        >>> store = TrialStore("recorded")                      # doctest: +SKIP
        >>> [t.trial_id for t in store.trials() if t.complete]   # doctest: +SKIP
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.changes = _Changes()
        self._lock = threading.Lock()
        self._writing: dict[Path, TrialFileWriter] = {}
        # path -> ((size, mtime_ns), StoredTrial): files are only appended to, so a file whose
        # size and mtime did not change needs no second read.
        self._cache: dict[Path, tuple[tuple[int, int], StoredTrial]] = {}

    # ------------------------------------------------------------------ writing

    def create(self, trial_id: str, user_id: str, params: common_pb2.TrialParams, *, started: int | None = None) -> TrialFileWriter:
        """A writer for a new trial file (a new name if one of this id exists); ``started``: the
        trial's start in ns since the epoch (default: now)."""
        with self._lock:
            copy = 1
            while True:
                path = self.directory / trial_file_name(trial_id, copy)
                try:
                    writer = TrialFileWriter(path, trial_id, user_id, params, started=started)
                except FileExistsError:
                    copy += 1
                    continue
                break
            self._writing[path] = writer
        self.changes.notify()
        return writer

    def appended(self) -> None:
        """A writer of this store appended records (wakes followers)."""
        self.changes.notify()

    def finished(self, writer: TrialFileWriter, error: str = "") -> None:
        """Close ``writer`` (END record, fsync) and forget it as in flight."""
        try:
            writer.close(error)
        finally:
            with self._lock:
                self._writing.pop(writer.path, None)
            self.changes.notify()

    def abandon_all(self) -> None:
        """Close every file still being written without an END (shutdown): they read as incomplete."""
        with self._lock:
            writers, self._writing = list(self._writing.values()), {}
        for writer in writers:
            writer.abandon()
        self.changes.notify()

    def is_writing(self, path: Path) -> bool:
        with self._lock:
            return path in self._writing

    # ------------------------------------------------------------------ reading

    def paths(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(FILE_SUFFIX) and p.is_file())

    def trials(self, *, on_error: str = "raise") -> list[StoredTrial]:
        """Every trial file, oldest first (by the start time in its header).

        Args:
            on_error: "raise" (a damaged file raises CorruptTrialFileError) or "skip" (logged
                as a warning and left out).
        """
        found: list[StoredTrial] = []
        for path in self.paths():
            try:
                trial = self._describe(path)
            except FileNotFoundError:  # deleted meanwhile
                continue
            except TrialFileError as err:
                if on_error == "raise":
                    raise
                logger.warning("skipping %s", err)
                continue
            found.append(trial)
        found.sort(key=lambda t: (t.started, t.path.name))
        return found

    def _describe(self, path: Path) -> StoredTrial:
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._cache.get(path)
        writing = self.is_writing(path)
        if cached is not None and cached[0] == key:
            trial = cached[1]
            if trial.status == "recording" and not writing:
                trial.status = read_trial_file(path).status
            return trial
        # A file being written may end inside a record that is being written: read as cut off.
        content = read_trial_file(path)
        header = content.header
        last_state = content.end.last_state if content.end is not None else _last_state(content.samples)
        trial = StoredTrial(path, header.trial_id, header.user_id, content.params, header.started,
                            len(content.samples), last_state, "recording" if writing else content.status)
        self._cache[path] = (key, trial)
        return trial

    def find(self, trial_ids: Iterable[str]) -> dict[str, StoredTrial]:
        """The latest recording of each of ``trial_ids`` that the store has."""
        wanted = set(trial_ids)
        found: dict[str, StoredTrial] = {}
        for trial in self.trials(on_error="skip"):
            if trial.trial_id in wanted:
                found[trial.trial_id] = trial
        return found

    def delete(self, trial_ids: Iterable[str]) -> int:
        """Remove the files of these trials (not those being written); returns how many."""
        wanted = set(trial_ids)
        removed = 0
        for trial in self.trials(on_error="skip"):
            if trial.trial_id in wanted and not self.is_writing(trial.path):
                trial.path.unlink(missing_ok=True)
                self._cache.pop(trial.path, None)
                removed += 1
        if removed:
            self.changes.notify()
        return removed


def _last_state(samples: list[bytes]) -> int:
    for body in reversed(samples):
        state = int(datalog_pb2.DatalogSample.FromString(body).info.state)
        if state:
            return state
    return 0

