"""The sweep YAML: the base training config plus how Tune runs trials.

```yaml
name: demo-distill
storage_path: ../runs            # where the sweep directory goes: relative to this file, or s3://…
search_space: quick              # a shipped name or a YAML path
train: {stage: distill, data: {path: ../data}, model: tsm_mobilenet_v2, teachers: [../teacher]}
tune: {num_samples: 8, max_concurrent_trials: 2, metric: val_top1, mode: max, seed: 0}
resources: {workers: 1, cpus_per_worker: 1, gpus_per_worker: 0}
```

Before Ray starts, ``load_sweep_config`` validates every field (errors name the field and the
file), makes relative paths absolute, and checks the base config and every config the search
space can give against the data, teachers and models they name (``training.preflight``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.overrides import apply_overrides
from search_spaces import SearchSpace, load_space, read_yaml_mapping
from training import storage
from training.config import TrainConfig, describe_errors
from training.preflight import Preflight


class Asha(BaseModel):
    """ASHA on the validation metric, in epochs (one report per epoch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(2.0, gt=1)


class MlflowSettings(BaseModel):
    """Ray's ``MLflowLoggerCallback``: one MLflow run per trial, its params and every report."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str = Field(description="the MLflow tracking server (http://…, databricks, sqlite:///…)")
    experiment: str | None = Field(None, description="the MLflow experiment (default: the sweep's name)")

    def check_installed(self) -> None:
        """Refuse before Ray starts (not when a recorded sweep is read back, e.g. by ``report``)."""
        import importlib.util

        if importlib.util.find_spec("mlflow") is None:
            raise ValueError("tune.mlflow needs MLflow, which is not installed: pip install 'specdistill[mlflow]'")


class TuneSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    num_samples: int = Field(
        8, ge=1, description="trials of an Optuna space (a grid runs each variant once with each of its seeds)"
    )
    max_concurrent_trials: int = Field(1, ge=1)
    metric: str = "val_top1"
    mode: Literal["max", "min"] = "max"
    seed: int = 0
    scheduler: Literal["asha", "fifo"] = "asha"
    asha: Asha = Field(default_factory=Asha)
    max_failures: int = Field(1, ge=0, description="restarts of a crashed trial (it resumes from its checkpoint)")
    repeats: int = Field(
        1,
        ge=1,
        description=(
            "runs per trial, seeded seed, seed+1, …, trained in lockstep in the trial's process: ASHA, "
            "Optuna and best see their mean (and the report its spread), so the seed decides less of the pick"
        ),
    )
    keep_checkpoints: int = Field(
        2,
        ge=1,
        description=(
            "checkpoints each trial keeps; Tune rewrites its whole experiment state (~35 KB a trial) whenever "
            "a trial has written this many since the last rewrite, so 1 costs a sweep of hundreds of short "
            "trials driver time that grows with the trial count (bench/RESULTS.md, 300 trials)"
        ),
    )
    study_storage: str = Field(
        "auto",
        description=(
            "where the sweep is kept as an Optuna study, for optuna-dashboard (`specdistill dashboard`): auto = "
            "optuna.db (SQLite) in a local sweep directory and none for a sweep on a storage URI; an RDB URL "
            "(postgresql://…, mysql://…) that the driver and the dashboard both reach; or none"
        ),
    )
    mlflow: MlflowSettings | None = Field(
        None, description="log every trial's params and metrics to an MLflow tracking server (off when absent)"
    )
    keep_checkpoints_by: Literal["metric", "recency"] = Field(
        "metric",
        description="which checkpoints a trial keeps: its best by the metric (what best exports), or its latest",
    )


class Resources(BaseModel):
    """Per trial: ``workers`` Train workers (1 = run in the trial itself), each with these resources."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int = Field(1, ge=1)
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float = Field(0.0, ge=0)
    worker_max_failures: int = Field(1, ge=0, description="worker-group restarts inside a multi-worker trial")

    @model_validator(mode="after")
    def _gpu_fraction_only_alone(self) -> Resources:
        if self.workers > 1 and 0 < self.gpus_per_worker < 1:
            raise ValueError("gpus_per_worker must be a whole number with several workers (one process per GPU)")
        return self


class SweepConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    storage_path: str = "runs"
    search_space: str = "quick"
    train: TrainConfig
    tune: TuneSettings = Field(default_factory=TuneSettings)
    resources: Resources = Field(default_factory=Resources)

    @model_validator(mode="after")
    def _device_matches_the_reservation(self) -> SweepConfig:
        # Ray hides the GPUs a trial did not reserve, and a reserved one left idle is a waste.
        device, gpus = self.train.device, self.resources.gpus_per_worker
        if device == "cuda" and gpus == 0:
            raise ValueError(
                "train.device is cuda but resources.gpus_per_worker is 0: a trial sees no GPU it did not reserve"
            )
        if device == "cpu" and gpus > 0:
            raise ValueError(
                f"train.device is cpu but resources.gpus_per_worker is {gpus:g}: those GPUs would sit idle"
            )
        return self

    @model_validator(mode="after")
    def _in_process_loader_alone(self) -> SweepConfig:
        if self.train.data.loader == "in_process" and self.resources.workers > 1:
            raise ValueError(
                f"train.data.loader: in_process decodes inside a single-worker trial; resources.workers is "
                f"{self.resources.workers} (use ray_data, which splits the clips between workers)"
            )
        return self

    @property
    def sweep_dir(self) -> str:
        """Where the sweep's trials, state and record live: a local path or a storage URI."""
        return storage.join(self.storage_path, self.name)


def load_sweep_config(
    path: str | Path, *, space: str | None = None, overrides: dict[str, Any] | None = None
) -> tuple[SweepConfig, SearchSpace]:
    """Read, resolve (paths relative to the YAML) and validate a sweep config and its search space,
    then check the base config and every config the space can give against the data, teachers and
    models they name (``Preflight``): whatever would fail in every trial fails here, before Ray.
    ``overrides`` are ``--set`` fields (:mod:`orchestrator.overrides`), applied before validation."""
    config, search_space = read_sweep_config(path, space=space, overrides=overrides)
    preflight = Preflight()
    try:
        preflight.check(config.train)
        search_space.check_against(config.train, preflight.check)
        if config.tune.study_storage not in ("auto", "none"):
            from orchestrator.study import check_url  # SQLAlchemy: only for a database URL

            check_url(config.tune.study_storage)
        if config.tune.mlflow is not None:
            config.tune.mlflow.check_installed()
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
    return config, search_space


def load_teacher_config(path: str | Path, overrides: dict[str, Any] | None = None) -> SweepConfig:
    """``load_sweep_config`` for ``train-teacher``: its trials are the ensemble's members (seeds and
    ``--models``), so the config's search space plays no part and is not checked."""
    config = _read_config(Path(path), overrides)
    try:
        Preflight().check(config.train)
    except (FileNotFoundError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
    return config


def read_sweep_config(
    path: str | Path, *, space: str | None = None, overrides: dict[str, Any] | None = None
) -> tuple[SweepConfig, SearchSpace]:
    """``load_sweep_config`` without the checks against data, teachers and models, for callers that
    point the config at data and teachers they make afterwards (``bench/ablation.py`` reuses the
    demo's recipe in its own directory)."""
    path = Path(path)
    config = _read_config(path, overrides)
    if space is not None:
        config = config.model_copy(update={"search_space": space})
    named = config.search_space
    search_space = load_space(path.parent.resolve() / named if named.endswith((".yaml", ".yml")) else named)
    search_space.check_against(config.train)
    return config, search_space


def _read_config(path: Path, overrides: dict[str, Any] | None = None) -> SweepConfig:
    """The YAML, with ``overrides`` applied, validated, and local paths made absolute against its
    directory."""
    payload = read_yaml_mapping(path, "sweep config")
    source = f"{path} with --set {', '.join(overrides)}" if overrides else str(path)
    if overrides:
        payload = apply_overrides(payload, overrides, Path.cwd())
    try:
        config = SweepConfig.model_validate(payload)
    except ValidationError as error:
        raise ValueError(f"{source}: {describe_errors(error)}") from None
    base = path.parent.resolve()
    where = storage.resolve(config.storage_path, base)
    tune = config.tune
    if tune.study_storage.startswith("sqlite:///") and not tune.study_storage.startswith("sqlite:////"):
        database = storage.resolve(tune.study_storage.removeprefix("sqlite:///"), base)  # like every path here
        tune = tune.model_copy(update={"study_storage": f"sqlite:///{database}"})
    return config.model_copy(update={"train": config.train.resolved(base), "storage_path": where, "tune": tune})
