"""Reading a sweep directory after the fact: its trials, what each reported, and their ranking.

Works on finished, interrupted and copied sweeps alike, straight from the files Tune and Train
leave (``params.json`` and ``result.json`` per trial; Train run checkpoints for multi-worker
trials), and never starts Ray. That matters because, in Ray 2.60, code after ``trainer.fit()``
never runs for a trial ASHA stopped, and Tune's own ``Result.checkpoint`` is empty for
Train-inside-Tune trials. ``best`` and the report rank trials with the same two functions,
:func:`best_of` within a trial and :func:`best_first` across trials.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from orchestrator.trial_spec import TrialSpec
from training import storage
from training.checkpoint import STATE_NAME
from training.config import TrainConfig
from training.failures import read_record

Mode = Literal["max", "min"]
Status = Literal["finished", "stopped early", "error", "no result"]
T = TypeVar("T")


def is_number(value: Any) -> bool:
    """A finite int or float that is not a bool: what a metric must be to rank on it."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_mode(mode: str) -> Mode:
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    return mode  # type: ignore[return-value]


def best_of(items: Iterable[T], value: Callable[[T], float], mode: Mode) -> T | None:
    """The item with the best value (the first of equals), or None when there is none."""
    sign = 1 if check_mode(mode) == "max" else -1
    return max(items, key=lambda item: sign * value(item), default=None)


def best_first(items: Iterable[T], value: Callable[[T], float | None], mode: Mode) -> list[T]:
    """Items sorted best first by ``value`` (stable among equals); those without a value last."""
    sign = -1 if check_mode(mode) == "max" else 1

    def key(item: T) -> tuple[bool, float]:
        score = value(item)
        return (score is None, 0.0 if score is None else sign * score)

    return sorted(items, key=key)


@dataclass
class TrialRecord:
    """One trial of a sweep: what it was (its spec) and every result it reported, in order."""

    trial_id: str
    directory: str
    spec: TrialSpec
    results: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None  # why the trial failed for good (``training.failures``), if it did

    def checkpoint_of(self, result: dict[str, Any]) -> str | None:
        """The checkpoint reported with ``result`` if it is still in storage (Tune keeps the best few)."""
        if result.get("checkpoint_path"):  # multi-worker: TuneReportCallback points into the Train run
            candidate = storage.with_scheme_of(str(result["checkpoint_path"]), self.directory)
        elif result.get("checkpoint_dir_name"):
            candidate = storage.join(self.directory, result["checkpoint_dir_name"])
        else:
            return None
        return candidate if storage.is_file(storage.join(candidate, STATE_NAME)) else None

    def best_result(self, metric: str, mode: Mode, *, with_checkpoint: bool = False) -> dict[str, Any] | None:
        """The result with the best ``metric``; with ``with_checkpoint``, among those whose
        checkpoint still exists."""
        scored = (
            r
            for r in self.results
            if is_number(r.get(metric)) and (not with_checkpoint or self.checkpoint_of(r) is not None)
        )
        return best_of(scored, lambda r: r[metric], mode)


def trial_id_from_name(name: str) -> str:
    """Tune's trial id inside a trial directory name (``specdistill_trial_<id>_<index>_<params>…``)."""
    match = re.match(r"specdistill_trial_([0-9a-f]{8}|[0-9a-f]{5}_\d{5})_", name)
    return match.group(1) if match else name


class DamagedRecord(UserWarning):
    """A file of a sweep that could not be read and was left out; the rest of the sweep is used."""


def warn_damage(message: str) -> None:
    warnings.warn(message, DamagedRecord, stacklevel=3)


def read_sweep(sweep_dir: str | Path, on_damage: Callable[[str], None] = warn_damage) -> list[TrialRecord]:
    """Every trial directory in ``sweep_dir`` (a local path or a storage URI; those with a
    ``params.json``), in trial-id order.

    A damaged file costs only itself: a ``result.json`` line that is not JSON (a driver killed
    mid-write leaves half a line) is left out, and a trial whose ``params.json`` cannot be read is
    left out, each reported to ``on_damage`` (by default a :class:`DamagedRecord` warning) with the
    file's name."""
    root = str(sweep_dir)
    if not storage.is_dir(root):
        raise FileNotFoundError(f"sweep directory {storage.display(root)} not found")
    records = []
    for name in storage.children(root):
        directory = storage.join(root, name)
        params_path = storage.join(directory, "params.json")
        try:
            params = json.loads(storage.read_text(params_path))
            spec = TrialSpec.from_params(params, storage.display(params_path))
        except (FileNotFoundError, NotADirectoryError):
            continue  # Tune's own files, the report, Train runs: not trials
        except (ValueError, UnicodeDecodeError) as error:
            on_damage(f"{storage.display(params_path)}: unreadable, trial left out ({_short(error)})")
            continue
        results = _read_results(storage.join(directory, "result.json"), on_damage)
        trial_id = results[0].get("trial_id", trial_id_from_name(name)) if results else trial_id_from_name(name)
        records.append(TrialRecord(trial_id, directory, spec, results, _read_failure(directory, on_damage)))
    if not records:
        raise ValueError(f"{storage.display(root)} holds no trials (no */params.json): is it a sweep directory?")
    return records


def _read_results(path: str, on_damage: Callable[[str], None]) -> list[dict[str, Any]]:
    try:
        text = storage.read_bytes(path).decode(errors="replace")
    except FileNotFoundError:
        return []
    results = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            result = json.loads(line)
        except ValueError as error:
            on_damage(f"{storage.display(path)}: line {number} is not a result, left out ({_short(error)})")
            continue
        if isinstance(result, dict):
            results.append(result)
        else:
            on_damage(
                f"{storage.display(path)}: line {number} is not a result, left out (a JSON {type(result).__name__})"
            )
    return results


def _read_failure(directory: str, on_damage: Callable[[str], None]) -> str | None:
    """Why the trial failed for good, if it recorded that (see ``training.failures``)."""
    try:
        return read_record(directory)
    except ValueError as error:
        on_damage(f"{error}; the trial counts as failed")
        return "failed (its failure record is damaged)"


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def sweep_mode(records: list[TrialRecord], metric: str) -> Mode:
    """The sweep's own mode for its own metric; for any other metric, losses go down and the rest up."""
    spec = records[0].spec
    if spec.metric == metric:
        return spec.mode
    return "min" if metric.endswith("loss") else "max"


@dataclass(frozen=True)
class TrialRow:
    """One trial summed up for one metric: what it searched and how far it got.

    ``curve`` holds ``(epoch, metric)`` for every result that reported the metric, in order;
    ``best_epoch`` is where ``best`` was reached (both None when the metric was never reported);
    ``spread``, the standard deviation over a trial's repeats there (None without repeats).
    """

    record: TrialRecord
    config: TrainConfig
    curve: list[tuple[int, float]]
    best: float | None
    best_epoch: int | None
    spread: float | None
    epochs_run: int
    status: Status

    @property
    def searched(self) -> dict[str, Any]:
        return self.record.spec.searched

    @property
    def last(self) -> float | None:
        return self.curve[-1][1] if self.curve else None


def trial_rows(records: list[TrialRecord], metric: str, mode: Mode) -> list[TrialRow]:
    """Every trial, ranked best first by its best ``metric``; trials that never reported it come last."""
    return best_first((_trial_row(record, metric, mode) for record in records), lambda r: r.best, mode)


def _trial_row(record: TrialRecord, metric: str, mode: Mode) -> TrialRow:
    config = record.spec.train_config()
    best = record.best_result(metric, mode)
    epochs_run = max((_epoch(r) for r in record.results), default=0)
    if record.results and epochs_run >= config.optim.epochs:
        status: Status = "finished"
    elif record.failure is not None or storage.is_file(storage.join(record.directory, "error.txt")):
        status = "error"  # failed for good, or crashed (Tune's error.txt) and not yet finished by a retry
    elif not record.results:
        status = "no result"
    else:  # ASHA stopped it, or the sweep was interrupted before it finished
        status = "stopped early"
    return TrialRow(
        record=record,
        config=config,
        curve=[(_epoch(r), float(r[metric])) for r in record.results if is_number(r.get(metric))],
        best=None if best is None else float(best[metric]),
        best_epoch=None if best is None else _epoch(best),
        spread=best.get(f"{metric}_std") if best is not None else None,
        epochs_run=epochs_run,
        status=status,
    )


def _epoch(result: dict[str, Any]) -> int:
    return int(result.get("epoch", result["training_iteration"]))
