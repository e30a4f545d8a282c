"""The student's objective: ``w_ce CE + α L_kd + β L_spec + γ L_param (+ w_f L_feat)``, every term logged."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.losses.config import ObjectiveConfig, TapPair
from training.losses.feature import feature_loss
from training.losses.kd import kd_loss
from training.losses.parameter import KernelPair, TeacherEnergyCache, parameter_distribution_loss, spatial_kernels
from training.losses.spectrum import SpectrumOptions, TapAdapter, spectrum_distance, temporal_spectrum
from training.losses.weighting import FixedWeighting, UncertaintyWeighting
from training.models.base import ModelOutput, VideoClassifier


@dataclass
class ObjectiveOutput:
    """``total`` to back-propagate and each unweighted ``terms[name]`` (scalars, still in the graph)."""

    total: Tensor
    terms: dict[str, Tensor]


def _check_taps(
    field: str, pairs: Sequence[TapPair], student: VideoClassifier, teachers: Sequence[VideoClassifier]
) -> None:
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


def ensemble_logits(teacher_logits: Sequence[Tensor], temperature: float) -> Tensor:
    """Logits whose softmax at ``temperature`` is the mean of the members' softened probabilities.

    ``τ · log mean_i softmax(z_i/τ)``: a single teacher's logits come back up to a constant shift.
    """
    if len(teacher_logits) == 1:
        return teacher_logits[0]
    log_probs = torch.stack([F.log_softmax(z / temperature, dim=1) for z in teacher_logits])
    return temperature * (torch.logsumexp(log_probs, dim=0) - math.log(len(teacher_logits)))


class DistillationObjective(nn.Module):
    """Composes the loss terms switched on in an :class:`ObjectiveConfig` for one student and one or
    more teachers (an ensemble: KD against the members' mean softened probabilities, spectrum and
    parameter terms averaged over members). Owns the learnable parts of the objective — the tap
    adapters and, with uncertainty weighting, the log-variances — so they train with the student.
    Teacher outputs and weights are always detached: the teacher learns only from its own
    collaborative objective.
    """

    def __init__(self, config: ObjectiveConfig, student: VideoClassifier, teachers: Sequence[VideoClassifier]) -> None:
        super().__init__()
        if not teachers and set(config.active_weights()) != {"ce"}:
            raise ValueError("distillation terms are switched on but no teacher was given")
        self.config = config
        weights = config.active_weights()
        self.uses_taps = "spectrum" in weights or "feature" in weights
        self.tap_pairs = list(config.taps) if self.uses_taps else []
        _check_taps("objective.taps", self.tap_pairs, student, teachers)
        self.parameter_pairs = list(config.parameter_stages) if "parameter" in weights else []
        _check_taps("objective.parameter_stages", self.parameter_pairs, student, teachers)
        self.adapters = nn.ModuleDict(
            {
                self._adapter_key(index, pair): TapAdapter(
                    student.taps[pair.student].channels, teacher.taps[pair.teacher].channels
                )
                for index, teacher in enumerate(teachers)
                for pair in self.tap_pairs
            }
        )
        self.spectrum_options = SpectrumOptions(
            config.spectrum_log_amplitude, config.spectrum_low_bins, config.spectrum_phase
        )
        self.weighting = UncertaintyWeighting(weights) if config.weighting == "uncertainty" else FixedWeighting(weights)
        self._teacher_energies = TeacherEnergyCache()

    @staticmethod
    def _adapter_key(teacher_index: int, pair: TapPair) -> str:
        return f"t{teacher_index}:{pair.student}->{pair.teacher}"

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
        active = self.config.active_weights()
        terms: dict[str, Tensor] = {}
        if "ce" in active:
            terms["ce"] = F.cross_entropy(student_out.logits, labels)
        if "kd" in active:
            target = ensemble_logits([t.logits.detach() for t in teacher_outs], self.config.kd_temperature)
            terms["kd"] = kd_loss(student_out.logits, target, self.config.kd_temperature)
        if "spectrum" in active:
            terms["spectrum"] = torch.stack(
                [self._spectrum_term(student_out, teacher_out, i) for i, teacher_out in enumerate(teacher_outs)]
            ).mean()
        if "feature" in active:
            adapted = [self._adapted_taps(student_out, teacher_out, i) for i, teacher_out in enumerate(teacher_outs)]
            terms["feature"] = torch.stack([feature_loss(s, t) for s, t in adapted]).mean()
        if "parameter" in active:
            terms["parameter"] = torch.stack([self._parameter_term(student, t) for t in teachers]).mean()
        return ObjectiveOutput(total=self.weighting(terms), terms=terms)

    def _spectrum_term(self, student_out: ModelOutput, teacher_out: ModelOutput, teacher_index: int) -> Tensor:
        """``spectrum_loss`` of the adapted student taps against this teacher's, each student side
        through :meth:`TapAdapter.spectrum` (the same value, without the teacher-wide FFT)."""
        distances = []
        for pair in self.tap_pairs:
            student, target = student_out.features[pair.student], teacher_out.features[pair.teacher].detach()
            if student.shape[2] != target.shape[2]:
                raise ValueError(
                    f"spectrum tap {pair.student!r}->{pair.teacher!r}: student has {student.shape[2]} time steps, "
                    f"teacher {target.shape[2]} (time lengths must match to compare temporal spectra)"
                )
            adapter = self.adapters[self._adapter_key(teacher_index, pair)]
            spectrum = adapter.spectrum(student, tuple(target.shape[-2:]), self.spectrum_options)
            distances.append(spectrum_distance(spectrum, temporal_spectrum(target, self.spectrum_options)))
        return torch.stack(distances).mean()

    def _adapted_taps(
        self, student_out: ModelOutput, teacher_out: ModelOutput, teacher_index: int
    ) -> tuple[list[Tensor], list[Tensor]]:
        students, targets = [], []
        for pair in self.tap_pairs:
            target = teacher_out.features[pair.teacher].detach()
            adapter = self.adapters[self._adapter_key(teacher_index, pair)]
            students.append(adapter(student_out.features[pair.student], tuple(target.shape[-2:])))
            targets.append(target)
        return students, targets

    def _parameter_term(self, student: VideoClassifier, teacher: VideoClassifier) -> Tensor:
        pairs = [
            KernelPair(
                student=spatial_kernels(student.stages[pair.student]),
                teacher=spatial_kernels(teacher.stages[pair.teacher]),
                name=pair.key(),
            )
            for pair in self.parameter_pairs
        ]
        return parameter_distribution_loss(
            pairs, self.config.parameter_temperature, self.config.kernel_mismatch, self._teacher_energies
        )

    def current_weights(self) -> dict[str, float]:
        """The weight each term has right now (changes during training with uncertainty weighting)."""
        return self.weighting.current_weights()
