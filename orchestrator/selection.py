"""Reading a sweep directory after the fact: ranking trials and exporting the best students.

Works on finished and interrupted sweeps alike, straight from the files Tune and Train leave
(``params.json``, ``result.json`` per trial; Train run checkpoints for multi-worker trials). That
matters because, in Ray 2.60, code after ``trainer.fit()`` never runs for a trial ASHA stopped,
and Tune's own ``Result.checkpoint`` is empty for Train-inside-Tune trials.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.trial import trial_config
from training.checkpoint import ModelCard, export_model, load_training_state
from training.models import create_model

REPORTED = ("val_top1", "val_top5", "val_loss", "train_loss", "epoch", "step")


@dataclass
class TrialRecord:
    """One trial of a sweep: its config and every reported result, in order."""

    trial_id: str
    directory: Path
    params: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)

    def checkpoint_of(self, result: dict[str, Any]) -> Path | None:
        """The checkpoint reported with ``result`` if it is still on disk (Tune keeps the best few)."""
        if result.get("checkpoint_path"):  # multi-worker: TuneReportCallback points into the Train run
            candidate = Path(str(result["checkpoint_path"]).removeprefix("file://"))
        elif result.get("checkpoint_dir_name"):
            candidate = self.directory / result["checkpoint_dir_name"]
        else:
            return None
        return candidate if (candidate / "state.pt").is_file() else None

    def best(self, metric: str, mode: str) -> tuple[dict[str, Any], Path] | None:
        """The best result that still has its checkpoint, or None."""
        scored = [
            (r, c)
            for r in self.results
            if isinstance(r.get(metric), int | float) and not math.isnan(r[metric]) and (c := self.checkpoint_of(r))
        ]
        if not scored:
            return None
        sign = 1 if mode == "max" else -1
        return max(scored, key=lambda rc: sign * rc[0][metric])

    @property
    def label(self) -> str:
        overrides = self.params.get("overrides") or {}
        if "variant" in self.params:
            overrides = {"variant": self.params["variant"], "seed": self.params.get("seed")}
        return ", ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in overrides.items())


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _trial_id_from_name(name: str) -> str:
    """Tune's trial id inside a trial directory name (``specdistill_trial_<id>_<index>_<params>…``)."""
    match = re.match(r"specdistill_trial_([0-9a-f]{8}|[0-9a-f]{5}_\d{5})_", name)
    return match.group(1) if match else name


def read_sweep(sweep_dir: str | Path) -> list[TrialRecord]:
    """Every trial directory under ``sweep_dir`` (those with a ``params.json``), in trial-id order."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"sweep directory {root} not found")
    records = []
    for params_path in sorted(root.glob("*/params.json")):
        directory = params_path.parent
        results = []
        result_path = directory / "result.json"
        if result_path.is_file():
            for line in result_path.read_text().splitlines():
                if line.strip():
                    results.append(json.loads(line))
        trial_id = results[0]["trial_id"] if results else _trial_id_from_name(directory.name)
        records.append(TrialRecord(trial_id, directory, json.loads(params_path.read_text()), results))
    if not records:
        raise ValueError(f"{root} holds no trials (no */params.json): is it a sweep directory?")
    return records


@dataclass
class RankedTrial:
    record: TrialRecord
    result: dict[str, Any]
    checkpoint: Path


def rank_trials(sweep_dir: str | Path, metric: str = "val_top1", mode: str = "max") -> list[RankedTrial]:
    """Trials with a usable checkpoint, best first by their best reported ``metric``."""
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    ranked = []
    for record in read_sweep(sweep_dir):
        best = record.best(metric, mode)
        if best is not None:
            ranked.append(RankedTrial(record, *best))
    if not ranked:
        raise ValueError(f"{sweep_dir}: no trial reported {metric!r} together with a checkpoint that still exists")
    sign = -1 if mode == "max" else 1
    return sorted(ranked, key=lambda t: sign * t.result[metric])


def export_trial(trial: RankedTrial, directory: Path) -> Path:
    """Export the trial's checkpointed model (the student; the teacher in a teacher sweep)."""
    state, saved_config = load_training_state(trial.checkpoint)
    config = trial_config(trial.record.params)
    model = create_model(
        config.model, num_classes=len(state["classes"]), num_frames=config.data.num_frames, **config.model_kwargs
    )
    model.load_state_dict(state["student"])
    card = ModelCard(
        model=config.model,
        model_kwargs=config.model_kwargs,
        classes=list(state["classes"]),
        num_frames=config.data.num_frames,
        size=config.data.size,
        metrics={k: float(trial.result[k]) for k in REPORTED if k in trial.result},
        config=saved_config,
        provenance={"trial_id": trial.record.trial_id, "checkpoint": str(trial.checkpoint)},
    )
    return export_model(directory, model, card)


def export_best(
    sweep_dir: str | Path, directory: str | Path, *, metric: str = "val_top1", mode: str = "max", top_k: int = 1
) -> list[Path]:
    """Export the ``top_k`` best trials: into ``directory`` itself for one, ``directory/top<i>`` for more."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    ranked = rank_trials(sweep_dir, metric, mode)[:top_k]
    directory = Path(directory)
    if top_k == 1:
        return [export_trial(ranked[0], directory)]
    return [export_trial(trial, directory / f"top{i}") for i, trial in enumerate(ranked, start=1)]
