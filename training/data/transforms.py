"""Per-clip augmentation with ``torchvision.transforms.v2``: one set of random parameters per clip,
applied identically to every frame (v2 treats the leading ``T`` axis of a ``T×C×H×W`` tensor as a
batch of images sharing one draw), so augmentation never invents motion.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2


def clip_transform(
    size: int, *, train: bool, flip: bool = False, min_scale: float = 0.6
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``T×3×H×W`` uint8 → ``T×3×size×size`` uint8.

    Training: random resized crop (area ``min_scale``–1) and, only if ``flip`` says a mirror
    image keeps its label, horizontal flip — it does not for left/right or clockwise classes.
    Evaluation: resize the short side to ``size`` and take the centre crop.
    """
    if not 0 < min_scale <= 1:
        raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
    if not train:
        return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = [
        v2.RandomResizedCrop(size, scale=(min_scale, 1.0), ratio=(3 / 4, 4 / 3), antialias=True)
    ]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)
