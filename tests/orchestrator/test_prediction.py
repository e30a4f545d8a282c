"""``predict`` scores a video file exactly as ``evaluate`` scores the same clip inside a dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from orchestrator.cli import main
from orchestrator.evaluation import model_probabilities
from orchestrator.prediction import predict_files
from training.checkpoint import export_model, load_exported, write_ensemble
from training.data.shards import load_manifest
from training.models import create_model


def _test_videos(data: Path, directory: Path) -> list[Path]:
    """The test split's clips, in evaluation's order, each written out as the file it was ingested from."""
    source = load_manifest(data).split(data, "test")
    videos = []
    for shard in source.paths:
        for index, video in enumerate(pq.read_table(shard, columns=["video"]).column("video").to_pylist()):
            path = directory / f"{Path(shard).stem}-{index}.mp4"
            path.write_bytes(video)
            videos.append(path)
    return videos


@pytest.mark.parametrize("clips", [1, 2])
def test_a_file_scores_as_its_clip_does_in_evaluate(motion_shards, exported_teacher, tmp_path, clips) -> None:
    data, manifest = motion_shards
    videos = _test_videos(data, tmp_path)
    expected = model_probabilities(exported_teacher, data, split="test", clips=clips)
    assert len(videos) == len(expected.labels) == 10

    predictions, errors = predict_files(exported_teacher, videos, top=3, clips=clips)
    assert errors == []
    for prediction, probabilities in zip(predictions, expected.probs, strict=True):
        order = np.argsort(-probabilities, kind="stable")[:3]
        assert [name for name, _ in prediction.top] == [manifest.classes[i] for i in order]
        np.testing.assert_allclose([p for _, p in prediction.top], probabilities[order], atol=1e-5)


def test_an_ensemble_averages_its_members(motion_shards, exported_teacher, tmp_path) -> None:
    data, manifest = motion_shards
    (video,) = _test_videos(data, tmp_path)[:1]
    first = shutil.copytree(exported_teacher, tmp_path / "pair" / "a")
    _, card = load_exported(exported_teacher)
    torch.manual_seed(7)
    other = create_model(card.model, num_classes=len(card.classes), num_frames=card.num_frames)  # other weights
    second = export_model(tmp_path / "pair" / "b", other, card)
    ensemble = write_ensemble(tmp_path / "pair", [str(first), second], {})
    expected = np.mean([model_probabilities(member, data, split="test").probs[0] for member in (first, second)], axis=0)
    (pair,), _ = predict_files(ensemble, [video], top=len(manifest.classes))
    assert dict(pair.top) == pytest.approx(dict(zip(manifest.classes, expected.tolist(), strict=True)), abs=1e-5)
    (alone,), _ = predict_files(first, [video], top=len(manifest.classes))
    assert dict(alone.top) != pytest.approx(dict(pair.top), abs=1e-4)  # the second member counts


def test_unreadable_files_cost_only_themselves(motion_shards, exported_teacher, tmp_path, capsys) -> None:
    data, _ = motion_shards
    good = _test_videos(data, tmp_path)[0]
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    missing = tmp_path / "missing.mp4"
    assert main(["predict", str(exported_teacher), str(text), str(good), str(missing), "--top", "2"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.out.splitlines()
    assert line.startswith(f"{good}: ") and len(line.split("  ")) == 2
    assert f"{text}: not a readable container" in captured.err
    assert f"{missing}: " in captured.err and "No such file" in captured.err
