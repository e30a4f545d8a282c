"""Both halves of the objective: the student's ``Σ w_i L_i`` over the terms of :data:`TERMS`, every
term logged, and the teacher's half of collaborative learning.

:data:`TERMS` is the one list of loss terms. Adding a term is a :class:`LossTerm` in a module of its
own, its ``<name>_weight`` field (and options) in ``ObjectiveConfig``, and one line here; sweeps
can then search its weight, and grid rows that name their ``terms`` leave it off.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from training.losses.config import CollaborationConfig, ObjectiveConfig
from training.losses.feature import FeatureTerm
from training.losses.kd import LogitKDTerm, mutual_loss
from training.losses.parameter import ParameterTerm
from training.losses.spectrum import SpectrumTerm, TapAdapters
from training.losses.terms import CrossEntropyTerm, LossTerm, ObjectiveOutput, TermInputs, check_taps
from training.losses.weighting import FixedWeighting, UncertaintyWeighting
from training.models.base import ModelOutput, VideoClassifier

# Name → term; the order is the order terms are computed and summed in.
TERMS: dict[str, type[LossTerm]] = {
    "ce": CrossEntropyTerm,
    "kd": LogitKDTerm,
    "spectrum": SpectrumTerm,
    "feature": FeatureTerm,
    "parameter": ParameterTerm,
}


class DistillationObjective(nn.Module):
    """Composes the terms switched on in an :class:`ObjectiveConfig` for one student and one or
    more teachers (an ensemble: KD against the members' mean softened probabilities, the other
    terms averaged over members). Owns the learnable parts of the objective — the tap adapters
    and, with uncertainty weighting, the log-variances — so they train with the student.
    Teacher outputs and weights are always detached: the teacher learns only from its own
    collaborative objective (:class:`TeacherObjective`).
    """

    def __init__(self, config: ObjectiveConfig, student: VideoClassifier, teachers: Sequence[VideoClassifier]) -> None:
        super().__init__()
        weights = config.active_weights()
        if not teachers and set(weights) != {"ce"}:
            raise ValueError("distillation terms are switched on but no teacher was given")
        unknown = set(weights) - set(TERMS)
        if unknown:
            raise ValueError(f"objective: no loss term registered for {sorted(unknown)}; terms are {list(TERMS)}")
        self.config = config
        self.uses_taps = any(TERMS[name].uses_taps for name in weights)
        self.tap_pairs = list(config.taps) if self.uses_taps else []
        check_taps("objective.taps", self.tap_pairs, student, teachers)
        self.adapters = TapAdapters(self.tap_pairs, student, teachers)
        self.terms = nn.ModuleDict(
            {name: term(config, student, teachers) for name, term in TERMS.items() if name in weights}
        )
        self.weighting = UncertaintyWeighting(weights) if config.weighting == "uncertainty" else FixedWeighting(weights)

    @property
    def student_taps(self) -> list[str]:
        """Taps the student must return in its :class:`ModelOutput`."""
        return list(dict.fromkeys(p.student for p in self.tap_pairs))

    @property
    def teacher_taps(self) -> list[str]:
        """Taps every teacher must return in its :class:`ModelOutput`."""
        return list(dict.fromkeys(p.teacher for p in self.tap_pairs))

    def forward(
        self,
        student_out: ModelOutput,
        teacher_outs: Sequence[ModelOutput],
        labels: Tensor,
        student: VideoClassifier,
        teachers: Sequence[VideoClassifier],
    ) -> ObjectiveOutput:
        """All active terms for one batch; ``student``/``teachers`` are the unwrapped models (for kernels)."""
        inputs = TermInputs(student_out, teacher_outs, labels, student, teachers, self.adapters)
        terms = {name: term(inputs) for name, term in self.terms.items()}
        return ObjectiveOutput(total=self.weighting(terms), terms=terms)

    def undecayed_parameters(self) -> list[nn.Parameter]:
        """Parameters weight decay must not touch: uncertainty weighting's log-variances, which
        decay would pull towards 0 (every weight towards 1) whatever the terms say."""
        return list(self.weighting.parameters())

    def current_weights(self) -> dict[str, float]:
        """The weight each term has right now (changes during training with uncertainty weighting)."""
        return self.weighting.current_weights()


class TeacherObjective(nn.Module):
    """The teacher's half of collaborative (``mutual``) learning: ``CE(z_t, y) + α_t τ_c² KL(p_s || p_t)``
    (α_t=mutual_weight, τ_c=mutual_temperature), pulling the teacher's posterior towards what the
    student can represent. The student's logits are detached: only the teacher learns from this."""

    def __init__(self, config: CollaborationConfig) -> None:
        super().__init__()
        self.config = config

    def forward(self, teacher_logits: Tensor, student_logits: Tensor, labels: Tensor) -> ObjectiveOutput:
        """``N×K`` logits of each side and ``N`` labels; computed in float32 whatever the autocast."""
        teacher_logits = teacher_logits.float()
        ce = F.cross_entropy(teacher_logits, labels)
        mutual = mutual_loss(teacher_logits, student_logits.float(), self.config.mutual_temperature)
        return ObjectiveOutput(total=ce + self.config.mutual_weight * mutual, terms={"ce": ce, "mutual": mutual})
