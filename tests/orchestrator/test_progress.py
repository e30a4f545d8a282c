"""The sweep's progress lines: "best so far" follows ``tune.mode``, and a metric the trials never
report prints as missing instead of crashing the callback (and with it the sweep)."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest

from orchestrator.progress import SweepProgress


def _lines(progress: SweepProgress, results: list[dict], capsys: pytest.CaptureFixture[str]) -> list[str]:
    trial = SimpleNamespace(trial_id="abc_00000", config={})
    for result in results:
        progress.on_trial_result(0, [], trial, result)
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(("mode", "best"), [("max", "0.900"), ("min", "0.400")])
def test_best_so_far_follows_the_mode(mode: str, best: str, capsys: pytest.CaptureFixture[str]) -> None:
    results = [{"epoch": e, "val_loss": v, "train_loss": 1.0} for e, v in enumerate([0.7, 0.4, 0.9], 1)]
    lines = _lines(SweepProgress("val_loss", mode, epochs=3), results, capsys)
    assert lines[-1].endswith(f"(best so far {best})")
    assert "epoch 3/3  val_loss=0.900  train_loss=1.000" in lines[-1]


def test_a_metric_never_reported_prints_as_missing(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(SweepProgress("val_acc", "max", epochs=2), [{"epoch": 1, "val_top1": 0.5}], capsys)
    assert "val_acc=—  train_loss=—" in lines[0] and lines[0].endswith("(best so far —)")


def test_a_resumed_sweep_counts_time_from_its_own_start(capsys: pytest.CaptureFixture[str]) -> None:
    progress = SweepProgress("val_top1", "max", epochs=1)
    progress.started -= 3600  # as if unpickled from a driver that started an hour ago
    progress.setup(stop=None, num_samples=1, total_num_samples=1)
    (line,) = _lines(progress, [{"epoch": 1, "val_top1": 0.5}], capsys)
    assert line.startswith("[00:00] ")


def test_a_callback_pickled_by_an_older_version_still_reports(capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep started before ``mode`` was stored resumes with its unpickled callback."""
    older = SweepProgress("val_top1", "max", epochs=1)
    del older.mode  # the state an older version pickled
    (line,) = _lines(pickle.loads(pickle.dumps(older)), [{"epoch": 1, "val_top1": 0.5}], capsys)
    assert line.endswith("(best so far 0.500)")
