"""``train.init``: starting a model from a state dict in torchvision's layout, without downloading.

torchvision's own randomly initialised networks stand in for published weights: they have the
published layout exactly, so if every backbone tensor of ours equals theirs after loading, a
downloaded ImageNet or Kinetics file loads the same way."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import mobilenet_v2, resnet18, resnet50
from torchvision.models.video import r2plus1d_18

from training.models import create_model
from training.models.pretrained import load_initial_weights
from training.preflight import Preflight

SOURCES = {
    "tsm_resnet50": (resnet50, "fc"),
    "tsm_mobilenet_v2": (mobilenet_v2, "classifier.1"),
    "r2plus1d_18": (r2plus1d_18, "fc"),
}


def _saved(tmp_path: Path, network: torch.nn.Module, name: str = "weights.pt") -> str:
    path = tmp_path / name
    if name.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(path))
    else:
        torch.save(network.state_dict(), path)
    return str(path)


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_backbone_tensor_equals_torchvision_s_and_a_new_class_count_gets_a_fresh_classifier(
    tmp_path: Path, name: str
) -> None:
    build, classifier = SOURCES[name]
    torch.manual_seed(1)
    source = build()
    model = create_model(name, num_classes=7, num_frames=8)
    fresh_fc = model.fc.weight.clone()
    report = load_initial_weights(model, _saved(tmp_path, source))
    ours = model.state_dict()
    for key, mine in model.torchvision.keys.items():
        if not key.startswith(classifier):
            assert torch.equal(ours[mine], source.state_dict()[key]), f"{mine} ← {key}"
    assert not report.classifier_loaded and torch.equal(model.fc.weight, fresh_fc)
    assert report.loaded == len(ours) - 2


def test_the_classifier_loads_too_when_the_class_count_matches(tmp_path: Path) -> None:
    torch.manual_seed(2)
    source = resnet18(num_classes=5)
    model = create_model("tsm_resnet18", num_classes=5, num_frames=8)
    assert load_initial_weights(model, _saved(tmp_path, source, "weights.safetensors")).classifier_loaded
    assert torch.equal(model.fc.weight, source.fc.weight) and torch.equal(model.fc.bias, source.fc.bias)


def test_weights_of_another_architecture_are_one_error_listing_the_keys(tmp_path: Path) -> None:
    model = create_model("tsm_resnet50", num_classes=7, num_frames=8)
    with pytest.raises(
        ValueError,
        match=r"does not fit resnet50's layout \(missing: layer1\.0\.conv3\.weight.*of another shape: layer1\.0\.conv1",
    ) as caught:
        load_initial_weights(model, _saved(tmp_path, resnet18()))
    assert "unexpected" not in str(caught.value)  # resnet18's keys are all in resnet50's layout
    narrow = create_model("tsm_mobilenet_v2", num_classes=7, num_frames=8, width_mult=0.5)
    with pytest.raises(
        ValueError, match=r"of another shape: features\.0\.0\.weight \(32, 3, 3, 3\) for \(16, 3, 3, 3\)"
    ):
        load_initial_weights(narrow, _saved(tmp_path, mobilenet_v2()))


def test_a_damaged_file_or_an_unknown_name_is_named(tmp_path: Path) -> None:
    model = create_model("tsm_resnet18", num_classes=7, num_frames=8)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad\.pt is not a readable state dict"):
        load_initial_weights(model, str(tmp_path / "bad.pt"))
    with pytest.raises(FileNotFoundError, match=r"train\.init: .*gone\.pt is neither a file nor a weights name"):
        load_initial_weights(model, str(tmp_path / "gone.pt"))
    with pytest.raises(FileNotFoundError, match=r"IMAGENET1K_V9 is neither a file nor a weights name of resnet18 .*V1"):
        load_initial_weights(model, "IMAGENET1K_V9")


def test_preflight_refuses_starting_weights_that_do_not_fit_before_ray_starts(tmp_path: Path, motion_shards) -> None:
    from training.config import TrainConfig

    data_dir, _ = motion_shards
    config = TrainConfig(
        stage="teacher", data={"path": str(data_dir), "num_frames": 8, "size": 32}, model="tsm_resnet18"
    )
    Preflight().check(config.model_copy(update={"init": _saved(tmp_path, resnet18())}))
    with pytest.raises(ValueError, match=r"train\.init: .* does not fit resnet18's layout"):
        Preflight().check(config.model_copy(update={"init": _saved(tmp_path, resnet50(), "r50.pt")}))


def test_a_training_config_starts_its_model_from_init_with_the_path_relative_to_the_yaml(
    tmp_path: Path, motion_shards
) -> None:
    from training.config import TrainConfig
    from training.distiller import Distiller

    data_dir, manifest = motion_shards
    torch.manual_seed(3)
    source = resnet18()
    _saved(tmp_path, source, "r18.pt")
    config = TrainConfig(
        stage="teacher",
        data={"path": str(data_dir), "num_frames": 8, "size": 32},
        model="tsm_resnet18",
        init="./r18.pt",
    ).resolved(tmp_path)
    assert config.init == str(tmp_path / "r18.pt")
    student = Distiller.from_config(config, manifest.classes).student
    assert torch.equal(student.stem[0].weight, source.conv1.weight)
    assert torch.equal(student.stages["stage4"][1].bn2.running_var, source.layer4[1].bn2.running_var)
