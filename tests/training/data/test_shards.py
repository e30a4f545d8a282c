from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from training.data.shards import SCHEMA, ClipRecord, DatasetWriter, ShardWriter, load_manifest


def _record(index: int, label: int = 0, size: int = 1000) -> ClipRecord:
    return ClipRecord(
        clip_id=f"clip-{index}",
        label=label,
        label_name=["a", "b"][label],
        video=bytes([index % 256]) * size,
        container="mp4",
        num_frames=8,
        source=f"test:{index}",
    )


def test_shard_writer_rolls_files_at_target_size_and_keeps_small_row_groups(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, "train", shard_bytes=10_000, row_group_bytes=3_000)
    for index in range(25):
        writer.write(_record(index))
    writer.close()
    assert writer.files == ["train-00000.parquet", "train-00001.parquet", "train-00002.parquet"]
    rows = [pq.ParquetFile(tmp_path / f).metadata for f in writer.files]
    assert [m.num_rows for m in rows] == [12, 12, 1]
    assert all(m.row_group(0).num_rows == 3 for m in rows[:2])
    table = pq.read_table([str(tmp_path / f) for f in writer.files])
    assert table.schema.equals(SCHEMA)
    assert table.column("clip_id").to_pylist() == [f"clip-{i}" for i in range(25)]


def test_dataset_writer_writes_manifest_with_counts(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, ["a", "b"], source="unit") as writer:
        for index in range(5):
            writer.write("train", _record(index, label=index % 2))
        writer.write("val", _record(9, label=1))
    manifest = load_manifest(tmp_path)
    assert manifest.classes == ["a", "b"]
    assert manifest.splits["train"].clips == 5
    assert manifest.splits["train"].class_counts == [3, 2]
    assert manifest.splits["val"].class_counts == [0, 1]
    assert manifest.shard_paths(tmp_path, "val") == [str((tmp_path / "val-00000.parquet").resolve())]


def test_dataset_writer_leaves_no_manifest_when_writing_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path, ["a", "b"], source="unit") as writer:
        writer.write("train", _record(0))
        raise RuntimeError("disk full")
    assert not (tmp_path / "dataset.json").exists()


def test_dataset_writer_refuses_a_label_outside_the_classes(tmp_path: Path) -> None:
    record = ClipRecord("x", 1, "c", b"v", "mp4", 8, "t")
    with pytest.raises(ValueError, match="clip x: label 1"), DatasetWriter(tmp_path, ["a", "b"], source="u") as writer:
        writer.write("train", record)


def test_dataset_writer_refuses_to_overwrite(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path, ["a", "b"], source="unit") as writer:
        writer.write("train", _record(0))
    with pytest.raises(FileExistsError, match=r"dataset\.json"):
        DatasetWriter(tmp_path, ["a"], source="again")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.update(schema_version=99), "schema_version is 99"),
        (lambda m: m.update(classes=[]), "'classes'"),
        (lambda m: m.update(splits={}), "'splits' is empty"),
        (lambda m: m["splits"]["train"].pop("clips"), "'splits.train' is malformed"),
        (lambda m: m["splits"]["train"]["shards"].append("gone.parquet"), "gone.parquet, which is missing"),
    ],
)
def test_load_manifest_names_the_bad_field(tmp_path: Path, edit, match: str) -> None:
    with DatasetWriter(tmp_path, ["a", "b"], source="unit") as writer:
        writer.write("train", _record(0))
    path = tmp_path / "dataset.json"
    payload = json.loads(path.read_text())
    edit(payload)
    path.write_text(json.dumps(payload))
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        load_manifest(tmp_path)


def test_load_manifest_explains_a_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="specdistill synth/ingest"):
        load_manifest(tmp_path)
