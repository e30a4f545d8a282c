from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from training.data.codec import probe_clip
from training.data.embedded import MOTION_CLASSES, SynthSpec, write_embedded_dataset
from training.data.shards import load_manifest


def _table(root: Path, split: str):
    return pq.read_table(load_manifest(root).shard_paths(root, split))


def test_synth_writes_balanced_train_tune_and_test_splits(tmp_path: Path) -> None:
    spec = SynthSpec(clips_per_class=10, num_frames=6, size=32, test_fraction=0.2, tune_fraction=0.25)
    write_embedded_dataset(tmp_path, spec)
    manifest = load_manifest(tmp_path)
    assert manifest.classes == list(MOTION_CLASSES)
    assert manifest.splits["test"].class_counts == [2] * 10
    assert manifest.splits["tune"].class_counts == [2] * 10  # a quarter of the 8 left
    assert manifest.splits["train"].class_counts == [6] * 10
    table = _table(tmp_path, "train")
    assert set(table.column("container").to_pylist()) == {"mp4"}
    first = table.slice(0, 1).to_pylist()[0]
    assert probe_clip(first["video"]).num_frames == first["num_frames"] == 6
    assert MOTION_CLASSES[first["label"]] == first["label_name"]


def test_synth_shards_are_not_sorted_by_class(tmp_path: Path) -> None:
    write_embedded_dataset(tmp_path, SynthSpec(clips_per_class=5, num_frames=4, size=32))
    labels = np.array(_table(tmp_path, "train").column("label").to_pylist())
    assert (np.diff(labels) != 0).sum() > len(labels) // 2


def test_synth_is_deterministic_for_a_seed_whatever_the_worker_count(tmp_path: Path) -> None:
    spec = SynthSpec(clips_per_class=3, num_frames=4, size=32, seed=7)
    write_embedded_dataset(tmp_path / "one", spec, workers=1)
    write_embedded_dataset(tmp_path / "two", spec, workers=2)
    write_embedded_dataset(tmp_path / "other", SynthSpec(clips_per_class=3, num_frames=4, size=32, seed=8))
    one, two = _table(tmp_path / "one", "train"), _table(tmp_path / "two", "train")
    assert one.equals(two)
    assert one.column("video") != _table(tmp_path / "other", "train").column("video")


def test_synth_spec_refuses_too_few_clips() -> None:
    with pytest.raises(ValueError, match="clips_per_class"):
        SynthSpec(clips_per_class=2)  # one each for train, tune and test at least
