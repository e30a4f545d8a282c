"""Size and cost of a model: what a user compares before shipping a student."""

from __future__ import annotations

import statistics
import time
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


@dataclass(frozen=True)
class Latency:
    """Forward time of a clip: alone (what an online caller waits) and per clip within a batch of
    ``batch`` (what offline scoring pays)."""

    batch1_ms: float
    per_clip_ms: float
    batch: int


def measure_latency(model: VideoClassifier, *, height: int, width: int, batch: int = 16, repeats: int = 3) -> Latency:
    """Median wall time of ``repeats`` eval-mode forwards at batch 1 and at ``batch``, after one
    warm-up of each (first calls pay for allocation and kernel selection, which a server pays once).
    Few repeats: a ResNet-50 at 8×224² and batch 16 takes seconds a forward on a CPU.
    On CUDA each timing waits for the device, so it measures work, not its launch."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def median_ms(size: int) -> float:
        clip = torch.zeros(size, 3, model.num_frames, height, width, device=device)
        times = []
        for attempt in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(clip)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if attempt:  # the first is the warm-up
                times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    try:
        with torch.no_grad():
            alone, batched = median_ms(1), median_ms(batch) / batch
    finally:
        model.train(was_training)
    return Latency(alone, batched, batch)


def cost(model: VideoClassifier, *, size: int, batch: int = 16) -> dict[str, float]:
    """What a model costs to run on ``size``² clips, as trials report it and model cards record it:
    parameters, GFLOPs per clip and latency (batch 1, and per clip at ``batch``) on the device the
    model is on."""
    description = describe(model, height=size, width=size)
    latency = measure_latency(model, height=size, width=size, batch=batch)
    return {
        "params": description.params,
        "gflops_per_clip": round(description.gflops_per_clip, 4),
        "latency_ms_batch1": round(latency.batch1_ms, 3),
        "latency_ms_per_clip": round(latency.per_clip_ms, 3),
        "latency_batch": batch,
    }
