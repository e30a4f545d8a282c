"""``specdistill report``: one page per sweep — the trial table and plots — written next to it.

Everything comes from the files a sweep leaves (``read_sweep``) and the exported teachers its
trials name, so the report works on finished, interrupted and copied sweeps and never starts Ray.
Plots use matplotlib's object API (``Figure``, rendered by Agg) rather than ``pyplot``: no global
backend or figure registry to disturb in the caller's process (the CLI, a notebook, a test).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from orchestrator.selection import TrialRecord, read_sweep
from orchestrator.trial import trial_config
from training.checkpoint import ModelCard, exported_members, load_card
from training.config import TrainConfig
from training.data.shards import load_manifest
from training.models import create_model, describe

REPORT_DIR = "report"
PARAMETERS_PNG = "parameters.png"
CURVES_PNG = "learning_curves.png"
COST_PNG = "accuracy_vs_flops.png"
GRID_KEYS = ("variant", "seed")

Status = Literal["finished", "stopped early", "error", "no result"]


@dataclass(frozen=True)
class TrialRow:
    """One line of the trial table: what a trial searched and how far it got.

    ``curve`` holds ``(epoch, metric)`` for every result that reported the metric, in order;
    ``best_epoch`` is where ``best`` was reached (both None when the metric was never reported).
    """

    record: TrialRecord
    config: TrainConfig
    searched: dict[str, Any]
    curve: list[tuple[int, float]]
    best: float | None
    best_epoch: int | None
    epochs_run: int
    status: Status

    @property
    def last(self) -> float | None:
        return self.curve[-1][1] if self.curve else None


@dataclass(frozen=True)
class CostPoint:
    """One marker of the accuracy-vs-FLOPs plot: a trial's student or an exported teacher."""

    label: str
    role: Literal["student", "teacher"]
    gflops: float
    value: float


def write_report(sweep_dir: str | Path, out: Path | None = None, *, metric: str = "val_top1") -> Path:
    """Write ``report.md``, ``report.html`` and their PNGs into ``out`` (default ``SWEEP_DIR/report``).

    Returns the HTML page's path. Raises ``FileNotFoundError``/``ValueError`` for a missing or empty
    sweep directory, and ``ValueError`` when trials reported results but never ``metric``.
    """
    records = read_sweep(sweep_dir)
    mode = sweep_mode(records, metric)
    rows = trial_rows(records, metric, mode)
    reported = [r for r in rows if r.status != "no result"]
    if reported and all(r.best is None for r in reported):
        known = sorted({k for r in reported for res in r.record.results for k, v in res.items() if _is_number(v)})
        raise ValueError(f"no trial reported {metric!r}; numeric keys in the results: {', '.join(known)}")
    out = Path(sweep_dir) / REPORT_DIR if out is None else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keys = {k for r in rows for k in r.searched}
    columns = [k for k in GRID_KEYS if k in keys] or sorted(keys)  # sorted dotted paths group by section
    points, notes = cost_points(rows, metric)
    notes += [f"trial {r.record.trial_id} has no result (not plotted)" for r in rows if r.status == "no result"]
    images = [
        (title, name)
        for title, name, written in (
            (f"{metric} vs searched parameters", PARAMETERS_PNG, _plot_parameters(rows, columns, metric, out)),
            ("Learning curves", CURVES_PNG, _plot_learning_curves(rows, metric, out)),
            (f"{metric} vs GFLOPs per clip", COST_PNG, _plot_cost(points, metric, out)),
        )
        if written
    ]
    page = _Page(Path(sweep_dir).resolve(), metric, mode, rows, columns, images, notes)
    (out / "report.md").write_text(page.markdown())
    html_path = out / "report.html"
    html_path.write_text(page.html())
    return html_path


def sweep_mode(records: list[TrialRecord], metric: str) -> Literal["max", "min"]:
    """The sweep's own mode for its own metric; for any other metric, losses go down and the rest up."""
    params = records[0].params
    if params.get("metric") == metric and params.get("mode") in ("max", "min"):
        return params["mode"]
    return "min" if metric.endswith("loss") else "max"


def trial_rows(records: list[TrialRecord], metric: str, mode: Literal["max", "min"]) -> list[TrialRow]:
    """Every trial, ranked best first by its best ``metric``; trials that never reported it come last."""
    rows = [_trial_row(record, metric, mode) for record in records]
    sign = -1 if mode == "max" else 1
    return sorted(rows, key=lambda r: (r.best is None, 0.0 if r.best is None else sign * r.best))


def _trial_row(record: TrialRecord, metric: str, mode: Literal["max", "min"]) -> TrialRow:
    config = trial_config(record.params)
    curve = [(_epoch(r), float(r[metric])) for r in record.results if _is_number(r.get(metric))]
    best = (max if mode == "max" else min)(curve, key=lambda point: point[1], default=None)
    epochs_run = max((_epoch(r) for r in record.results), default=0)
    if not record.results:
        status: Status = "no result"
    elif epochs_run >= config.optim.epochs:
        status = "finished"
    elif (record.directory / "error.txt").is_file():  # Tune's record of a crash
        status = "error"
    else:  # ASHA stopped it, or the sweep was interrupted before it finished
        status = "stopped early"
    searched = (
        {k: record.params.get(k) for k in GRID_KEYS}
        if "variant" in record.params
        else dict(record.params.get("overrides") or {})
    )
    return TrialRow(
        record=record,
        config=config,
        searched=searched,
        curve=curve,
        best=None if best is None else best[1],
        best_epoch=None if best is None else best[0],
        epochs_run=epochs_run,
        status=status,
    )


def _epoch(result: dict[str, Any]) -> int:
    return int(result.get("epoch", result["training_iteration"]))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def cost_points(rows: list[TrialRow], metric: str) -> tuple[list[CostPoint], list[str]]:
    """The accuracy-vs-FLOPs markers: each trial's student at its best ``metric``, then every
    exported teacher (ensembles expanded to members) at its card's ``metric``.

    Returns ``(points, notes)``: teachers missing on disk, or whose card lacks the metric, and
    students whose class count cannot be found are left out with a note instead of failing the
    report — a sweep copied to another machine often arrives without its teachers and data.
    """
    notes: list[str] = []
    teachers: list[tuple[str, ModelCard]] = []
    for teacher in dict.fromkeys(t for row in rows for t in row.config.teachers):
        try:
            members = exported_members(teacher)
            teachers += [(_teacher_label(Path(teacher), m), load_card(m)) for m in members]
        except (FileNotFoundError, ValueError) as error:
            notes.append(f"teacher {teacher} is not plotted: {error}")
    class_counts: dict[str, int | None] = {}
    points: list[CostPoint] = []
    for row in rows:
        if row.best is None:
            continue
        data = row.config.data
        if data.path not in class_counts:
            class_counts[data.path] = _num_classes(data.path, [card for _, card in teachers])
            if class_counts[data.path] is None:
                notes.append(f"students on {data.path} not plotted: neither it nor a teacher is here to count classes")
        num_classes = class_counts[data.path]
        if num_classes is None:
            continue
        gflops = _gflops(
            row.config.model, _kwargs_key(row.config.model_kwargs), num_classes, data.num_frames, data.size
        )
        points.append(CostPoint(row.record.trial_id, "student", gflops, row.best))
    for label, card in teachers:
        if not _is_number(card.metrics.get(metric)):
            notes.append(f"teacher {label} is not plotted: its model card has no {metric}")
            continue
        gflops = _gflops(card.model, _kwargs_key(card.model_kwargs), len(card.classes), card.num_frames, card.size)
        points.append(CostPoint(label, "teacher", gflops, float(card.metrics[metric])))
    return points, notes


def _teacher_label(teacher: Path, member: Path) -> str:
    """``teacher`` for a single export, ``ensemble/member0`` for an ensemble's member."""
    return teacher.name if member == teacher else f"{teacher.name}/{member.name}"


def _num_classes(data_path: str, teacher_cards: list[ModelCard]) -> int | None:
    """The student's head size, which its FLOPs depend on (slightly): from the dataset it trained
    on, else from a teacher's card (distillation shares the teacher's classes)."""
    try:
        return len(load_manifest(data_path).classes)
    except (FileNotFoundError, ValueError):
        return len(teacher_cards[0].classes) if teacher_cards else None


def _kwargs_key(kwargs: dict[str, Any]) -> str:
    return json.dumps(kwargs, sort_keys=True)


@lru_cache(maxsize=64)
def _gflops(model: str, kwargs_json: str, num_classes: int, num_frames: int, size: int) -> float:
    """Forward GFLOPs of one clip; cached because a sweep's trials almost always share one student."""
    network = create_model(model, num_classes=num_classes, num_frames=num_frames, **json.loads(kwargs_json))
    return describe(network, height=size, width=size).gflops_per_clip


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


def _plot_parameters(rows: list[TrialRow], columns: list[str], metric: str, out: Path) -> bool:
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
        if values and all(_is_number(v) for v in values):
            xs = [float(v) for v in values]
            if _log_scale(xs):
                _log_x(ax)
        else:
            categories = sorted({str(v) for v in values})
            xs = [float(categories.index(str(v))) for v in values]
            ax.set_xticks(range(len(categories)), categories)
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
    figure.savefig(out / PARAMETERS_PNG, dpi=110)
    return True


def _plot_learning_curves(rows: list[TrialRow], metric: str, out: Path) -> bool:
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
    figure.savefig(out / CURVES_PNG, dpi=110)
    return True


def _plot_cost(points: list[CostPoint], metric: str, out: Path) -> bool:
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
    figure.savefig(out / COST_PNG, dpi=110)
    return True


@dataclass(frozen=True)
class _Page:
    """The report's content, rendered twice: Markdown for terminals and diffs, HTML for browsers."""

    sweep_dir: Path
    metric: str
    mode: Literal["max", "min"]
    rows: list[TrialRow]
    columns: list[str]
    images: list[tuple[str, str]]
    notes: list[str]

    def summary(self) -> list[str]:
        """The header's sentences, best trial and export command first (plain text, `code` marked)."""
        counts = {s: sum(r.status == s for r in self.rows) for s in ("finished", "stopped early", "error", "no result")}
        lines = [
            f"{len(self.rows)} trial{'s' if len(self.rows) != 1 else ''}: "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            + f". Ranked by best `{self.metric}` ({self.mode})."
        ]
        best = self.rows[0]
        if best.best is not None:
            searched = ", ".join(f"`{k}={_format(v)}`" for k, v in best.searched.items()) or "no searched values"
            lines.append(
                f"Best trial: `{best.record.trial_id}` with {self.metric} = {best.best:.4f} at epoch {best.best_epoch} "
                f"(model `{best.config.model}`, {best.config.data.num_frames} frames at {best.config.data.size} px; "
                f"{searched}); full config in `{best.record.directory / 'params.json'}`."
            )
            flags = (
                "" if (self.metric, self.mode) == ("val_top1", "max") else f" --metric {self.metric} --mode {self.mode}"
            )
            lines.append(f"Export it: `specdistill best {self.sweep_dir}{flags} --export DIR`.")
        return lines

    def table(self) -> tuple[list[str], list[list[str]]]:
        header = ["rank", "trial", "status", f"best {self.metric}", f"last {self.metric}", "epochs", *self.columns]
        body = []
        for rank, row in enumerate(self.rows, start=1):
            body.append(
                [
                    str(rank) if row.best is not None else "—",
                    row.record.trial_id,
                    row.status,
                    _format_metric(row.best),
                    _format_metric(row.last),
                    f"{row.epochs_run}/{row.config.optim.epochs}",
                    *(_format(row.searched[c]) if row.searched.get(c) is not None else "" for c in self.columns),
                ]
            )
        return header, body

    def markdown(self) -> str:
        header, body = self.table()
        parts = [f"# Sweep report: {self.sweep_dir.name}", "", *(f"{line}\n" for line in self.summary())]
        parts += ["## Trials", "", _md_row(header), _md_row(["---"] * len(header)), *map(_md_row, body), ""]
        for title, name in self.images:
            parts += [f"## {title}", "", f"![{title}]({name})", ""]
        if self.notes:
            parts += ["## Notes", "", *(f"- {note}" for note in self.notes), ""]
        return "\n".join(parts)

    def html(self) -> str:
        header, body = self.table()
        name = html.escape(self.sweep_dir.name)
        cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        rows = "\n".join(
            f'<tr class="{row.status.replace(" ", "-")}">'
            + "".join(f"<td>{html.escape(c)}</td>" for c in cells_)
            + "</tr>"
            for row, cells_ in zip(self.rows, body, strict=True)
        )
        parts = [
            f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>Sweep report: {name}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>Sweep report: {name}</h1>",
            *(f"<p>{_inline_code(line)}</p>" for line in self.summary()),
            f"<h2>Trials</h2>\n<table><thead><tr>{cells}</tr></thead><tbody>\n{rows}\n</tbody></table>",
        ]
        for title, image in self.images:
            parts.append(f'<h2>{html.escape(title)}</h2>\n<img src="{image}" alt="{html.escape(title)}">')
        if self.notes:
            items = "".join(f"<li>{html.escape(note)}</li>" for note in self.notes)
            parts.append(f"<h2>Notes</h2>\n<ul>{items}</ul>")
        return "\n".join([*parts, "</body></html>\n"])


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "th{background:#f2f2f2}td:nth-child(2),td:nth-child(3){text-align:left}"
    "tr.stopped-early,tr.error,tr.no-result{color:#777}tr.error td:nth-child(3){color:#b00}"
    "code{background:#f2f2f2;padding:0 .2em}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}"
)


def _inline_code(text: str) -> str:
    """Markdown's `code` spans as <code>, everything escaped (the summary is written once, for both)."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _format(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _format_metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
