"""Comparing two settings by their figures over seeds.

A setting's figure on one seed is a draw; two settings differ only when their means differ by more
than the noise of those draws. The demo's verdict and the ablation bench's judge read the same
difference and standard error from here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def mean_difference(better: Sequence[float], worse: Sequence[float]) -> tuple[float, float] | None:
    """Difference of the means and its (Welch) standard error; None with fewer than 2 seeds on a side."""
    if len(better) < 2 or len(worse) < 2:
        return None
    error = math.sqrt(statistics.variance(better) / len(better) + statistics.variance(worse) / len(worse))
    return statistics.fmean(better) - statistics.fmean(worse), error
