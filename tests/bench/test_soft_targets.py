"""``bench/soft_targets.py``: softened-target statistics and logit gradients against closed forms."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import soft_targets
from bench.soft_targets import target_stats


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_target_stats_match_the_closed_forms(temperature: float) -> None:
    """Per clip, ``∂CE/∂z = softmax(z) − onehot(y)`` and ``∂(τ² KL)/∂z = τ (softmax(z/τ) − softmax(t/τ))``."""
    rng = np.random.default_rng(0)
    teacher = rng.normal(scale=5.0, size=(6, 10))
    student = rng.normal(scale=0.3, size=(6, 10))
    labels = rng.integers(0, 10, size=6)
    stats = target_stats(torch.tensor(teacher), torch.tensor(student), torch.tensor(labels), temperature)

    target = softmax(teacher / temperature)
    onehot = np.eye(10)[labels]
    assert stats.true_class_probability == pytest.approx(target[np.arange(6), labels].mean())
    assert stats.entropy == pytest.approx(-(target * np.log(target)).sum(axis=1).mean())
    assert stats.ce == pytest.approx(-np.log(softmax(student)[np.arange(6), labels]).mean())
    student_soft = softmax(student / temperature)
    kl = (target * (np.log(target) - np.log(student_soft))).sum(axis=1).mean()
    assert stats.kd == pytest.approx(kl * temperature**2)
    assert stats.ce_grad_norm == pytest.approx(np.linalg.norm(softmax(student) - onehot, axis=1).mean())
    kd_grad = temperature * (student_soft - target)
    assert stats.kd_grad_norm == pytest.approx(np.linalg.norm(kd_grad, axis=1).mean())


def test_script_prints_one_row_per_temperature_for_a_kept_run(
    motion_shards, exported_teacher: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "data").symlink_to(motion_shards[0])
    (keep / "teacher").symlink_to(exported_teacher)
    argv = ["soft_targets.py", "--keep", str(keep), "--clips", "20", "--temperatures", "1", "4"]
    monkeypatch.setattr(sys, "argv", argv)
    soft_targets.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("teacher top-1 on these clips:")
    rows = [line for line in lines if line.startswith("| 1 |") or line.startswith("| 4 |")]
    assert len(rows) == 2


def test_script_names_a_missing_teacher(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.setattr(sys, "argv", ["soft_targets.py", "--keep", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"teacher: missing"):
        soft_targets.main()
