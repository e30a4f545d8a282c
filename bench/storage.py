"""What object storage costs a sweep: the same trials with every location on local disk and in S3.

  (a) local: the dataset, the teacher and ``storage_path`` in a temporary directory;
  (b) s3: the same files copied into a bucket, and ``storage_path`` there too: shards and the
      teacher are read, checkpoints, results and the experiment state written, over HTTP.

Both are ``specdistill sweep`` runs in this process's Ray (started once, before either): the same
grid of ``--trials`` variants, seeds, epochs and steps, one trial at a time. Prints the wall clock
of each sweep, the mean trial time Tune measured, and the ratio (b)/(a), from this one run.

The bucket is on an S3-compatible server on 127.0.0.1 (moto's, a dev dependency), so there is no
network latency or bandwidth limit: the figure is what the storage path itself costs (the
``pyarrow.fs`` reads and writes, Tune's uploads of checkpoints and state), a lower bound for a real
bucket. ``--bucket s3://NAME`` measures a real one instead, with credentials from the environment.

    python bench/storage.py [--trials 2] [--epochs 4] [--steps 30] [--bucket s3://NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from _s3 import s3_server  # beside this script (scripts run with bench/ first on sys.path)

from orchestrator.cluster import connect
from orchestrator.results import read_sweep
from orchestrator.sweep import run_sweep
from training import storage
from training.checkpoint import ModelCard, export_model
from training.data.embedded import SynthSpec, write_embedded_dataset
from training.data.shards import load_manifest
from training.models import create_model


def inputs(root: Path, clips_per_class: int) -> tuple[Path, Path]:
    """The embedded dataset and an exported (untrained: speed does not depend on the weights) teacher."""
    data = write_embedded_dataset(root / "data", SynthSpec(clips_per_class=clips_per_class, num_frames=8, size=32))
    classes = load_manifest(data).classes
    teacher = create_model("tsm_resnet18", num_classes=len(classes), num_frames=8)
    card = ModelCard(model="tsm_resnet18", model_kwargs={}, classes=classes, num_frames=8, size=32)
    return data, Path(export_model(root / "teacher", teacher, card))


def sweep_yaml(path: Path, name: str, where: str, args: argparse.Namespace) -> Path:
    """One sweep config whose locations all live under ``where`` (a directory or a bucket prefix)."""
    variants = {f"lr{i}": {"optim.lr": 1e-3 * (i + 1)} for i in range(args.trials)}
    (path.parent / "space.yaml").write_text(yaml.safe_dump({"variants": variants, "seeds": [0]}))
    config = {
        "name": name,
        "storage_path": storage.join(where, "runs"),
        "search_space": "space.yaml",
        "train": {
            "stage": "distill",
            "data": {"path": storage.join(where, "data"), "num_frames": 8, "size": 32, "loader": args.loader},
            "model": "tsm_mobilenet_v2",
            "teachers": [storage.join(where, "teacher")],
            "optim": {"epochs": args.epochs, "batch_size": 8, "max_steps_per_epoch": args.steps},
        },
        "tune": {"scheduler": "fifo", "max_concurrent_trials": 1},
        "resources": {"workers": 1, "cpus_per_worker": os.cpu_count() or 1},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def timed_sweep(config: Path) -> tuple[float, float]:
    """Wall clock of the sweep, and the mean of its trials' own ``time_total_s``."""
    started = time.perf_counter()
    outcome = run_sweep(config, echo=lambda _: None).raise_for_status()
    wall = time.perf_counter() - started
    trials = [float(record.results[-1]["time_total_s"]) for record in read_sweep(outcome.sweep_dir)]
    return wall, statistics.fmean(trials)


@contextlib.contextmanager
def bucket(args: argparse.Namespace) -> Iterator[str]:
    """A fresh prefix in ``--bucket``, or a bucket on a local S3 server started for the run."""
    if args.bucket:
        yield storage.join(args.bucket, f"specdistill-bench-{secrets.token_hex(4)}")
        return
    with s3_server() as server:
        os.environ.update(server.env)  # before Ray starts, so its workers reach the server too
        yield server.make_bucket("specdistill-bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=30, help="steps per epoch (the demo's trial size)")
    parser.add_argument("--clips-per-class", type=int, default=40)
    parser.add_argument("--loader", choices=["in_process", "ray_data"], default="in_process")
    parser.add_argument("--bucket", help="a real bucket (s3://NAME) instead of a local S3 server")
    args = parser.parse_args()
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp, bucket(args) as remote:
        local = Path(tmp) / "local"
        data, teacher = inputs(local, args.clips_per_class)
        storage.upload(data, storage.join(remote, "data"))
        storage.upload(teacher, storage.join(remote, "teacher"))
        connect(num_cpus=(os.cpu_count() or 1) + 2)
        (Path(tmp) / "a").mkdir()
        (Path(tmp) / "b").mkdir()
        local_wall, local_trial = timed_sweep(sweep_yaml(Path(tmp) / "a" / "sweep.yaml", "local", str(local), args))
        s3_wall, s3_trial = timed_sweep(sweep_yaml(Path(tmp) / "b" / "sweep.yaml", "s3", remote, args))
    print(f"\nsettings: {vars(args)}; load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print("| storage | sweep wall clock, s | mean trial time, s |")
    print("|---|---:|---:|")
    print(f"| (a) local disk | {local_wall:.1f} | {local_trial:.1f} |")
    print(
        f"| (b) S3 ({'bucket ' + args.bucket if args.bucket else 'local S3 server'}) | {s3_wall:.1f} | {s3_trial:.1f} |"
    )
    print(
        f"\nratio (b)/(a): {s3_wall / local_wall:.3f} for the sweep, {s3_trial / local_trial:.3f} per trial "
        f"({s3_trial - local_trial:+.1f} s a trial)"
    )


if __name__ == "__main__":
    main()
