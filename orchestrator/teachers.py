"""``specdistill train-teacher``: one teacher, or an ensemble of teachers trained as parallel trials.

Members differ by seed and, when several models are named, by architecture (member ``i`` uses
``models[i % len(models)]``). Each is exported; an ensemble is a directory of members plus
``ensemble.json``, which a distillation config can name as its teacher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.config import SweepConfig
from orchestrator.selection import export_trial, rank_trials
from orchestrator.sweep import launch
from search_spaces import SearchSpace
from training.checkpoint import write_ensemble


def member_space(config: SweepConfig, members: int, models: Sequence[str]) -> SearchSpace:
    if members < 1:
        raise ValueError(f"--ensemble must be >= 1, got {members}")
    names = list(models) or [config.train.model]
    variants = {f"member{i}": {"seed": config.train.seed + i, "model": names[i % len(names)]} for i in range(members)}
    space = SearchSpace(name="teacher-members", variants=variants)
    space.check_against(config.train)
    return space


def train_teachers(
    config: SweepConfig,
    export: Path,
    *,
    members: int = 1,
    models: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> list[Path]:
    """Train and export the teacher(s); returns the exported directories (one per member)."""
    if config.train.stage != "teacher":
        raise ValueError(f"train-teacher needs train.stage: teacher, the config says {config.train.stage!r}")
    space = member_space(config, members, models)
    launch(config.model_copy(update={"tune": config.tune.model_copy(update={"scheduler": "fifo"})}), space, echo=echo)
    ranked = rank_trials(config.sweep_dir, config.tune.metric, config.tune.mode)
    if len(ranked) < members:
        raise RuntimeError(f"{len(ranked)} of {members} teachers ended with a checkpoint: see {config.sweep_dir}")
    if members == 1:
        return [export_trial(ranked[0], export)]
    exported = [export_trial(trial, export / f"member{i}") for i, trial in enumerate(ranked)]
    write_ensemble(export, exported, {"sweep": config.sweep_dir})
    return exported
