"""A teacher tap's spectrum parts in one pass over the tap: the DFT along time written out as
multiply-adds, which ``torch.compile`` fuses with the modulus and the spatial mean into one kernel.

The spectrum term needs, per channel and frequency bin, only the spatial mean of ``|X_k|`` (and,
with phase, of ``X_k/|X_k|``). Through ``torch.fft.rfft`` a teacher tap is read and written several
times: a float32 copy of the bf16 tap, a complex tensor of all bins at full spatial size, its
modulus, then the mean. For a ResNet-50 at batch 32 × 8 × 224² that is gigabytes of memory traffic
per step for three ``N×C×K`` results. With 8 or 16 frames the DFT is a handful of multiply-adds
per bin, so a compiler can do everything in registers while reading the tap once, in its own dtype.

Eager, this formulation is slower than ``rfft`` (one pass per multiply-add): it exists to be compiled.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

_EPS = 1e-8


def twiddle(bin_index: int, frame: int, frames: int) -> tuple[float, float]:
    """``(cos θ, −sin θ)`` of ``θ = 2π·k·t/T``, exact where they are 0 or ±1.

    Exact zeros keep the DC and Nyquist bins' imaginary parts at 0, as ``rfft`` gives them; a
    rounding residue of ``sin(π)`` there would give those bins a phase.
    """
    turn = (bin_index * frame) % frames
    exact = {0: (1.0, 0.0), frames / 4: (0.0, -1.0), frames / 2: (-1.0, 0.0), 3 * frames / 4: (0.0, 1.0)}
    if turn in exact:
        return exact[turn]
    angle = 2 * math.pi * turn / frames
    return math.cos(angle), -math.sin(angle)


def _weighted_sum(frames: list[Tensor], weights: list[float]) -> Tensor | None:
    """``Σ w_t·x_t`` over the non-zero weights, or None when every weight is 0."""
    total = None
    for weight, frame in zip(weights, frames, strict=True):
        if weight:
            total = frame * weight if total is None else total + frame * weight
    return total


def direct_spectrum_parts(features: Tensor, bins: int, phase: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``N×C×T×H×W`` → spatial means over ``H×W`` of ``|X_k|`` and, with ``phase``, of ``cos`` and
    ``sin`` of ``arg X_k``, for the lowest ``bins`` bins of the orthonormal DFT along time (each
    ``N×C×bins``).

    Accumulates in float32 at least, as the ``rfft`` path does (half-precision sums lose the small
    high-frequency bins the term compares).
    """
    count = features.shape[2]
    scale = 1 / math.sqrt(count)
    dtype = torch.promote_types(features.dtype, torch.float32)
    frames = [features[:, :, t].to(dtype) for t in range(count)]
    amplitudes, cosines, sines = [], [], []
    for k in range(bins):
        cos_row, sin_row = zip(*(twiddle(k, t, count) for t in range(count)), strict=True)
        real = _weighted_sum(frames, [w * scale for w in cos_row])
        imag = _weighted_sum(frames, [w * scale for w in sin_row])
        real = torch.zeros_like(frames[0]) if real is None else real
        modulus = real.abs() if imag is None else torch.sqrt(real * real + imag * imag)
        amplitudes.append(modulus.mean(dim=(-2, -1)))
        if phase:
            safe = modulus.clamp_min(_EPS)
            cosines.append((real / safe).mean(dim=(-2, -1)))
            sines.append(torch.zeros_like(amplitudes[-1]) if imag is None else (imag / safe).mean(dim=(-2, -1)))
    stack = functools.partial(torch.stack, dim=2)
    return stack(amplitudes), stack(cosines) if phase else None, stack(sines) if phase else None


@functools.cache
def _compiled():
    # Built on first use: importing the loss modules must not import the compiler stack.
    return torch.compile(direct_spectrum_parts, fullgraph=True)


def fused_spectrum_parts(features: Tensor, bins: int, phase: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """:func:`direct_spectrum_parts` compiled (Triton on CUDA, C++ on CPU), without gradient.

    Each tap shape is compiled once per process (the first step pays for it); a machine where it cannot be
    compiled gets an error that says how to use ``rfft`` instead, never a silent fallback.
    """
    from torch._dynamo.exc import TorchDynamoException  # how torch.compile wraps a compiler's failure

    try:
        with torch.no_grad(), torch.autocast(features.device.type, enabled=False):
            return _compiled()(features, bins, phase)
    except TorchDynamoException as err:  # the kernel's own errors (out of memory) pass through as they are
        reason = next(iter(str(err).strip().splitlines()), "no message")
        raise RuntimeError(
            f"the fused spectrum kernel could not be compiled on {features.device} ({type(err).__name__}: "
            f"{reason}); set objective.spectrum_kernel: fft to compute teacher spectra with torch.fft instead"
        ) from err
