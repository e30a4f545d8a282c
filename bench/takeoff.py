"""When does a student leave chance on the embedded motion clips, and what moves that step?

A fixed-budget sweep ranks luck when students leave chance at a seed-dependent step: one that
leaves late ends low because the one-cycle rate has annealed. This bench isolates the question from
Ray, Parquet and decoding: clips rendered in memory (the embedded dataset's generator), a
cross-entropy-only run of ``--model`` through the same ``Distiller`` the sweeps use, held-out top-1
every ``--eval-every`` steps. Every combination of the listed ``--shift-div``, ``--lr`` and
``--batch-size`` values runs once per seed, so one option's effect is read on the same seeds.

Prints each run's curve, then per combination the final top-1 as mean ± std over seeds and the
step at which each seed first reached three times chance.

    python bench/takeoff.py                                   # shift 8 against 3, 2 seeds, ~5 min
    python bench/takeoff.py --shift-div 3 --batch-size 16 32 --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time

import torch

from training.config import OptimConfig
from training.data.embedded import MOTION_CLASSES, render_dataset
from training.data.normalise import clips_to_tensor
from training.distiller import Distiller
from training.metrics import topk_correct
from training.models import create_model

CHANCE = 1 / len(MOTION_CLASSES)


def held_out_top1(model: torch.nn.Module, clips: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(
            topk_correct(model(clips[s : s + 100]).logits, labels[s : s + 100], 1) for s in range(0, len(clips), 100)
        )
    model.train()
    return correct / len(clips)


def curve(
    args: argparse.Namespace, data: tuple[torch.Tensor, ...], shift_div: int, lr: float, batch: int, seed: int
) -> list[float]:
    """Held-out top-1 after every ``eval_every`` steps of one seeded run."""
    train_x, train_y, test_x, test_y = data
    torch.manual_seed(seed)
    model = create_model(args.model, num_classes=len(MOTION_CLASSES), num_frames=args.frames, shift_div=shift_div)
    distiller = Distiller(model, optim=OptimConfig(lr=lr), total_steps=args.steps)
    order = torch.Generator().manual_seed(seed)
    points = []
    for step in range(1, args.steps + 1):
        picked = torch.randint(0, len(train_x), (batch,), generator=order)
        distiller.step(train_x[picked], train_y[picked])
        if step % args.eval_every == 0:
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
    for shift_div, lr, batch in itertools.product(args.shift_div, args.lr, args.batch_size):
        label = f"shift_div {shift_div}, lr {lr:g}, batch {batch}"
        finals, steps = [], []
        for seed in args.seeds:
            start = time.perf_counter()
            points = curve(args, data, shift_div, lr, batch, seed)
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
