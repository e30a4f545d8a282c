"""Mixed precision in one place: bf16 autocast on CUDA (no loss scaling needed), full precision on CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    """Where the step runs and whether it autocasts. bf16 keeps fp32's exponent range, so unlike
    fp16 it needs no GradScaler — one less moving part in a two-optimiser (mutual) step."""

    device: torch.device
    amp: bool = False

    @classmethod
    def for_device(cls, device: torch.device, *, amp: bool = True) -> Precision:
        """AMP only where it pays: on CUDA with bf16 support."""
        use_amp = amp and device.type == "cuda" and torch.cuda.is_bf16_supported()
        return cls(device=device, amp=use_amp)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            yield
