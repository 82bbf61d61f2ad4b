"""Trial files: what is written reads back; a cut-off file and a damaged one are told apart,
with the file and the byte offset named."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pytest

from cogment_gym._proto.cogment.api import common_pb2, datalog_pb2
from cogment_gym.datastore import MAGIC, IncompleteTrialWarning, TrialStore, episodes, read_trial_file
from cogment_gym.datastore.fileformat import FORMAT_VERSION, TrialFileWriter, iter_records
from cogment_gym.datastore.store import trial_file_name
from cogment_gym.errors import CorruptTrialFileError, TrialFileError, TruncatedTrialFileError

PARAMS = common_pb2.TrialParams(max_steps=7, actors=[common_pb2.ActorParams(name="player", actor_class="player")])


def _sample(tick: int, state: int = 2) -> datalog_pb2.DatalogSample:
    sample = datalog_pb2.DatalogSample()
    sample.info.tick_id = tick
    sample.info.state = state  # type: ignore[assignment]
    sample.observations.observations.append(b"obs-%d" % tick)
    sample.observations.actors_map.append(0)
    return sample


def _write(path: Path, ticks: int = 3, *, end: bool = True) -> TrialFileWriter:
    writer = TrialFileWriter(path, "trial-1", "me", PARAMS)
    for tick in range(ticks):
        writer.sample(_sample(tick, 5 if tick == ticks - 1 else 2))
    if end:
        writer.close()
    else:
        writer.abandon()
    return writer


def test_written_file_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "t.cgtrial"
    _write(path)
    data = path.read_bytes()
    assert data[:8] == MAGIC and struct.unpack("<H", data[8:10])[0] == FORMAT_VERSION
    trial = read_trial_file(path)
    assert trial.complete and trial.status == "complete"
    assert trial.trial_id == "trial-1" and trial.header.user_id == "me" and trial.params == PARAMS
    assert [trial.sample(i).info.tick_id for i in range(3)] == [0, 1, 2]
    assert trial.end is not None and trial.end.samples == 3 and trial.end.last_state == 5 and not trial.end.error
    assert trial.size == len(data)


def test_a_file_without_end_is_incomplete_and_replay_skips_it(tmp_path: Path) -> None:
    _write(tmp_path / "t.cgtrial", end=False)
    trial = read_trial_file(tmp_path / "t.cgtrial")
    assert not trial.complete and trial.end is None and len(trial.samples) == 3
    assert TrialStore(tmp_path).trials()[0].status == "in flight or interrupted"
    with pytest.warns(IncompleteTrialWarning, match=r"trial-1 \(.*t\.cgtrial\): in flight or interrupted"):
        assert list(episodes(tmp_path)) == []


@pytest.mark.parametrize("cut", [1, 5, 9, 12])
def test_a_file_cut_mid_record_keeps_its_whole_records(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "t.cgtrial"
    _write(path)
    offsets = [offset for offset, _, _ in iter_records(open(path, "rb"), path)]
    last_sample = offsets[-2]  # the end record is last
    data = path.read_bytes()
    path.write_bytes(data[: last_sample + cut])  # inside the last sample record (header: 9 bytes)
    trial = read_trial_file(path)
    assert trial.cut_off and not trial.complete and len(trial.samples) == 2
    with pytest.raises(TruncatedTrialFileError) as raised:
        read_trial_file(path, allow_cut_off=False)
    assert raised.value.offset == last_sample and str(path) in str(raised.value)
    assert isinstance(raised.value, TrialFileError) and isinstance(raised.value, ValueError)
    with pytest.warns(IncompleteTrialWarning, match=r"t\.cgtrial\): cut off"):
        assert list(episodes(tmp_path)) == []


def test_a_file_cut_inside_its_header_is_skipped_too(tmp_path: Path) -> None:
    path = tmp_path / "t.cgtrial"
    _write(path)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(TruncatedTrialFileError, match="cut off at byte 20"):
        read_trial_file(path)
    with pytest.warns(IncompleteTrialWarning, match=r"skipping .*t\.cgtrial: .*cut off"):
        assert list(episodes(tmp_path)) == []


def test_a_damaged_record_is_a_typed_error_naming_file_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "t.cgtrial"
    _write(path)
    offsets = [offset for offset, _, _ in iter_records(open(path, "rb"), path)]
    data = bytearray(path.read_bytes())
    data[offsets[2] + 9 + 2] ^= 0xFF  # a byte of the second sample's body
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptTrialFileError) as raised:
        read_trial_file(path)
    err = raised.value
    assert err.path == str(path) and err.offset == offsets[2]
    assert f"{path}: damaged at byte {offsets[2]}" in str(err) and "checksum" in str(err)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CorruptTrialFileError, match="damaged at byte"):
            list(episodes(tmp_path))


def test_bad_magic_version_and_kind(tmp_path: Path) -> None:
    path = tmp_path / "t.cgtrial"
    path.write_bytes(b"not a trial file at all")
    with pytest.raises(CorruptTrialFileError, match=r"not a cogment_gym trial file.*byte 0") as raised:
        read_trial_file(path)
    assert raised.value.offset == 0
    _write(path.with_name("v.cgtrial"))
    data = bytearray(path.with_name("v.cgtrial").read_bytes())
    data[8:10] = struct.pack("<H", 99)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptTrialFileError, match="format version 99 is not supported"):
        read_trial_file(path)
    data[8:10] = struct.pack("<H", FORMAT_VERSION)
    data[12] = 7  # the first record's kind
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptTrialFileError, match="byte 12: unknown record kind 7"):
        read_trial_file(path)


def test_store_names_files_safely_and_keeps_second_recordings(tmp_path: Path) -> None:
    assert trial_file_name("a/b c") == "a%2Fb%20c.cgtrial"
    assert trial_file_name(".hidden") == "%2Ehidden.cgtrial"
    assert len(trial_file_name("x" * 1000)) < 200
    store = TrialStore(tmp_path)
    first = store.create("same", "u", PARAMS)
    second = store.create("same", "u", PARAMS)
    assert first.path.name == "same.cgtrial" and second.path.name == "same-2.cgtrial"
    assert [t.status for t in store.trials()] == ["recording", "recording"]
    store.finished(first)
    store.finished(second, "broke")
    assert [t.status for t in store.trials()] == ["complete", "stream failed: broke"]
    assert store.delete(["same"]) == 2 and store.trials() == []
