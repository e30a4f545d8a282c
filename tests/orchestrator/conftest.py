"""Fixtures for the orchestration tests: sweep YAMLs that point at the session's small embedded
dataset and its exported (untrained) teacher."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml


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
