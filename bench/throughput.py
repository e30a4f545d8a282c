"""Distillation throughput of the Ray Train loop against a plain PyTorch loop on the same batches.

Both train the demo pair (``tsm_resnet18`` teacher, frozen → ``tsm_mobilenet_v2`` student) with
the full objective (cross-entropy + KD + spectrum + parameter distribution) on the same clips,
decoded once up front so that video decoding is out of the comparison:

  (a) a plain PyTorch loop in this process: the clips as a list of uint8 batches → ``ClipCollate``
      → ``Distiller.step``, the distillation the loop builds from the same config;
  (b) ``TorchTrainer(train_loop_per_worker)`` with one worker of ``--cpus`` CPUs, reading the same
      clips from a materialised Ray Dataset through ``get_dataset_shard`` — the product's loop:
      per-epoch evaluation, reports and checkpoints included, clips/s as the loop reports it
      (the training phase of each epoch).

Both run ``--epochs`` epochs of ``--steps`` steps; clips/s is the median over the epochs after the
first (warm-up). Prints the ratio (b)/(a) (goal: ≥ 0.9) and the peak resident memory of
the process that trained in each case (for (b), the Train worker: the memory a trial needs).

    python bench/throughput.py [--epochs 4] [--steps 25] [--batch-size 16] [--cpus 2]
    python bench/throughput.py --device cuda --teacher tsm_resnet50 --size 224 --batch-size 32   # one GPU
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from training.checkpoint import ModelCard, export_model
from training.config import TrainConfig
from training.data.embedded import SynthSpec, write_embedded_dataset
from training.data.shards import load_manifest
from training.data.stream import COLUMNS, ClipCollate, decode_batch
from training.distiller import Distiller
from training.loop import samplings
from training.models import create_model
from training.precision import Precision

NUM_FRAMES = 8


def prepare(root: Path, clips_per_class: int, args: argparse.Namespace) -> dict:
    """Dataset, an exported (untrained: speed does not depend on the weights) teacher, and the config."""
    spec = SynthSpec(clips_per_class=clips_per_class, num_frames=NUM_FRAMES, size=args.size)
    data = write_embedded_dataset(root / "data", spec, workers=os.cpu_count() or 1)
    classes = load_manifest(data).classes
    teacher = create_model(args.teacher, num_classes=len(classes), num_frames=NUM_FRAMES)
    export_model(
        root / "teacher",
        teacher,
        ModelCard(model=args.teacher, model_kwargs={}, classes=classes, num_frames=NUM_FRAMES, size=args.size),
    )
    config = TrainConfig.model_validate(
        {
            "stage": "distill",
            "device": args.device,
            "data": {"path": str(data), "num_frames": NUM_FRAMES, "size": args.size, "min_scale": 1.0},
            "model": args.student,
            "teachers": [str(root / "teacher")],
            "optim": {"epochs": args.epochs, "batch_size": args.batch_size, "max_steps_per_epoch": args.steps},
        }
    )
    return config.model_dump(mode="json")


def decoded_clips(config: TrainConfig) -> dict[str, np.ndarray]:
    """Every training clip, decoded and sampled once: columns ``clip`` (uint8), ``label``, ``ok``."""
    manifest = load_manifest(config.data.path)
    table = pq.read_table(manifest.shard_paths(Path(config.data.path), config.data.train_split), columns=COLUMNS)
    columns = {name: table.column(name).to_numpy(zero_copy_only=False) for name in COLUMNS}
    return decode_batch(columns, samplings(config)[0])


def plain_loop(config: TrainConfig, clips: dict[str, np.ndarray]) -> list[float]:
    """(a): clips/s of each epoch's steps, in this process, no Ray."""
    torch.manual_seed(config.seed)
    optim = config.optim
    steps, batch_size = optim.max_steps_per_epoch, optim.batch_size
    classes = load_manifest(config.data.path).classes
    device = torch.device(config.device)
    distiller = Distiller.from_config(
        config, classes, total_steps=steps * optim.epochs, precision=Precision.for_device(device)
    )
    collate = ClipCollate(device)
    rates = []
    for _ in range(config.optim.epochs):
        # Whole batches on every step, as the Ray loader gives them, however few the clips.
        count = len(clips["label"])
        order = np.concatenate([np.random.permutation(count) for _ in range(-(-steps * batch_size // count))])
        started = time.perf_counter()
        for step in range(steps):
            rows = order[step * batch_size : (step + 1) * batch_size]
            batch = collate({name: values[rows] for name, values in clips.items()})
            distiller.step(batch.clips, batch.labels)
        rates.append(steps * batch_size / (time.perf_counter() - started))
    return rates


def ray_train_loop(config: dict, clips: dict[str, np.ndarray], cpus: int, storage: Path) -> tuple[list[float], float]:
    """(b): the loop's reported clips/s per epoch and the Train worker's peak RSS in MiB (with
    ``device: cuda`` in ``config``, the worker holds one GPU)."""
    import ray
    import ray.data
    import ray.train
    from ray.train.torch import TorchTrainer

    from training.loop import train_loop_per_worker

    # One logical CPU more than the worker takes, for Ray Data's split coordinator: it only hands
    # out block references, and without a free slot the worker would wait for it forever.
    gpus = int(config["device"] == "cuda")
    ray.init(address="local", num_cpus=cpus + 1, num_gpus=gpus, include_dashboard=False, log_to_driver=False)
    try:
        rows = [{name: values[i] for name, values in clips.items()} for i in range(len(clips["label"]))]
        dataset = ray.data.from_items(rows).materialize()
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config=config,
            scaling_config=ray.train.ScalingConfig(
                num_workers=1, use_gpu=bool(gpus), resources_per_worker={"CPU": cpus, "GPU": gpus}
            ),
            datasets={"train": dataset},
            run_config=ray.train.RunConfig(name="throughput", storage_path=str(storage)),
        )
        result = trainer.fit()
        history = result.metrics_dataframe
        return history["clips_per_s"].tolist(), float(history["peak_rss_mb"].max())
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4, help="the first is warm-up and not counted")
    parser.add_argument("--steps", type=int, default=25, help="steps per epoch")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the Train worker; torch threads of (a)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--teacher", default="tsm_resnet18")
    parser.add_argument("--student", default="tsm_mobilenet_v2")
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is warm-up")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    torch.set_num_threads(args.cpus)
    clips_per_class = -(-args.steps * args.batch_size // 8)  # 80 % of the clips are training clips
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        payload = prepare(Path(tmp), clips_per_class, args)
        config = TrainConfig.model_validate(payload)
        clips = decoded_clips(config)
        plain = plain_loop(config, clips)
        plain_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ray_rates, ray_peak = ray_train_loop(payload, clips, args.cpus, Path(tmp) / "runs")
    a, b = statistics.median(plain[1:]), statistics.median(ray_rates[1:])
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.cpus} threads"
    print(f"\nsettings: {vars(args)}; {len(clips['label'])} training clips of {NUM_FRAMES}×{args.size}², {where}")
    print(f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print("| loop | clips/s per epoch | clips/s (median after warm-up) | peak RSS, MiB |")
    print("|---|---|---:|---:|")
    print(f"| (a) plain PyTorch, this process | {', '.join(f'{r:.0f}' for r in plain)} | {a:.1f} | {plain_peak:.0f} |")
    print(f"| (b) Ray Train loop, 1 worker | {', '.join(f'{r:.0f}' for r in ray_rates)} | {b:.1f} | {ray_peak:.0f} |")
    print(f"\nratio (b)/(a): {b / a:.3f} (goal ≥ 0.9)")


if __name__ == "__main__":
    main()
