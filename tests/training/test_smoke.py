"""``specdistill distill --synthetic-smoke``: the method alone learns on generated clips."""

from __future__ import annotations

import pytest

from training.smoke import SmokeConfig, run_smoke


@pytest.mark.slow
def test_smoke_distillation_beats_chance_clearly_and_its_losses_fall() -> None:
    printed: list[str] = []
    # 400 student steps: tsm_mobilenet_v2 leaves chance somewhere between 200 and 350 steps here, and
    # rounding-level changes move that point. At 300 steps this seed gave 0.46, then 0.395 after the
    # parameter term's DCT moved to the GPU-friendly form, then 0.16 after the spectrum term's
    # transform-then-project (the same values to 1e-12; seed 1 went 0.305 → 0.415 with it); at 400
    # it reaches 0.595.
    report = run_smoke(
        SmokeConfig(size=32, train_clips=800, val_clips=200, teacher_steps=220, student_steps=400, log_every=50),
        echo=printed.append,
    )
    chance = 0.1
    assert report.teacher_top1 > 4 * chance
    assert report.student_top1 > 2 * chance
    first, last = report.student_losses[:25], report.student_losses[-25:]
    assert sum(last) / len(last) < 0.8 * sum(first) / len(first)
    assert any("spectrum=" in line and "parameter=" in line and "kd=" in line for line in printed)
