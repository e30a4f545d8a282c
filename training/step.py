"""One optimisation step: supervised (teacher training / CE baseline) or distillation (frozen or mutual)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.losses.config import CollaborationConfig
from training.losses.kd import mutual_loss
from training.losses.objective import DistillationObjective
from training.models.base import VideoClassifier
from training.precision import Precision

CPU_PRECISION = Precision(device=torch.device("cpu"))


@dataclass
class StepResult:
    """Scalars for logging (``loss`` plus every term, prefixed ``teacher/`` for the teacher side) and
    the student's detached logits, for running accuracy without a second forward pass."""

    metrics: dict[str, float]
    logits: Tensor = field(repr=False)


def unwrap(model: nn.Module) -> VideoClassifier:
    """The model inside a DistributedDataParallel wrapper, or the model itself."""
    return getattr(model, "module", model)


def supervised_step(
    clips: Tensor,
    labels: Tensor,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    precision: Precision = CPU_PRECISION,
) -> StepResult:
    """Cross-entropy step on ``N×3×T×H×W`` clips and ``N`` labels."""
    model.train()
    with precision.autocast():
        logits = model(clips).logits
        loss = F.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return StepResult({"loss": loss.item(), "ce": loss.item()}, logits.detach())


def distillation_step(
    clips: Tensor,
    labels: Tensor,
    *,
    student: nn.Module,
    teachers: Sequence[nn.Module],
    objective: DistillationObjective,
    student_optimizer: torch.optim.Optimizer,
    collaboration: CollaborationConfig = CollaborationConfig(),
    teacher_optimizer: torch.optim.Optimizer | None = None,
    precision: Precision = CPU_PRECISION,
) -> StepResult:
    """One step of the student's objective; in ``mutual`` mode also one step of the teacher's.

    Frozen: teachers run in eval mode without autograd and their weights never change. Mutual:
    the (single) teacher runs in train mode and minimises ``CE(z_t, y) + α_t τ_c² KL(p_s || p_t)``
    with its own optimiser; the two graphs are disjoint because each side detaches the other.
    """
    mutual = collaboration.mode == "mutual"
    if mutual and (teacher_optimizer is None or len(teachers) != 1):
        raise ValueError("mutual collaboration needs exactly one teacher and a teacher_optimizer")
    for teacher in teachers:
        teacher.train(mutual)
    student.train()
    with precision.autocast():
        with torch.set_grad_enabled(mutual):
            teacher_outs = [t(clips, taps=objective.teacher_taps) for t in teachers]
        student_out = student(clips, taps=objective.student_taps)
        result = objective(student_out, teacher_outs, labels, unwrap(student), [unwrap(t) for t in teachers])
    student_optimizer.zero_grad(set_to_none=True)
    result.total.backward()
    student_optimizer.step()
    metrics = {"loss": result.total.item(), **{name: value.item() for name, value in result.terms.items()}}
    if mutual:
        teacher_logits = teacher_outs[0].logits.float()
        teacher_ce = F.cross_entropy(teacher_logits, labels)
        teacher_mutual = mutual_loss(teacher_logits, student_out.logits.float(), collaboration.mutual_temperature)
        teacher_loss = teacher_ce + collaboration.mutual_weight * teacher_mutual
        teacher_optimizer.zero_grad(set_to_none=True)
        teacher_loss.backward()
        teacher_optimizer.step()
        metrics |= {
            "teacher/loss": teacher_loss.item(),
            "teacher/ce": teacher_ce.item(),
            "teacher/mutual": teacher_mutual.item(),
        }
    return StepResult(metrics, student_out.logits.detach())
