"""Sweeps against real Ray (the session's local ``ray.init(num_cpus=4)``), end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.evaluation import evaluate_export
from orchestrator.report import write_report
from orchestrator.results import read_sweep
from orchestrator.selection import export_best, rank_trials
from orchestrator.sweep import run_sweep
from training.checkpoint import load_exported

pytestmark = pytest.mark.slow

# OptunaSearch(seed=11) draws lr = 1e-6, 0.3, 0.3 for three trials (TPE's random start-up, fixed
# by the seed and the pinned optuna). Two steps at lr 0.3 wreck the student's validation loss, so
# ASHA's first rung must stop trial 2: its loss is above the mean of the two recorded so far.
ASHA_SPACE = {"parameters": {"optim.lr": {"type": "categorical", "choices": [1e-6, 0.3]}}}


def test_optuna_sweep_with_asha_stops_a_bad_trial_and_its_best_and_top_two_export(
    ray_local, write_sweep, motion_shards, tmp_path: Path
) -> None:
    """One sweep, then everything a user does with it: best, report, TensorBoard, top-k, ensemble.
    Exports skip the ONNX/torch.export conversions (``--no-portable``), which
    ``tests/training/test_portable.py`` and the S3 end-to-end test pin."""
    config = write_sweep(
        "asha",
        space=ASHA_SPACE,
        tune={
            "num_samples": 3,
            "metric": "val_loss",
            "mode": "min",
            "seed": 11,
            "scheduler": "asha",
            "asha": {"grace_period": 1, "reduction_factor": 2},
        },
    )
    outcome = run_sweep(config)
    assert outcome.errored == [] and outcome.trials == 3
    trials = read_sweep(outcome.sweep_dir)
    learning_rates = [t.spec.overrides["optim.lr"] for t in trials]
    assert sorted(learning_rates) == [1e-6, 0.3, 0.3]
    epochs_run = {t.spec.overrides["optim.lr"]: [] for t in trials}
    for trial in trials:
        epochs_run[trial.spec.overrides["optim.lr"]].append(trial.results[-1]["epoch"])
    assert epochs_run[1e-6] == [2]
    assert 1 in epochs_run[0.3], f"ASHA stopped no trial early: {epochs_run}"
    for trial in trials:
        result = trial.results[-1]
        assert {"val_top1", "val_top5", "val_loss", "train/kd", "train/spectrum", "clips_per_s"} <= set(result)

    best = rank_trials(outcome.sweep_dir, "val_loss", "min")[0]
    assert best.record.spec.overrides["optim.lr"] == 1e-6
    exported = export_best(outcome.sweep_dir, tmp_path / "best", metric="val_loss", mode="min", portable=False)[0]
    _, card = load_exported(exported)
    assert card.model == "tsm_mobilenet_v2" and card.num_frames == 8 and card.size == 32
    assert card.provenance["trial_id"] == best.record.trial_id
    data_dir, manifest = motion_shards
    report = evaluate_export(exported, data_dir, clips=2)
    assert report.clips == manifest.splits["test"].clips
    assert sorted(report.per_class) == sorted(manifest.classes)
    assert report.confusion.sum() == report.clips

    # The report scores the trial `best` picked on the test split, as `evaluate` does.
    page = Path(write_report(outcome.sweep_dir, tmp_path / "report", metric="val_loss")).read_text()
    on_test = evaluate_export(exported, data_dir)
    assert "On the test split" in page and f"<td>{best.record.trial_id}</td>" in page
    assert f"<td>{on_test.top1:.4f}</td><td>{on_test.top5:.4f}</td><td>{on_test.clips}</td>" in page

    # TensorBoard, installed with the package, reads the trials' event files the sweep points it at.
    inspected = subprocess.run(
        [str(Path(sys.executable).parent / "tensorboard"), "--inspect", "--logdir", outcome.sweep_dir],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ray/tune/val_loss" in inspected.stdout

    # The same through the CLI, ranking by a metric to minimise.
    ranking = ["--metric", "val_loss", "--mode", "min", "--top-k", "2"]
    assert main(["best", outcome.sweep_dir, *ranking, "--export", str(tmp_path / "top2"), "--no-portable"]) == 0
    assert (tmp_path / "top2" / "top1" / "model.safetensors").is_file()
    assert (tmp_path / "top2" / "top2" / "model.json").is_file()

    # The top two as an ensemble, scored against its members, then evaluated like any export.
    ensemble = tmp_path / "ensemble"
    command = ["ensemble", outcome.sweep_dir, *ranking, "--data", str(data_dir), "--export", str(ensemble)]
    assert main([*command, "--no-portable"]) == 0
    members = json.loads((ensemble / "ensemble.json").read_text())["members"]
    assert len(members) == 2 and not list(ensemble.rglob("model.onnx"))
    report = evaluate_export(ensemble, data_dir)
    assert 0 <= report.top1 <= 1 and report.clips == manifest.splits["test"].clips
    assert main(["evaluate", str(ensemble), "--data", str(data_dir)]) == 0


def test_a_trial_with_repeats_is_ranked_by_its_runs_mean_and_exports_its_best_run_or_all(
    ray_local, write_sweep, motion_shards, exported_teacher, tmp_path
) -> None:
    """Its students also learn from a teacher ensemble directory: every member is a teacher."""
    from training.checkpoint import write_ensemble

    ensemble = tmp_path / "teachers"
    members = [shutil.copytree(exported_teacher, ensemble / f"member{i}") for i in range(2)]
    write_ensemble(ensemble, members, {"note": "two copies of one teacher"})
    space = {"variants": {"a": {}, "b": {"optim.lr": 0.004}}}
    outcome = run_sweep(write_sweep("repeats", space=space, tune={"repeats": 2}, train={"teachers": [str(ensemble)]}))
    assert outcome.errored == []
    for trial in read_sweep(outcome.sweep_dir):
        last = trial.results[-1]
        assert last["epoch"] == 2 and "train/spectrum" in last
        runs = [last["repeat0/val_top1"], last["repeat1/val_top1"]]
        assert last["repeats"] == 2 and last["val_top1"] == pytest.approx(sum(runs) / 2)
    best = rank_trials(outcome.sweep_dir)[0]
    runs = [best.result["repeat0/val_top1"], best.result["repeat1/val_top1"]]
    (single,) = export_best(outcome.sweep_dir, tmp_path / "best", portable=False)
    card = load_exported(single)[1]
    assert card.provenance["repeat"] == str(runs.index(max(runs)))
    assert card.config["seed"] == int(card.provenance["seed"]) and card.teachers == [str(ensemble)]
    assert (
        main(["best", outcome.sweep_dir, "--repeats-as-ensemble", "--export", str(tmp_path / "ens"), "--no-portable"])
        == 0
    )
    members = json.loads((tmp_path / "ens" / "ensemble.json").read_text())["members"]
    assert members == ["repeat0", "repeat1"]
    data_dir, _ = motion_shards
    assert evaluate_export(tmp_path / "ens", data_dir).clips > 0
    page = Path(write_report(outcome.sweep_dir, tmp_path / "report", test_top=0)).read_text()
    assert "mean over its runs" in page and " ± " in page
