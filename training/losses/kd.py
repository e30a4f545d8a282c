"""Logit distillation in both directions: teacher → student (KD) and student → teacher (collaborative)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from training.losses.config import ObjectiveConfig
from training.losses.terms import LossTerm, TermInputs
from training.models.base import VideoClassifier


def softened_kl(target_logits: Tensor, input_logits: Tensor, temperature: float) -> Tensor:
    """``τ² · KL(softmax(target/τ) || softmax(input/τ))`` averaged over the batch.

    The ``τ²`` factor keeps gradient magnitudes comparable across temperatures (Hinton et al. 2015).
    Both arguments are ``N×K``; the target is used as given (detach it to stop its gradient).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if target_logits.shape != input_logits.shape or target_logits.dim() != 2:
        raise ValueError(
            f"logits must both be N×K with equal shapes, got target {tuple(target_logits.shape)} and "
            f"input {tuple(input_logits.shape)}"
        )
    log_target = F.log_softmax(target_logits / temperature, dim=1)
    log_input = F.log_softmax(input_logits / temperature, dim=1)
    kl = (log_target.exp() * (log_target - log_input)).sum(dim=1).mean()
    return kl * temperature**2


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """``L_kd = τ_kd² · KL(p_t || p_s)``: the student's gradient only; the teacher is detached."""
    return softened_kl(teacher_logits.detach(), student_logits, temperature)


def mutual_loss(teacher_logits: Tensor, student_logits: Tensor, temperature: float) -> Tensor:
    """Teacher side of collaborative learning: ``τ_c² · KL(p_s || p_t)``, pulling the teacher's posterior
    towards what the student can represent. The student is detached so only the teacher learns from it."""
    return softened_kl(student_logits.detach(), teacher_logits, temperature)


def ensemble_logits(teacher_logits: Sequence[Tensor], temperature: float) -> Tensor:
    """Logits whose softmax at ``temperature`` is the mean of the members' softened probabilities.

    ``τ · log mean_i softmax(z_i/τ)``: a single teacher's logits come back up to a constant shift.
    """
    if len(teacher_logits) == 1:
        return teacher_logits[0]
    log_probs = torch.stack([F.log_softmax(z / temperature, dim=1) for z in teacher_logits])
    return temperature * (torch.logsumexp(log_probs, dim=0) - math.log(len(teacher_logits)))


class LogitKDTerm(LossTerm):
    """:func:`kd_loss` against the teachers' mean softened probabilities (an ensemble's, or one teacher's)."""

    def __init__(self, config: ObjectiveConfig, student: VideoClassifier, teachers: Sequence[VideoClassifier]) -> None:
        super().__init__(config, student, teachers)
        self.temperature = config.kd_temperature

    def forward(self, inputs: TermInputs) -> Tensor:
        target = ensemble_logits([t.logits.detach() for t in inputs.teacher_outs], self.temperature)
        return kd_loss(inputs.student_out.logits, target, self.temperature)
