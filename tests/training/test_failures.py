"""Failures a retry would meet again: a non-finite loss ends a run at once, naming the step and
every term, and a trial records such a failure so that its retries stop before building anything."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from training import storage
from training.config import TrainConfig
from training.failures import (
    FAILURE_NAME,
    NonFiniteLoss,
    TrialFailed,
    check_finite,
    failing_fast,
    is_deterministic,
    read_record,
)
from training.loop import run_training, samplings
from training.session import LocalSession


def test_a_finite_step_passes_and_a_non_finite_one_names_step_seed_and_terms() -> None:
    check_finite(3, {"loss": 1.5, "ce": 1.5}, seed=0)
    with pytest.raises(NonFiniteLoss, match=r"^non-finite loss at step 7 \(seed 2\): loss=nan, ce=2\.3, kd=inf$"):
        check_finite(7, {"loss": math.nan, "ce": 2.3, "kd": math.inf}, seed=2)


@pytest.mark.parametrize(
    ("error", "deterministic"),
    [
        (NonFiniteLoss(1, {"loss": math.nan}, 0), True),
        (ValueError("train.objective.taps: no such tap"), True),
        (KeyError("stage3"), True),
        (TypeError("bad argument"), True),
        (OSError("connection reset"), False),
        (RuntimeError("NCCL timeout"), False),
        (MemoryError(), False),
    ],
)
def test_config_and_divergence_errors_are_deterministic_io_and_runtime_ones_are_not(
    error: Exception, deterministic: bool
) -> None:
    assert is_deterministic(error) is deterministic


def _attempt(trial_dir: str, error: Exception, ran: list[int]) -> None:
    with failing_fast(trial_dir):
        ran.append(1)
        raise error


def test_a_deterministic_failure_is_recorded_and_the_retry_stops_before_running(storage_root: str) -> None:
    """On local disk and in object storage: a trial's retry may run on another node."""
    trial_dir, ran = storage.join(storage_root, "sweep", "trial_0"), []
    with pytest.raises(NonFiniteLoss):
        _attempt(trial_dir, NonFiniteLoss(12, {"loss": math.nan, "ce": 2.0}, 0), ran)
    assert read_record(trial_dir) == "NonFiniteLoss: non-finite loss at step 12 (seed 0): loss=nan, ce=2"
    with pytest.raises(TrialFailed, match=r"step 12 .*recorded by an earlier attempt in .*failure\.json; not retried"):
        _attempt(trial_dir, AssertionError("must not run"), ran)
    assert ran == [1]


def test_a_transient_failure_records_nothing_so_the_retry_runs(storage_root: str) -> None:
    trial_dir, ran = storage.join(storage_root, "trial_0"), []
    for _ in range(2):
        with pytest.raises(OSError):
            _attempt(trial_dir, OSError("connection reset"), ran)
    assert ran == [1, 1] and not storage.exists(storage.join(trial_dir, FAILURE_NAME))


def test_a_damaged_record_still_stops_the_retry_and_names_the_file(tmp_path: Path) -> None:
    (tmp_path / FAILURE_NAME).write_text('{"message": "non-fin')
    with pytest.raises(ValueError, match=r"failure\.json: not a failure record"):
        read_record(str(tmp_path))
    with pytest.raises(TrialFailed, match=r"failure\.json: not a failure record"):
        _attempt(str(tmp_path), AssertionError("must not run"), [])


def test_a_diverging_run_stops_at_the_first_non_finite_step(motion_shards) -> None:
    """A learning rate of 1e30 turns the weights to garbage in one step: the second step's loss is
    NaN, and the run ends there instead of reporting garbage to the end of its budget."""
    data_dir, manifest = motion_shards
    config = TrainConfig.model_validate(
        {
            "stage": "teacher",
            "model": "tsm_mobilenet_v2",
            "data": {"path": str(data_dir), "num_frames": 4, "size": 32, "loader": "in_process"},
            "optim": {"batch_size": 8, "epochs": 3, "max_steps_per_epoch": 4, "lr": 1e30},
        }
    )
    train, val = samplings(config)
    session = LocalSession(manifest.split(data_dir, "train"), manifest.split(data_dir, "tune"), train, val)
    with pytest.raises(NonFiniteLoss, match=r"^non-finite loss at step 2 \(seed 0\): loss=nan, ce=nan$"):
        run_training(config.model_dump(mode="json"), session)
    assert session.history == []  # not one epoch reported
