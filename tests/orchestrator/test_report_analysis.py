"""The report answers "what mattered": parameter importance, optimisation history with the CE-only
baseline, parallel coordinates (sweep directories as Tune leaves them; no Ray)."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image

from orchestrator.analysis import ce_only_baseline, importances
from orchestrator.report import write_report
from orchestrator.results import read_sweep, trial_rows
from orchestrator.study_plots import HISTORY_PNG, IMPORTANCE_PNG, PARALLEL_PNG
from training.config import DataConfig, OptimConfig, TrainConfig

TRAIN = TrainConfig(
    stage="distill",
    data=DataConfig(path="absent", num_frames=8, size=32),
    model="tsm_mobilenet_v2",
    teachers=["absent-teacher"],
    optim=OptimConfig(epochs=2, batch_size=8),
)


def _search_sweep(directory: Path, sweep_files, rng, trials: int = 24) -> Path:
    """An Optuna-like sweep whose accuracy follows the learning rate and ignores the KD weight."""
    for index in range(trials):
        lr, kd = float(10 ** rng.uniform(-3.5, -1.5)), float(rng.uniform(0.1, 5.0))
        top1 = 0.9 - 0.15 * abs(math.log10(lr) + 2.5) + float(rng.normal(0, 0.005))
        params = sweep_files.params(TRAIN, overrides={"optim.lr": lr, "objective.kd_weight": kd})
        sweep_files.write_trial(directory, index, params, [top1 - 0.1, top1], f"s_{index:05d}")
    return directory


def test_importance_finds_the_parameter_the_accuracy_follows(tmp_path, sweep_files, rng) -> None:
    rows = trial_rows(read_sweep(_search_sweep(tmp_path, sweep_files, rng)), "val_top1", "max")
    importance = importances(rows, ["objective.kd_weight", "optim.lr"], "max")
    assert list(importance) == ["optim.lr", "objective.kd_weight"], importance
    assert importance["optim.lr"] > 2 * importance["objective.kd_weight"] and abs(sum(importance.values()) - 1) < 1e-9


def test_too_few_trials_or_nothing_varied_give_no_importance(tmp_path, sweep_files, rng) -> None:
    rows = trial_rows(read_sweep(_search_sweep(tmp_path, sweep_files, rng, trials=3)), "val_top1", "max")
    assert importances(rows, ["optim.lr"], "max") is None
    page = (Path(write_report(tmp_path)).parent / "report.md").read_text()
    assert "no parameter importance: it needs 4 trials" in page


def test_the_report_draws_what_mattered_and_the_ce_only_baseline(tmp_path, sweep_files, rng) -> None:
    grid = tmp_path / "grid"
    variants = {"ce_only": {"objective.terms": ["ce"]}, "full": {}}
    for index, (variant, seed) in enumerate((v, s) for v in variants for s in range(3)):
        top1 = (0.70 if variant == "ce_only" else 0.80) + 0.01 * seed
        params = sweep_files.params(TRAIN, variants=variants, variant=variant, seed=seed)
        sweep_files.write_trial(grid, index, params, [top1 - 0.2, top1], f"g_{index:05d}")
    rows = trial_rows(read_sweep(grid), "val_top1", "max")
    assert abs(ce_only_baseline(rows) - 0.71) < 1e-9
    importance = importances(rows, ["variant", "seed"], "max")
    assert next(iter(importance)) == "variant"

    report = Path(write_report(grid))
    markdown = (report.parent / "report.md").read_text()
    assert (
        "CE-only baseline (trials trained with cross-entropy alone): 0.7100; the best trial is +0.1100 from it."
        in markdown
    )
    assert "What mattered most for val_top1 (PED-ANOVA importance): `variant`" in markdown
    assert "| full | 3 | 0.8100 | 0.0100 | 0.8000 | 0.8200 |" in markdown  # per variant, over its seeds
    assert "| ce_only | 3 | 0.7100 | 0.0100 | 0.7000 | 0.7200 |" in markdown
    page = report.read_text()
    for name in (HISTORY_PNG, IMPORTANCE_PNG, PARALLEL_PNG):
        with Image.open(report.parent / name) as image:
            image.verify()
        assert f'<img src="{name}"' in page
