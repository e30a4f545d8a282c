"""``bench/ablation.py --keep DIR`` continues a kept run only when it is the same run."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench import ablation
from bench.ablation import (
    Row,
    check_same_run,
    configs,
    differences,
    epoch_results,
    judge,
    prepare_data,
    prepare_teacher,
    render,
    render_against_reference,
    render_curves,
    render_take_off,
    run_grid,
    take_off,
)
from orchestrator.results import TrialRecord
from orchestrator.sweep import SWEEP_FILE, write_sweep_record
from orchestrator.trial_spec import TrialSpec
from search_spaces import load_space


def budget(epochs: int = 20) -> argparse.Namespace:
    return argparse.Namespace(teacher_epochs=20, epochs=epochs, max_steps_per_epoch=50, concurrency=2)


def keep_sweep(work: Path, epochs: int = 20) -> str:
    """Leave in ``work`` the sweep record a started ablation leaves (``launch`` writes it the same way)."""
    _, distill = configs(budget(epochs), work, "ablation")
    write_sweep_record(distill, load_space("ablation"))
    return distill.sweep_dir


def test_differences_name_each_differing_leaf_by_its_path():
    stored = {"optim": {"epochs": 8, "lr": 0.003}, "model": "tsm_mobilenet_v2"}
    asked = {"optim": {"epochs": 20, "lr": 0.003}, "model": "tsm_mobilenet_v2", "seed": 1}
    assert differences(stored, stored) == []
    assert differences(stored, asked, "train.") == [
        "train.optim.epochs: 8 in the kept run, 20 now",
        "train.seed: None in the kept run, 1 now",
    ]


def test_a_kept_sweep_continues_with_the_same_options(tmp_path):
    sweep_dir = keep_sweep(tmp_path)
    _, distill = configs(budget(), tmp_path, "ablation")
    check_same_run(sweep_dir, distill, load_space("ablation"))


def test_each_grid_seed_is_one_run_whatever_the_demo_repeats(tmp_path):
    """The demo's recipe repeats each trial on several seeds; the ablation's grid already lists its
    seeds, and a trial of three runs would score three students as one seed of the table."""
    _, distill = configs(budget(), tmp_path, "ablation")
    assert distill.tune.repeats == 1 and distill.tune.scheduler == "fifo"


def test_a_kept_sweep_refuses_another_budget_or_grid(tmp_path):
    sweep_dir = keep_sweep(tmp_path, epochs=8)
    _, distill = configs(budget(epochs=20), tmp_path, "ablation")
    with pytest.raises(SystemExit, match=r"specdistill-sweep.json.*\n  train.optim.epochs: 8 in the kept run, 20 now"):
        check_same_run(sweep_dir, distill)
    _, same_budget = configs(budget(epochs=8), tmp_path, "ablation")
    more_seeds = load_space("ablation").model_copy(update={"seeds": [0, 1, 2, 3]})
    with pytest.raises(SystemExit, match=r"space.seeds: \[0, 1, 2\] in the kept run, \[0, 1, 2, 3\] now"):
        check_same_run(sweep_dir, same_budget, more_seeds)


def test_kept_data_is_reused_only_at_the_asked_for_size(tmp_path, monkeypatch):
    data = tmp_path / "data"
    prepare_data(data, clips_per_class=3)

    def no_second_write(*args, **kwargs):
        raise AssertionError("the kept dataset was written again")

    monkeypatch.setattr(ablation, "write_embedded_dataset", no_second_write)
    prepare_data(data, clips_per_class=3)
    with pytest.raises(SystemExit, match=r"dataset.json: 30 clips, --clips-per-class 4 asks for 40"):
        prepare_data(data, clips_per_class=4)


def test_an_interrupted_dataset_is_named_not_overwritten(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train-00000.parquet").write_bytes(b"partial")
    with pytest.raises(SystemExit, match=r"data has no dataset.json"):
        prepare_data(data, clips_per_class=2)
    assert (data / "train-00000.parquet").read_bytes() == b"partial"


def test_a_kept_teacher_names_its_own_fields_and_a_lost_sweep_file(tmp_path):
    teacher, _ = configs(budget(), tmp_path, "ablation")
    export = tmp_path / "teacher"
    export.mkdir()
    (export / "model.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"ablation-teacher/specdistill-sweep.json: cannot tell which options"):
        prepare_teacher(teacher, export)
    write_sweep_record(teacher, load_space("ablation"))
    assert prepare_teacher(teacher, export) == export
    six_epochs = argparse.Namespace(**{**vars(budget()), "teacher_epochs": 6})
    with pytest.raises(SystemExit, match=r"teacher\.train\.optim\.epochs: 20 in the kept run, 6 now"):
        prepare_teacher(configs(six_epochs, tmp_path, "ablation")[0], export)


def test_a_teacher_sweep_that_exported_nothing_is_named(tmp_path):
    teacher, _ = configs(budget(), tmp_path, "ablation")
    Path(teacher.sweep_dir).mkdir(parents=True)
    with pytest.raises(SystemExit, match=r"holds a teacher sweep that exported nothing"):
        prepare_teacher(teacher, tmp_path / "teacher")


def test_a_grid_stopped_before_tune_saved_state_is_not_relaunched_over(tmp_path):
    sweep_dir = keep_sweep(tmp_path)
    _, distill = configs(budget(), tmp_path, "ablation")
    with pytest.raises(SystemExit, match=r"stopped before Tune saved any state: remove it"):
        run_grid(distill, load_space("ablation"))
    _, other = configs(budget(epochs=8), tmp_path, "ablation")
    with pytest.raises(SystemExit, match=r"train\.optim\.epochs: 20 in the kept run, 8 now"):
        run_grid(other, load_space("ablation"))
    assert Path(sweep_dir, SWEEP_FILE).is_file()


def test_learning_curves_take_each_epochs_last_report_and_average_over_seeds(tmp_path):
    reports = [{"epoch": e, "val_top1": 0.1 * e, "val_top5": 0.5} for e in (1, 2, 3, 4)]
    spec = TrialSpec.for_sweep(configs(budget(), tmp_path, "ablation")[1], load_space("ablation"))
    resumed = TrialRecord(
        "t0", tmp_path, spec, [*reports[:3], {"epoch": 3, "val_top1": 0.9, "val_top5": 0.5}, reports[3]]
    )
    assert [r["val_top1"] for r in epoch_results(resumed, 4)] == pytest.approx([0.1, 0.2, 0.9, 0.4])
    assert epoch_results(TrialRecord("t1", tmp_path, spec, reports[:3]), 4) is None
    row = Row("spectrum", [0, 1], [0.4, 0.6], [0.5, 0.5], [[0.1, 0.2, 0.3, 0.4], [0.3, 0.4, 0.5, 0.6]])
    assert render_curves([row], 4).splitlines() == [
        "| row | epoch 1 | epoch 2 | epoch 3 | epoch 4 |",
        "|---|---:|---:|---:|---:|",
        "| spectrum | 0.200 | 0.300 | 0.400 | 0.500 |",
    ]
    assert render_curves([], 20).splitlines()[0] == "| row | epoch 5 | epoch 10 | epoch 15 | epoch 20 |"


def test_every_row_is_read_against_the_first_seed_by_seed():
    ce_only = Row("ce_only", [0, 1, 2], [0.830, 0.745, 0.695], [1.0] * 3, [])
    steady = Row("spectrum_parameter", [0, 1, 2], [0.860, 0.875, 0.865], [1.0] * 3, [])
    alone = Row("full_mutual", [0], [0.870], [1.0], [])
    shifted = Row("copy_plus", [2, 1, 3], [0.705, 0.755, 0.990], [1.0] * 3, [])  # seed 3 has no partner
    # per seed against ce_only: +0.030, +0.130, +0.170 (mean 0.110, s.e. 0.0416)
    assert render_against_reference([ce_only, steady, alone, shifted]).splitlines() == [
        "| row | Δ top-1 against `ce_only`, paired (± s.e.) | in standard errors | seeds ahead |",
        "|---|---:|---:|---:|",
        "| spectrum_parameter | +0.110 ± 0.042 | +2.6 | 3 of 3 |",
        "| full_mutual | too few seeds finished | | |",
        "| copy_plus | +0.010 ± 0.000 | — | 2 of 2 |",
    ]


def test_a_claim_is_judged_on_the_seeds_both_rows_finished():
    worse = Row("logit_kd", [0, 1, 2, 3], [0.70, 0.80, 0.60, 0.75], [1.0] * 4, [])
    # +0.02..+0.04 on every seed: a gain far smaller than the seeds' spread, yet always there
    ahead = Row("spectrum", [0, 1, 2, 3], [0.73, 0.82, 0.64, 0.77], [1.0] * 4, [])
    behind = Row("spectrum", [0, 1, 2, 3], [0.67, 0.78, 0.56, 0.73], [1.0] * 4, [])
    compared, verdict = judge(ahead, worse)
    assert verdict == "reproduced" and compared.ahead == 4 and compared.mean == pytest.approx(0.0275)
    assert judge(behind, worse)[1] == "reversed"
    lone = Row("spectrum", [0, 9], [0.9, 0.9], [1.0] * 2, [])
    assert judge(lone, worse) == (None, "too few seeds finished")


def test_the_claims_table_appears_only_for_a_grid_holding_a_claims_rows():
    spectrum = Row("spectrum", [0, 1], [0.6, 0.8], [1.0] * 2, [])
    logit_kd = Row("logit_kd", [0, 1], [0.5, 0.9], [1.0] * 2, [])
    log_amplitude = Row("spectrum_log_amplitude", [0, 1], [0.85, 0.9], [1.0] * 2, [])
    assert "paper's claim" not in render([spectrum, log_amplitude], (0.9, 1.0))
    claims = [line for line in render([logit_kd, spectrum], (0.9, 1.0)).splitlines() if "`spectrum` −" in line]
    assert claims == [
        "| spectrum distillation beats logit KD (`spectrum` − `logit_kd`) | +0.000 ± 0.100 | +0.0 | 1 of 2 "
        "| not shown (within 2 standard errors) |"
    ]


def test_take_off_is_the_first_epoch_at_three_times_chance_and_counted_by_a_quarter():
    assert take_off([0.1, 0.2, 0.31, 0.9], chance=0.1) == 3
    assert take_off([0.1, 0.29], chance=0.1) is None
    rows = [Row("ce_only", [0, 1, 2], [0.5] * 3, [1.0] * 3, [[0.3, 0.5], [0.1, 0.1], [0.1, 0.6]])]
    table = render_take_off(rows, epochs=2, steps=50, chance=0.1).splitlines()
    assert table[0].startswith("| row | seeds at 3× chance by epoch 1 (a quarter)") and "(×50 steps)" in table[0]
    assert table[2] == "| ce_only | 1 of 3 | 1, never, 2 |"
