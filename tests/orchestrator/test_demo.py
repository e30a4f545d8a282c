"""The demo's verdict: students as mean ± std over seeds, and the gain judged against its standard
error, so a lucky seed cannot make distillation look like it works (or not)."""

from __future__ import annotations

from orchestrator.demo import Row, render_gain, render_table


def _row(role: str, top1: list[float]) -> Row:
    return Row(role, "tsm_mobilenet_v2", top1, [0.5] * len(top1), 2.24, 0.098, 15.0)


def test_the_verdict_says_whether_the_gain_is_outside_the_seeds_noise() -> None:
    assert "outside the seeds' noise" in render_gain(_row("d", [0.40, 0.45, 0.50]), _row("c", [0.20, 0.30, 0.25]))
    noisy = render_gain(_row("d", [0.10, 0.60, 0.35]), _row("c", [0.20, 0.30, 0.25]))
    assert "within the seeds' noise" in noisy and "+0.100" in noisy
    assert "no spread" in render_gain(_row("d", [0.4]), _row("c", [0.2]))


def test_the_table_shows_one_figure_for_one_model_and_mean_and_spread_for_seeds() -> None:
    table = render_table([_row("teacher", [0.9]), _row("student, CE only", [0.2, 0.3, 0.25])])
    teacher, student = table.splitlines()[2:]
    assert "0.900" in teacher and "±" not in teacher
    assert "0.250 ± 0.050" in student and " 3 " in student
