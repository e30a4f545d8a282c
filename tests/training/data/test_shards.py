from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from training.data.shards import SCHEMA, ClipRecord, DatasetWriter, ShardWriter, carve_selection_split, load_manifest


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


@pytest.fixture
def two_split_dataset(tmp_path: Path) -> Path:
    """A dataset as written before the selection split existed: ``train`` and the official ``val``,
    3 classes × 10 training clips of real video, 2 validation clips each."""
    import numpy as np

    from training.data.codec import encode_clip
    from training.data.embedded import render_clip

    out = tmp_path / "data"
    with DatasetWriter(out, ["a", "b", "c"], source="unit") as writer:
        for label in range(3):
            for k in range(12):
                frames = render_clip(label, np.random.default_rng([label, k]), num_frames=4, size=16)
                record = ClipRecord(f"{label}-{k}", label, "abc"[label], encode_clip(frames), "mp4", 4, "unit")
                writer.write("val" if k < 2 else "train", record)
    return out


def test_carving_gives_an_old_dataset_its_selection_split_without_rewriting_a_shard(two_split_dataset: Path) -> None:
    from training.data.stream import ClipSampling, iterate_clips

    shards = {p.name: p.read_bytes() for p in two_split_dataset.glob("*.parquet")}
    carved = carve_selection_split(two_split_dataset, fraction=0.2, seed=0)
    assert {p.name: p.read_bytes() for p in two_split_dataset.glob("*.parquet")} == shards
    manifest = load_manifest(two_split_dataset)
    assert manifest == carved and sorted(manifest.splits) == ["test", "train", "tune"]
    assert manifest.splits["tune"].class_counts == [2, 2, 2] and manifest.splits["train"].class_counts == [8, 8, 8]
    assert manifest.splits["test"].class_counts == [2, 2, 2]  # the official validation split

    sampling = ClipSampling(num_frames=4, size=16, train=False)
    seen: dict[str, list[int]] = {}
    for split in ("train", "tune"):
        source = manifest.split(two_split_dataset, split)
        batches = iterate_clips(source.paths, sampling, batch_size=5, rows=source.rows)
        seen[split] = [label for batch in batches for label in batch.labels.tolist()]
    assert sorted(seen["tune"]) == [0, 0, 1, 1, 2, 2] and len(seen["train"]) == 24
    with pytest.raises(ValueError, match="keeps only some rows"):
        manifest.shard_paths(two_split_dataset, "train")


def test_a_dataset_is_carved_once_and_a_missing_selection_split_says_how_to_add_it(two_split_dataset: Path) -> None:
    with pytest.raises(ValueError, match=r"has no split 'tune'.*`specdistill carve .*data`"):
        load_manifest(two_split_dataset).split(two_split_dataset, "tune")
    carve_selection_split(two_split_dataset)
    with pytest.raises(ValueError, match="already has a selection split"):
        carve_selection_split(two_split_dataset)
