"""What logit KD hands the student: the teacher's softened targets, and the KD term against CE.

The ablation's ``logit_kd`` row took off later than CE-only, and one explanation is a flat target:
at τ = 4 a 10-class teacher might say little more than "uniform", while the τ²-scaled term, several
times CE in value, steers the student towards it. This measures both halves on a kept ablation run
(its exported teacher, its training clips): per temperature, how much of the softened distribution
sits on the true class and its entropy against the uniform one; and, for a freshly initialised
student (the state in which take-off is decided), the value of CE and of the KD term and the norm
of each one's gradient with respect to the student's logits, which is what the optimiser sees.

    python bench/soft_targets.py --keep /tmp/abl4                 # τ = 1, 2, 4 on 320 clips
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from training.checkpoint import load_card
from training.config import DataConfig, TrainConfig
from training.data.shards import load_manifest
from training.data.stream import iterate_clips
from training.distiller import Distiller
from training.loop import samplings
from training.losses.kd import kd_loss


@dataclass(frozen=True)
class TargetStats:
    """One temperature's row: the softened target and the two terms for an untrained student."""

    temperature: float
    true_class_probability: float
    entropy: float
    ce: float
    kd: float
    ce_grad_norm: float
    kd_grad_norm: float


def logit_gradient_norm(loss: Tensor, logits: Tensor) -> float:
    """Mean per-clip L2 norm of ``∂loss/∂logits``, with the batch mean undone so clips count alike."""
    (grad,) = torch.autograd.grad(loss, logits, retain_graph=True)
    return float((grad * logits.shape[0]).norm(dim=1).mean())


def target_stats(teacher_logits: Tensor, student_logits: Tensor, labels: Tensor, temperature: float) -> TargetStats:
    """Statistics of ``softmax(teacher_logits / τ)`` and of CE and ``kd_loss`` at ``student_logits``."""
    target = F.softmax(teacher_logits / temperature, dim=1)
    entropy = -(target * target.clamp_min(1e-12).log()).sum(dim=1).mean()
    logits = student_logits.detach().requires_grad_(True)
    ce = F.cross_entropy(logits, labels)
    kd = kd_loss(logits, teacher_logits, temperature)
    return TargetStats(
        temperature=temperature,
        true_class_probability=float(target[torch.arange(len(labels)), labels].mean()),
        entropy=float(entropy),
        ce=float(ce.detach()),
        kd=float(kd.detach()),
        ce_grad_norm=logit_gradient_norm(ce, logits),
        kd_grad_norm=logit_gradient_norm(kd, logits),
    )


def collect_logits(keep: Path, student: str, clips: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Teacher and fresh-student logits, and labels, on ``clips`` training clips of the kept run."""
    card = load_card(keep / "teacher")
    config = TrainConfig(
        stage="distill",
        data=DataConfig(path=str(keep / "data"), num_frames=card.num_frames, size=card.size),
        model=student,
        teachers=[str(keep / "teacher")],
    )
    torch.manual_seed(seed)
    distiller = Distiller.from_config(config, load_manifest(keep / "data").classes)
    teacher, fresh = distiller.teachers[0].eval(), distiller.student
    fresh.train()  # batch statistics, as in the first training steps
    paths = load_manifest(keep / "data").shard_paths(keep / "data", "train")
    sampling = samplings(config)[0]
    batches = iterate_clips(
        paths,
        sampling,
        batch_size=32,
        device="cpu",
        shuffle=np.random.default_rng(seed),
        passes=1,
    )
    teacher_logits, student_logits, labels = [], [], []
    with torch.no_grad():
        for batch in batches:
            teacher_logits.append(teacher(batch.clips).logits)
            student_logits.append(fresh(batch.clips).logits)
            labels.append(batch.labels)
            if sum(len(part) for part in labels) >= clips:
                break
    return torch.cat(teacher_logits)[:clips], torch.cat(student_logits)[:clips], torch.cat(labels)[:clips]


def render(rows: list[TargetStats], classes: int, teacher_top1: float) -> str:
    """Markdown table, one row per temperature."""
    lines = [
        f"teacher top-1 on these clips: {teacher_top1:.3f}; uniform over {classes} classes: "
        f"p = {1 / classes:.3f}, entropy {math.log(classes):.3f} nats",
        "",
        "| τ | p(true class) | entropy (nats) | CE, fresh student | KD term | ‖∂CE/∂z‖ | ‖∂KD/∂z‖ |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.temperature:g} | {row.true_class_probability:.3f} | {row.entropy:.3f} | {row.ce:.3f} "
            f"| {row.kd:.3f} | {row.ce_grad_norm:.3f} | {row.kd_grad_norm:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, required=True, help="a kept ablation run (bench/ablation.py --keep)")
    parser.add_argument("--student", default="tsm_mobilenet_v2")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    parser.add_argument("--clips", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for needed in (args.keep / "teacher", args.keep / "data"):
        if not needed.is_dir():
            raise SystemExit(f"{needed}: missing; --keep takes a directory that bench/ablation.py --keep made")
    teacher_logits, student_logits, labels = collect_logits(args.keep, args.student, args.clips, args.seed)
    rows = [target_stats(teacher_logits, student_logits, labels, t) for t in args.temperatures]
    teacher_top1 = float((teacher_logits.argmax(dim=1) == labels).float().mean())
    print(render(rows, teacher_logits.shape[1], teacher_top1))


if __name__ == "__main__":
    main()
