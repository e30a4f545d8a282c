"""``bench/load.py``: the process readings it samples and the figures it prints from them."""

from __future__ import annotations

import os

import pytest

from bench.load import WINDOW, Sample, cpu_s, pace, render, rss_mb


def test_readings_of_this_process_are_plausible_and_a_gone_process_reads_zero() -> None:
    sum(i * i for i in range(200_000))  # some CPU time to read
    assert 10 < rss_mb(os.getpid()) < 100_000 and cpu_s(os.getpid()) > 0
    assert rss_mb(2**22 + 1) == cpu_s(2**22 + 1) == 0.0


def _samples(trials: int) -> list[Sample]:
    """Finishes at 1 s a trial up to trial 20, 2 s a trial after; memory growing 1 MB a trial."""
    seconds = [float(k) if k <= 20 else 20.0 + 2 * (k - 20) for k in range(1, trials + 1)]
    return [Sample(k, s, 100.0 + k, 0.1 * s, 50.0) for k, s in zip(range(1, trials + 1), seconds, strict=True)]


def test_pace_is_taken_over_the_ten_finishes_ending_at_a_trial() -> None:
    samples = _samples(40)
    assert pace(samples, 2 * WINDOW, "seconds") == pytest.approx(1.0)
    assert pace(samples, None, "seconds") == pytest.approx(2.0)
    assert pace(samples, None, "driver_cpu_s") == pytest.approx(0.2)


def test_render_compares_trial_10_with_the_last_and_gives_the_state_per_trial() -> None:
    table = render(_samples(40), state=400.0)
    assert "| sweep driver RSS, MB | 110.00 | 140.00 | 1.27 |" in table
    assert "| wall s per finished trial (10 finishes) | 1.00 | 2.00 | 2.00 |" in table
    assert table.endswith("400 KB, 10.0 KB per trial")
