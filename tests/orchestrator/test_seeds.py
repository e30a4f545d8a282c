"""Two settings compared over seeds: the difference of means against its standard error."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.seeds import mean_difference


def test_the_gain_is_the_difference_of_means_with_the_welch_standard_error() -> None:
    distilled, ce_only = [0.40, 0.45, 0.50], [0.20, 0.30, 0.25]
    difference, error = mean_difference(distilled, ce_only)
    expected = np.sqrt(np.var(distilled, ddof=1) / 3 + np.var(ce_only, ddof=1) / 3)
    assert difference == pytest.approx(0.2) and error == pytest.approx(expected)
    assert mean_difference([0.4], [0.2, 0.3]) is None, "one seed has no spread to compare against"
