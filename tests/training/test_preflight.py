"""``Preflight``: what would fail in every trial is refused before Ray starts, naming the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from training.checkpoint import ModelCard, export_model, write_ensemble
from training.config import TrainConfig, with_overrides
from training.models import create_model
from training.preflight import Preflight


@pytest.fixture
def base(motion_shards, exported_teacher) -> TrainConfig:
    """The tests' distillation: a tsm_mobilenet_v2 student of the exported tsm_resnet18, 8 frames."""
    data_dir, _ = motion_shards
    return TrainConfig(
        stage="distill",
        data={"path": str(data_dir), "num_frames": 8, "size": 32},
        model="tsm_mobilenet_v2",
        teachers=[str(exported_teacher)],
    )


def _teacher(tmp_path: Path, model: str, classes: list[str], frames: int = 8) -> str:
    network = create_model(model, num_classes=len(classes), num_frames=frames)
    card = ModelCard(model=model, model_kwargs={}, classes=classes, num_frames=frames, size=32)
    return export_model(tmp_path / model, network, card)


def test_a_runnable_config_passes(base: TrainConfig) -> None:
    Preflight().check(base)
    Preflight().check(with_overrides(base, {"objective.spectrum_low_bins": 5}))  # 8 frames: 5 bins


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"model": "nonet"}, r"train\.model: unknown model 'nonet'; known models: .*tsm_mobilenet_v2"),
        ({"model_kwargs": {"depth": 3}}, r"train\.model: .*depth"),
        ({"data.path": "/nowhere"}, r"train\.data\.path: /nowhere/dataset\.json not found"),
        (
            {"data.val_split": "valid"},
            r"train\.data\.val_split: .*dataset\.json has no split 'valid'; it has \['test', 'train', 'tune'\]",
        ),
        ({"data.num_frames": 4}, r"train\.teachers\[0\]: .*teacher takes 8 frames, train\.data\.num_frames is 4"),
        ({"objective.taps": [["stage3", "layer3"]]}, r"train\.objective\.taps: teacher tap 'layer3' does not exist"),
        ({"objective.parameter_stages": ["stage9"]}, r"train\.objective\.parameter_stages: student tap 'stage9'"),
        ({"objective.spectrum_low_bins": 6}, r"train\.objective\.spectrum_low_bins: 6 is more than the 5 temporal"),
    ],
)
def test_config_mistakes_are_refused_naming_the_field(base: TrainConfig, overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Preflight().check(with_overrides(base, overrides))


def test_an_unreadable_teacher_is_refused(base: TrainConfig, exported_teacher: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"train\.teachers\[0\]: .*empty/model\.json not found"):
        Preflight().check(with_overrides(base, {"teachers": [str((tmp_path / "empty").mkdir() or tmp_path / "empty")]}))
    weightless = shutil.copytree(exported_teacher, tmp_path / "weightless")
    (weightless / "model.safetensors").unlink()
    with pytest.raises(ValueError, match=r"train\.teachers\[0\]: .*weightless/model\.safetensors not found"):
        Preflight().check(with_overrides(base, {"teachers": [str(weightless)]}))


def test_a_teacher_of_other_classes_is_refused_naming_both(base: TrainConfig, tmp_path: Path) -> None:
    other = _teacher(tmp_path, "tsm_resnet18", ["x", "y", "z"])
    with pytest.raises(
        ValueError, match=r"train\.teachers\[0\]: .* was trained on 3 classes \(x, y, z\), the data at .* has 10"
    ):
        Preflight().check(with_overrides(base, {"teachers": [other]}))


def test_mutual_learning_with_an_ensemble_teacher_is_refused(
    base: TrainConfig, exported_teacher: Path, tmp_path: Path
) -> None:
    members = [str(shutil.copytree(exported_teacher, tmp_path / "ens" / f"member{i}")) for i in range(2)]
    ensemble = write_ensemble(tmp_path / "ens", members, {})
    with pytest.raises(ValueError, match=r"train\.collaboration\.mode: mutual .* name 2 \(an ensemble counts"):
        Preflight().check(with_overrides(base, {"teachers": [ensemble], "collaboration.mode": "mutual"}))
    Preflight().check(with_overrides(base, {"teachers": [ensemble]}))  # frozen: the members distil together


def test_taps_of_different_time_lengths_are_refused(base: TrainConfig, motion_shards, tmp_path: Path) -> None:
    _, manifest = motion_shards
    r3d = _teacher(tmp_path, "r3d_18", manifest.classes)  # halves time in stages 2-4
    with pytest.raises(
        ValueError,
        match=r"train\.objective\.taps: stage2->stage2: the student's tap has 8 time steps "
        r"at 8 frames, the teacher's 4",
    ):
        Preflight().check(with_overrides(base, {"teachers": [r3d]}))
    # The FitNets term compares the same taps element-wise: the same refusal.
    with pytest.raises(ValueError, match=r"the student's tap has 8 time steps"):
        Preflight().check(
            with_overrides(
                base, {"teachers": [r3d], "objective.terms": ["ce", "feature"], "objective.feature_weight": 1.0}
            )
        )


def test_a_spectrum_tap_of_one_time_step_is_refused(base: TrainConfig, motion_shards, tmp_path: Path) -> None:
    _, manifest = motion_shards
    r3d = _teacher(tmp_path, "r3d_18", manifest.classes)
    three_d = with_overrides(base, {"model": "r3d_18", "teachers": [r3d], "objective.taps": ["stage3", "stage4"]})
    with pytest.raises(ValueError, match=r"train\.objective\.taps: stage4->stage4 has 1 time step at 8 frames"):
        Preflight().check(three_d)
    Preflight().check(with_overrides(three_d, {"objective.taps": ["stage3"]}))
