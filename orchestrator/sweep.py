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

from orchestrator.config import SweepConfig, load_sweep_config
from orchestrator.progress import SweepProgress
from orchestrator.trial import specdistill_trial
from orchestrator.trial_spec import OVERRIDES_KEY, TrialSpec
from search_spaces import SearchSpace
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
    searcher = None
    if space.kind == "optuna":
        searcher = OptunaSearch(
            space.define_by_run(OVERRIDES_KEY), metric=settings.metric, mode=settings.mode, seed=settings.seed
        )
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
            callbacks=[SweepProgress(settings.metric, config.train.optim.epochs)],
            verbose=0,
        ),
    )


def start_ray(config: SweepConfig) -> str | None:
    """Join the cluster in ``RAY_ADDRESS`` if set, else start a local one sized for the sweep:
    logical CPUs beyond the cores so that Ray Data's decode tasks always find a slot beside the
    trials (an idle-CPU starvation otherwise hangs the data pipeline). The dashboard stays on —
    Train V2 needs it to release stopped trials' placement groups — with Ray's token auth.
    Returns the dashboard's address when this call started or joined Ray."""
    import ray

    if ray.is_initialized():
        return None
    if os.environ.get("RAY_ADDRESS"):
        return ray.init().dashboard_url
    per_trial = config.resources.workers * config.resources.cpus_per_worker
    needed = config.tune.max_concurrent_trials * per_trial + 2
    context = ray.init(
        num_cpus=max(os.cpu_count() or 1, math.ceil(needed)),
        include_dashboard=True,
        log_to_driver=False,
    )
    return context.dashboard_url


def dashboard_hint(url: str | None) -> str:
    where = f"http://{url}" if url else "the cluster's dashboard"
    token = os.environ.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token")
    if os.environ.get("RAY_AUTH_TOKEN"):
        token = "$RAY_AUTH_TOKEN"
    return (
        f"Ray dashboard: {where} (token auth is on: the token is in {token}); "
        "trial gauges are the specdistill_* series in its Metrics view"
    )


def run_sweep(config_path: str | Path, *, space: str | None = None, echo: Callable[[str], None] = print):
    """Validate everything, then run the sweep; returns the ``ResultGrid``."""
    config, search_space = load_sweep_config(config_path, space=space)
    return launch(config, search_space, echo=echo)


def launch(config: SweepConfig, search_space: SearchSpace, *, echo: Callable[[str], None] = print):
    """Run an already validated sweep (``search_space.check_against(config.train)`` done)."""
    if "://" not in config.sweep_dir and any(Path(config.sweep_dir).glob("experiment_state-*.json")):
        raise FileExistsError(
            f"{config.sweep_dir} already holds a sweep: continue it with `specdistill sweep --resume "
            f"{config.sweep_dir}`, or give this one another name"
        )
    url = start_ray(config)
    sweep_dir = config.sweep_dir
    echo(f"sweep {config.name}: {search_space.name} ({search_space.kind}) → {sweep_dir}")
    echo(dashboard_hint(url))
    echo(f"TensorBoard: tensorboard --logdir {sweep_dir}")
    tuner = build_tuner(config, search_space)
    if "://" not in sweep_dir:
        write_sweep_record(config, search_space)
    return tuner.fit()


def write_sweep_record(config: SweepConfig, search_space: SearchSpace) -> Path:
    """Write ``specdistill-sweep.json`` into the sweep directory: the resolved config that
    ``--resume`` rebuilds the trainable from, and the space, so a caller continuing a kept sweep
    can tell whether it is still the same grid."""
    path = Path(config.sweep_dir, SWEEP_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"config": config.model_dump(mode="json"), "space": search_space.model_dump()}
    path.write_text(json.dumps(record, indent=2))
    return path


def read_sweep_record(sweep_dir: str | Path) -> dict[str, Any]:
    """The JSON object ``write_sweep_record`` left in ``sweep_dir``, as written (its fields are
    the caller's to validate: a resume wants a ``SweepConfig``, the ablation the raw values)."""
    path = Path(sweep_dir) / SWEEP_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {sweep_dir} is not a sweep started by `specdistill sweep`")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(record, dict) or "config" not in record:
        raise ValueError(f"{path}: no 'config' object: not a record written by `specdistill sweep`")
    return record


def resume_sweep(sweep_dir: str | Path, *, echo: Callable[[str], None] = print):
    """Continue an interrupted sweep (``Tuner.restore``): finished trials are kept, unfinished and
    errored ones resume from their latest checkpoints."""
    import ray.tune

    try:
        config = SweepConfig.model_validate(read_sweep_record(sweep_dir)["config"])
    except ValidationError as error:
        raise ValueError(f"{Path(sweep_dir) / SWEEP_FILE}: in 'config': {describe_errors(error)}") from None
    url = start_ray(config)
    echo(f"resuming sweep {config.name} from {sweep_dir}")
    echo(dashboard_hint(url))
    tuner = ray.tune.Tuner.restore(
        str(Path(sweep_dir).resolve()), trainable=trainable(config), resume_unfinished=True, resume_errored=True
    )
    return tuner.fit()
