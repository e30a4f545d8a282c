"""The report's "what mattered" figures, as optuna-dashboard and W&B show a search: parameter
importance, optimisation history and parallel coordinates. Each draws one PNG and says whether
there was anything to draw (see ``orchestrator.plots`` for the drawing conventions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from orchestrator.plots import save_figure
from orchestrator.results import Mode, TrialRow, is_number
from training import storage

IMPORTANCE_PNG = "importance.png"
HISTORY_PNG = "history.png"
PARALLEL_PNG = "parallel_coordinates.png"


def plot_importance(importance: dict[str, float] | None, metric: str, out: str) -> bool:
    """One bar per parameter, its share of the importance for ``metric``; most important on top."""
    if not importance:
        return False
    names = list(importance)[::-1]
    figure = Figure(figsize=(7.5, 0.5 * len(names) + 1.4), layout="constrained")
    ax = figure.subplots()
    bars = ax.barh(names, [importance[n] for n in names], color="C0")
    ax.bar_label(bars, fmt="%.2f", padding=3, fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel(f"share of importance for {metric} (PED-ANOVA: top trials against all)")
    ax.grid(axis="x", alpha=0.3)
    save_figure(figure, storage.join(out, IMPORTANCE_PNG))
    return True


def plot_history(rows: Sequence[TrialRow], metric: str, mode: Mode, baseline: float | None, out: str) -> bool:
    """Each trial's best ``metric`` in the order the trials were created, the best so far as a
    step line, and the CE-only baseline (where the sweep has one) as a dashed line: did the search
    keep finding better settings, and did distillation beat training alone?"""
    scored = sorted((r for r in rows if r.best is not None), key=_started)
    if len(scored) < 2:
        return False
    values = np.array([r.best for r in scored])
    best_so_far = np.maximum.accumulate(values) if mode == "max" else np.minimum.accumulate(values)
    figure = Figure(figsize=(8.5, 4.2), layout="constrained")
    ax = figure.subplots()
    order = np.arange(1, len(scored) + 1)
    finished = np.array([r.status == "finished" for r in scored])
    ax.scatter(order[finished], values[finished], s=30, color="C0", label="trial (best epoch)")
    ax.scatter(order[~finished], values[~finished], s=30, facecolors="none", edgecolors="C0", label="stopped early")
    ax.step(order, best_so_far, where="post", color="C1", linewidth=2, label="best so far")
    if baseline is not None:
        ax.axhline(baseline, color="C3", linestyle="--", linewidth=1.5, label=f"CE-only baseline ({baseline:.3f})")
    ax.set_xlabel("trial (in the order the sweep started them)")
    ax.set_ylabel(f"best {metric}")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right" if mode == "max" else "upper right")
    save_figure(figure, storage.join(out, HISTORY_PNG))
    return True


def _started(row: TrialRow) -> tuple[float, str]:
    """When a trial started (its first report's time less the time it had trained), trial id
    second: a searcher's trial ids are random, so only times give the order the sweep ran them in."""
    first = row.record.results[0] if row.record.results else {}
    stamp, elapsed = first.get("timestamp"), first.get("time_total_s", 0.0)
    started = float(stamp) - float(elapsed) if is_number(stamp) and is_number(elapsed) else float("inf")
    return started, row.record.trial_id


def plot_parallel(rows: Sequence[TrialRow], columns: Sequence[str], metric: str, mode: Mode, out: str) -> bool:
    """Parallel coordinates: one vertical axis per searched parameter (scaled to its range; log
    where it spans decades; categories evenly spaced) and a last one for ``metric``, one line per
    trial coloured by it, the best trials drawn on top and thickest."""
    scored = [r for r in rows if r.best is not None]
    if len(scored) < 2 or not columns:
        return False
    axes_values, tick_labels = [], []
    for column in columns:
        positions, labels = _axis(r.searched.get(column) for r in scored)
        axes_values.append(positions)
        tick_labels.append(labels)
    metric_values = np.array([r.best for r in scored], dtype=float)
    metric_positions, metric_labels = _axis(metric_values.tolist())
    axes_values.append(metric_positions)
    tick_labels.append(metric_labels)
    table = np.array(axes_values).T  # trials × axes, each in [0, 1]
    norm = Normalize(metric_values.min(), metric_values.max())
    cmap = colormaps["viridis" if mode == "max" else "viridis_r"]
    figure = Figure(figsize=(max(6.0, 1.9 * len(table[0])), 4.8), layout="constrained")
    ax = figure.subplots()
    xs = np.arange(len(table[0]))
    rank = np.argsort(metric_values if mode == "max" else -metric_values)  # worst first, best drawn last
    for place, index in enumerate(rank):
        top = place >= len(rank) - 3
        ax.plot(xs, table[index], color=cmap(norm(metric_values[index])), linewidth=2.4 if top else 1.0, alpha=0.9)
    for x, labels in zip(xs, tick_labels, strict=True):
        ax.axvline(x, color="black", linewidth=0.8)
        for position, text in labels:
            ax.annotate(text, (x, position), textcoords="offset points", xytext=(4, 0), fontsize=7, va="center")
    ax.set_xticks(xs, [*columns, f"best {metric}"], rotation=15, fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.spines[["left", "right", "top"]].set_visible(False)
    figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"best {metric}")
    save_figure(figure, storage.join(out, PARALLEL_PNG))
    return True


def _axis(values) -> tuple[list[float], list[tuple[float, str]]]:  # values: Iterable[Any]
    """Positions in [0, 1] for one axis's values and a few labelled ticks: numbers scaled to their
    range (log when they span more than a decade), anything else as evenly spaced categories."""
    values = list(values)
    if all(is_number(v) for v in values):
        numbers = np.array(values, dtype=float)
        log = numbers.min() > 0 and numbers.max() > 10 * numbers.min()
        scaled = np.log10(numbers) if log else numbers
        low, high = scaled.min(), scaled.max()
        span = high - low or 1.0
        positions = ((scaled - low) / span).tolist() if high > low else [0.5] * len(values)
        ticks = [low, high] if high > low else [low]
        shown = [(float((t - low) / span) if high > low else 0.5, f"{10**t if log else t:.3g}") for t in ticks]
        return positions, shown
    categories = sorted({str(v) for v in values})
    step = 1.0 / max(1, len(categories) - 1)
    where = {c: (i * step if len(categories) > 1 else 0.5) for i, c in enumerate(categories)}
    return [where[str(v)] for v in values], [(where[c], c) for c in categories]
