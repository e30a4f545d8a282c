"""2D ImageNet-style backbones made temporal with the Temporal Shift Module (TSM, Lin et al. 2019)."""

from __future__ import annotations

from torch import nn
from torchvision.models import mobilenet_v2, resnet18, resnet50
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.models.resnet import ResNet

from training.models.base import VideoClassifier
from training.models.pretrained import TorchvisionSource, tensors, torchvision_keys
from training.models.registry import register_model
from training.models.temporal_shift import TemporalShift


def _shift_resnet_blocks(net: ResNet, num_frames: int, shift_div: int) -> None:
    """Put the shift at the head of every residual branch (before ``conv1``), as TSM's "residual shift"."""
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            block.conv1 = TemporalShift(block.conv1, num_frames=num_frames, shift_div=shift_div)


def _tsm_resnet(
    arch: str, net: ResNet, *, num_classes: int, num_frames: int, shift_div: int, dropout: float
) -> VideoClassifier:
    layout = tensors(net)
    if shift_div:
        _shift_resnet_blocks(net, num_frames, shift_div)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
    stages = {"stage1": net.layer1, "stage2": net.layer2, "stage3": net.layer3, "stage4": net.layer4}
    model = VideoClassifier(
        stem=stem,
        stages=stages,
        num_classes=num_classes,
        num_frames=num_frames,
        frame_level=True,
        dropout=dropout,
    )
    model.torchvision = TorchvisionSource(arch, torchvision_keys(layout, model, "fc"))
    return model


@register_model
def tsm_resnet18(*, num_classes: int, num_frames: int = 8, shift_div: int = 8, dropout: float = 0.0) -> VideoClassifier:
    """ResNet-18 with a temporal shift in every basic block; ``shift_div=0`` gives a plain per-frame TSN."""
    return _tsm_resnet(
        "resnet18",
        resnet18(weights=None),
        num_classes=num_classes,
        num_frames=num_frames,
        shift_div=shift_div,
        dropout=dropout,
    )


@register_model
def tsm_resnet50(*, num_classes: int, num_frames: int = 8, shift_div: int = 8, dropout: float = 0.0) -> VideoClassifier:
    """ResNet-50 with a temporal shift in every bottleneck; ``shift_div=0`` gives a plain per-frame TSN."""
    return _tsm_resnet(
        "resnet50",
        resnet50(weights=None),
        num_classes=num_classes,
        num_frames=num_frames,
        shift_div=shift_div,
        dropout=dropout,
    )


@register_model
def tsm_mobilenet_v2(
    *,
    num_classes: int,
    num_frames: int = 8,
    shift_div: int = 8,
    width_mult: float = 1.0,
    dropout: float = 0.0,
) -> VideoClassifier:
    """MobileNetV2 with a temporal shift at the head of each inverted residual that has a skip connection.

    Blocks without a skip (the stride-2 and width-changing ones) are left unshifted, as in TSM: a
    shift there would lose the frame's own appearance. Stages end at strides 4, 8, 16 and 32.
    """
    net = mobilenet_v2(weights=None, width_mult=width_mult)
    layout, features = tensors(net), net.features
    if shift_div:
        for block in features:
            if isinstance(block, InvertedResidual) and block.use_res_connect:
                block.conv[0] = TemporalShift(block.conv[0], num_frames=num_frames, shift_div=shift_div)
    stages = {
        "stage1": features[2:4],
        "stage2": features[4:7],
        "stage3": features[7:14],
        "stage4": features[14:],
    }
    model = VideoClassifier(
        stem=features[:2],
        stages=stages,
        num_classes=num_classes,
        num_frames=num_frames,
        frame_level=True,
        dropout=dropout,
    )
    model.torchvision = TorchvisionSource("mobilenet_v2", torchvision_keys(layout, model, "classifier.1"))
    return model
