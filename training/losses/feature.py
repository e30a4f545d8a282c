"""FitNets-style feature mimicry (Romero et al. 2015): the raw-feature baseline that the spectrum loss
is measured against. Not part of the paper's method; kept so the ablation compares like with like."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def feature_loss(student_features: Sequence[Tensor], teacher_features: Sequence[Tensor]) -> Tensor:
    """Mean over tap pairs of the element-wise MSE between adapted student and teacher taps of equal shape."""
    if not student_features or len(student_features) != len(teacher_features):
        raise ValueError(
            f"feature_loss needs matching, non-empty tap lists, got {len(student_features)} student and "
            f"{len(teacher_features)} teacher taps"
        )
    terms = []
    for index, (student, teacher) in enumerate(zip(student_features, teacher_features, strict=True)):
        if student.shape != teacher.shape:
            raise ValueError(
                f"tap pair {index}: adapted student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ"
            )
        terms.append(F.mse_loss(student, teacher))
    return torch.stack(terms).mean()
