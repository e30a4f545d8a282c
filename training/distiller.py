"""A distillation as one object: the student, its teachers, both halves of the objective, both
optimisers with their schedules, and the precision they run at.

Everything that trains a network here builds it through :class:`Distiller`: the worker loop (both
stages: a teacher is trained as a student with the cross-entropy objective and no teacher), the
Ray-free smoke run, the benchmarks and the tests. One ``step`` is one optimisation step of the
student and, in ``mutual`` mode, of the teacher; ``state_dict`` is what a checkpoint must hold to
continue exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from training.checkpoint import exported_members, load_exported
from training.config import OptimConfig, TrainConfig
from training.losses import DistillationObjective, TeacherObjective
from training.losses.config import CE_ONLY, CollaborationConfig, ObjectiveConfig
from training.models import VideoClassifier, create_model
from training.models.pretrained import load_initial_weights
from training.precision import Precision

CPU_PRECISION = Precision(device=torch.device("cpu"))
Prepare = Callable[[nn.Module, bool], nn.Module]


@dataclass
class StepResult:
    """Scalars for logging (``loss`` plus every term, prefixed ``teacher/`` for the teacher side) and
    the student's detached logits, for running accuracy without a second forward pass."""

    metrics: dict[str, float]
    logits: Tensor = field(repr=False)


def unwrap(model: nn.Module) -> VideoClassifier:
    """The model inside a DistributedDataParallel wrapper, or the model itself."""
    return getattr(model, "module", model)


def load_teachers(config: TrainConfig, classes: list[str]) -> list[VideoClassifier]:
    """The exported teachers (an ensemble directory counts as its members), checked against the
    data they will be asked about."""
    teachers = []
    for path in (member for source in config.teachers for member in exported_members(source)):
        model, card = load_exported(path)
        if card.classes != classes:
            raise ValueError(f"teacher {path} was trained on classes {card.classes[:3]}…, the data has {classes[:3]}…")
        if card.num_frames != config.data.num_frames:
            frames = config.data.num_frames
            raise ValueError(f"teacher {path} takes {card.num_frames} frames, data.num_frames is {frames}")
        teachers.append(model)
    return teachers


class Distiller:
    """Trains ``student`` from ``teachers`` with ``objective``; teachers frozen, or (``mutual``)
    learning alongside with their own optimiser at ``optim.teacher_lr``.

    ``total_steps``: a one-cycle schedule over that many steps for each optimiser (``None`` keeps
    the rates constant). ``prepare(network, trainable)`` places each network (the default moves it
    to ``precision.device``; a Ray Train worker wraps trainable ones in DDP); the objective sees
    the networks unwrapped.
    """

    def __init__(
        self,
        student: VideoClassifier,
        teachers: Sequence[VideoClassifier] = (),
        *,
        objective: ObjectiveConfig = CE_ONLY,
        collaboration: CollaborationConfig = CollaborationConfig(),
        optim: OptimConfig = OptimConfig(),
        total_steps: int | None = None,
        precision: Precision = CPU_PRECISION,
        prepare: Prepare | None = None,
    ) -> None:
        mutual = collaboration.mode == "mutual"
        if mutual and len(teachers) != 1:
            raise ValueError(f"mutual collaboration trains exactly one teacher beside the student, got {len(teachers)}")
        place = prepare or (lambda network, trainable: network.to(precision.device))
        self.precision = precision
        self.objective = DistillationObjective(objective, student, teachers).to(precision.device)
        self.teacher_objective = TeacherObjective(collaboration) if mutual else None
        self.model = place(student, True)
        self.teachers = [place(teacher, mutual) for teacher in teachers]
        undecayed = self.objective.undecayed_parameters()
        kept = {id(p) for p in undecayed}
        groups = [{"params": [p for p in [*student.parameters(), *self.objective.parameters()] if id(p) not in kept]}]
        if undecayed:
            groups.append({"params": undecayed, "weight_decay": 0.0})
        self.optimizers = {"student": torch.optim.AdamW(groups, lr=optim.lr, weight_decay=optim.weight_decay)}
        if mutual:
            self.optimizers["teacher"] = torch.optim.AdamW(
                self.teachers[0].parameters(), lr=optim.teacher_lr, weight_decay=optim.weight_decay
            )
        self.schedulers = {
            name: torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=optimizer.param_groups[0]["lr"],
                total_steps=total_steps,
                pct_start=optim.warmup_fraction,
            )
            for name, optimizer in self.optimizers.items()
            if total_steps is not None
        }

    @classmethod
    def from_config(
        cls,
        config: TrainConfig,
        classes: list[str],
        *,
        total_steps: int | None = None,
        precision: Precision = CPU_PRECISION,
        prepare: Prepare | None = None,
    ) -> Distiller:
        """The distillation a training config describes, for data with ``classes``: ``config.model``,
        fresh or started from ``config.init``, and the exported teachers; the teacher stage trains with CE alone (its
        ``objective`` and ``collaboration`` play no part)."""
        student = create_model(
            config.model, num_classes=len(classes), num_frames=config.data.num_frames, **config.model_kwargs
        )
        if config.init is not None:
            load_initial_weights(student, config.init)
        distill = config.stage == "distill"
        return cls(
            student,
            load_teachers(config, classes),
            objective=config.objective if distill else CE_ONLY,
            collaboration=config.collaboration if distill else CollaborationConfig(),
            optim=config.optim,
            total_steps=total_steps,
            precision=precision,
            prepare=prepare,
        )

    @property
    def student(self) -> VideoClassifier:
        """The student, unwrapped."""
        return unwrap(self.model)

    def step(self, clips: Tensor, labels: Tensor) -> StepResult:
        """One step on ``N×3×T×H×W`` clips and ``N`` labels (then one step of each schedule).

        Frozen: teachers run in eval mode without autograd and their weights never change. Mutual:
        the teacher runs in train mode and takes its own step; the two graphs are disjoint because
        each side's objective detaches the other side's outputs.
        """
        mutual = self.teacher_objective is not None
        for teacher in self.teachers:
            teacher.train(mutual)
        self.model.train()
        with self.precision.autocast():
            with torch.set_grad_enabled(mutual):
                teacher_outs = [t(clips, taps=self.objective.teacher_taps) for t in self.teachers]
            student_out = self.model(clips, taps=self.objective.student_taps)
            result = self.objective(student_out, teacher_outs, labels, self.student, [unwrap(t) for t in self.teachers])
        self._descend("student", result.total)
        metrics = {"loss": result.total.item(), **{name: value.item() for name, value in result.terms.items()}}
        if self.teacher_objective is not None:
            teacher = self.teacher_objective(teacher_outs[0].logits, student_out.logits, labels)
            self._descend("teacher", teacher.total)
            metrics |= {"teacher/loss": teacher.total.item()}
            metrics |= {f"teacher/{name}": value.item() for name, value in teacher.terms.items()}
        for scheduler in self.schedulers.values():
            scheduler.step()
        return StepResult(metrics, student_out.logits.detach())

    def _descend(self, side: str, loss: Tensor) -> None:
        optimizer = self.optimizers[side]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def state_dict(self) -> dict[str, dict]:
        """Networks that learn, the objective's own parameters, optimisers and schedules."""
        return {
            "student": self.student.state_dict(),
            "objective": self.objective.state_dict(),
            "teacher": unwrap(self.teachers[0]).state_dict() if self.teacher_objective is not None else {},
            "optimizers": {name: o.state_dict() for name, o in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
        }

    def load_state_dict(self, state: dict[str, dict]) -> None:
        """Continue from what :meth:`state_dict` returned (possibly through a checkpoint file)."""
        self.student.load_state_dict(state["student"])
        self.objective.load_state_dict(state["objective"])
        if self.teacher_objective is not None:
            unwrap(self.teachers[0]).load_state_dict(state["teacher"])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(_in_groups_of(state["optimizers"][name], optimizer))
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])


def _in_groups_of(saved: dict, optimizer: torch.optim.Optimizer) -> dict:
    """``saved`` split into ``optimizer``'s parameter groups when it holds them as one group.

    Checkpoints written before uncertainty weighting's log-variances got a group of their own
    (without weight decay) hold the same parameters, in the same order, in one group; the state
    of each parameter is kept, and each group takes its hyperparameters from the optimizer."""
    groups = optimizer.param_groups
    if len(saved["param_groups"]) != 1 or len(groups) == 1:
        return saved
    indices = saved["param_groups"][0]["params"]
    if len(indices) != sum(len(group["params"]) for group in groups):
        return saved  # not the same parameters: let load_state_dict say so
    hyper = {k: v for k, v in saved["param_groups"][0].items() if k not in ("params", "weight_decay")}
    split, start = [], 0
    for group in groups:
        split.append(
            {**hyper, "weight_decay": group["weight_decay"], "params": indices[start : start + len(group["params"])]}
        )
        start += len(group["params"])
    return {"state": saved["state"], "param_groups": split}
