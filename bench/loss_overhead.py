"""What the paper's two new terms cost: one distillation step with and without them.

A step is the forward of teacher and student plus the student's backward and optimiser step
(``Distiller.step``, frozen teacher). Baseline: CE + logit KD. Measured: CE + KD
+ spectrum loss + parameter-distribution loss (taps stage2–4, all four stages' kernels). Both
configurations alternate in one run on the same batches, and the script prints the median step
time of each (with its middle half: on a busy 2-core box the spread is as large as the effect) and
their ratio. The full objective runs once per ``--spectrum-kernels`` entry (how teacher taps become
spectra: ``fft`` or the compiled ``fused`` pass; on CUDA both by default, ``fused`` being what
``auto`` picks there). Goal: the two terms add ≤ 5%. ``bench/gpu.sh`` runs the GPU configurations.

    python bench/loss_overhead.py                       # demo pair on CPU: tsm_resnet18 → tsm_mobilenet_v2, 8×64×64
    python bench/loss_overhead.py --teacher tsm_resnet50 --size 224 --device cuda   # the GPU figure
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from training.distiller import Distiller
from training.losses import ObjectiveConfig
from training.models import create_model
from training.precision import Precision

BASELINE = "ce+kd"


def configurations(kernels: list[str]) -> dict[str, ObjectiveConfig]:
    """The baseline and the full objective with each spectrum kernel, by row name."""
    full = {
        f"ce+kd+spectrum+parameter ({kernel})": ObjectiveConfig(
            spectrum_weight=1.0, parameter_weight=0.1, spectrum_kernel=kernel
        )
        for kernel in kernels
    }
    return {BASELINE: ObjectiveConfig(spectrum_weight=0.0, parameter_weight=0.0), **full}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="tsm_resnet18")
    parser.add_argument("--student", default="tsm_mobilenet_v2")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per configuration")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--spectrum-kernels", default=None, help="comma-separated fft/fused (default: fft,fused on CUDA, fft elsewhere)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    kernels = (args.spectrum_kernels or ("fft,fused" if device.type == "cuda" else "fft")).split(",")
    configs = configurations(kernels)
    precision = Precision.for_device(device)
    torch.manual_seed(0)
    teacher = create_model(args.teacher, num_classes=10, num_frames=args.frames)
    clips = torch.randn(args.batch_size, 3, args.frames, args.size, args.size, device=device)
    labels = torch.randint(0, 10, (args.batch_size,), device=device)
    runs = {
        name: Distiller(
            create_model(args.student, num_classes=10, num_frames=args.frames),
            [teacher],
            objective=config,
            precision=precision,
        )
        for name, config in configs.items()
    }
    timings: dict[str, list[float]] = {name: [] for name in configs}
    for step in range(args.steps + 2):  # two warm-up rounds, then alternate so drift hits both alike
        for name, distiller in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            distiller.step(clips, labels)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 2:
                timings[name].append(time.perf_counter() - started)
    base = statistics.median(timings[BASELINE])
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.teacher} → {args.student}, batch {args.batch_size}×{args.frames}×{args.size}², {where}")
    print("| objective | median step ms | middle half (p25–p75) |")
    print("|---|---:|---:|")
    for name in configs:
        low, _, high = statistics.quantiles(timings[name], n=4)
        print(f"| {name} | {statistics.median(timings[name]) * 1000:.1f} | {low * 1000:.1f}–{high * 1000:.1f} |")
    for name in list(configs)[1:]:
        full = statistics.median(timings[name])
        print(f"{name}: the two terms add {100 * (full / base - 1):+.1f}% to a step (ratio {full / base:.3f})")


if __name__ == "__main__":
    main()
