"""``specdistill train-teacher``: one teacher, or an ensemble of teachers trained as parallel trials.

Members differ by seed and, when several models are named, by architecture (member ``i`` uses
``models[i % len(models)]``). Each is exported; an ensemble is a directory of members plus
``ensemble.json``, which a distillation config can name as its teacher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.config import SweepConfig
from orchestrator.outcome import SweepOutcome
from orchestrator.selection import export_trial, rank_trials
from orchestrator.sweep import launch, resume_sweep
from search_spaces import SearchSpace
from training import storage
from training.checkpoint import write_ensemble
from training.preflight import Preflight


def member_space(config: SweepConfig, members: int, models: Sequence[str]) -> SearchSpace:
    if members < 1:
        raise ValueError(f"--ensemble must be >= 1, got {members}")
    names = list(models) or [config.train.model]
    variants = {f"member{i}": {"seed": config.train.seed + i, "model": names[i % len(names)]} for i in range(members)}
    space = SearchSpace(name="teacher-members", variants=variants)
    space.check_against(config.train, Preflight().check)  # --models names registered models
    return space


def train_teachers(
    config: SweepConfig,
    export: str | Path,
    *,
    members: int = 1,
    models: Sequence[str] = (),
    resume: bool = False,
    resume_hint: str | None = None,
    address: str | None = None,
    echo: Callable[[str], None] = print,
) -> tuple[SweepOutcome, list[str]]:
    """Train (or with ``resume``, continue training) and export the teacher(s): the sweep's
    outcome, and the exported directories (one per member; none unless every member finished).
    ``resume_hint``: the command that continues after an interruption, for the outcome's message."""
    if config.train.stage != "teacher":
        raise ValueError(f"train-teacher needs train.stage: teacher, the config says {config.train.stage!r}")
    space = member_space(config, members, models)
    if resume:
        outcome = resume_sweep(config.sweep_dir, address=address, resume=resume_hint, echo=echo)
    else:
        fifo = config.model_copy(update={"tune": config.tune.model_copy(update={"scheduler": "fifo"})})
        outcome = launch(fifo, space, address=address, resume=resume_hint, echo=echo)
    if outcome.exit_code != 0:
        return outcome, []
    ranked = rank_trials(config.sweep_dir, config.tune.metric, config.tune.mode)
    if len(ranked) < members:
        where = storage.display(config.sweep_dir)
        raise RuntimeError(f"{len(ranked)} of {members} teachers ended with a checkpoint: see {where}")
    ranking = {"metric": config.tune.metric, "mode": config.tune.mode}
    if members == 1:
        return outcome, [export_trial(ranked[0], export, **ranking)]
    exported = [export_trial(trial, storage.join(export, f"member{i}"), **ranking) for i, trial in enumerate(ranked)]
    write_ensemble(export, exported, {"sweep": storage.display(config.sweep_dir)})
    return outcome, exported
