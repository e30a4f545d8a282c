"""Does the Ray Data loader keep a GPU busy? ResNet-50 → MobileNetV2 distillation at 8×224², fed
from shards that ``specdistill ingest`` wrote from Kinetics-shaped videos, against the same steps on
a batch that never leaves the device.

  (a) ceiling   ``Distiller.step`` (full objective, frozen teacher, bf16 autocast on CUDA) on one
                batch kept on the device: what the GPU does when it never waits
  (b) fed       the same steps on batches of ``clip_dataset`` → ``ray_data_batches`` (what a trial
                or a Train worker reads), TSN-sampling 8 frames and random-resized-cropping to
                224², decoded by Ray Data tasks on ``--cpus`` CPUs

The videos are synthetic but shaped like Kinetics' (10 s at 30 fps, 340×256, H.264 with long GOPs,
``bench/decode.py``'s panning texture) and go through the default ingest (re-encoded to a short side
of 256 with a keyframe every 8 frames). Printed: clips/s of each, (b)/(a), the share of (b)'s wall
time the loop spent waiting for its next batch, and, on CUDA, the GPU's busy fraction during (b)
(``nvidia-smi``'s ``utilization.gpu`` sampled every 100 ms). (b)/(a) near 1 with little waiting
means the loader keeps up; otherwise the wait share says how much of each step is lost to data.

    python bench/gpu_feed.py                       # on a GPU machine (bench/gpu.sh runs it)
    python bench/gpu_feed.py --device cpu --teacher tsm_resnet18 --size 64 --batch-size 4 --steps 4 --videos 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from decode import make_video  # beside this script (scripts run with bench/ first on sys.path)

from training.data.ingest import ingest
from training.data.shards import load_manifest
from training.data.stream import ClipSampling, clip_dataset
from training.distiller import Distiller
from training.losses import ObjectiveConfig
from training.models import create_model
from training.precision import Precision
from training.session import ray_data_batches

CLASSES = 4
WARMUP_STEPS = 3


def _write_video(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_video(340, 256, seed=seed))


def make_sources(root: Path, videos: int, workers: int) -> Path:
    """``videos`` Kinetics-shaped videos in a class-per-folder tree (``CLASSES`` classes)."""
    paths = [root / f"class{k % CLASSES}" / f"video{k}.mp4" for k in range(videos)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_video, paths, range(videos)))
    return root


class GpuSampler:
    """``nvidia-smi``'s utilization.gpu every 100 ms while running: the share of each interval in
    which a kernel ran, the figure a user watches."""

    def __init__(self, device: torch.device) -> None:
        index = device.index if device.index is not None else torch.cuda.current_device()
        query = ["--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "100"]
        self._process = subprocess.Popen(
            ["nvidia-smi", "-i", str(index), *query],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.samples: list[float] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._process.stdout:
            if line.strip().isdigit():
                self.samples.append(float(line) / 100)

    def stop(self) -> float:
        self._process.terminate()
        self._process.wait(timeout=10)
        self._reader.join(timeout=10)
        return statistics.fmean(self.samples) if self.samples else float("nan")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ceiling(distiller: Distiller, batch, steps: int, device: torch.device) -> float:
    """(a): clips/s of ``steps`` steps on one resident batch."""
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        distiller.step(batch.clips, batch.labels)
    _synchronize(device)
    return steps * len(batch.labels) / (time.perf_counter() - started)


def fed(distiller: Distiller, stream, steps: int, device: torch.device) -> tuple[float, float]:
    """(b): clips/s of ``steps`` steps on the stream's batches, and the share of wall time spent
    waiting for them (a step ends when its metrics reach the host, as in the training loop)."""
    waited, clips = 0.0, 0
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        asked = time.perf_counter()
        batch = next(stream)
        waited += time.perf_counter() - asked
        distiller.step(batch.clips, batch.labels)
        clips += len(batch.labels)
    _synchronize(device)
    elapsed = time.perf_counter() - started
    return clips / elapsed, waited / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--teacher", default="tsm_resnet50")
    parser.add_argument("--student", default="tsm_mobilenet_v2")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=60, help="timed steps of each of (a) and (b)")
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs for Ray Data's decoding")
    args = parser.parse_args()
    device = torch.device(args.device)
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    import ray

    with tempfile.TemporaryDirectory(prefix="bench-gpu-feed-") as tmp:
        started = time.perf_counter()
        sources = make_sources(Path(tmp) / "videos", args.videos, args.cpus)
        made = time.perf_counter()
        ingest(sources, Path(tmp) / "shards", "folder", workers=args.cpus, progress=False)
        ingested = time.perf_counter()
        manifest = load_manifest(Path(tmp) / "shards")
        train_clips = manifest.splits["train"].clips
        needed = (WARMUP_STEPS + args.steps) * args.batch_size
        sampling = ClipSampling(num_frames=args.frames, size=args.size, train=True)

        torch.manual_seed(0)
        teacher = create_model(args.teacher, num_classes=CLASSES, num_frames=args.frames)
        student = create_model(args.student, num_classes=CLASSES, num_frames=args.frames)
        distiller = Distiller(student, [teacher], objective=ObjectiveConfig(), precision=Precision.for_device(device))

        ray.init(num_cpus=args.cpus, num_gpus=0, include_dashboard=False, log_to_driver=False)
        source = manifest.split(Path(tmp) / "shards", "train")
        # Passes enough for every step even with the selection split carved out of the clips.
        passes = needed // max(1, train_clips // 2) + 2
        dataset = clip_dataset(source.paths, sampling, passes=passes, rows=source.rows)
        stream = ray_data_batches(dataset.iterator(), device)(args.batch_size)
        try:
            first = next(stream)
            for _ in range(WARMUP_STEPS):  # kernels chosen, fused spectrum compiled, caches filled
                distiller.step(first.clips, first.labels)
            a = ceiling(distiller, first, args.steps, device)
            sampler = GpuSampler(device) if device.type == "cuda" else None
            b, waiting = fed(distiller, stream, args.steps, device)
            busy = sampler.stop() if sampler else None
        finally:
            stream.close()  # stops the execution before Ray goes
            ray.shutdown()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n{args.teacher} → {args.student}, batch {args.batch_size}×{args.frames}×{args.size}², {where}")
    print(
        f"{args.videos} videos of 340×256 made in {made - started:.0f} s, ingested in {ingested - made:.0f} s "
        f"({train_clips} training clips); Ray Data decoding on {args.cpus} CPUs\n"
    )
    print("| feed | clips/s | waiting for data | GPU busy |")
    print("|---|---:|---:|---:|")
    print(f"| (a) one batch on the device | {a:.1f} | — | — |")
    gpu_busy = "—" if busy is None else f"{100 * busy:.0f} %"
    print(f"| (b) Ray Data loader | {b:.1f} | {100 * waiting:.0f} % | {gpu_busy} |")
    print(f"\nratio (b)/(a): {b / a:.3f} (1.0: the loader keeps the device fed)")


if __name__ == "__main__":
    main()
