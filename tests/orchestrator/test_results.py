"""Reading sweep directories: trial records, and the one ranking ``best`` and the report share."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.results import DamagedRecord, best_first, best_of, read_sweep, sweep_mode, trial_rows
from training.config import DataConfig, OptimConfig, TrainConfig
from training.failures import FAILURE_NAME

TRAIN = TrainConfig(
    stage="distill",
    data=DataConfig(path="absent", num_frames=8, size=32),
    model="tsm_mobilenet_v2",
    teachers=["absent"],
    optim=OptimConfig(epochs=3),
)


def test_best_of_takes_the_first_of_equals_and_follows_the_mode() -> None:
    items = [("a", 0.5), ("b", 0.7), ("c", 0.7), ("d", 0.1)]
    assert best_of(items, lambda i: i[1], "max") == ("b", 0.7)
    assert best_of(items, lambda i: i[1], "min") == ("d", 0.1)
    assert best_of([], lambda i: i, "max") is None


def test_best_first_is_stable_and_puts_the_unscored_last() -> None:
    items = [("a", None), ("b", 0.2), ("c", 0.9), ("d", 0.2)]
    assert [i[0] for i in best_first(items, lambda i: i[1], "max")] == ["c", "b", "d", "a"]
    assert [i[0] for i in best_first(items, lambda i: i[1], "min")] == ["b", "d", "c", "a"]
    with pytest.raises(ValueError, match="'max' or 'min'"):
        best_first(items, lambda i: i[1], "best")


def test_records_carry_their_spec_and_results_in_trial_order(tmp_path: Path, sweep_files) -> None:
    sweep_files.write_trial(tmp_path, 1, sweep_files.params(TRAIN, overrides={"optim.lr": 0.1}), [0.3], "t2")
    sweep_files.write_trial(tmp_path, 0, sweep_files.params(TRAIN, overrides={"optim.lr": 0.2}), [0.1, 0.4], "t1")
    records = read_sweep(tmp_path)
    assert [r.trial_id for r in records] == ["t1", "t2"]
    assert records[0].spec.overrides == {"optim.lr": 0.2} and len(records[0].results) == 2


def test_the_best_result_with_a_checkpoint_skips_those_whose_checkpoint_is_gone(tmp_path: Path, sweep_files) -> None:
    directory = sweep_files.write_trial(tmp_path, 0, sweep_files.params(TRAIN), [0.2, 0.6, 0.4], "t1", kept=True)
    (directory / "checkpoint_000001" / "state.pt").unlink()  # Tune removed the best epoch's checkpoint
    (record,) = read_sweep(tmp_path)
    assert record.best_result("val_top1", "max")["epoch"] == 2
    assert record.best_result("val_top1", "max", with_checkpoint=True)["epoch"] == 3
    assert record.best_result("val_loss", "min", with_checkpoint=True)["epoch"] == 3


def test_rows_rank_trials_and_say_how_far_each_got(tmp_path: Path, sweep_files) -> None:
    params = sweep_files.params(TRAIN, metric="val_loss", mode="min")
    sweep_files.write_trial(tmp_path, 0, params, [0.2, 0.3, 0.5], "done")
    (sweep_files.write_trial(tmp_path, 1, params, [0.6], "crashed") / "error.txt").write_text("boom")
    sweep_files.write_trial(tmp_path, 2, params, [0.4], "stopped")
    sweep_files.write_trial(tmp_path, 3, params, [], "5ca1ab1e")  # no result.json: the id comes from the directory name
    records = read_sweep(tmp_path)
    assert sweep_mode(records, "val_loss") == "min" and sweep_mode(records, "val_top5") == "max"
    rows = trial_rows(records, "val_loss", "min")
    assert [(r.record.trial_id, r.status) for r in rows] == [
        ("crashed", "error"),  # val_loss 1.9
        ("done", "finished"),  # 2.0 at epoch 3
        ("stopped", "stopped early"),  # 2.1
        ("5ca1ab1e", "no result"),
    ]
    assert (rows[1].best, rows[1].best_epoch, rows[1].last, rows[1].epochs_run) == (2.0, 3, 2.0, 3)
    assert rows[3].best is None and rows[3].curve == []


def test_a_directory_without_trials_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds no trials"):
        read_sweep(tmp_path)


def test_a_damaged_line_or_params_file_costs_only_itself_with_a_warning_naming_it(tmp_path: Path, sweep_files) -> None:
    """A driver killed mid-write leaves half a ``result.json`` line; a disk error, garbage."""
    good = sweep_files.write_trial(tmp_path, 0, sweep_files.params(TRAIN), [0.2, 0.5, 0.4], "good")
    lines = (good / "result.json").read_text().splitlines()
    (good / "result.json").write_text("\n".join([lines[0], "\x00\x00garbage", lines[1], lines[2][:40]]) + "\n")
    broken = sweep_files.write_trial(tmp_path, 1, sweep_files.params(TRAIN), [0.9], "broken")
    (broken / "params.json").write_text('{"train": {"stage": "dis')
    with pytest.warns(DamagedRecord) as caught:
        (record,) = read_sweep(tmp_path)
    assert [r["epoch"] for r in record.results] == [1, 2]
    messages = sorted(str(w.message) for w in caught)
    assert messages[0].startswith(f"{broken / 'params.json'}: unreadable, trial left out")
    assert messages[1].startswith(f"{good / 'result.json'}: line 2 is not a result, left out")
    assert messages[2].startswith(f"{good / 'result.json'}: line 4 is not a result, left out")


def test_a_recorded_failure_marks_the_trial_failed_with_its_reason(tmp_path: Path, sweep_files) -> None:
    failed = sweep_files.write_trial(tmp_path, 0, sweep_files.params(TRAIN), [0.4], "nan")
    (failed / FAILURE_NAME).write_text('{"error": "NonFiniteLoss", "message": "non-finite loss at step 14"}')
    early = sweep_files.write_trial(tmp_path, 1, sweep_files.params(TRAIN), [], "0bad5e70")
    (early / FAILURE_NAME).write_text('{"error": "ValueError", "message": "train.model: no such model"}')
    rows = trial_rows(read_sweep(tmp_path), "val_top1", "max")
    assert [(r.record.trial_id, r.status, r.record.failure) for r in rows] == [
        ("nan", "error", "non-finite loss at step 14"),
        ("0bad5e70", "error", "train.model: no such model"),  # failed before its first result
    ]
