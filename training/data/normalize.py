"""From decoded uint8 frames to the float clip tensors models take."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Kinetics-style statistics; the embedded dataset's colours are uniform, so these are close enough
# that no dataset-specific statistics need to travel with a checkpoint.
MEAN = (0.45, 0.45, 0.45)
STD = (0.225, 0.225, 0.225)


def clips_to_tensor(frames: np.ndarray | Tensor) -> Tensor:
    """``N×T×H×W×3`` uint8 → ``N×3×T×H×W`` float32, scaled to [0, 1] and normalised with MEAN/STD."""
    tensor = torch.as_tensor(frames)
    if tensor.dim() != 5 or tensor.shape[-1] != 3:
        raise ValueError(f"expected N×T×H×W×3 frames, got shape {tuple(tensor.shape)}")
    clips = tensor.permute(0, 4, 1, 2, 3).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1, 1)
    return clips.sub_(mean).div_(std)
