"""The report's figures: accuracy against each searched parameter, learning curves, and accuracy
against cost. Each function draws one PNG and says whether there was anything to draw.

matplotlib's object API (``Figure``, rendered by Agg) rather than ``pyplot``: no global backend or
figure registry to disturb in the caller's process (the CLI, a notebook, a test).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Literal

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from orchestrator.results import TrialRow, is_number
from training import storage

PARAMETERS_PNG = "parameters.png"
CURVES_PNG = "learning_curves.png"
COST_PNG = "accuracy_vs_flops.png"


@dataclass(frozen=True)
class CostPoint:
    """One marker of the accuracy-vs-FLOPs plot: a trial's student or an exported teacher."""

    label: str
    role: Literal["student", "teacher"]
    gflops: float
    value: float


def save_figure(figure: Figure, location: str) -> None:
    """PNG at 110 dpi, written wherever the report goes (a local directory or a storage URI)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    storage.write_bytes(location, buffer.getvalue())


def _log_scale(values: list[float]) -> bool:
    """A log axis when values span more than a decade, as learning rates and loss weights do."""
    return min(values) > 0 and max(values) > 10 * min(values)


def _log_x(ax: Axes) -> None:
    """Log x with plain labels at 1-2-5 steps: a span of one or two decades otherwise labels only
    one major tick and crowds the minor ones with overlapping powers of ten."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_parameters(rows: list[TrialRow], columns: list[str], metric: str, out: str) -> bool:
    """One subplot per searched parameter: each trial's best ``metric`` against its value. Trials
    that stopped early are drawn hollow, so a weak-looking value that never got its epochs shows."""
    scored = [r for r in rows if r.best is not None]
    if not columns or not scored:
        return False
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    figure = Figure(figsize=(4.2 * ncols, 3.4 * nrows), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, column in zip(axes, columns, strict=False):
        present = [r for r in scored if r.searched.get(column) is not None]
        values = [r.searched[column] for r in present]
        if values and all(is_number(v) for v in values):
            xs = [float(v) for v in values]
            if _log_scale(xs):
                _log_x(ax)
        else:
            categories = sorted({str(v) for v in values})
            xs = [float(categories.index(str(v))) for v in values]
            long = max(map(len, categories)) > 6  # variant names: upright they run into each other
            ax.set_xticks(
                range(len(categories)), categories, rotation=30 if long else 0, ha="right" if long else "center"
            )
            ax.set_xlim(-0.5, len(categories) - 0.5)
        for x, row in zip(xs, present, strict=True):
            finished = row.status == "finished"
            ax.scatter([x], [row.best], s=36, color="C0", facecolors="C0" if finished else "none")
        partial = f" ({len(present)} of {len(scored)} trials)" if len(present) < len(scored) else ""
        ax.set_title(column + partial, fontsize=10)
        ax.set_ylabel(f"best {metric}")
        ax.grid(alpha=0.3)
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    figure.suptitle("filled: finished all epochs · hollow: stopped early", fontsize=9)
    save_figure(figure, storage.join(out, PARAMETERS_PNG))
    return True


def plot_learning_curves(rows: list[TrialRow], metric: str, out: str) -> bool:
    """``metric`` per epoch, one line per trial; an ASHA-stopped trial ends early with a cross."""
    scored = [r for r in rows if r.curve]
    if not scored:
        return False
    figure = Figure(figsize=(8.5, 4.8), layout="constrained")
    ax = figure.subplots()
    for index, row in enumerate(scored):
        epochs, values = zip(*row.curve, strict=True)
        best = index == 0
        (line,) = ax.plot(
            epochs,
            values,
            marker="o",
            markersize=3,
            linewidth=2.4 if best else 1.2,
            alpha=1.0 if best else 0.8,
            label=row.record.trial_id
            + (" (best)" if best else "")
            + (" (stopped)" if row.status != "finished" else ""),
        )
        if row.status != "finished":
            ax.plot([epochs[-1]], [values[-1]], marker="x", markersize=9, color=line.get_color())
    ax.set_title("× marks a trial stopped before its last epoch (ASHA, an error or an interrupted sweep)", fontsize=9)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    if len(scored) <= 16:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    save_figure(figure, storage.join(out, CURVES_PNG))
    return True


def plot_cost(points: list[CostPoint], metric: str, out: str) -> bool:
    """Students as dots, teachers as labelled stars: what a student buys back in FLOPs, at what cost."""
    if not points:
        return False
    figure = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = figure.subplots()
    students = [p for p in points if p.role == "student"]
    teachers = [p for p in points if p.role == "teacher"]
    if students:
        ax.scatter(
            [p.gflops for p in students], [p.value for p in students], s=30, alpha=0.7, label="trials (best epoch)"
        )
        best = students[0]  # rows arrive ranked, so the first student is the best trial
        ax.annotate(
            f"best: {best.label}", (best.gflops, best.value), textcoords="offset points", xytext=(6, 6), fontsize=8
        )
    if teachers:
        ax.scatter(
            [p.gflops for p in teachers],
            [p.value for p in teachers],
            s=220,
            marker="*",
            color="C3",
            edgecolors="black",
            linewidths=0.6,
            label="teachers (model card)",
            zorder=3,
        )
        for p in teachers:
            ax.annotate(p.label, (p.gflops, p.value), textcoords="offset points", xytext=(8, -12), fontsize=8)
    if _log_scale([p.gflops for p in points]):
        _log_x(ax)
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel("GFLOPs per clip (forward, one clip)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")  # teachers sit top right: many FLOPs, high accuracy
    save_figure(figure, storage.join(out, COST_PNG))
    return True
