"""Picking on accuracy and cost: the Pareto front of a sweep's trials, and the best trial under a
latency or FLOPs budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.pareto import Budget, admitted, pareto_front
from orchestrator.selection import rank_trials
from training.checkpoint import load_exported
from training.config import DataConfig, TrainConfig

TRAIN = TrainConfig(stage="teacher", data=DataConfig(path="absent", num_frames=4, size=32), model="tsm_resnet18")


def _sweep(directory: Path, sweep_files, trials: dict[str, tuple[float, float, float]], kept: bool = True) -> Path:
    """Trials ``id: (top1, latency_ms, gflops)``, each a one-epoch curve."""
    params = sweep_files.params(TRAIN)
    for index, (trial_id, (top1, latency, gflops)) in enumerate(trials.items()):
        costs = {"latency_ms_batch1": latency, "gflops_per_clip": gflops, "params": 1000}
        sweep_files.write_trial(directory, index, params, [top1], trial_id, kept=kept, reported=costs)
    return directory


def test_the_front_keeps_exactly_the_trials_nothing_beats_on_both(tmp_path, sweep_files, rng) -> None:
    points = {f"t{i}": (float(a), float(c), 1.0) for i, (a, c) in enumerate(rng.uniform(0, 1, (40, 2)))}
    points |= {"tie_a": (0.99, 0.02, 1.0), "tie_b": (0.99, 0.02, 1.0), "beaten": (0.98, 0.03, 1.0)}
    ranked = rank_trials(_sweep(tmp_path, sweep_files, points))
    front = pareto_front(ranked, "val_top1", "max")
    on_front = {t.record.trial_id for t in front}
    for name, (accuracy, latency, _) in points.items():
        beaten = any(a >= accuracy and c <= latency and (a, c) != (accuracy, latency) for a, c, _ in points.values())
        assert (name in on_front) == (not beaten), name
    assert {"tie_a", "tie_b"} <= on_front and "beaten" not in on_front
    latencies = [t.result["latency_ms_batch1"] for t in front]
    assert latencies == sorted(latencies)  # cheapest first
    # For a metric where less is better, the front flips with it.
    by_loss = {t.record.trial_id for t in pareto_front(rank_trials(tmp_path, "val_loss", "min"), "val_loss", "min")}
    assert by_loss == on_front  # val_loss = 2.5 − top-1 in these files


def test_a_budget_admits_only_trials_within_it(tmp_path, sweep_files) -> None:
    ranked = rank_trials(_sweep(tmp_path, sweep_files, {"fast": (0.5, 2.0, 0.2), "slow": (0.9, 9.0, 0.9)}))
    assert [t.record.trial_id for t in admitted(ranked, Budget(max_latency_ms=5))] == ["fast"]
    assert [t.record.trial_id for t in admitted(ranked, Budget(max_gflops=1.0))] == ["slow", "fast"]
    assert admitted(ranked, Budget(max_latency_ms=5, max_gflops=0.1)) == []


def test_a_sweep_without_costs_is_refused_under_a_budget(tmp_path, sweep_files) -> None:
    sweep_files.write_trial(tmp_path, 0, sweep_files.params(TRAIN), [0.5], "old", kept=True)
    with pytest.raises(ValueError, match="no trial reported latency_ms_batch1: the sweep ran before"):
        admitted(rank_trials(tmp_path), Budget(max_latency_ms=5))


def test_best_lists_the_front_and_exports_the_most_accurate_student_within_the_budget(
    tmp_path, sweep_files, capsys
) -> None:
    import torch

    from training.checkpoint import save_training_state
    from training.distiller import Distiller
    from training.models import create_model

    trials = {"big": (0.9, 9.0, 2.0), "mid": (0.8, 4.0, 1.0), "small": (0.6, 1.0, 0.3), "worse": (0.5, 6.0, 1.5)}
    sweep = _sweep(tmp_path / "sweep", sweep_files, trials, kept=False)
    for index, directory in enumerate(sorted(sweep.iterdir())):
        torch.manual_seed(index)
        student = create_model("tsm_resnet18", num_classes=3, num_frames=4)
        state = Distiller(student).state_dict() | {"classes": ["a", "b", "c"]}
        save_training_state(directory / "checkpoint_000000", state, TRAIN.model_dump(mode="json"))

    command = ["best", str(sweep), "--pareto", "--max-latency-ms", "5", "--export", str(tmp_path / "out")]
    assert main([*command, "--no-portable"]) == 0
    out = capsys.readouterr().out
    assert "within the budget (latency_ms_batch1 ≤ 5): 2 trials" in out
    front = out[out.index("Pareto front") : out.index("exported")].splitlines()[2:]
    assert [line.split()[1] for line in front] == ["small", "mid"]  # big is over budget, worse is beaten
    assert load_exported(tmp_path / "out")[1].provenance["trial_id"] == "mid"
    assert main(["best", str(sweep), "--max-gflops", "0.1"]) == 0 and "0 trials" in capsys.readouterr().out
    assert main(["best", str(sweep), "--max-gflops", "0.1", "--export", str(tmp_path / "x"), "--no-portable"]) == 2
    assert "no trial is within the budget (gflops_per_clip ≤ 0.1)" in capsys.readouterr().err
    assert main(["best", str(sweep), "--max-latency-ms", "0"]) == 2  # not "no budget"
    assert "--max-latency-ms must be a positive number, got 0" in capsys.readouterr().err
