"""The paper's loss terms (DESIGN.md §2), each a small function, composed by :class:`DistillationObjective`."""

from training.losses.config import CollaborationConfig, ObjectiveConfig, TapPair
from training.losses.feature import feature_loss
from training.losses.kd import kd_loss, mutual_loss, softened_kl
from training.losses.objective import DistillationObjective, ObjectiveOutput, ensemble_logits
from training.losses.parameter import (
    KernelPair,
    dct2,
    kernel_frequency_energy,
    parameter_distribution_loss,
    spatial_kernels,
)
from training.losses.spectrum import (
    SpectrumOptions,
    TapAdapter,
    TemporalSpectrum,
    spectrum_loss,
    temporal_spectrum,
)
from training.losses.weighting import FixedWeighting, UncertaintyWeighting

__all__ = [
    "CollaborationConfig",
    "DistillationObjective",
    "FixedWeighting",
    "KernelPair",
    "ObjectiveConfig",
    "ObjectiveOutput",
    "SpectrumOptions",
    "TapAdapter",
    "TapPair",
    "TemporalSpectrum",
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
