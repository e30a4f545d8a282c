"""What a Ray Tune trial costs on top of the training it runs.

The same N short distillation trainings (same data, configs, epochs and steps) run

  (a) as a plain Optuna loop in one process: ``study.optimize`` calling the training loop with an
      in-process session (no Ray at all), and
  (b) as ``specdistill sweep``: Tuner + OptunaSearch, one single-worker trial at a time, data
      streamed by Ray Data.

It prints the per-trial overhead ``((b) − (a)) / N`` in seconds and the ratio (b)/(a), both from
this one run. Goal: ≤ 3 s per single-worker trial and (b)/(a) ≤ 1.25 for ~30 s trials.

    python bench/trial_overhead.py [--trials 4] [--epochs 3] [--clips-per-class 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import optuna
import yaml

from orchestrator.config import load_sweep_config
from orchestrator.results import read_sweep
from orchestrator.sweep import run_sweep
from orchestrator.trial_spec import OVERRIDES_KEY, TrialSpec
from training.checkpoint import ModelCard, export_model
from training.data.embedded import SynthSpec, write_embedded_dataset
from training.data.shards import load_manifest
from training.loop import run_training, samplings
from training.models import create_model
from training.session import LocalSession

SPACE = {
    "parameters": {
        "objective.kd_weight": {"type": "float", "low": 0.1, "high": 4.0, "log": True},
        "objective.spectrum_weight": {"type": "float", "low": 0.05, "high": 5.0, "log": True},
        "optim.lr": {"type": "float", "low": 1e-3, "high": 8e-3, "log": True},
    }
}


def prepare(root: Path, clips_per_class: int, epochs: int, trials: int, loader: str) -> Path:
    """Dataset, an (untrained) exported teacher, and the sweep YAML both runs share."""
    data = write_embedded_dataset(root / "data", SynthSpec(clips_per_class=clips_per_class, num_frames=8, size=32))
    classes = load_manifest(data).classes
    teacher = create_model("tsm_resnet18", num_classes=len(classes), num_frames=8)
    card = ModelCard(model="tsm_resnet18", model_kwargs={}, classes=classes, num_frames=8, size=32)
    export_model(root / "teacher", teacher, card)
    (root / "space.yaml").write_text(yaml.safe_dump(SPACE))
    config = {
        "name": "overhead",
        "storage_path": str(root / "runs"),
        "search_space": "space.yaml",
        "train": {
            "stage": "distill",
            "data": {"path": str(data), "num_frames": 8, "size": 32, "loader": loader},
            "model": "tsm_mobilenet_v2",
            "teachers": [str(root / "teacher")],
            "optim": {"epochs": epochs, "batch_size": 16},
        },
        "tune": {"num_samples": trials, "max_concurrent_trials": 1, "scheduler": "fifo", "seed": 0},
        # Both cores, like the plain loop: Ray gives a trial as many torch threads as CPUs.
        "resources": {"workers": 1, "cpus_per_worker": os.cpu_count() or 1},
    }
    path = root / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def plain_optuna(sweep_yaml: Path, trials: int) -> tuple[float, list[float]]:
    """(a): the same trainings in a plain Optuna loop in this process; returns (seconds, per-trial seconds)."""
    config, space = load_sweep_config(sweep_yaml)
    base = TrialSpec.for_sweep(config, space)
    durations: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        started = time.perf_counter()
        space.define_by_run(OVERRIDES_KEY)(trial)
        cfg = base.sampled(trial.params).train_config()
        manifest = load_manifest(cfg.data.path)
        root = Path(cfg.data.path)
        train, val = samplings(cfg)
        session = LocalSession(
            manifest.split(root, cfg.data.train_split),
            manifest.split(root, cfg.data.val_split),
            train,
            val,
            seed=cfg.seed,
        )
        run_training(cfg.model_dump(mode="json"), session)
        durations.append(time.perf_counter() - started)
        return session.history[-1]["val_top1"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return time.perf_counter() - started, durations


def ray_sweep(sweep_yaml: Path) -> tuple[float, float, list[float]]:
    """(b): ``specdistill sweep``; returns (seconds including Ray start, seconds of Tuner.fit, per-trial seconds)."""
    started = time.perf_counter()
    import ray

    from orchestrator.sweep import start_ray

    config, _ = load_sweep_config(sweep_yaml)
    start_ray(config)
    ray_up = time.perf_counter()
    outcome = run_sweep(sweep_yaml).raise_for_status()
    done = time.perf_counter()
    per_trial = [float(record.results[-1]["time_total_s"]) for record in read_sweep(outcome.sweep_dir)]
    ray.shutdown()
    return done - started, done - ray_up, per_trial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--clips-per-class", type=int, default=40)
    parser.add_argument(
        "--loader",
        choices=["in_process", "ray_data"],
        default="in_process",
        help="train.data.loader of the sweep's trials: in_process decodes like the plain loop (the Tune "
        "overhead alone); ray_data adds Ray Data decode tasks sharing the cores",
    )
    args = parser.parse_args()
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    with tempfile.TemporaryDirectory(prefix="overhead") as directory:
        sweep_yaml = prepare(Path(directory), args.clips_per_class, args.epochs, args.trials, args.loader)
        plain_total, plain_trials = plain_optuna(sweep_yaml, args.trials)
        ray_total, fit_total, ray_trials = ray_sweep(sweep_yaml)
    n = args.trials
    overhead = (fit_total - plain_total) / n
    print("\n| run | total s | per trial s (mean) |")
    print("|---|---:|---:|")
    print(f"| (a) plain Optuna loop, one process | {plain_total:.1f} | {plain_total / n:.1f} |")
    print(f"| (b) specdistill sweep (Tuner.fit) | {fit_total:.1f} | {fit_total / n:.1f} |")
    print(f"| (b) including ray.init | {ray_total:.1f} | |")
    print(
        f"\nper-trial training time inside Tune (time_total_s, mean): {sum(ray_trials) / n:.1f} s; "
        f"in the plain loop: {sum(plain_trials) / n:.1f} s"
    )
    print(f"per-trial overhead ((b) − (a)) / N: {overhead:.2f} s   ratio (b)/(a): {fit_total / plain_total:.3f}")


if __name__ == "__main__":
    main()
