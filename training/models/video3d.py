"""torchvision's 3D video ResNets (Tran et al. 2018) behind the same tap contract as the TSM models."""

from __future__ import annotations

from torchvision.models.video import mc3_18 as tv_mc3_18
from torchvision.models.video import r2plus1d_18 as tv_r2plus1d_18
from torchvision.models.video import r3d_18 as tv_r3d_18
from torchvision.models.video.resnet import VideoResNet

from training.models.base import VideoClassifier
from training.models.pretrained import TorchvisionSource, tensors, torchvision_keys
from training.models.registry import register_model


def _wrap(arch: str, net: VideoResNet, *, num_classes: int, num_frames: int, dropout: float) -> VideoClassifier:
    stages = {"stage1": net.layer1, "stage2": net.layer2, "stage3": net.layer3, "stage4": net.layer4}
    model = VideoClassifier(
        stem=net.stem,
        stages=stages,
        num_classes=num_classes,
        num_frames=num_frames,
        frame_level=False,
        dropout=dropout,
    )
    model.torchvision = TorchvisionSource(arch, torchvision_keys(tensors(net), model, "fc"))
    return model


@register_model
def r3d_18(*, num_classes: int, num_frames: int = 8, dropout: float = 0.0) -> VideoClassifier:
    """3D ResNet-18: full 3×3×3 convolutions; stages 2–4 halve time as well as space."""
    return _wrap("r3d_18", tv_r3d_18(weights=None), num_classes=num_classes, num_frames=num_frames, dropout=dropout)


@register_model
def mc3_18(*, num_classes: int, num_frames: int = 8, dropout: float = 0.0) -> VideoClassifier:
    """Mixed-convolution ResNet-18: 3D convolutions in stage 1, 2D (1×3×3) after, so time is never downsampled."""
    return _wrap("mc3_18", tv_mc3_18(weights=None), num_classes=num_classes, num_frames=num_frames, dropout=dropout)


@register_model
def r2plus1d_18(*, num_classes: int, num_frames: int = 8, dropout: float = 0.0) -> VideoClassifier:
    """(2+1)D ResNet-18: each 3D convolution factorised into a spatial 1×3×3 and a temporal 3×1×1 one."""
    return _wrap(
        "r2plus1d_18", tv_r2plus1d_18(weights=None), num_classes=num_classes, num_frames=num_frames, dropout=dropout
    )
