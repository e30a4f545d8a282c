"""The Tune function trainable every sweep runs: one trial = one training run.

One worker: the loop runs right here in the trial process through a ``TuneSession`` — no nested
trainer, no extra actors, so a trial costs seconds of overhead. Several workers: the trial is the
"Train driver" of the Ray Train V2 pattern and launches a ``TorchTrainer`` whose reports
``TuneReportCallback`` forwards to Tune, so both paths report the same metrics. The Train run is
named after the trial, so a retried trial resumes the same run from its checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.trial_spec import TrialSpec
from training import storage
from training.data.shards import load_manifest
from training.data.stream import clip_dataset
from training.failures import failing_fast
from training.loop import passes_per_run, run_training, samplings, train_loop_per_worker


def specdistill_trial(config: dict[str, Any]) -> None:
    """Tune trainable; ``config`` is a :class:`TrialSpec` as Tune resolved it for this trial."""
    import ray.tune

    spec = TrialSpec.from_params(config)
    # The trial's directory in the sweep's storage (Tune's local one has the same name).
    trial_dir = storage.join(spec.sweep_dir, Path(ray.tune.get_context().get_trial_dir()).name)
    with failing_fast(trial_dir):
        _run_trial(spec, trial_dir)


def _run_trial(spec: TrialSpec, trial_dir: str) -> None:
    import ray
    import ray.tune

    cfg = spec.train_config()
    resources = spec.resources
    manifest = load_manifest(cfg.data.path)
    train_source = manifest.split(cfg.data.path, cfg.data.train_split)
    val_source = manifest.split(cfg.data.path, cfg.data.val_split)
    train_sampling, val_sampling = samplings(cfg)
    payload = cfg.model_dump(mode="json")
    trial_id = ray.tune.get_context().get_trial_id()
    gauge_tags = {"sweep": storage.name(spec.sweep_dir), "trial_id": trial_id, "student": cfg.model}

    def train_dataset():  # -> ray.data.Dataset, built where it is consumed, for the whole run
        return clip_dataset(
            train_source.paths,
            train_sampling,
            passes=passes_per_run(cfg, manifest, resources.workers, spec.repeats),
            seed=cfg.seed,
            decode_batch_size=cfg.data.decode_batch_size,
            rows=train_source.rows,
        )

    if resources.workers == 1:
        from training.devices import resolve_device
        from training.session import TuneSession, in_process_batches, ray_data_batches
        from training.telemetry import TrialGauges

        device = resolve_device(cfg.device, gpu_reserved=bool(ray.get_gpu_ids()))
        if cfg.data.loader == "in_process":
            batches = in_process_batches(train_source, train_sampling, device, seed=cfg.seed)
        else:
            batches = ray_data_batches(train_dataset().iterator(), device)
        session = TuneSession(batches, val_source, val_sampling, device, TrialGauges(**gauge_tags))
        run_training(payload, session, repeats=spec.repeats)
        return

    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    use_gpu = resources.gpus_per_worker > 0
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=payload | {"_gauge_tags": gauge_tags, "_repeats": spec.repeats, "_trial_dir": trial_dir},
        scaling_config=ray.train.ScalingConfig(
            num_workers=resources.workers,
            use_gpu=use_gpu,
            resources_per_worker={"CPU": resources.cpus_per_worker}
            | ({"GPU": resources.gpus_per_worker} if use_gpu else {}),
        ),
        datasets={"train": train_dataset},
        dataset_config=ray.train.DataConfig(datasets_to_split=["train"]),
        run_config=ray.train.RunConfig(
            name=f"train-{gauge_tags['trial_id']}",
            storage_path=spec.train_runs,
            checkpoint_config=ray.train.CheckpointConfig(**spec.checkpoint_policy()),
            failure_config=ray.train.FailureConfig(max_failures=resources.worker_max_failures),
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()
