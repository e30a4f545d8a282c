"""``specdistill distill --synthetic-smoke``: the whole method on in-memory generated clips, no Ray.

It trains a ``tsm_resnet18`` teacher with cross-entropy, then distils a ``tsm_mobilenet_v2``
student from it with every term of the objective, printing each term as it goes and the held-out
accuracy of both networks at the end. It is the fastest way to see that the method works on a
machine, and the test suite runs a small version of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from training.config import OptimConfig
from training.data.embedded import MOTION_CLASSES, render_dataset
from training.data.normalise import clips_to_tensor
from training.distiller import Distiller
from training.losses import CollaborationConfig, ObjectiveConfig
from training.metrics import topk_correct
from training.models import VideoClassifier, create_model


@dataclass(frozen=True)
class SmokeConfig:
    size: int = 64
    num_frames: int = 8
    train_clips: int = 1000
    val_clips: int = 300
    batch_size: int = 16
    teacher: str = "tsm_resnet18"
    student: str = "tsm_mobilenet_v2"
    teacher_steps: int = 300
    student_steps: int = 300
    teacher_lr: float = 2e-3
    student_lr: float = 3e-3
    log_every: int = 25
    seed: int = 0
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    collaboration: CollaborationConfig = field(default_factory=CollaborationConfig)


@dataclass
class SmokeReport:
    teacher_top1: float
    student_top1: float
    student_losses: list[float]
    history: list[dict[str, float]]


def evaluate_top1(model: VideoClassifier, clips: torch.Tensor, labels: torch.Tensor, batch_size: int = 64) -> float:
    """Held-out top-1 accuracy in eval mode."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(clips), batch_size):
            logits = model(clips[start : start + batch_size]).logits
            correct += topk_correct(logits, labels[start : start + batch_size], 1)
    return correct / len(clips)


def _train(
    distiller: Distiller,
    steps: int,
    batch_size: int,
    data: tuple[torch.Tensor, torch.Tensor],
    seed: int,
    log: Callable[[int, dict[str, float]], None],
) -> list[dict[str, float]]:
    """``steps`` steps on batches drawn with replacement from ``data`` by a generator seeded ``seed``."""
    clips, labels = data
    generator = torch.Generator().manual_seed(seed)
    history = []
    for index in range(1, steps + 1):
        batch = torch.randint(0, len(clips), (batch_size,), generator=generator)
        result = distiller.step(clips[batch], labels[batch])
        metrics = result.metrics | {"batch_top1": topk_correct(result.logits, labels[batch], 1) / batch_size}
        history.append(metrics)
        log(index, metrics)
    return history


def _optim(*, lr: float, teacher_lr: float | None = None) -> OptimConfig:
    """The smoke run's AdamW and one-cycle settings; ``teacher_lr`` only matters in mutual mode."""
    rates = {"lr": lr} | ({} if teacher_lr is None else {"teacher_lr": teacher_lr})
    return OptimConfig(**rates, weight_decay=1e-4, warmup_fraction=0.15)


def run_smoke(config: SmokeConfig, echo: Callable[[str], None] = print) -> SmokeReport:
    """Train the teacher, distil the student, report held-out accuracy (see module docstring)."""
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    train = render_dataset(config.train_clips, num_frames=config.num_frames, size=config.size, seed=config.seed)
    val = render_dataset(config.val_clips, num_frames=config.num_frames, size=config.size, seed=config.seed + 1)
    train_data = (clips_to_tensor(train[0]), torch.from_numpy(train[1]))
    val_clips, val_labels = clips_to_tensor(val[0]), torch.from_numpy(val[1])
    num_classes = len(MOTION_CLASSES)
    echo(
        f"generated {config.train_clips} training and {config.val_clips} held-out clips "
        f"({config.num_frames}×{config.size}×{config.size}) in {time.perf_counter() - started:.1f}s"
    )

    def log(stage: str, total: int) -> Callable[[int, dict[str, float]], None]:
        def emit(index: int, metrics: dict[str, float]) -> None:
            if index % config.log_every == 0 or index == total:
                terms = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items())
                echo(f"[{stage} {index:4d}/{total}] {terms}  ({time.perf_counter() - started:.0f}s)")

        return emit

    teacher = create_model(config.teacher, num_classes=num_classes, num_frames=config.num_frames)
    teacher_training = Distiller(teacher, optim=_optim(lr=config.teacher_lr), total_steps=config.teacher_steps)
    _train(
        teacher_training,
        config.teacher_steps,
        config.batch_size,
        train_data,
        config.seed,
        log("teacher", config.teacher_steps),
    )
    teacher_top1 = evaluate_top1(teacher, val_clips, val_labels)
    echo(f"teacher {config.teacher}: held-out top-1 {teacher_top1:.3f} (chance {1 / num_classes:.3f})")

    student = create_model(config.student, num_classes=num_classes, num_frames=config.num_frames)
    distiller = Distiller(
        student,
        [teacher],
        objective=config.objective,
        collaboration=config.collaboration,
        # A learning teacher moves at a tenth of its own training rate, so it does not forget.
        optim=_optim(lr=config.student_lr, teacher_lr=config.teacher_lr * 0.1),
        total_steps=config.student_steps,
    )
    history = _train(
        distiller,
        config.student_steps,
        config.batch_size,
        train_data,
        config.seed + 1,
        log("student", config.student_steps),
    )
    student_top1 = evaluate_top1(student, val_clips, val_labels)
    echo(
        f"student {config.student}: held-out top-1 {student_top1:.3f} (teacher {teacher_top1:.3f}, "
        f"chance {1 / num_classes:.3f}) after {time.perf_counter() - started:.0f}s"
    )
    return SmokeReport(teacher_top1, student_top1, [h["loss"] for h in history], history)
