"""``specdistill``: the command line. Each subcommand imports its heavy dependencies only when run,
so ``specdistill --help`` answers at once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _cmd_models(args: argparse.Namespace) -> int:
    from training.models import create_model, describe, list_models

    print(f"{'model':<18}{'params (M)':>12}{'GFLOPs/clip':>14}   taps ({args.frames}×{args.size}×{args.size})")
    for name in list_models():
        model = create_model(name, num_classes=10, num_frames=args.frames)
        info = describe(model, height=args.size, width=args.size)
        taps = ", ".join(f"{t}:{i.channels}c/{i.stride}" for t, i in model.taps.items())
        print(f"{name:<18}{info.mparams:>12.2f}{info.gflops_per_clip:>14.3f}   {taps}")
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    if not args.synthetic_smoke:
        print(
            "distill: only --synthetic-smoke is available in this build; use `specdistill sweep` for real data",
            file=sys.stderr,
        )
        return 2
    from orchestrator.smoke import SmokeConfig, run_smoke

    report = run_smoke(
        SmokeConfig(
            size=args.size,
            teacher_steps=args.teacher_steps,
            student_steps=args.student_steps,
            batch_size=args.batch_size,
            seed=args.seed,
        )
    )
    return 0 if report.student_top1 > 0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specdistill", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list the registered models with their size, FLOPs and taps")
    models.add_argument("--frames", type=int, default=8)
    models.add_argument("--size", type=int, default=64)
    models.set_defaults(handler=_cmd_models)

    distill = commands.add_parser("distill", help="distil a student from a teacher")
    distill.add_argument(
        "--synthetic-smoke",
        action="store_true",
        help="train a teacher and distil a student on in-memory generated clips (no Ray)",
    )
    distill.add_argument("--size", type=int, default=64, help="frame height and width in pixels")
    distill.add_argument("--teacher-steps", type=int, default=300)
    distill.add_argument("--student-steps", type=int, default=300)
    distill.add_argument("--batch-size", type=int, default=16)
    distill.add_argument("--seed", type=int, default=0)
    distill.set_defaults(handler=_cmd_distill)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
