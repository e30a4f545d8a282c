"""The shape every term of the student's objective shares, so that the objective composes them
from one registry (``training.losses.objective.TERMS``) and a new term is one module of its own.

A term is built once per distillation from the objective's config and the networks (it checks
there what it will need, naming the config field), then called once per step with the step's
:class:`TermInputs`; it returns its unweighted value as a scalar tensor. Weighting and summing are
the objective's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from training.losses.config import ObjectiveConfig, TapPair
from training.models.base import ModelOutput, VideoClassifier

if TYPE_CHECKING:
    from training.losses.spectrum import TapAdapters


@dataclass(frozen=True)
class TermInputs:
    """One step as a term sees it: both sides' outputs (logits and the taps the objective asked
    for), the labels, the unwrapped networks (for their kernels) and the student→teacher tap
    adapters. Teacher outputs still carry their graph in mutual mode: terms detach them."""

    student_out: ModelOutput
    teacher_outs: Sequence[ModelOutput]
    labels: Tensor
    student: VideoClassifier
    teachers: Sequence[VideoClassifier]
    adapters: TapAdapters


@dataclass
class ObjectiveOutput:
    """``total`` to back-propagate and each unweighted ``terms[name]`` (scalars, still in the graph)."""

    total: Tensor
    terms: dict[str, Tensor]


class LossTerm(nn.Module):
    """One unweighted term. ``uses_taps``: it reads the tap pairs of ``ObjectiveConfig.taps``, so the
    networks must return those taps and the objective builds adapters for them."""

    uses_taps: ClassVar[bool] = False

    def __init__(self, config: ObjectiveConfig, student: VideoClassifier, teachers: Sequence[VideoClassifier]) -> None:
        super().__init__()

    def forward(self, inputs: TermInputs) -> Tensor:
        raise NotImplementedError


class CrossEntropyTerm(LossTerm):
    """``CE(z_s, y)``: the supervised term, the one term that needs no teacher."""

    def forward(self, inputs: TermInputs) -> Tensor:
        return F.cross_entropy(inputs.student_out.logits, inputs.labels)


def check_taps(
    field: str, pairs: Sequence[TapPair], student: VideoClassifier, teachers: Sequence[VideoClassifier]
) -> None:
    """Every pair names a tap both networks have; the error names ``field`` and the taps there are."""
    for pair in pairs:
        if pair.student not in student.taps:
            raise ValueError(
                f"{field}: student tap {pair.student!r} does not exist; student taps are {sorted(student.taps)}"
            )
        for teacher in teachers:
            if pair.teacher not in teacher.taps:
                raise ValueError(
                    f"{field}: teacher tap {pair.teacher!r} does not exist; teacher taps are {sorted(teacher.taps)}"
                )
