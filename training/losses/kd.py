"""Logit distillation in both directions: teacher → student (KD) and student → teacher (collaborative)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


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
