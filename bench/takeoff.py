"""When does a student leave chance on the embedded motion clips, and what moves that step?

A fixed-budget sweep ranks luck when students leave chance at a seed-dependent step: one that
leaves late ends low because the one-cycle rate has annealed. This bench isolates the question from
Ray, Parquet and decoding: clips rendered in memory (the embedded dataset's generator), a
cross-entropy-only run of ``--model`` through the same ``Distiller`` the sweeps use, held-out top-1
every ``--eval-every`` steps. Every combination of the listed ``--shift-div``, ``--lr``,
``--batch-size`` and ``--warmup-fraction`` values runs once per seed, so one option's effect is read
on the same seeds. Two further levers apply to every run: ``--zero-init-residual`` starts each
residual branch's last BatchNorm at zero (the block begins as the identity), and ``--precise-bn N``
recomputes the BatchNorm statistics over N training batches before each evaluation, so an early
evaluation reads the network and not running averages left behind by fast-moving weights (its
batches come from a generator of their own, so the training run is the one it would have been).

Prints each run's curve, then per combination the final top-1 as mean ± std over seeds and the
step at which each seed first reached three times chance.

    python bench/takeoff.py                                   # shift 8 against 3, 2 seeds, ~5 min
    python bench/takeoff.py --shift-div 3 --batch-size 16 32 --seeds 0 1 2 3
    python bench/takeoff.py --shift-div 3 --warmup-fraction 0.15 0.05 --precise-bn 10
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.models.resnet import BasicBlock, Bottleneck

from training.config import OptimConfig
from training.data.embedded import MOTION_CLASSES, render_dataset
from training.data.normalise import clips_to_tensor
from training.distiller import Distiller
from training.metrics import topk_correct
from training.models import create_model

CHANCE = 1 / len(MOTION_CLASSES)


class Recipe(NamedTuple):
    shift_div: int
    lr: float
    batch: int
    warmup_fraction: float

    def label(self) -> str:
        return f"shift_div {self.shift_div}, lr {self.lr:g}, batch {self.batch}, warm-up {self.warmup_fraction:g}"


def held_out_top1(model: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(
            topk_correct(model(clips[s : s + 100]).logits, labels[s : s + 100], 1) for s in range(0, len(clips), 100)
        )
    model.train()
    return correct / len(clips)


def zero_init_residual(model: torch.nn.Module) -> None:
    """Zero the last BatchNorm scale of every residual branch, so each block starts as the identity."""
    for block in model.modules():
        if isinstance(block, InvertedResidual) and block.use_res_connect:
            torch.nn.init.zeros_(block.conv[-1].weight)
        elif isinstance(block, BasicBlock):
            torch.nn.init.zeros_(block.bn2.weight)
        elif isinstance(block, Bottleneck):
            torch.nn.init.zeros_(block.bn3.weight)


def precise_bn(model: torch.nn.Module, batches: Iterator[torch.Tensor]) -> None:
    """Replace every BatchNorm's running statistics by their plain average over ``batches``."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average
    with torch.no_grad():
        for clips in batches:
            model(clips)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


def curve(args: argparse.Namespace, data: tuple[torch.Tensor, ...], recipe: Recipe, seed: int) -> list[float]:
    """Held-out top-1 after every ``eval_every`` steps of one seeded run."""
    train_x, train_y, test_x, test_y = data
    torch.manual_seed(seed)
    model = create_model(
        args.model, num_classes=len(MOTION_CLASSES), num_frames=args.frames, shift_div=recipe.shift_div
    )
    if args.zero_init_residual:
        zero_init_residual(model)
    optim = OptimConfig(lr=recipe.lr, warmup_fraction=recipe.warmup_fraction)
    distiller = Distiller(model, optim=optim, total_steps=args.steps)
    order = torch.Generator().manual_seed(seed)
    statistics_order = torch.Generator().manual_seed(seed + 1000)  # leaves the training order untouched
    points = []
    for step in range(1, args.steps + 1):
        picked = torch.randint(0, len(train_x), (recipe.batch,), generator=order)
        distiller.step(train_x[picked], train_y[picked])
        if step % args.eval_every == 0:
            if args.precise_bn:
                batches = (
                    train_x[torch.randint(0, len(train_x), (recipe.batch,), generator=statistics_order)]
                    for _ in range(args.precise_bn)
                )
                precise_bn(model, batches)
            points.append(held_out_top1(model, test_x, test_y))
    return points


def take_off(points: list[float], every: int) -> str:
    return next((str((i + 1) * every) for i, top1 in enumerate(points) if top1 >= 3 * CHANCE), "never")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tsm_mobilenet_v2")
    parser.add_argument(
        "--shift-div", type=int, nargs="+", default=[8, 3], help="TSM: 1/shift_div of channels each way"
    )
    parser.add_argument("--lr", type=float, nargs="+", default=[OptimConfig().lr])
    parser.add_argument("--batch-size", type=int, nargs="+", default=[16])
    parser.add_argument("--warmup-fraction", type=float, nargs="+", default=[OptimConfig().warmup_fraction])
    parser.add_argument("--zero-init-residual", action="store_true")
    parser.add_argument("--precise-bn", type=int, default=0, metavar="N", help="batches per recomputation (0: off)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--train-clips", type=int, default=1000)
    parser.add_argument("--test-clips", type=int, default=300)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)

    train = render_dataset(args.train_clips, num_frames=args.frames, size=args.size, seed=0)
    test = render_dataset(args.test_clips, num_frames=args.frames, size=args.size, seed=1)
    data = (clips_to_tensor(train[0]), torch.from_numpy(train[1]), clips_to_tensor(test[0]), torch.from_numpy(test[1]))
    print(f"command: python bench/takeoff.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"{args.model}, CE only, held-out top-1 every {args.eval_every} steps (chance {CHANCE:.3f})\n")

    summary = []
    for recipe in map(Recipe._make, itertools.product(args.shift_div, args.lr, args.batch_size, args.warmup_fraction)):
        label = recipe.label()
        finals, steps = [], []
        for seed in args.seeds:
            start = time.perf_counter()
            points = curve(args, data, recipe, seed)
            finals.append(points[-1])
            steps.append(take_off(points, args.eval_every))
            shown = " ".join(f"{p:.3f}" for p in points)
            print(f"{label}, seed {seed}: {shown}  ({time.perf_counter() - start:.0f} s)", flush=True)
        spread = statistics.stdev(finals) if len(finals) > 1 else 0.0
        per_seed = ", ".join(f"{f:.3f}" for f in finals)
        summary.append(f"| {label} | {statistics.fmean(finals):.3f} ± {spread:.3f} | {per_seed} | {', '.join(steps)} |")

    print(f"\n| recipe | top-1 at step {args.steps}, mean ± std | per seed | step at 3× chance per seed |")
    print("|---|---:|---|---|")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
