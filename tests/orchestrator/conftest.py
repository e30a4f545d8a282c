"""Fixtures for the orchestration tests: a real exported (untrained) teacher and sweep YAMLs that
point at the session's small embedded dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.checkpoint import ModelCard, export_model
from training.models import create_model


@pytest.fixture(scope="session")
def exported_teacher(motion_shards, tmp_path_factory: pytest.TempPathFactory) -> Path:
    _, manifest = motion_shards
    model = create_model("tsm_resnet18", num_classes=len(manifest.classes), num_frames=8)
    card = ModelCard(model="tsm_resnet18", model_kwargs={}, classes=manifest.classes, num_frames=8, size=32)
    return export_model(tmp_path_factory.mktemp("teacher") / "teacher", model, card)


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
