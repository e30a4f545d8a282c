"""Comparing two settings by their figures over seeds.

A setting's figure on one seed is a draw; two settings differ only when their means differ by more
than the noise of those draws. Two ways to read that noise live here. :func:`mean_difference`
treats the two settings' seeds as independent draws (the demo, whose CE-only student and distilled
trials need not share seeds). :func:`paired_difference` compares the settings seed by seed: runs
with the same seed start from the same weights and see the same clips in the same order, so the
part of a seed's luck both runs share cancels in their difference (the ablation's grid, where every
row runs on the same seeds).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def mean_difference(better: Sequence[float], worse: Sequence[float]) -> tuple[float, float] | None:
    """Difference of the means and its (Welch) standard error; None with fewer than 2 seeds on a side."""
    if len(better) < 2 or len(worse) < 2:
        return None
    error = math.sqrt(statistics.variance(better) / len(better) + statistics.variance(worse) / len(worse))
    return statistics.fmean(better) - statistics.fmean(worse), error


@dataclass(frozen=True)
class PairedDifference:
    """``better − worse`` over the seeds both settings finished: the mean of the per-seed
    differences, its standard error, and on how many of those seeds ``better`` came out ahead."""

    mean: float
    error: float
    ahead: int
    seeds: int


def paired_difference(better: Mapping[int, float], worse: Mapping[int, float]) -> PairedDifference | None:
    """The per-seed comparison of two settings (figures keyed by seed); None with fewer than 2
    seeds in common, whose differences would have no spread to judge them against."""
    shared = sorted(better.keys() & worse.keys())
    if len(shared) < 2:
        return None
    differences = [better[seed] - worse[seed] for seed in shared]
    return PairedDifference(
        mean=statistics.fmean(differences),
        error=statistics.stdev(differences) / math.sqrt(len(differences)),
        ahead=sum(difference > 0 for difference in differences),
        seeds=len(shared),
    )
