"""From decoded uint8 frames to the float clip tensors models take."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Kinetics-style statistics; the embedded dataset's colours are uniform, so these are close enough
# that no dataset-specific statistics need to travel with a checkpoint.
MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)


def normalise(frames: Tensor) -> Tensor:
    """``…×T×3×H×W`` uint8 (the layout transforms work in) → ``…×3×T×H×W`` float32 in model units.

    Runs wherever ``frames`` live, so a GPU worker moves the 4× smaller uint8 batch first.
    """
    if frames.dim() < 4 or frames.shape[-3] != 3:
        raise ValueError(f"expected …×T×3×H×W frames, got shape {tuple(frames.shape)}")
    clips = frames.transpose(-4, -3).float().div_(255.0)
    shape = (3, 1, 1, 1)
    mean = torch.tensor(MEAN, device=frames.device).view(shape)
    std = torch.tensor(STD, device=frames.device).view(shape)
    return clips.sub_(mean).div_(std)


def clips_to_tensor(frames: np.ndarray | Tensor) -> Tensor:
    """``N×T×H×W×3`` uint8 (as rendered or decoded) → ``N×3×T×H×W`` float32, normalised."""
    tensor = torch.as_tensor(frames)
    if tensor.dim() != 5 or tensor.shape[-1] != 3:
        raise ValueError(f"expected N×T×H×W×3 frames, got shape {tuple(tensor.shape)}")
    return normalise(tensor.permute(0, 1, 4, 2, 3))
