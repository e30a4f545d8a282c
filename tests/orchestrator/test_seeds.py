"""Two settings compared over seeds: the difference against its standard error, unpaired and seed by seed."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.seeds import mean_difference, paired_difference


def test_the_gain_is_the_difference_of_means_with_the_welch_standard_error() -> None:
    distilled, ce_only = [0.40, 0.45, 0.50], [0.20, 0.30, 0.25]
    difference, error = mean_difference(distilled, ce_only)
    expected = np.sqrt(np.var(distilled, ddof=1) / 3 + np.var(ce_only, ddof=1) / 3)
    assert difference == pytest.approx(0.2) and error == pytest.approx(expected)
    assert mean_difference([0.4], [0.2, 0.3]) is None, "one seed has no spread to compare against"


def test_a_paired_difference_reads_the_spread_of_per_seed_differences_over_shared_seeds() -> None:
    better = {0: 0.82, 1: 0.86, 2: 0.835, 3: 0.81, 7: 0.99}
    worse = {0: 0.79, 1: 0.76, 2: 0.82, 3: 0.84, 5: 0.10}
    compared = paired_difference(better, worse)
    differences = np.array([0.03, 0.10, 0.015, -0.03])  # seeds 0-3, the only ones both finished
    assert compared.seeds == 4 and compared.ahead == 3
    assert compared.mean == pytest.approx(differences.mean())
    assert compared.error == pytest.approx(differences.std(ddof=1) / np.sqrt(4))
    assert paired_difference({0: 0.5, 1: 0.6}, {1: 0.4, 2: 0.3}) is None, "one shared seed has no spread"


def test_pairing_removes_the_luck_both_settings_share() -> None:
    """Seeds that move both settings alike swamp an unpaired comparison but not a paired one."""
    luck = {0: 0.0, 1: 0.2, 2: -0.15, 3: 0.1}
    worse = {seed: 0.6 + shift for seed, shift in luck.items()}
    better = {seed: value + 0.02 + 0.002 * seed for seed, value in worse.items()}
    unpaired = mean_difference(list(better.values()), list(worse.values()))
    paired = paired_difference(better, worse)
    assert unpaired[0] == pytest.approx(paired.mean)
    assert unpaired[0] < 2 * unpaired[1], "unpaired, the gain is inside the seeds' noise"
    assert paired.mean > 2 * paired.error and paired.ahead == 4
