"""``specdistill best``: ranking a sweep's trials by their best checkpointed result and exporting
the best students (or, in a teacher sweep, teachers). A trial with repeats is ranked by the mean
of its runs and exports its best run, or all of them as an ensemble."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from orchestrator.pareto import NO_BUDGET, Budget, admitted
from orchestrator.results import Mode, TrialRecord, best_first, best_of, check_mode, read_sweep, warn_damage
from training import storage
from training.checkpoint import ModelCard, export_model, load_training_state, run_states, write_ensemble
from training.models import VideoClassifier, create_model
from training.portable import PortableMismatch, reference_clips

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


def trial_model(trial: RankedTrial, repeat: int = 0) -> tuple[VideoClassifier, ModelCard]:
    """The network the trial's checkpoint holds (the student; the teacher in a teacher sweep) for
    run ``repeat`` of a trial with repeats, in eval mode, with the card an export of it carries."""
    state, saved_config = load_training_state(trial.checkpoint)
    spec = trial.record.spec
    config = spec.train_config()
    run = run_states(state, spec.repeats, trial.checkpoint)[repeat]
    model = create_model(
        config.model, num_classes=len(run["classes"]), num_frames=config.data.num_frames, **config.model_kwargs
    )
    model.load_state_dict(run["student"])
    provenance = {"trial_id": trial.record.trial_id, "checkpoint": storage.display(trial.checkpoint)}
    if spec.repeats > 1:
        provenance |= {"repeat": str(repeat), "seed": str(config.seed + repeat)}
    card = ModelCard(
        model=config.model,
        model_kwargs=config.model_kwargs,
        classes=list(run["classes"]),
        num_frames=config.data.num_frames,
        size=config.data.size,
        metrics={k: float(trial.result[k]) for k in REPORTED if k in trial.result},
        teachers=[storage.display(teacher) for teacher in config.teachers],
        dataset=storage.display(config.data.path),
        config=saved_config | {"seed": config.seed + repeat},
        provenance=provenance,
    )
    return model.eval(), card


def best_repeat(trial: RankedTrial, metric: str, mode: str) -> int:
    """The run of a trial with repeats that did best on ``metric`` at the trial's chosen result
    (run 0 for a trial of one run, or a metric the runs are not reported on one by one)."""
    values = {r: trial.result.get(f"repeat{r}/{metric}") for r in range(trial.record.spec.repeats)}
    scored = [r for r, value in values.items() if isinstance(value, int | float)]
    return best_of(scored, lambda r: values[r], check_mode(mode)) or 0


def export_trial(
    trial: RankedTrial,
    directory: str | Path,
    *,
    metric: str = "val_top1",
    mode: str = "max",
    repeats_as_ensemble: bool = False,
    check_clips: Tensor | None = None,
) -> str:
    """Export the trial's checkpointed model: for a trial with repeats, its best run on ``metric``,
    or with ``repeats_as_ensemble`` every run, as an ensemble directory (``repeat<r>/`` members).
    With ``check_clips`` (:func:`trial_clips`), each model also goes out as ONNX and a
    ``torch.export`` program checked on them."""
    repeats = trial.record.spec.repeats
    if not repeats_as_ensemble or repeats == 1:
        return export_model(directory, *trial_model(trial, best_repeat(trial, metric, mode)), check_clips=check_clips)
    members = [
        export_model(storage.join(directory, f"repeat{r}"), *trial_model(trial, r), check_clips=check_clips)
        for r in range(repeats)
    ]
    return write_ensemble(directory, members, {"trial_id": trial.record.trial_id, "repeats": repeats})


def trial_clips(trial: RankedTrial) -> Tensor:
    """Clips of the trial's data (its selection split) shaped for its model, to check conversions on."""
    data = trial.record.spec.train_config().data
    try:
        return reference_clips(data.path, num_frames=data.num_frames, size=data.size)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"trial {trial.record.trial_id}: its data cannot be read to check the ONNX and torch.export "
            f"conversions on ({error}); --no-portable exports the weights alone"
        ) from error


def export_best(
    sweep_dir: str | Path,
    directory: str | Path,
    *,
    metric: str = "val_top1",
    mode: str = "max",
    top_k: int = 1,
    repeats_as_ensemble: bool = False,
    portable: bool = True,
    budget: Budget = NO_BUDGET,
) -> list[str]:
    """Export the ``top_k`` best trials: into ``directory`` itself for one, ``directory/top<i>`` for
    more (see :func:`export_trial` for trials with repeats). With ``portable``, each also goes out
    as ONNX and a ``torch.export`` program, checked on clips of the trial's data, which must then be
    readable. Only trials within ``budget`` (their reported latency and GFLOPs) are candidates. A
    trial whose checkpoint cannot be read is left out with a
    :class:`~orchestrator.results.DamagedRecord` warning, and the next one taken."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    options = {"metric": metric, "mode": mode, "repeats_as_ensemble": repeats_as_ensemble}
    exported: list[str] = []
    candidates = admitted(rank_trials(sweep_dir, metric, mode), budget)
    if not candidates:
        raise ValueError(f"{storage.display(sweep_dir)}: no trial is within the budget ({budget})")
    for trial in candidates:
        target = directory if top_k == 1 else storage.join(directory, f"top{len(exported) + 1}")
        clips = trial_clips(trial) if portable else None
        try:
            exported.append(export_trial(trial, target, check_clips=clips, **options))
        except PortableMismatch:  # the trial's checkpoint is sound; its conversion is what failed
            raise
        except ValueError as error:  # a damaged checkpoint costs its trial, not the export
            warn_damage(f"trial {trial.record.trial_id} left out: {error}")
            continue
        if len(exported) == top_k:
            break
    if not exported:
        raise ValueError(f"{storage.display(sweep_dir)}: no trial's checkpoint could be read (see the warnings)")
    return exported
