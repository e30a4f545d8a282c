"""The paper's loss terms, each a small function with a :class:`LossTerm` around it, composed by
:class:`DistillationObjective` (the student's half) and :class:`TeacherObjective` (the teacher's)."""

from training.losses.config import CE_ONLY, CollaborationConfig, ObjectiveConfig, TapPair
from training.losses.feature import FeatureTerm, feature_loss
from training.losses.kd import LogitKDTerm, ensemble_logits, kd_loss, mutual_loss, softened_kl
from training.losses.objective import TERMS, DistillationObjective, TeacherObjective
from training.losses.parameter import (
    KernelPair,
    ParameterTerm,
    dct2,
    kernel_frequency_energy,
    parameter_distribution_loss,
    spatial_kernels,
)
from training.losses.spectrum import (
    SpectrumOptions,
    SpectrumTerm,
    TapAdapter,
    TapAdapters,
    TemporalSpectrum,
    spectrum_loss,
    temporal_spectrum,
)
from training.losses.terms import CrossEntropyTerm, LossTerm, ObjectiveOutput, TermInputs
from training.losses.weighting import FixedWeighting, UncertaintyWeighting

__all__ = [
    "CE_ONLY",
    "TERMS",
    "CollaborationConfig",
    "CrossEntropyTerm",
    "DistillationObjective",
    "FeatureTerm",
    "FixedWeighting",
    "KernelPair",
    "LogitKDTerm",
    "LossTerm",
    "ObjectiveConfig",
    "ObjectiveOutput",
    "ParameterTerm",
    "SpectrumOptions",
    "SpectrumTerm",
    "TapAdapter",
    "TapAdapters",
    "TapPair",
    "TeacherObjective",
    "TemporalSpectrum",
    "TermInputs",
    "UncertaintyWeighting",
    "dct2",
    "ensemble_logits",
    "feature_loss",
    "kd_loss",
    "kernel_frequency_energy",
    "mutual_loss",
    "parameter_distribution_loss",
    "softened_kl",
    "spatial_kernels",
    "spectrum_loss",
    "temporal_spectrum",
]
