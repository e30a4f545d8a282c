"""Parameter-distribution distillation: how the teacher spends its filters across spatial frequencies.

A convolution kernel ``W`` (``C_out×C_in×k_h×k_w``, or ``…×k_t×k_h×k_w`` for 3D) is taken to the
frequency domain with an orthonormal 2D DCT-II over its two spatial axes. Summing the squared
coefficients over every other axis gives the layer's energy per spatial frequency, a ``k_h×k_w``
map that does not depend on the layer's width — so a thin student can be compared with a wide
teacher. ``softmax(log energy / τ_p)`` turns it into a distribution, and ``L_param`` is the mean
over paired layers of ``KL(P_t || P_s)``.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from training.losses.config import ObjectiveConfig
from training.losses.terms import LossTerm, TermInputs, check_taps
from training.models.base import VideoClassifier

KernelMismatch = Literal["resample", "error"]
_EPS = 1e-12


@dataclass(frozen=True)
class KernelPair:
    """Kernels compared as one distribution: the energies of all kernels on a side are summed.

    Pairing several kernels per side (e.g. all spatial convolutions of a stage) lets a student
    block of depthwise 3×3 filters be compared with a teacher stage of dense 3×3 filters.
    """

    student: Sequence[Tensor]
    teacher: Sequence[Tensor]
    name: str = ""


def dct_matrix(size: int, *, dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
    """Orthonormal DCT-II matrix ``D`` (``size×size``) with ``D @ x`` = ``scipy.fft.dct(x, norm="ortho")``."""
    n = torch.arange(size, dtype=torch.float64)
    k = n[:, None]
    matrix = torch.cos(math.pi * (2 * n[None, :] + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    matrix[0] /= math.sqrt(2.0)
    return matrix.to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=16)
def _dct2_basis(height: int, width: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``kron(D_r, D_c)ᵀ``, built once per shape, dtype and device. The matrices are built on the
    host, so on a GPU every build is a blocking copy: once per kernel per step, those copies kept
    the host waiting for the queued forward pass and cost more than the whole term's arithmetic."""
    rows = dct_matrix(height, dtype=dtype, device=device)
    cols = dct_matrix(width, dtype=dtype, device=device)
    return torch.kron(rows, cols).T


def dct2(kernels: Tensor) -> Tensor:
    """Orthonormal 2D DCT-II over the last two axes (``scipy.fft.dctn(x, axes=(-2, -1), norm="ortho")``).

    ``D_r X D_cᵀ`` for every kernel at once, as one matrix product of the flattened kernels with
    ``kron(D_r, D_c)ᵀ``: a teacher stage holds about a million 3×3 kernels, and a batch of that
    many 3×3 products runs an order of magnitude slower on CPU than the single GEMM.
    """
    height, width = kernels.shape[-2:]
    basis = _dct2_basis(height, width, kernels.dtype, kernels.device)
    return (kernels.flatten(-2) @ basis).unflatten(-1, (height, width))


def kernel_frequency_energy(
    kernels: Sequence[Tensor],
    size: tuple[int, int] | None = None,
    mismatch: KernelMismatch = "resample",
    name: str = "",
) -> Tensor:
    """Energy per spatial frequency summed over ``kernels``: a ``k_h×k_w`` map (``size`` if given).

    A kernel of another spatial size is brought to ``size`` by bilinear interpolation of its
    energy map (corners aligned, so the DC and highest bins stay put), or rejected when
    ``mismatch="error"``.
    """
    if not kernels:
        raise ValueError(f"kernel pair {name!r}: no kernels on one side")
    target = size or tuple(kernels[0].shape[-2:])
    # Kernels of one spatial size go through one DCT (their energies add anyway): a MobileNetV2
    # stage has a dozen small depthwise weights, and on a GPU each separate product is a launch.
    by_size: dict[tuple[int, int], list[Tensor]] = {}
    for kernel in kernels:
        if kernel.dim() < 3:
            raise ValueError(f"kernel pair {name!r}: expected a convolution weight, got shape {tuple(kernel.shape)}")
        spatial = tuple(kernel.shape[-2:])
        if spatial != target and mismatch == "error":
            raise ValueError(
                f"kernel pair {name!r}: kernel of shape {tuple(kernel.shape)} has spatial size "
                f"{spatial}, expected {target} (set kernel_mismatch='resample' to interpolate)"
            )
        by_size.setdefault(spatial, []).append(kernel.reshape(-1, *spatial))
    total = None
    # Full precision even inside a bf16 autocast region: the maps sum squares over millions of
    # coefficients, and the term is a few small GEMMs, so rounding them buys nothing.
    with torch.autocast(kernels[0].device.type, enabled=False):
        for spatial, group in by_size.items():
            flat = group[0] if len(group) == 1 else torch.cat(group)
            energy = dct2(flat.to(torch.promote_types(flat.dtype, torch.float32))).pow(2).sum(dim=0)
            if spatial != target:
                energy = F.interpolate(energy[None, None], size=target, mode="bilinear", align_corners=True)[0, 0]
            total = energy if total is None else total + energy
    return total


def frequency_log_distribution(energy: Tensor, temperature: float) -> Tensor:
    """``log softmax(log energy / τ_p)`` over all bins of an energy map, flattened to a vector."""
    if temperature <= 0:
        raise ValueError(f"parameter temperature tau_p must be positive, got {temperature}")
    return torch.log_softmax(torch.log(energy.flatten() + _EPS) / temperature, dim=0)


class TeacherEnergyCache:
    """Teacher energy maps, computed without gradient and again only when a teacher kernel changed.

    A frozen teacher's kernels never change, yet their transform is most of the parameter term's
    cost: a ResNet-18 has 11 M spatial-kernel weights, its MobileNetV2 student 65 k. In mutual
    learning the optimiser updates the teacher in place, which bumps each weight's version counter
    and so invalidates its entry. Entries hold weak references: a new tensor that happens to reuse
    a freed one's memory is never mistaken for it.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[int, ...], tuple[list[weakref.ref[Tensor]], list[int], Tensor]] = {}

    def energy(self, pair: KernelPair, mismatch: KernelMismatch) -> Tensor:
        key = tuple(id(kernel) for kernel in pair.teacher)
        versions = [kernel._version for kernel in pair.teacher]
        entry = self._entries.get(key)
        if entry is not None:
            refs, cached_versions, energy = entry
            if cached_versions == versions and all(ref() is k for ref, k in zip(refs, pair.teacher, strict=True)):
                return energy
        with torch.no_grad():
            energy = kernel_frequency_energy(pair.teacher, name=pair.name, mismatch=mismatch)
        self._entries[key] = ([weakref.ref(kernel) for kernel in pair.teacher], versions, energy)
        return energy


def parameter_distribution_loss(
    pairs: Sequence[KernelPair],
    temperature: float = 1.0,
    mismatch: KernelMismatch = "resample",
    teacher_energies: TeacherEnergyCache | None = None,
) -> Tensor:
    """``L_param`` = mean over ``pairs`` of ``KL(P_t || P_s)``. The teacher side is used as given,
    or, with ``teacher_energies``, taken from that cache (no gradient reaches the teacher)."""
    if not pairs:
        raise ValueError("parameter_distribution_loss needs at least one kernel pair, got an empty list")
    terms = []
    for pair in pairs:
        if teacher_energies is None:
            teacher_energy = kernel_frequency_energy(pair.teacher, name=pair.name, mismatch=mismatch)
        else:
            teacher_energy = teacher_energies.energy(pair, mismatch)
        student_energy = kernel_frequency_energy(pair.student, tuple(teacher_energy.shape), mismatch, pair.name)
        log_target = frequency_log_distribution(teacher_energy, temperature)
        log_student = frequency_log_distribution(student_energy, temperature)
        terms.append((log_target.exp() * (log_target - log_student)).sum())
    return torch.stack(terms).mean()


def spatial_kernels(module: torch.nn.Module) -> list[Tensor]:
    """Weights of every 2D/3D convolution in ``module`` whose spatial kernel is larger than 1×1.

    1×1 (and temporal-only ``k×1×1``) kernels have a single spatial frequency, so they say
    nothing about how a network models appearance.
    """
    return [
        m.weight
        for m in module.modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.Conv3d) and m.weight.shape[-1] * m.weight.shape[-2] > 1
    ]


class ParameterTerm(LossTerm):
    """:func:`parameter_distribution_loss` over the paired stages' spatial kernels, averaged over
    teachers; a frozen teacher's energy maps are computed once (:class:`TeacherEnergyCache`)."""

    def __init__(self, config: ObjectiveConfig, student: VideoClassifier, teachers: Sequence[VideoClassifier]) -> None:
        super().__init__(config, student, teachers)
        check_taps("objective.parameter_stages", config.parameter_stages, student, teachers)
        self.pairs = list(config.parameter_stages)
        self.temperature, self.mismatch = config.parameter_temperature, config.kernel_mismatch
        self.teacher_energies = TeacherEnergyCache()

    def forward(self, inputs: TermInputs) -> Tensor:
        return torch.stack([self._against(inputs.student, teacher) for teacher in inputs.teachers]).mean()

    def _against(self, student: VideoClassifier, teacher: VideoClassifier) -> Tensor:
        pairs = [
            KernelPair(
                student=spatial_kernels(student.stages[pair.student]),
                teacher=spatial_kernels(teacher.stages[pair.teacher]),
                name=pair.key(),
            )
            for pair in self.pairs
        ]
        return parameter_distribution_loss(pairs, self.temperature, self.mismatch, self.teacher_energies)
