"""Temporal Shift Module (Lin et al., 2019): zero-FLOP temporal mixing for 2D backbones."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def temporal_shift(frames: Tensor, num_frames: int, shift_div: int) -> Tensor:
    """Shift 1/``shift_div`` of the channels one step back in time and another 1/``shift_div`` forward.

    ``frames`` is ``(N·T)×C×H×W`` with the ``T`` frames of a clip contiguous. Channel block
    ``[0, C/d)`` at time ``t`` receives time ``t+1`` (the last frame gets zeros), block
    ``[C/d, 2C/d)`` receives time ``t−1`` (the first frame gets zeros), the rest is unchanged.
    Returns a new tensor of the same shape.
    """
    nt, channels, height, width = frames.shape
    if nt % num_frames:
        raise ValueError(f"batch of {nt} frames is not a multiple of num_frames={num_frames}")
    fold = channels // shift_div
    x = frames.view(nt // num_frames, num_frames, channels, height, width)
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]
    out[:, :, 2 * fold :] = x[:, :, 2 * fold :]
    return out.view(nt, channels, height, width)


class TemporalShift(nn.Module):
    """Applies :func:`temporal_shift` before ``inner`` — placed on a residual branch ("residual shift")
    so the identity path keeps each frame's own appearance."""

    def __init__(self, inner: nn.Module, *, num_frames: int, shift_div: int) -> None:
        super().__init__()
        if shift_div < 2:
            raise ValueError(f"shift_div must be at least 2 (two shifted blocks), got {shift_div}")
        self.inner = inner
        self.num_frames = num_frames
        self.shift_div = shift_div

    def forward(self, frames: Tensor) -> Tensor:
        return self.inner(temporal_shift(frames, self.num_frames, self.shift_div))

    def extra_repr(self) -> str:
        return f"num_frames={self.num_frames}, shift_div={self.shift_div}"
