"""FitNets-style feature mimicry (Romero et al. 2015): the raw-feature baseline that the spectrum loss
is measured against. Not part of the paper's method; kept so the ablation compares like with like."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from training.losses.config import ObjectiveConfig
from training.losses.terms import LossTerm, TermInputs
from training.models.base import VideoClassifier


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


class FeatureTerm(LossTerm):
    """:func:`feature_loss` of the adapted student taps against each teacher's, averaged over teachers."""

    uses_taps = True

    def __init__(self, config: ObjectiveConfig, student: VideoClassifier, teachers: Sequence[VideoClassifier]) -> None:
        super().__init__(config, student, teachers)
        self.pairs = list(config.taps)

    def forward(self, inputs: TermInputs) -> Tensor:
        adapted = [
            inputs.adapters.adapted(self.pairs, inputs.student_out, teacher_out, index)
            for index, teacher_out in enumerate(inputs.teacher_outs)
        ]
        return torch.stack([feature_loss(students, targets) for students, targets in adapted]).mean()
