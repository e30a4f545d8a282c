"""Feature-spectrum distillation: the student mimics the temporal frequency spectrum of teacher taps.

For a tap ``F`` of shape ``N×C×T×H×W`` the spectrum is ``|rfft(F, dim=T, norm="ortho")|`` averaged
over ``H×W`` and L2-normalised over frequency per channel, so what is matched is *how a channel's
energy is spread across temporal frequencies* (its motion signature), not its scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.losses.config import ObjectiveConfig, SpectrumKernel, TapPair
from training.losses.fused_spectrum import fused_spectrum_parts
from training.losses.terms import LossTerm, TermInputs
from training.models.base import ModelOutput, VideoClassifier

_EPS = 1e-8


@dataclass(frozen=True)
class SpectrumOptions:
    """How a tap becomes a spectrum.

    ``log_amplitude`` compresses the amplitude with ``log1p`` before normalising; ``low_bins``
    keeps only the lowest ``k`` frequency bins (None keeps all ``T//2+1``); ``phase`` adds the
    mean phase per bin as ``cos``/``sin``, compared with a squared distance halved so it lies in [0, 2].
    """

    log_amplitude: bool = False
    low_bins: int | None = None
    phase: bool = False

    def __post_init__(self) -> None:
        if self.low_bins is not None and self.low_bins < 1:
            raise ValueError(f"low_bins must be a positive number of frequency bins or None, got {self.low_bins}")


@dataclass(frozen=True)
class TemporalSpectrum:
    """``amplitude``: ``N×C×K`` with unit L2 norm over ``K``; ``cos``/``sin``: ``N×C×K`` mean phase, or None."""

    amplitude: Tensor
    cos: Tensor | None = None
    sin: Tensor | None = None


class _Modulus(torch.autograd.Function):
    """``|re + i·im|`` from the two parts, with the complex modulus's gradient at zero (0).

    ``torch.hypot`` computes it in one pass over the parts (no complex tensor is built), but its
    gradient at ``0 + 0i`` is 0/0; a feature that is zero all along a clip has exactly that.
    """

    @staticmethod
    def forward(ctx, real: Tensor, imag: Tensor) -> Tensor:
        modulus = torch.hypot(real, imag)
        ctx.save_for_backward(real, imag, modulus)
        return modulus

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:
        real, imag, modulus = ctx.saved_tensors
        scale = torch.where(modulus == 0, 0.0, grad / modulus)
        return scale * real, scale * imag


def temporal_coefficients(features: Tensor, low_bins: int | None = None) -> Tensor:
    """``rfft`` along time (``N×C×T×H×W`` → complex ``N×C×K×H×W``), the lowest ``low_bins`` bins kept."""
    _check_rank(features)
    # float32 at least: under autocast half-precision FFTs are restricted and lose the small bins.
    coefficients = torch.fft.rfft(
        features.float() if features.dtype in (torch.float16, torch.bfloat16) else features,
        dim=2,
        norm="ortho",
    )
    return coefficients if low_bins is None else coefficients[:, :, :low_bins]


def _check_rank(features: Tensor) -> None:
    if features.dim() != 5:
        raise ValueError(f"spectrum features must be N×C×T×H×W, got shape {tuple(features.shape)}")


def spectrum_from_parts(real: Tensor, imag: Tensor, options: SpectrumOptions = SpectrumOptions()) -> TemporalSpectrum:
    """The spectrum of DFT coefficients given as their real and imaginary parts (``N×C×K×H×W`` each)."""
    modulus = _Modulus.apply(real, imag)
    if not options.phase:
        return spectrum_from_means(modulus.mean(dim=(3, 4)), options=options)
    # cos/sin of the phase without atan2, whose gradient is undefined at zero.
    safe_modulus = modulus.clamp_min(_EPS)
    cos = (real / safe_modulus).mean(dim=(3, 4))
    sin = (imag / safe_modulus).mean(dim=(3, 4))
    return spectrum_from_means(modulus.mean(dim=(3, 4)), cos, sin, options)


def spectrum_from_means(
    amplitude: Tensor,
    cos: Tensor | None = None,
    sin: Tensor | None = None,
    options: SpectrumOptions = SpectrumOptions(),
) -> TemporalSpectrum:
    """The spectrum from the spatial means of ``|X_k|`` (and of the phase's cos/sin), ``N×C×K`` each."""
    if options.log_amplitude:
        amplitude = torch.log1p(amplitude)
    amplitude = amplitude / amplitude.norm(dim=2, keepdim=True).clamp_min(_EPS)
    return TemporalSpectrum(amplitude, cos, sin)


def temporal_spectrum(features: Tensor, options: SpectrumOptions = SpectrumOptions()) -> TemporalSpectrum:
    """``N×C×T×H×W`` features → per-channel temporal spectrum (see module docstring)."""
    coefficients = temporal_coefficients(features, options.low_bins)
    return spectrum_from_parts(coefficients.real, coefficients.imag, options)


def target_spectrum(
    features: Tensor, options: SpectrumOptions = SpectrumOptions(), kernel: SpectrumKernel = "auto"
) -> TemporalSpectrum:
    """:func:`temporal_spectrum` of a tap no gradient flows to (a teacher's), by ``kernel``:
    ``fft`` through ``torch.fft``; ``fused`` one compiled pass over the tap
    (:mod:`training.losses.fused_spectrum`); ``auto`` fused on CUDA, where the tap's memory traffic
    is what the term costs, and ``fft`` elsewhere, where compiling would cost a CPU trial more than
    it saves."""
    if kernel == "fft" or (kernel == "auto" and features.device.type != "cuda"):
        with torch.no_grad():
            return temporal_spectrum(features, options)
    _check_rank(features)
    bins = min(features.shape[2] // 2 + 1, options.low_bins or features.shape[2])  # as temporal_coefficients
    return spectrum_from_means(*fused_spectrum_parts(features, bins, options.phase), options=options)


def spectrum_distance(student: TemporalSpectrum, teacher: TemporalSpectrum) -> Tensor:
    """Mean over batch and channels of ``||A_s − A_t||²`` (+ the phase term when present). Scalar."""
    distance = (student.amplitude - teacher.amplitude).pow(2).sum(dim=2)
    if student.cos is not None and teacher.cos is not None:
        phase = ((student.cos - teacher.cos).pow(2) + (student.sin - teacher.sin).pow(2)) / 2
        distance = distance + phase.mean(dim=2)
    return distance.mean()


def spectrum_loss(
    student_features: Sequence[Tensor],
    teacher_features: Sequence[Tensor],
    options: SpectrumOptions = SpectrumOptions(),
) -> Tensor:
    """``L_spec``: mean over tap pairs of :func:`spectrum_distance`.

    Each pair must already agree in ``N``, ``C`` and ``T`` (use :class:`TapAdapter` for ``C`` and
    ``H×W``). The teacher side is used as given: detach it for classic distillation.
    """
    if len(student_features) != len(teacher_features):
        raise ValueError(
            f"spectrum_loss needs one teacher tap per student tap, got {len(student_features)} and "
            f"{len(teacher_features)}"
        )
    if not student_features:
        raise ValueError("spectrum_loss needs at least one tap pair, got an empty list")
    terms = []
    for index, (student, teacher) in enumerate(zip(student_features, teacher_features, strict=True)):
        if student.dim() != 5 or teacher.dim() != 5:
            raise ValueError(
                f"tap pair {index}: features must be N×C×T×H×W, got student {tuple(student.shape)} and "
                f"teacher {tuple(teacher.shape)}"
            )
        if student.shape[:3] != teacher.shape[:3]:
            raise ValueError(
                f"tap pair {index}: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} must agree in "
                "N, C and T (time lengths must match; adapt channels with TapAdapter)"
            )
        terms.append(spectrum_distance(temporal_spectrum(student, options), temporal_spectrum(teacher, options)))
    return torch.stack(terms).mean()


class TapAdapter(nn.Module):
    """Maps a student tap onto its teacher tap's shape: 1×1×1 convolution for channels, adaptive
    average pooling for ``H×W``. Time is left alone: matching it would hide the motion we distil."""

    def __init__(self, student_channels: int, teacher_channels: int) -> None:
        super().__init__()
        self.project = nn.Conv3d(student_channels, teacher_channels, kernel_size=1, bias=False)

    def forward(self, student: Tensor, teacher_spatial: tuple[int, int]) -> Tensor:
        """``N×C_s×T×H_s×W_s`` → ``N×C_t×T×H_t×W_t``."""
        return self.project(self._pool(student, teacher_spatial))

    def spectrum(
        self, student: Tensor, teacher_spatial: tuple[int, int], options: SpectrumOptions = SpectrumOptions()
    ) -> TemporalSpectrum:
        """``temporal_spectrum(self(student, teacher_spatial), options)``, computed in the cheaper order.

        The projection mixes channels and the DFT runs along time, so they commute: transforming the
        student's few channels first and projecting the real and imaginary parts costs one FFT of
        the narrow tap instead of one of the teacher-wide tap (512–2048 channels for a ResNet-50)
        and its float32 copy, forward and backward. The projection runs in float32 even under
        autocast: the small high-frequency bins are what the term compares.
        """
        coefficients = temporal_coefficients(self._pool(student, teacher_spatial), options.low_bins)
        with torch.autocast(coefficients.device.type, enabled=False):
            weight = self.project.weight.to(coefficients.real.dtype)
            parts = F.conv3d(torch.cat([coefficients.real, coefficients.imag]), weight)
        real, imag = parts.unflatten(0, (2, student.shape[0]))
        return spectrum_from_parts(real, imag, options)

    @staticmethod
    def _pool(student: Tensor, teacher_spatial: tuple[int, int]) -> Tensor:
        # Pooling and a 1×1×1 convolution are both linear and commute; pooling first is cheaper.
        if student.shape[-2:] != teacher_spatial:
            return F.adaptive_avg_pool3d(student, (student.shape[2], *teacher_spatial))
        return student


class TapAdapters(nn.ModuleDict):
    """One :class:`TapAdapter` per teacher and tap pair, keyed ``t<teacher>:<student>-><teacher>``:
    learnable parts of the objective, shared by every term that compares taps."""

    def __init__(self, pairs: Sequence[TapPair], student: VideoClassifier, teachers: Sequence[VideoClassifier]) -> None:
        super().__init__(
            {
                self.key(index, pair): TapAdapter(
                    student.taps[pair.student].channels, teacher.taps[pair.teacher].channels
                )
                for index, teacher in enumerate(teachers)
                for pair in pairs
            }
        )

    @staticmethod
    def key(teacher_index: int, pair: TapPair) -> str:
        return f"t{teacher_index}:{pair.student}->{pair.teacher}"

    def adapted(
        self, pairs: Sequence[TapPair], student_out: ModelOutput, teacher_out: ModelOutput, teacher_index: int
    ) -> tuple[list[Tensor], list[Tensor]]:
        """The student's taps mapped onto teacher ``teacher_index``'s shapes, and that teacher's
        taps (detached), pair by pair."""
        students, targets = [], []
        for pair in pairs:
            target = teacher_out.features[pair.teacher].detach()
            adapter = self[self.key(teacher_index, pair)]
            students.append(adapter(student_out.features[pair.student], tuple(target.shape[-2:])))
            targets.append(target)
        return students, targets


class SpectrumTerm(LossTerm):
    """``L_spec`` of the adapted student taps against each teacher's, averaged over teachers. Each
    student side goes through :meth:`TapAdapter.spectrum` (the same value as ``spectrum_loss`` of
    the adapted taps, without the teacher-wide FFT); each teacher side through
    :func:`target_spectrum` (one fused pass over the tap on CUDA)."""

    uses_taps = True

    def __init__(self, config: ObjectiveConfig, student: VideoClassifier, teachers: Sequence[VideoClassifier]) -> None:
        super().__init__(config, student, teachers)
        self.pairs = list(config.taps)
        self.options = SpectrumOptions(config.spectrum_log_amplitude, config.spectrum_low_bins, config.spectrum_phase)
        self.kernel = config.spectrum_kernel

    def forward(self, inputs: TermInputs) -> Tensor:
        return torch.stack(
            [self._against(inputs, index, teacher_out) for index, teacher_out in enumerate(inputs.teacher_outs)]
        ).mean()

    def _against(self, inputs: TermInputs, teacher_index: int, teacher_out: ModelOutput) -> Tensor:
        distances = []
        for pair in self.pairs:
            student = inputs.student_out.features[pair.student]
            target = teacher_out.features[pair.teacher].detach()
            if student.shape[2] != target.shape[2]:
                raise ValueError(
                    f"spectrum tap {pair.student!r}->{pair.teacher!r}: student has {student.shape[2]} time steps, "
                    f"teacher {target.shape[2]} (time lengths must match to compare temporal spectra)"
                )
            adapter = inputs.adapters[TapAdapters.key(teacher_index, pair)]
            spectrum = adapter.spectrum(student, tuple(target.shape[-2:]), self.options)
            distances.append(spectrum_distance(spectrum, target_spectrum(target, self.options, self.kernel)))
        return torch.stack(distances).mean()
