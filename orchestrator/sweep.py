"""``specdistill sweep``: Tuner + OptunaSearch (TPE, define-by-run from YAML) or a grid + ASHA.

Layout of ``<storage_path>/<name>/`` (the sweep directory): Tune's experiment state and one
directory per trial (``params.json``, ``result.json``, TensorBoard events, checkpoints);
``train_runs/`` for multi-worker trials' Train checkpoints; ``specdistill-sweep.json``, the
resolved config (all ``--resume`` needs) and the search space it ran.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.cluster import connect, dashboard_hint
from orchestrator.config import SweepConfig, load_sweep_config
from orchestrator.outcome import SweepOutcome, fit
from orchestrator.progress import SweepProgress
from orchestrator.study import StudyRecorder, open_storage, open_study, study_url
from orchestrator.trial import specdistill_trial
from orchestrator.trial_spec import OVERRIDES_KEY, TrialSpec
from search_spaces import SearchSpace
from training import storage
from training.config import describe_errors

SWEEP_FILE = "specdistill-sweep.json"
DRIVER_CPU = 0.05


def trial_resources(config: SweepConfig) -> dict[str, float]:
    """What Tune reserves for a trial: the worker itself when it runs in the trial, else only the
    Train driver (its workers reserve their own resources through the ``TorchTrainer``)."""
    resources = config.resources
    if resources.workers == 1:
        return {"cpu": resources.cpus_per_worker, "gpu": resources.gpus_per_worker}
    return {"cpu": DRIVER_CPU}


def trainable(config: SweepConfig) -> Callable[..., Any]:
    import ray.tune

    return ray.tune.with_resources(specdistill_trial, trial_resources(config))


def build_tuner(config: SweepConfig, space: SearchSpace):  # -> ray.tune.Tuner
    import ray.tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    settings = config.tune
    spec = TrialSpec.for_sweep(config, space)
    url = study_url(config)
    searcher, callbacks = None, [SweepProgress(settings.metric, settings.mode, config.train.optim.epochs)]
    if space.kind == "optuna":
        searcher = OptunaSearch(
            space.define_by_run(OVERRIDES_KEY),
            metric=settings.metric,
            mode=settings.mode,
            seed=settings.seed,
            study_name=config.name,
            storage=open_storage(url) if url else None,
        )
    elif url:
        open_study(url, config.name, settings.mode)  # a bad URL fails here, before any trial runs
        callbacks.append(
            StudyRecorder(url, config.name, settings.metric, settings.mode, list(space.variants), space.seeds)
        )
    if settings.mlflow is not None:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        experiment = settings.mlflow.experiment or config.name
        callbacks.append(MLflowLoggerCallback(settings.mlflow.tracking_uri, experiment_name=experiment))
    scheduler = FIFOScheduler()
    if settings.scheduler == "asha":
        scheduler = ASHAScheduler(
            time_attr="training_iteration",
            max_t=config.train.optim.epochs,
            grace_period=settings.asha.grace_period,
            reduction_factor=settings.asha.reduction_factor,
        )
    return ray.tune.Tuner(
        trainable(config),
        param_space=spec.param_space(space),
        tune_config=ray.tune.TuneConfig(
            metric=settings.metric,
            mode=settings.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=settings.num_samples if space.kind == "optuna" else 1,
            max_concurrent_trials=settings.max_concurrent_trials,
            # A fresh trial actor re-imports torch and the models (seconds per trial on a small
            # node); trials of one sweep share resource shapes, so the actor can run the next one.
            reuse_actors=True,
        ),
        run_config=ray.tune.RunConfig(
            name=config.name,
            storage_path=config.storage_path,
            checkpoint_config=ray.tune.CheckpointConfig(**spec.checkpoint_policy()),
            failure_config=ray.tune.FailureConfig(max_failures=settings.max_failures),
            callbacks=callbacks,
            verbose=0,
        ),
    )


def start_ray(config: SweepConfig, address: str | None = None) -> str | None:
    """Join the cluster to run on, or start a local one sized for the sweep: logical CPUs beyond
    the cores, so that Ray Data's decode tasks always find a slot beside the trials (an idle-CPU
    starvation otherwise hangs the data pipeline). Returns the dashboard's address when this call
    started or joined Ray (see ``orchestrator.cluster.connect``)."""
    per_trial = config.resources.workers * config.resources.cpus_per_worker
    needed = config.tune.max_concurrent_trials * per_trial + 2
    return connect(address, num_cpus=max(os.cpu_count() or 1, math.ceil(needed)))


def run_sweep(
    config_path: str | Path,
    *,
    space: str | None = None,
    address: str | None = None,
    echo: Callable[[str], None] = print,
    overrides: dict[str, Any] | None = None,
) -> SweepOutcome:
    """Validate everything (the YAML with its ``--set`` ``overrides``), then run the sweep."""
    config, search_space = load_sweep_config(config_path, space=space, overrides=overrides)
    return launch(config, search_space, address=address, echo=echo)


def resume_command(sweep_dir: str) -> str:
    return f"specdistill sweep --resume {storage.display(sweep_dir)}"


def launch(
    config: SweepConfig,
    search_space: SearchSpace,
    *,
    address: str | None = None,
    resume: str | None = None,
    echo: Callable[[str], None] = print,
) -> SweepOutcome:
    """Run an already validated sweep (``load_sweep_config`` done); ``resume`` is the command that
    continues it after an interruption (``specdistill sweep --resume DIR`` unless given)."""
    sweep_dir = config.sweep_dir
    if any(name.startswith("experiment_state-") for name in storage.children(sweep_dir)):
        raise FileExistsError(
            f"{storage.display(sweep_dir)} already holds a sweep: continue it with `specdistill sweep --resume "
            f"{storage.display(sweep_dir)}`, or give this one another name"
        )
    url = start_ray(config, address)
    echo(f"sweep {config.name}: {search_space.name} ({search_space.kind}) → {storage.display(sweep_dir)}")
    echo(dashboard_hint(url))
    echo(f"TensorBoard: tensorboard --logdir {storage.display(sweep_dir)}")
    if study_url(config):
        echo(
            "Optuna study (history, importance, parallel coordinates): "
            f"specdistill dashboard {storage.display(sweep_dir)}"
        )
    tuner = build_tuner(config, search_space)
    write_sweep_record(config, search_space)
    return fit(tuner, sweep_dir, resume or resume_command(sweep_dir))


def write_sweep_record(config: SweepConfig, search_space: SearchSpace) -> str:
    """Write ``specdistill-sweep.json`` into the sweep directory: the resolved config that
    ``--resume`` rebuilds the trainable from, and the space, so a caller continuing a kept sweep
    can tell whether it is still the same grid."""
    path = storage.join(config.sweep_dir, SWEEP_FILE)
    record = {"config": config.model_dump(mode="json"), "space": search_space.model_dump()}
    storage.write_text(path, json.dumps(record, indent=2))
    return path


def read_sweep_record(sweep_dir: str | Path) -> dict[str, Any]:
    """The JSON object ``write_sweep_record`` left in ``sweep_dir``, as written (its fields are
    the caller's to validate: a resume wants a ``SweepConfig``, the ablation the raw values)."""
    path = storage.join(sweep_dir, SWEEP_FILE)
    where = storage.display(path)
    try:
        text = storage.read_text(path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{where} not found: {storage.display(sweep_dir)} is not a sweep started by `specdistill sweep`"
        ) from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(record, dict) or "config" not in record:
        raise ValueError(f"{where}: no 'config' object: not a record written by `specdistill sweep`")
    return record


def resume_sweep(
    sweep_dir: str | Path,
    *,
    address: str | None = None,
    resume: str | None = None,
    echo: Callable[[str], None] = print,
) -> SweepOutcome:
    """Continue an interrupted sweep (``Tuner.restore``): finished trials are kept, unfinished and
    errored ones resume from their latest checkpoints, except those that recorded a failure a retry
    would meet again (``failure.json`` in the trial's directory: delete it to try that trial again).
    ``resume``: as for :func:`launch`."""
    import ray.tune

    try:
        config = SweepConfig.model_validate(read_sweep_record(sweep_dir)["config"])
    except ValidationError as error:
        where = storage.display(storage.join(sweep_dir, SWEEP_FILE))
        raise ValueError(f"{where}: in 'config': {describe_errors(error)}") from None
    url = start_ray(config, address)
    echo(f"resuming sweep {config.name} from {storage.display(sweep_dir)}")
    echo(dashboard_hint(url))
    location = str(sweep_dir) if storage.is_uri(sweep_dir) else str(Path(sweep_dir).resolve())
    tuner = ray.tune.Tuner.restore(location, trainable=trainable(config), resume_unfinished=True, resume_errored=True)
    return fit(tuner, location, resume or resume_command(location))
