"""``evaluate``: scores against numpy, and a model is never scored on another class list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orchestrator.evaluation import Probabilities, evaluate_export, score
from training.checkpoint import ModelCard, export_model
from training.models import create_model


def test_scores_follow_the_averaged_probabilities(rng) -> None:
    probs = rng.dirichlet(np.ones(6), size=40)
    labels = rng.integers(0, 6, 40)
    classes = [f"c{i}" for i in range(6)]
    report = score(Probabilities(probs, labels, skipped=2, classes=classes))
    order = np.argsort(-probs, axis=1)
    assert report.top1 == pytest.approx(np.mean(order[:, 0] == labels))
    assert report.top5 == pytest.approx(np.mean((order[:, :5] == labels[:, None]).any(axis=1)))
    for i, name in enumerate(classes):
        if (labels == i).any():
            assert report.per_class[name] == pytest.approx(np.mean(order[labels == i, 0] == i))
    assert report.confusion.sum() == 40 and (report.clips, report.skipped) == (40, 2)
    assert "top-1" in report.render() and "confusion" in report.render()


def test_a_model_trained_on_other_classes_is_refused_naming_both(motion_shards, tmp_path: Path) -> None:
    data_dir, _ = motion_shards
    model = create_model("tsm_mobilenet_v2", num_classes=3, num_frames=8)
    card = ModelCard(model="tsm_mobilenet_v2", model_kwargs={}, classes=["x", "y", "z"], num_frames=8, size=32)
    export = export_model(tmp_path / "other", model, card)
    with pytest.raises(ValueError, match=rf"{export} was trained on other classes than {data_dir}/dataset.json"):
        evaluate_export(export, data_dir)


def test_an_exported_model_is_scored_on_every_clip_of_the_split(motion_shards, exported_teacher: Path) -> None:
    data_dir, manifest = motion_shards
    report = evaluate_export(exported_teacher, data_dir, clips=2)
    assert report.clips == manifest.splits["test"].clips and report.skipped == 0
    assert sorted(report.per_class) == sorted(manifest.classes)
