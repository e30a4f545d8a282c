"""``train-teacher``: members as a grid of seeds and architectures, checked before Ray starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import load_sweep_config, load_teacher_config
from orchestrator.teachers import member_space, train_teachers


@pytest.fixture
def teacher_config(write_sweep, motion_shards):
    return load_teacher_config(write_sweep("teacher", train={"stage": "teacher", "teachers": [], "seed": 5}))


def test_members_differ_by_seed_and_cycle_through_the_models(teacher_config) -> None:
    space = member_space(teacher_config, 3, ["tsm_resnet18", "r3d_18"])
    assert space.variants == {
        "member0": {"seed": 5, "model": "tsm_resnet18"},
        "member1": {"seed": 6, "model": "r3d_18"},
        "member2": {"seed": 7, "model": "tsm_resnet18"},
    }
    assert member_space(teacher_config, 1, []).variants == {"member0": {"seed": 5, "model": "tsm_mobilenet_v2"}}


def test_bad_member_requests_are_refused_before_ray(teacher_config, write_sweep, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--ensemble must be >= 1"):
        member_space(teacher_config, 0, [])
    distill, _ = load_sweep_config(write_sweep())
    with pytest.raises(ValueError, match=r"train-teacher needs train\.stage: teacher"):
        train_teachers(distill, tmp_path / "export")
