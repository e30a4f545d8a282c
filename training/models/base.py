"""The contract every teacher and student honours: video in, logits plus named feature taps out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

PROBE_SIZE = 64


@dataclass(frozen=True)
class TapInfo:
    """A named intermediate feature a model exposes (timm's ``feature_info`` idea).

    ``stride`` is the spatial downsampling of the tap relative to the input frame.
    """

    channels: int
    stride: int


class ModelOutput(NamedTuple):
    """Logits ``N×K`` and the requested taps, each ``N×C×T'×H'×W'``.

    A NamedTuple (not a dataclass) so DistributedDataParallel can find the tensors inside it.
    """

    logits: Tensor
    features: dict[str, Tensor]


class VideoClassifier(nn.Module):
    """``stem → stages → global average pool over space and time → dropout → fc``.

    Clips arrive as ``N×3×T×H×W``. With ``frame_level=True`` (2D backbones, TSM) the stem and
    stages see ``(N·T)×C×H×W`` frames and the taps are folded back to ``N×C×T×H×W``; otherwise
    (3D backbones) they see the clip tensor as is. Each stage's output is a tap named after it.
    Taps are measured once with a small dry run, so every architecture reports the same facts.
    """

    def __init__(
        self,
        *,
        stem: nn.Module,
        stages: dict[str, nn.Module],
        num_classes: int,
        num_frames: int,
        frame_level: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if num_frames < 1:
            raise ValueError(f"num_frames must be positive, got {num_frames}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_classes = num_classes
        self.num_frames = num_frames
        self.frame_level = frame_level
        self.stem = stem
        self.stages = nn.ModuleDict(stages)
        self.taps: dict[str, TapInfo] = self._probe_taps()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.taps[next(reversed(stages))].channels, num_classes)

    def forward(self, clips: Tensor, taps: Sequence[str] = ()) -> ModelOutput:
        """``N×3×T×H×W`` clips → :class:`ModelOutput` with ``N×num_classes`` logits and the requested taps."""
        self._check_input(clips, taps)
        embedding, features = self._forward_features(clips, taps)
        return ModelOutput(self.fc(self.dropout(embedding)), features)

    def _forward_features(self, clips: Tensor, taps: Sequence[str]) -> tuple[Tensor, dict[str, Tensor]]:
        n, _, t = clips.shape[:3]
        x = clips.transpose(1, 2).flatten(0, 1) if self.frame_level else clips
        x = self.stem(x)
        features: dict[str, Tensor] = {}
        for name, stage in self.stages.items():
            x = stage(x)
            if name in taps:
                features[name] = x.unflatten(0, (n, t)).transpose(1, 2) if self.frame_level else x
        if self.frame_level:
            embedding = x.mean(dim=(2, 3)).unflatten(0, (n, t)).mean(dim=1)
        else:
            embedding = x.mean(dim=(2, 3, 4))
        return embedding, features

    def _check_input(self, clips: Tensor, taps: Sequence[str]) -> None:
        """Fail early, naming the shape, instead of deep inside a convolution."""
        if clips.dim() != 5 or clips.shape[1] != 3:
            raise ValueError(f"expected clips of shape N×3×T×H×W, got {tuple(clips.shape)}")
        if self.frame_level and clips.shape[2] != self.num_frames:
            raise ValueError(
                f"this model was built for num_frames={self.num_frames} (its temporal shift depends on it), "
                f"got clips of shape {tuple(clips.shape)}"
            )
        unknown = [t for t in taps if t not in self.taps]
        if unknown:
            raise ValueError(f"unknown taps {unknown}; this model exposes {sorted(self.taps)}")

    def _probe_taps(self) -> dict[str, TapInfo]:
        """One ``1×3×T×64×64`` dry run in eval mode (BatchNorm statistics stay untouched)."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                clip = torch.zeros(1, 3, self.num_frames, PROBE_SIZE, PROBE_SIZE)
                _, features = self._forward_features(clip, list(self.stages))
        finally:
            self.train(was_training)
        return {name: TapInfo(channels=f.shape[1], stride=PROBE_SIZE // f.shape[-1]) for name, f in features.items()}
