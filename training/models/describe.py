"""Size and cost of a model: what a user compares before shipping a student."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from training.models.base import VideoClassifier


@dataclass(frozen=True)
class ModelDescription:
    """Parameter count and forward FLOPs for one clip (a multiply-add counts as two FLOPs)."""

    params: int
    flops_per_clip: int

    @property
    def gflops_per_clip(self) -> float:
        return self.flops_per_clip / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6


def describe(model: VideoClassifier, *, height: int, width: int) -> ModelDescription:
    """Count parameters and the FLOPs of one ``1×3×T×height×width`` forward pass (eval mode, no grad)."""
    was_training = model.training
    model.eval()
    clip = torch.zeros(1, 3, model.num_frames, height, width, device=next(model.parameters()).device)
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(clip)
    finally:
        model.train(was_training)
    return ModelDescription(params=sum(p.numel() for p in model.parameters()), flops_per_clip=counter.get_total_flops())
