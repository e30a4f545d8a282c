"""Fixtures for the orchestration tests: sweep YAMLs that point at the session's small embedded
dataset and its exported (untrained) teacher, and sweep directories written as Tune leaves them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.config import Resources
from orchestrator.trial_spec import TrialSpec
from training.config import TrainConfig


@pytest.fixture
def write_sweep(motion_shards, exported_teacher, tmp_path: Path):
    """``write_sweep(name, **sections) -> Path``: a distillation sweep YAML for the small dataset,
    tiny by default (2 steps an epoch), with ``sections`` merged over the defaults."""
    data_dir, _ = motion_shards

    def write(name: str = "sweep", space: dict | str = "quick", **sections: dict) -> Path:
        config = {
            "name": name,
            "storage_path": str(tmp_path / "runs"),
            "search_space": space if isinstance(space, str) else "space.yaml",
            "train": {
                "stage": "distill",
                "data": {"path": str(data_dir), "num_frames": 8, "size": 32},
                "model": "tsm_mobilenet_v2",
                "teachers": [str(exported_teacher)],
                "optim": {"epochs": 2, "batch_size": 8, "max_steps_per_epoch": 2},
            },
            "tune": {"num_samples": 2, "max_concurrent_trials": 1, "scheduler": "fifo"},
        }
        for key, value in sections.items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
        if isinstance(space, dict):
            (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write


def _wait_for(
    predicate: Callable[[], bool], timeout: float, what: str | Callable[[], str], interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what() if callable(what) else what}")


@pytest.fixture
def wait_for() -> Callable[..., None]:
    """``wait_for(predicate, timeout, what)``: poll until true, or fail naming ``what`` (a string,
    or a function giving one at the time of failure, to show what was seen last). For
    effects that Ray delivers later than the call that caused them (reports, checkpoints, metrics)."""
    return _wait_for


class SweepFiles:
    """Trial directories laid out exactly as Tune leaves them, for tests that read sweeps without
    running one: ``params.json`` (the trial's spec) and one ``result.json`` line per report."""

    @staticmethod
    def params(train: TrainConfig, *, metric: str = "val_top1", mode: str = "max", **searched: Any) -> dict[str, Any]:
        """A trial's ``params.json`` as a sweep writes it: its ``TrialSpec``, ``searched`` filled in."""
        spec = TrialSpec(
            train=train, resources=Resources(), metric=metric, mode=mode, keep_checkpoints=2, train_runs="unused"
        )
        return spec.model_copy(update=searched).model_dump(mode="json")

    @staticmethod
    def write_trial(
        sweep: Path,
        index: int,
        params: dict[str, Any],
        curve: list[float],
        trial_id: str,
        *,
        kept: bool = False,
        reported: dict[str, Any] | None = None,
    ) -> Path:
        """A trial that reported ``val_top1`` = ``curve[i]`` after epoch ``i + 1``, each with a checkpoint
        directory; ``kept``: the checkpoints hold a ``state.pt``, so they count as still on disk;
        ``reported``: figures every report carries besides (its model's cost)."""
        directory = sweep / f"specdistill_trial_{trial_id}_{index}_2026-11-27_06-00-00"
        directory.mkdir(parents=True)
        (directory / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True))
        lines = []
        for epoch, top1 in enumerate(curve, start=1):
            checkpoint = directory / f"checkpoint_{epoch - 1:06d}"
            checkpoint.mkdir()
            if kept:
                (checkpoint / "state.pt").touch()
            result = {
                "epoch": epoch,
                "step": 12 * epoch,
                "val_top1": top1,
                "val_top5": min(1.0, top1 + 0.3),
                "val_loss": 2.5 - top1,
                "val_skipped": 0.0,
                "train_loss": 3.0 - top1,
                "clips_per_s": 4.1,
                "timestamp": 1795758333 + epoch,
                "checkpoint_dir_name": checkpoint.name,
                "should_checkpoint": True,
                "done": False,
                "training_iteration": epoch,
                "trial_id": trial_id,
                "date": "2026-11-27_06-00-30",
                "time_this_iter_s": 24.9,
                "time_total_s": 24.9 * epoch,
                "pid": 21591,
                "hostname": "vm",
                "node_ip": "192.0.2.2",
                "config": params,
                "time_since_restore": 24.9 * epoch,
                "iterations_since_restore": epoch,
            } | (reported or {})
            lines.append(json.dumps(result) + "\n")
        if lines:
            (directory / "result.json").write_text("".join(lines))
        return directory


@pytest.fixture(scope="session")
def sweep_files() -> type[SweepFiles]:
    return SweepFiles
