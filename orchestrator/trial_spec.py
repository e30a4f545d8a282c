"""What one trial of a sweep is, as one typed object, and the only code that knows its dict form.

Tune hands each trial its config as a plain dict and keeps that dict as the trial's
``params.json``. The sweep writes a :class:`TrialSpec` into Tune's ``param_space``; the trainable,
``best``, the report and the progress line read it back with :meth:`TrialSpec.from_params`. A trial
is the sweep's base training config plus either the values Optuna sampled (``overrides``: dotted
paths into the training config) or one cell of a grid (``variant`` and ``seed``), with the
resources, the metric and the checkpoint policy the sweep gives every trial.

This module imports neither Ray nor the training loop, so anything that only reads a finished
sweep stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.config import Resources, SweepConfig
from search_spaces import SearchSpace
from training.config import TrainConfig, describe_errors, with_overrides

TRAIN_RUNS_DIR = "train_runs"
OVERRIDES_KEY = "overrides"
# Filled in per trial by the searcher (overrides) or the grid (variant, seed), never by the sweep.
_SEARCHED = frozenset({OVERRIDES_KEY, "variant", "seed"})


class TrialSpec(BaseModel):
    """One trial: ``train`` (the sweep's base config, paths resolved) and what makes this trial
    differ from it, plus what the sweep gives every trial alike."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: TrainConfig
    resources: Resources
    metric: str
    mode: Literal["max", "min"]
    keep_checkpoints: int = Field(ge=1)
    keep_checkpoints_by: Literal["metric", "recency"] = "metric"
    repeats: int = Field(1, ge=1, description="runs of the config, seeded seed, seed+1, …, in lockstep")
    train_runs: str = Field(description="where multi-worker trials keep their Ray Train runs")
    overrides: dict[str, Any] = Field(default_factory=dict, description="values Optuna sampled, by dotted path")
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict, description="the grid's rows")
    variant: str | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _one_way_to_differ(self) -> TrialSpec:
        if self.variant is not None:
            if self.variant not in self.variants:
                raise ValueError(f"variant {self.variant!r} is not one of the grid's: {', '.join(self.variants)}")
            if self.overrides:
                raise ValueError("a grid trial (variant) has no sampled overrides")
        return self

    @classmethod
    def for_sweep(cls, config: SweepConfig, space: SearchSpace) -> TrialSpec:
        """What every trial of the sweep shares (nothing sampled yet)."""
        settings = config.tune
        return cls(
            train=config.train,
            resources=config.resources,
            metric=settings.metric,
            mode=settings.mode,
            keep_checkpoints=settings.keep_checkpoints,
            keep_checkpoints_by=settings.keep_checkpoints_by,
            repeats=settings.repeats,
            train_runs=f"{config.sweep_dir}/{TRAIN_RUNS_DIR}",
            variants=space.variants,
        )

    def param_space(self, space: SearchSpace) -> dict[str, Any]:
        """Tune's ``param_space``: this spec's constants, and for a grid the ``variant`` × ``seed``
        grid. An Optuna space adds ``overrides`` itself (:meth:`SearchSpace.define_by_run`)."""
        import ray.tune

        constants = self.model_dump(mode="json", exclude=set(_SEARCHED))
        if space.kind == "grid":
            constants |= {
                "variant": ray.tune.grid_search(list(space.variants)),
                "seed": ray.tune.grid_search(space.seeds),
            }
        return constants

    @classmethod
    def from_params(cls, params: Mapping[str, Any], source: str = "trial config") -> TrialSpec:
        """A trial's config as Tune passes it, or as its ``params.json`` holds it; ``source`` names
        where it came from in the error."""
        try:
            return cls.model_validate(params)
        except ValidationError as error:
            raise ValueError(f"{source}: not a specdistill trial ({describe_errors(error)})") from None

    def sampled(self, suggested: Mapping[str, Any]) -> TrialSpec:
        """This spec with the values an Optuna trial suggested through
        :meth:`SearchSpace.define_by_run` (``trial.params``, flat ``overrides/<path>`` names), for
        running Optuna without Tune, which would nest them itself."""
        prefix = f"{OVERRIDES_KEY}/"
        return self.model_copy(update={"overrides": {k.removeprefix(prefix): v for k, v in suggested.items()}})

    @property
    def sweep_dir(self) -> str:
        """The sweep's directory, which holds the trial directories (and ``train_runs``)."""
        return self.train_runs.removesuffix(f"/{TRAIN_RUNS_DIR}")

    def train_config(self) -> TrainConfig:
        """The config this trial trains with: the grid's seed, then the sampled values or the
        variant's overrides (a variant may set its own seed, as teacher ensemble members do)."""
        overrides: dict[str, Any] = {} if self.seed is None else {"seed": self.seed}
        overrides |= self.overrides
        if self.variant is not None:
            overrides |= self.variants[self.variant]
        return with_overrides(self.train, overrides)

    def checkpoint_policy(self) -> dict[str, Any]:
        """Keep the ``keep_checkpoints`` best checkpoints by the sweep's metric, or the latest ones:
        the arguments of both Tune's and Train's ``CheckpointConfig``, so a trial and its Train run
        keep the same."""
        if self.keep_checkpoints_by == "recency":
            return {"num_to_keep": self.keep_checkpoints}
        return {
            "num_to_keep": self.keep_checkpoints,
            "checkpoint_score_attribute": self.metric,
            "checkpoint_score_order": self.mode,
        }

    @property
    def searched(self) -> dict[str, Any]:
        """What sets this trial apart, for tables and plots: ``variant`` and ``seed`` in a grid,
        the sampled values (by dotted path) otherwise."""
        if self.variant is not None:
            return {"variant": self.variant, "seed": self.seed}
        return dict(self.overrides)

    @property
    def label(self) -> str:
        """``kd_weight=0.5, lr=0.003``: the searched values by their last path part, one line."""
        return ", ".join(f"{path.split('.')[-1]}={format_value(v)}" for path, v in self.searched.items())


def format_value(value: Any) -> str:
    """Floats to three significant digits, as sampled values read best; anything else as is."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)
