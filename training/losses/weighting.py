"""How the loss terms are summed: fixed weights (searched by Tune) or learned uncertainty weights."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn


class FixedWeighting(nn.Module):
    """``Σ w_i L_i`` with the configured weights; terms with weight 0 are never computed upstream."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        self.weights = dict(weights)

    def forward(self, terms: Mapping[str, Tensor]) -> Tensor:
        return torch.stack([self.weights[name] * value for name, value in terms.items()]).sum()

    def current_weights(self) -> dict[str, float]:
        return dict(self.weights)


class UncertaintyWeighting(nn.Module):
    """Homoscedastic-uncertainty weighting (Kendall et al. 2018): ``Σ exp(−s_i) L_i + s_i``.

    Each term is read as the likelihood of a Gaussian with learned log-variance ``s_i``; the
    ``+ s_i`` term stops the trivial solution of infinite variance. ``s_i`` starts at ``−log w_i``
    so the first steps reproduce the configured weights.
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        if any(w <= 0 for w in weights.values()):
            raise ValueError(f"uncertainty weighting needs positive initial weights, got {dict(weights)}")
        self.log_variances = nn.ParameterDict(
            {name: nn.Parameter(torch.tensor(-math.log(w))) for name, w in weights.items()}
        )

    def forward(self, terms: Mapping[str, Tensor]) -> Tensor:
        parts = [torch.exp(-self.log_variances[n]) * value + self.log_variances[n] for n, value in terms.items()]
        return torch.stack(parts).sum()

    def current_weights(self) -> dict[str, float]:
        return {name: math.exp(-s.item()) for name, s in self.log_variances.items()}
