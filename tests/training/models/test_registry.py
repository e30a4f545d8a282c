import pytest
import torch

from training.models import create_model, describe, list_models

ALL_MODELS = ["mc3_18", "r2plus1d_18", "r3d_18", "tsm_mobilenet_v2", "tsm_resnet18", "tsm_resnet50"]


def test_registry_lists_every_model():
    assert list_models() == ALL_MODELS


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'resnet9000'; known models: mc3_18, .*tsm_resnet50"):
        create_model("resnet9000", num_classes=3, num_frames=4)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_returns_logits_and_requested_taps_as_declared(name):
    model = create_model(name, num_classes=7, num_frames=4).eval()
    clips = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        out = model(clips, taps=list(model.taps))
    assert out.logits.shape == (2, 7)
    assert list(out.features) == ["stage1", "stage2", "stage3", "stage4"]
    for tap, feature in out.features.items():
        info = model.taps[tap]
        assert feature.dim() == 5 and feature.shape[0] == 2
        assert feature.shape[1] == info.channels
        assert feature.shape[-1] == 64 // info.stride
    if name.startswith("tsm"):  # 2D backbones keep every frame
        assert all(f.shape[2] == 4 for f in out.features.values())


def test_forward_without_taps_returns_no_features():
    model = create_model("tsm_mobilenet_v2", num_classes=3, num_frames=4)
    assert model(torch.randn(1, 3, 4, 32, 32)).features == {}


def test_unknown_tap_is_refused_naming_the_known_ones():
    model = create_model("tsm_mobilenet_v2", num_classes=3, num_frames=4)
    with pytest.raises(ValueError, match=r"unknown taps \['layer9'\].*stage1"):
        model(torch.randn(1, 3, 4, 32, 32), taps=["layer9"])


def test_wrong_clip_shape_is_refused_with_the_shape():
    model = create_model("tsm_resnet18", num_classes=3, num_frames=4)
    with pytest.raises(ValueError, match=r"N×3×T×H×W, got \(1, 4, 32, 32\)"):
        model(torch.randn(1, 4, 32, 32))
    with pytest.raises(ValueError, match=r"num_frames=4.*\(1, 3, 8, 32, 32\)"):
        model(torch.randn(1, 3, 8, 32, 32))


def test_probing_taps_leaves_batchnorm_statistics_untouched():
    model = create_model("tsm_mobilenet_v2", num_classes=3, num_frames=4)
    assert model.training
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert int(bn.num_batches_tracked) == 0


def test_describe_counts_parameters_and_flops_and_the_student_is_cheaper():
    student = describe(create_model("tsm_mobilenet_v2", num_classes=10, num_frames=8), height=64, width=64)
    teacher = describe(create_model("tsm_resnet18", num_classes=10, num_frames=8), height=64, width=64)
    assert student.params == pytest.approx(2.24e6, rel=0.02)
    assert teacher.params == pytest.approx(11.18e6, rel=0.02)
    assert 0 < student.flops_per_clip < teacher.flops_per_clip
    # ResNet-18 costs ~1.82 GFLOPs (MACs) per 224² frame; ×2 for FLOPs, ×(64/224)² × 8 frames
    assert teacher.gflops_per_clip == pytest.approx(2 * 1.82 * (64 / 224) ** 2 * 8, rel=0.05)


@pytest.mark.parametrize("kwargs", [{"num_classes": 1}, {"num_frames": 0}, {"dropout": 1.0}])
def test_invalid_builder_arguments_are_refused(kwargs):
    arguments = {"num_classes": 3, "num_frames": 4} | kwargs
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        create_model("tsm_mobilenet_v2", **arguments)
