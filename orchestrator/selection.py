"""``specdistill best``: ranking a sweep's trials by their best checkpointed result and exporting
the best students (or, in a teacher sweep, teachers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.results import Mode, TrialRecord, best_first, check_mode, read_sweep
from training import storage
from training.checkpoint import ModelCard, export_model, load_training_state
from training.models import VideoClassifier, create_model

REPORTED = ("val_top1", "val_top5", "val_loss", "train_loss", "epoch", "step")


@dataclass
class RankedTrial:
    """A trial at its best result that still has a checkpoint on disk."""

    record: TrialRecord
    result: dict[str, Any]
    checkpoint: str


def rank_trials(sweep_dir: str | Path, metric: str = "val_top1", mode: str = "max") -> list[RankedTrial]:
    """Trials with a usable checkpoint, best first by their best reported ``metric``."""
    order: Mode = check_mode(mode)
    ranked = []
    for record in read_sweep(sweep_dir):
        result = record.best_result(metric, order, with_checkpoint=True)
        if result is not None:
            ranked.append(RankedTrial(record, result, record.checkpoint_of(result)))
    if not ranked:
        raise ValueError(f"{sweep_dir}: no trial reported {metric!r} together with a checkpoint that still exists")
    return best_first(ranked, lambda t: t.result[metric], order)


def trial_model(trial: RankedTrial) -> tuple[VideoClassifier, ModelCard]:
    """The network the trial's checkpoint holds (the student; the teacher in a teacher sweep), in
    eval mode, with the card an export of it carries."""
    state, saved_config = load_training_state(trial.checkpoint)
    config = trial.record.spec.train_config()
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
        provenance={"trial_id": trial.record.trial_id, "checkpoint": storage.display(trial.checkpoint)},
    )
    return model.eval(), card


def export_trial(trial: RankedTrial, directory: str | Path) -> str:
    """Export the trial's checkpointed model."""
    return export_model(directory, *trial_model(trial))


def export_best(
    sweep_dir: str | Path, directory: str | Path, *, metric: str = "val_top1", mode: str = "max", top_k: int = 1
) -> list[str]:
    """Export the ``top_k`` best trials: into ``directory`` itself for one, ``directory/top<i>`` for more."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    ranked = rank_trials(sweep_dir, metric, mode)[:top_k]
    if top_k == 1:
        return [export_trial(ranked[0], directory)]
    return [export_trial(trial, storage.join(directory, f"top{i}")) for i, trial in enumerate(ranked, start=1)]
