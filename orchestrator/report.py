"""``specdistill report``: one page per sweep — the trial table and plots — written next to it.

Everything comes from the files a sweep leaves (``orchestrator.results``) and the exported
teachers its trials name, so the report works on finished, interrupted and copied sweeps and never
starts Ray. The figures are drawn by ``orchestrator.plots``; this module gathers what they show
and writes the page twice, as Markdown and as HTML.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from orchestrator.analysis import MIN_TRIALS, ce_only_baseline, importances, variant_summary
from orchestrator.plots import (
    COST_PNG,
    CURVES_PNG,
    PARAMETERS_PNG,
    CostPoint,
    plot_cost,
    plot_learning_curves,
    plot_parameters,
)
from orchestrator.results import Mode, TrialRow, is_number, read_sweep, sweep_mode, trial_rows, warn_damage
from orchestrator.spectra import what_was_learned
from orchestrator.study_plots import (
    HISTORY_PNG,
    IMPORTANCE_PNG,
    PARALLEL_PNG,
    plot_history,
    plot_importance,
    plot_parallel,
)
from orchestrator.trial_spec import format_value
from training import storage
from training.checkpoint import ModelCard, exported_members, load_card
from training.data.shards import load_manifest
from training.models import create_model, describe

REPORT_DIR = "report"
TEST_SPLIT_NOTE = (
    "The trials the ranking above would pick, each at its best checkpoint, scored on the test split: no "
    "decision of the sweep read it, so these are the figures to quote (the ranking's own are optimistic)."
)
GRID_KEYS = ("variant", "seed")
VARIANT_NOTE = (
    "Each variant's trials differ only by their seed: the mean and standard deviation of their best values say "
    "how far apart two variants are against the seed's own noise."
)


def write_report(
    sweep_dir: str | Path, out: str | Path | None = None, *, metric: str = "val_top1", test_top: int = 1
) -> str:
    """Write ``report.md``, ``report.html`` and their PNGs into ``out`` (default ``SWEEP_DIR/report``).
    The ``test_top`` trials a decision on ``metric`` would pick are also scored on the test split.

    Returns the HTML page's path. Raises ``FileNotFoundError``/``ValueError`` for a missing or empty
    sweep directory, and ``ValueError`` when trials reported results but never ``metric``.
    """
    damage: list[str] = []

    def left_out(line: str) -> None:  # in the report's notes, and on the terminal
        damage.append(line)
        warn_damage(line)

    records = read_sweep(sweep_dir, on_damage=left_out)
    mode = sweep_mode(records, metric)
    rows = trial_rows(records, metric, mode)
    reported = [r for r in rows if r.record.results]
    if reported and all(r.best is None for r in reported):
        known = sorted({k for r in reported for res in r.record.results for k, v in res.items() if is_number(v)})
        raise ValueError(f"no trial reported {metric!r}; numeric keys in the results: {', '.join(known)}")
    sweep_dir = str(sweep_dir)
    out = storage.join(sweep_dir, REPORT_DIR) if out is None else str(out)
    keys = {k for r in rows for k in r.searched}
    columns = [k for k in GRID_KEYS if k in keys] or sorted(keys)  # sorted dotted paths group by section
    points, notes = cost_points(rows, metric)
    notes += [f"trial {r.record.trial_id} failed: {r.record.failure}" for r in rows if r.record.failure]
    notes += [f"trial {r.record.trial_id} has no result (not plotted)" for r in rows if not r.record.results]
    notes += [f"left out: {line}" for line in damage]
    importance = importances(rows, columns, mode)
    baseline = ce_only_baseline(rows)
    images = [
        (title, name)
        for title, name, written in (
            ("Optimisation history", HISTORY_PNG, plot_history(rows, metric, mode, baseline, out)),
            ("What mattered: parameter importance", IMPORTANCE_PNG, plot_importance(importance, metric, out)),
            ("Parallel coordinates", PARALLEL_PNG, plot_parallel(rows, columns, metric, mode, out)),
            (f"{metric} vs searched parameters", PARAMETERS_PNG, plot_parameters(rows, columns, metric, out)),
            ("Learning curves", CURVES_PNG, plot_learning_curves(rows, metric, out)),
            (f"{metric} vs GFLOPs per clip", COST_PNG, plot_cost(points, metric, out)),
        )
        if written
    ]
    test_table, test_notes = test_scores(sweep_dir, metric, mode, test_top) if test_top > 0 else (None, [])
    learned, learned_notes = what_was_learned(sweep_dir, metric, mode, out)
    images += learned
    notes += learned_notes
    notes += _export_differs(sweep_dir, rows, metric, mode)
    where = sweep_dir if storage.is_uri(sweep_dir) else str(Path(sweep_dir).resolve())
    if importance is None and len(rows) > 1:
        notes.append(f"no parameter importance: it needs {MIN_TRIALS} trials that reported {metric} and a varied value")
    page = _Page(
        storage.display(where),
        metric,
        mode,
        rows,
        columns,
        images,
        notes + test_notes,
        test_table,
        importance,
        baseline,
        variant_summary(rows, metric, mode),
    )
    storage.write_text(storage.join(out, "report.md"), page.markdown())
    html_path = storage.join(out, "report.html")
    storage.write_text(html_path, page.html())
    return html_path


Table = tuple[list[str], list[list[str]]]


def _export_differs(sweep_dir: str, rows: list[TrialRow], metric: str, mode: Mode) -> list[str]:
    """A note when ``best`` would export another trial than the table's first: the first's best
    result has no checkpoint left (a sweep that keeps only its latest), and ``best`` can only
    export a result whose checkpoint exists."""
    from orchestrator.selection import rank_trials

    try:
        exported = rank_trials(sweep_dir, metric, mode)[0]
    except ValueError:
        return []
    first = rows[0].record.trial_id
    if exported.record.trial_id == first:
        return []
    return [
        f"specdistill best exports trial {exported.record.trial_id} ({metric} {exported.result[metric]:.4f} at epoch "
        f"{exported.result.get('epoch', '?')}), not {first}: {first}'s best result no longer has a checkpoint "
        "(tune.keep_checkpoints_by: metric keeps each trial's best ones)"
    ]


def test_scores(sweep_dir: str, metric: str, mode: Mode, top: int) -> tuple[Table | None, list[str]]:
    """The ``top`` trials ranked by ``metric`` (what ``best`` would export), each at its best
    checkpoint, scored on its data's test split — which no decision read, so this is the figure to
    quote. Returns the table, or None and a note saying why it could not be made (no checkpoint,
    no test split, data out of reach: a copied sweep often travels without its data)."""
    from orchestrator.evaluation import probabilities, score
    from orchestrator.selection import rank_trials, trial_model

    try:
        ranked = rank_trials(sweep_dir, metric, mode)[:top]
    except ValueError as error:
        return None, [f"no test-split scores: {error}"]
    header = ["rank", "trial", f"best {metric}", "test top-1", "test top-5", "test clips"]
    body, notes = [], []
    for rank, trial in enumerate(ranked, start=1):
        data = trial.record.spec.train_config().data
        try:
            model, card = trial_model(trial)
            result = score(probabilities(model, card, data.path, split=data.test_split, clips=data.eval_clips))
        except (FileNotFoundError, ValueError) as error:
            notes.append(f"trial {trial.record.trial_id} is not scored on the test split: {error}")
            continue
        values = [result.top1, result.top5]
        body.append([str(rank), trial.record.trial_id, _format_metric(trial.result[metric])])
        body[-1] += [*map(_format_metric, values), str(result.clips)]
    return (header, body) if body else None, notes


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
            teachers += [(_teacher_label(teacher, m), load_card(m)) for m in members]
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
        if not is_number(card.metrics.get(metric)):
            notes.append(f"teacher {label} is not plotted: its model card has no {metric}")
            continue
        gflops = _gflops(card.model, _kwargs_key(card.model_kwargs), len(card.classes), card.num_frames, card.size)
        points.append(CostPoint(label, "teacher", gflops, float(card.metrics[metric])))
    return points, notes


def _teacher_label(teacher: str, member: str) -> str:
    """``teacher`` for a single export, ``ensemble/member0`` for an ensemble's member."""
    name = storage.name(teacher)
    return name if member == teacher else f"{name}/{storage.name(member)}"


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


@dataclass(frozen=True)
class _Page:
    """The report's content, rendered twice: Markdown for terminals and diffs, HTML for browsers."""

    sweep_dir: str
    metric: str
    mode: Mode
    rows: list[TrialRow]
    columns: list[str]
    images: list[tuple[str, str]]
    notes: list[str]
    test_table: Table | None = None
    importance: dict[str, float] | None = None
    baseline: float | None = None
    variant_table: Table | None = None

    def summary(self) -> list[str]:
        """The header's sentences, best trial and export command first (plain text, `code` marked)."""
        counts = {s: sum(r.status == s for r in self.rows) for s in ("finished", "stopped early", "error", "no result")}
        lines = [
            f"{len(self.rows)} trial{'s' if len(self.rows) != 1 else ''}: "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            + f". Ranked by best `{self.metric}` ({self.mode})."
        ]
        if any(row.spread is not None for row in self.rows):
            lines.append("A trial's value is the mean over its runs (`tune.repeats`); ± is their standard deviation.")
        best = self.rows[0]
        if best.best is not None:
            searched = ", ".join(f"`{k}={format_value(v)}`" for k, v in best.searched.items()) or "no searched values"
            lines.append(
                f"Best trial: `{best.record.trial_id}` with {self.metric} = {best.best:.4f} at epoch {best.best_epoch} "
                f"(model `{best.config.model}`, {best.config.data.num_frames} frames at {best.config.data.size} px; "
                f"{searched}); full config in `{storage.display(storage.join(best.record.directory, 'params.json'))}`."
            )
            flags = (
                "" if (self.metric, self.mode) == ("val_top1", "max") else f" --metric {self.metric} --mode {self.mode}"
            )
            lines.append(f"Export it: `specdistill best {self.sweep_dir}{flags} --export DIR`.")
            if self.baseline is not None:
                gain = best.best - self.baseline
                lines.append(
                    f"CE-only baseline (trials trained with cross-entropy alone): {self.baseline:.4f}; "
                    f"the best trial is {gain:+.4f} from it."
                )
        if self.importance:
            ranked = ", ".join(f"`{name}` {share:.2f}" for name, share in list(self.importance.items())[:3])
            lines.append(f"What mattered most for {self.metric} (PED-ANOVA importance): {ranked}.")
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
                    _format_metric(row.best) + (f" ± {row.spread:.4f}" if row.spread is not None else ""),
                    _format_metric(row.last),
                    f"{row.epochs_run}/{row.config.optim.epochs}",
                    *(format_value(row.searched[c]) if row.searched.get(c) is not None else "" for c in self.columns),
                ]
            )
        return header, body

    def markdown(self) -> str:
        header, body = self.table()
        parts = [f"# Sweep report: {storage.name(self.sweep_dir)}", "", *(f"{line}\n" for line in self.summary())]
        parts += ["## Trials", "", _md_row(header), _md_row(["---"] * len(header)), *map(_md_row, body), ""]
        if self.variant_table is not None:
            parts += ["## Per variant, over its seeds", "", VARIANT_NOTE, "", *_md_table(self.variant_table), ""]
        if self.test_table is not None:
            parts += ["## On the test split", "", TEST_SPLIT_NOTE, "", *_md_table(self.test_table), ""]
        for title, name in self.images:
            parts += [f"## {title}", "", f"![{title}]({name})", ""]
        if self.notes:
            parts += ["## Notes", "", *(f"- {note}" for note in self.notes), ""]
        return "\n".join(parts)

    def html(self) -> str:
        header, body = self.table()
        name = html.escape(storage.name(self.sweep_dir))
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
        if self.variant_table is not None:
            parts += [f"<h2>Per variant, over its seeds</h2>\n<p>{html.escape(VARIANT_NOTE)}</p>"]
            parts += [_html_table(self.variant_table)]
        if self.test_table is not None:
            parts += [
                f"<h2>On the test split</h2>\n<p>{html.escape(TEST_SPLIT_NOTE)}</p>",
                _html_table(self.test_table),
            ]
        for title, image in self.images:
            parts.append(f'<h2>{html.escape(title)}</h2>\n<img src="{image}" alt="{html.escape(title)}">')
        if self.notes:
            items = "".join(f"<li>{html.escape(note)}</li>" for note in self.notes)
            parts.append(f"<h2>Notes</h2>\n<ul>{items}</ul>")
        return "\n".join([*parts, "</body></html>\n"])


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:.9em;display:block;overflow-x:auto;max-width:100%}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "th{background:#f2f2f2}td:nth-child(2),td:nth-child(3){text-align:left}"
    "tr.stopped-early,tr.error,tr.no-result{color:#777}tr.error td:nth-child(3){color:#b00}"
    "code{background:#f2f2f2;padding:0 .2em}img{max-width:100%;border:1px solid #ddd;margin:.5em 0}"
)


def _inline_code(text: str) -> str:
    """Markdown's `code` spans as <code>, everything escaped (the summary is written once, for both)."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def _md_table(table: Table) -> list[str]:
    header, body = table
    return [_md_row(header), _md_row(["---"] * len(header)), *map(_md_row, body)]


def _html_table(table: Table) -> str:
    header, body = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{lines}\n</tbody></table>"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _format_metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
