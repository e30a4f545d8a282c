"""specdistill: distil small, fast video action-recognition students from large teachers, with Ray.

The command line. Each subcommand imports its heavy dependencies only when run,
so ``specdistill --help`` answers at once."""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.config import SweepConfig
    from orchestrator.outcome import SweepOutcome
    from orchestrator.selection import RankedTrial
    from search_spaces import SearchSpace


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
    from training.smoke import SmokeConfig, run_smoke

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


def _cmd_synth(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from training.data.embedded import SynthSpec, write_embedded_dataset

    spec = SynthSpec(
        clips_per_class=args.clips_per_class,
        num_frames=args.frames,
        size=args.size,
        seed=args.seed,
        test_fraction=args.test_fraction,
        tune_fraction=args.tune_fraction,
    )
    with tqdm(total=len(spec.plan()), desc="synth", unit="clip", disable=None) as bar:
        out = write_embedded_dataset(
            args.out, spec, workers=args.workers, shard_bytes=args.shard_mb * 2**20, progress=bar.update
        )
    print(f"wrote {len(spec.plan())} clips to {out} (dataset.json lists the splits)")
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from training.data.ingest import Reencode, ingest
    from training.data.probe_pool import ProbeLimits

    summary = ingest(
        args.source,
        args.out,
        args.format,
        workers=args.workers,
        shard_bytes=args.shard_mb * 2**20,
        test_fraction=args.test_fraction,
        tune_fraction=args.tune_fraction,
        seed=args.seed,
        limits=ProbeLimits(memory_mb=args.probe_memory_mb, cpu_s=args.probe_cpu_s, max_clip_mb=args.max_clip_mb),
        reencode=Reencode(short_side=args.short_side, gop=args.gop) if args.short_side else None,
    )
    if summary.rejected:  # a scheduler or script can tell a clean ingest from one that lost clips
        print(summary.message, file=sys.stderr)
        return INGEST_REJECTED
    print(summary.message)
    return 0


def _cmd_carve(args: argparse.Namespace) -> int:
    from training.data.shards import carve_selection_split

    manifest = carve_selection_split(args.data, fraction=args.fraction, seed=args.seed)
    counts = ", ".join(f"{name} {info.clips}" for name, info in sorted(manifest.splits.items()))
    print(f"{args.data}: {counts} clips (dataset.json rewritten; no shard was)")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from orchestrator.config import load_sweep_config
    from orchestrator.overrides import parse_overrides
    from orchestrator.sweep import launch, resume_sweep

    if args.resume:
        if args.overrides or args.dry_run:
            raise ValueError("--resume continues a sweep with the config it started with: no --set or --dry-run")
        outcome = resume_sweep(args.resume, address=args.address)
    elif args.config:
        space = str(Path(args.space).resolve()) if args.space and args.space.endswith((".yaml", ".yml")) else args.space
        config, search_space = load_sweep_config(args.config, space=space, overrides=parse_overrides(args.overrides))
        if args.dry_run:
            print(_plan(config, search_space))
            return 0
        outcome = launch(config, search_space, address=args.address)
    else:
        print("sweep: give CONFIG.yaml, or --resume SWEEP_DIR", file=sys.stderr)
        return 2
    return _finish(outcome, f"next: specdistill best {outcome.sweep_dir} --export DIR")


def _plan(config: SweepConfig, space: SearchSpace | None, members: int = 0) -> str:
    """What ``--dry-run`` prints: the resolved config, the search space and the trials it would start."""
    import yaml

    from training import storage

    settings = config.tune
    runs = f", {settings.repeats} seeded runs each" if settings.repeats > 1 else ""
    if space is None:  # a teacher ensemble: its members are the trials
        trials = f"{members} trial{'s' if members > 1 else ''} (the teacher's members){runs}"
        searched = ""
    else:
        count = space.trial_count(settings.num_samples)
        trials = f"{count} trial{'s' if count > 1 else ''}{runs}, at most {settings.max_concurrent_trials} at a time"
        listing = space.model_dump(mode="json", exclude_defaults=True, exclude={"name", "description"})
        searched = f"search space {space.name} ({space.kind}):\n{_indented(yaml.safe_dump(listing, sort_keys=False))}"
    resolved = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    return (
        f"sweep {config.name} → {storage.display(config.sweep_dir)}: {trials} (dry run: nothing started)\n"
        f"{searched}resolved config:\n{_indented(resolved)}"
    ).rstrip()


def _indented(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def _finish(outcome: SweepOutcome, next_step: str) -> int:
    """Print how the sweep ended (on stderr unless all went well) and return its exit status."""
    stream = sys.stdout if outcome.exit_code == 0 else sys.stderr
    for line in outcome.lines():
        print(line, file=stream)
    if outcome.exit_code == 0:
        print(next_step)
    return outcome.exit_code


def _cmd_train_teacher(args: argparse.Namespace) -> int:
    from orchestrator.config import load_teacher_config
    from orchestrator.overrides import parse_overrides
    from orchestrator.teachers import train_teachers

    overrides = parse_overrides(args.overrides)
    if args.resume and (args.dry_run or set(overrides) - set(LOCATING)):
        raise ValueError(
            "--resume continues the teachers with the config they started with: no --dry-run, and --set only "
            f"for {' and '.join(LOCATING)} (which say where the sweep is)"
        )
    config = load_teacher_config(args.config, overrides)
    if args.dry_run:
        print(_plan(config, None, members=args.ensemble))
        return 0
    models = [m for m in (args.models or "").split(",") if m]
    again = [args.config, "--export", args.export, "--ensemble", str(args.ensemble)]
    again += ["--models", args.models] if args.models else []
    again += [part for item in args.overrides if item.split("=")[0] in LOCATING for part in ("--set", item)]
    outcome, exported = train_teachers(
        config,
        args.export,
        members=args.ensemble,
        models=models,
        resume=args.resume,
        resume_hint=shlex.join(["specdistill", "train-teacher", *map(str, again), "--resume"]),
        address=args.address,
    )
    if outcome.exit_code != 0:
        return _finish(outcome, "")
    print("teacher" + ("s" if len(exported) > 1 else "") + " exported: " + ", ".join(exported))
    if len(exported) > 1:
        print(f"name {args.export} in a distillation config's train.teachers to distil from the ensemble")
    return 0


def _cmd_best(args: argparse.Namespace) -> int:
    from orchestrator.pareto import Budget, admitted, pareto_front
    from orchestrator.selection import export_best, rank_trials

    budget = Budget(max_latency_ms=args.max_latency_ms, max_gflops=args.max_gflops)
    ranked = admitted(rank_trials(args.sweep_dir, args.metric, args.mode), budget)
    if budget.limits:
        print(f"within the budget ({budget}): {len(ranked)} trial{'' if len(ranked) == 1 else 's'}")
    _print_trials(ranked[: max(args.top_k, 10)], args.metric)
    for trial in ranked[: max(args.top_k, 10)]:
        if trial.record.failure:
            print(f"note: trial {trial.record.trial_id} failed after its best result: {trial.record.failure}")
    if args.pareto:
        front = pareto_front(ranked, args.metric, args.mode)
        print(f"\nPareto front, {args.metric} against latency at batch 1 (no other trial is as good and as fast):")
        _print_trials(front, args.metric)
    if args.export:
        exported = export_best(
            args.sweep_dir,
            args.export,
            metric=args.metric,
            mode=args.mode,
            top_k=args.top_k,
            repeats_as_ensemble=args.repeats_as_ensemble,
            portable=not args.no_portable,
            budget=budget,
        )
        for path in exported:
            print(f"exported {path}")
    return 0


def _print_trials(trials: Sequence[RankedTrial], metric: str) -> None:
    """One line per trial: its chosen result, what its model costs, and its config."""
    print(f"{'rank':<6}{'trial':<14}{metric:>10}{'epoch':>7}{'ms/clip':>9}{'GFLOPs':>8}  config")
    for index, trial in enumerate(trials, start=1):
        result = trial.result
        latency, gflops = result.get("latency_ms_batch1"), result.get("gflops_per_clip")
        costs = f"{_figure(latency, 9, 2)}{_figure(gflops, 8, 3)}"
        print(
            f"{index:<6}{trial.record.trial_id:<14}{result[metric]:>10.4f}{result.get('epoch', '?'):>7}{costs}  "
            f"{trial.record.spec.label}"
        )


def _figure(value: object, width: int, decimals: int) -> str:
    return f"{value:>{width}.{decimals}f}" if isinstance(value, int | float) else f"{'—':>{width}}"


def _cmd_export(args: argparse.Namespace) -> int:
    from training.checkpoint import export_model, exported_members, load_card, load_exported
    from training.portable import reference_clips

    for member in exported_members(args.model):
        model, card = load_exported(member)
        data = args.data or card.dataset
        if data is None:
            raise ValueError(f"{member}: its card names no dataset; say which to check the conversions on (--data)")
        clips = reference_clips(data, num_frames=card.num_frames, size=card.size)
        export_model(member, model, card, check_clips=clips)
        files = load_card(member).files
        for name, key in (("ONNX", "onnx"), ("torch.export", "torch_export")):
            difference = files[key]["max_abs_diff"]
            print(f"{member}/{files[key]['file']}: {name}, max |Δ logits| {difference:.1e} on {len(clips)} clips")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from orchestrator.prediction import predict_files

    predictions, errors = predict_files(args.model, args.videos, top=args.top, clips=args.clips)
    for prediction in predictions:
        print(prediction.render())
    for error in errors:
        print(f"specdistill predict: {error}", file=sys.stderr)
    return 2 if errors else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from orchestrator.evaluation import evaluate_export

    print(evaluate_export(args.checkpoint, args.data, split=args.split, clips=args.clips).render())
    return 0


def _cmd_ensemble(args: argparse.Namespace) -> int:
    from orchestrator.evaluation import build_ensemble

    report = build_ensemble(
        args.sweep_dir,
        args.export,
        args.data,
        top_k=args.top_k,
        metric=args.metric,
        mode=args.mode,
        split=args.split,
        clips=args.clips,
        portable=not args.no_portable,
    )
    print(report.render())
    print(f"ensemble exported to {args.export} (evaluate it, or name it as a teacher)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from orchestrator.report import write_report

    path = write_report(args.sweep_dir, args.out, metric=args.metric, test_top=args.test_top)
    print(f"report written to {path}")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from optuna_dashboard import run_server

    from orchestrator.study import open_storage, recorded_study_url

    url = recorded_study_url(args.sweep_dir)
    print(
        f"optuna-dashboard for {args.sweep_dir} on http://{args.host}:{args.port} (Ctrl-C stops it). "
        f"From another machine: ssh -L {args.port}:127.0.0.1:{args.port} THIS_HOST, then open that address.",
        flush=True,
    )
    run_server(open_storage(url), host=args.host, port=args.port)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from orchestrator.demo import run_demo

    run_demo()
    return 0


LOCATING = ("name", "storage_path")  # the --set fields a resumed teacher sweep takes: where it is
TUNE_HELP = "the selection split (tune) every sweep decision reads: this fraction of each class's training clips"
TEST_HELP = "the test split, for reported figures only: this fraction of each class's clips"
ADDRESS_HELP = (
    "the Ray cluster to run on (default: RAY_ADDRESS, else a cluster already running on this machine, "
    "else a new local one)"
)
INGEST_REJECTED = 3
EXITS = (
    "exit status: 0 when every trial ended well, 1 when any trial failed (each is listed with its error "
    "file), 130/143 when stopped by SIGINT/SIGTERM (the state is saved; the command that continues is printed), "
    "2 for a bad config or input"
)


def _config_options(command: argparse.ArgumentParser) -> None:
    """``--set`` and ``--dry-run``, for every command that reads a sweep YAML."""
    command.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change one field of the YAML, e.g. --set train.optim.lr=0.01 --set tune.num_samples=20 (values in "
        "YAML syntax, validated as the file is; paths relative to where you run the command); repeatable",
    )
    command.add_argument(
        "--dry-run",
        action="store_true",
        help="validate, then print the resolved config, the search space and the trial count; start nothing",
    )


class _DefaultsShown(argparse.HelpFormatter):
    """Every option's default in ``--help``, also for options whose help text is short or absent
    (argparse's own ArgumentDefaultsHelpFormatter skips those); flags that are off say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        off = default is None or default is False or default == [] or default == argparse.SUPPRESS
        shown = bool(action.option_strings) and not off
        if shown and "%(default)" not in text:
            text = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        return text


def build_parser() -> argparse.ArgumentParser:
    from training.data.layouts import formats  # the layouts' registry: light, and the one list of formats
    from training.data.probe_pool import ProbeLimits
    from training.data.splits import DEFAULT_TEST_FRACTION, DEFAULT_TUNE_FRACTION, TEST

    parser = argparse.ArgumentParser(prog="specdistill", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser = functools.partial(commands.add_parser, formatter_class=_DefaultsShown)

    demo = commands.add_parser("demo", help="the main job end to end on the embedded dataset (make demo)")
    demo.set_defaults(handler=_cmd_demo)

    models = commands.add_parser("models", help="list the registered models with their size, FLOPs and taps")
    models.add_argument("--frames", type=int, default=8, help="frames per clip the models are sized for")
    models.add_argument("--size", type=int, default=64, help="frame height and width in pixels")
    models.set_defaults(handler=_cmd_models)

    synth = commands.add_parser("synth", help="write the embedded motion dataset as Parquet shards")
    synth.add_argument("out", type=str)
    synth.add_argument("--clips-per-class", type=int, default=100, help="clips written per class")
    synth.add_argument("--frames", type=int, default=16, help="frames stored per clip")
    synth.add_argument("--size", type=int, default=64, help="frame height and width in pixels")
    synth.add_argument("--seed", type=int, default=0, help="seed of the generated clips and of the drawn splits")
    synth.add_argument("--test-fraction", type=float, default=DEFAULT_TEST_FRACTION, help=TEST_HELP)
    synth.add_argument("--tune-fraction", type=float, default=DEFAULT_TUNE_FRACTION, help=TUNE_HELP)
    synth.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes encoding clips")
    synth.add_argument("--shard-mb", type=int, default=128, help="target shard size in MiB")
    synth.set_defaults(handler=_cmd_synth)

    ingest = commands.add_parser(
        "ingest",
        help="ingest a video dataset on disk into Parquet shards",
        epilog=f"exit status: 0 when every clip was ingested, {INGEST_REJECTED} when some were rejected "
        "(each is a line of rejects.jsonl in OUT, with its reason), 2 for a bad argument or source",
    )
    ingest.add_argument("source", type=Path)
    ingest.add_argument("out", type=str)
    ingest.add_argument("--format", required=True, choices=formats(), help="the source's layout")
    ingest.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes decoding clips")
    ingest.add_argument("--shard-mb", type=int, default=128, help="target shard size in MiB")
    ingest.add_argument(
        "--test-fraction",
        type=float,
        default=DEFAULT_TEST_FRACTION,
        help=f"folder layout only ({TEST_HELP}; the other layouts' test split is their validation split)",
    )
    ingest.add_argument(
        "--short-side",
        type=int,
        default=256,
        help="re-encode video files to this shorter side (never up) with a keyframe every --gop frames, which "
        "makes sampling 8 frames 2-4x cheaper in training (bench/RESULTS.md); 0 stores the files as they are",
    )
    ingest.add_argument("--gop", type=int, default=8, help="keyframe interval of the re-encoded videos")
    ingest.add_argument("--tune-fraction", type=float, default=DEFAULT_TUNE_FRACTION, help=TUNE_HELP)
    ingest.add_argument("--seed", type=int, default=0, help="the drawn splits' seed")
    ingest.add_argument(
        "--max-clip-mb", type=int, default=ProbeLimits.max_clip_mb, help="reject a clip larger than this (at most 2047)"
    )
    ingest.add_argument(
        "--probe-memory-mb", type=int, default=ProbeLimits.memory_mb, help="memory a worker may add to decode one clip"
    )
    ingest.add_argument(
        "--probe-cpu-s",
        type=int,
        default=ProbeLimits.cpu_s,
        help="CPU seconds a worker may spend on one clip (three times that on the wall clock)",
    )
    ingest.set_defaults(handler=_cmd_ingest)

    carve = commands.add_parser(
        "carve",
        help="give a dataset written before the selection split its tune split (dataset.json only; no shard is "
        "rewritten): a fraction of each class's training clips, and its val split becomes the test split",
    )
    carve.add_argument("data", type=str, help="the dataset's directory or storage URI")
    carve.add_argument(
        "--fraction",
        type=float,
        default=DEFAULT_TUNE_FRACTION,
        help="the fraction of each class's training clips moved to the tune split",
    )
    carve.add_argument("--seed", type=int, default=0, help="the draw's seed")
    carve.set_defaults(handler=_cmd_carve)

    sweep = commands.add_parser("sweep", help="run (or --resume) a Ray Tune sweep of distillation trials", epilog=EXITS)
    sweep.add_argument("config", nargs="?", type=Path, help="sweep YAML (see configs/demo-distill.yaml)")
    sweep.add_argument("--space", help="search space: a shipped name (quick, paper, ablation) or a YAML path")
    sweep.add_argument("--resume", type=str, metavar="SWEEP_DIR", help="continue an interrupted sweep")
    sweep.add_argument("--address", help=ADDRESS_HELP)
    _config_options(sweep)
    sweep.set_defaults(handler=_cmd_sweep)

    teacher = commands.add_parser(
        "train-teacher", help="train (and export) a teacher or a teacher ensemble", epilog=EXITS
    )
    teacher.add_argument("config", type=Path, help="sweep YAML with train.stage: teacher")
    teacher.add_argument(
        "--export",
        type=str,
        required=True,
        help="the directory (or storage URI) the teacher, or the ensemble of members, is exported to",
    )
    teacher.add_argument("--ensemble", type=int, default=1, help="members, trained as parallel trials")
    teacher.add_argument("--models", help="comma-separated architectures the members cycle through")
    teacher.add_argument(
        "--resume", action="store_true", help="continue an interrupted teacher sweep (same config), then export"
    )
    teacher.add_argument("--address", help=ADDRESS_HELP)
    _config_options(teacher)
    teacher.set_defaults(handler=_cmd_train_teacher)

    best = commands.add_parser("best", help="rank a sweep's trials and export the best student(s)")
    best.add_argument("sweep_dir", type=str)
    best.add_argument(
        "--metric", default="val_top1", help="the reported metric trials are ranked by (read on the selection split)"
    )
    best.add_argument("--mode", default="max", choices=["max", "min"], help="whether a larger metric is better")
    best.add_argument(
        "--top-k",
        type=int,
        default=1,
        help="how many of the best trials to export (top<i>/ subdirectories when more than one)",
    )
    best.add_argument(
        "--export", type=str, help="the directory (or storage URI) to export to; without it the ranking is only printed"
    )
    best.add_argument(
        "--repeats-as-ensemble",
        action="store_true",
        help="for a sweep with tune.repeats: export a trial's runs as an ensemble instead of its best run",
    )
    best.add_argument(
        "--pareto",
        action="store_true",
        help="also list the Pareto front of the metric against latency at batch 1 (the trials no other beats on both)",
    )
    best.add_argument(
        "--max-latency-ms",
        type=float,
        help="rank and export only trials whose model ran a clip within this many ms at batch 1 (on its trial's "
        "device)",
    )
    best.add_argument(
        "--max-gflops",
        type=float,
        help="rank and export only trials whose model costs at most this many GFLOPs per clip",
    )
    best.add_argument(
        "--no-portable",
        action="store_true",
        help="write only the safetensors weights and card: no ONNX file or torch.export program, and the "
        "sweep's data is not read (they are checked on its clips)",
    )
    best.set_defaults(handler=_cmd_best)

    export = commands.add_parser(
        "export",
        help="write an exported model's ONNX file and torch.export program (each member of an ensemble)",
        description="Convert an exported model (or each member of an ensemble) to ONNX (dynamic batch) and a "
        "torch.export program, beside its weights, once each reproduces its logits on clips of its data "
        "(the difference is recorded in model.json). `best` does this for the students it exports.",
    )
    export.add_argument("model", type=str, help="an exported model or ensemble directory (local or storage URI)")
    export.add_argument("--data", type=str, help="the dataset to check on (default: the one its card names)")
    export.set_defaults(handler=_cmd_export)

    predict = commands.add_parser(
        "predict",
        help="top classes of video files from an exported student (or ensemble)",
        description="Decode each video as evaluate does (the card's frames, size, sampling and normalisation) "
        "and print its most probable classes.",
    )
    predict.add_argument("model", type=str, help="an exported model or ensemble directory")
    predict.add_argument("videos", type=Path, nargs="+", help="video files (any container PyAV reads)")
    predict.add_argument("--top", type=int, default=5, help="classes printed per video")
    predict.add_argument("--clips", type=int, default=1, help="views per video, probabilities averaged")
    predict.set_defaults(handler=_cmd_predict)

    evaluate = commands.add_parser("evaluate", help="top-1/top-5, per-class accuracy and confusion matrix")
    evaluate.add_argument("checkpoint", type=str, help="an exported model or ensemble directory")
    evaluate.add_argument("--data", type=str, required=True, help="shard directory (with dataset.json)")
    evaluate.add_argument("--split", default=TEST, help="the split to score (test: no sweep decision read it)")
    evaluate.add_argument("--clips", type=int, default=1, help="views per video, probabilities averaged")
    evaluate.set_defaults(handler=_cmd_evaluate)

    ensemble = commands.add_parser("ensemble", help="ensemble a sweep's top-k students and compare")
    ensemble.add_argument("sweep_dir", type=str)
    ensemble.add_argument("--top-k", type=int, default=3, help="how many of the best trials become members")
    ensemble.add_argument(
        "--data", type=str, required=True, help="the dataset to score the members and the ensemble on"
    )
    ensemble.add_argument("--export", type=str, required=True, help="the ensemble directory (or storage URI) to write")
    ensemble.add_argument(
        "--metric", default="val_top1", help="the reported metric trials are ranked by (read on the selection split)"
    )
    ensemble.add_argument("--mode", default="max", choices=["max", "min"], help="whether a larger metric is better")
    ensemble.add_argument("--split", default=TEST, help="the split to score (test: no sweep decision read it)")
    ensemble.add_argument("--clips", type=int, default=1, help="views per video, probabilities averaged")
    ensemble.add_argument(
        "--no-portable",
        action="store_true",
        help="write only each member's safetensors weights and card: no ONNX file or torch.export program",
    )
    ensemble.set_defaults(handler=_cmd_ensemble)

    dashboard = commands.add_parser(
        "dashboard",
        help="open a sweep's Optuna study in optuna-dashboard (history, importance, parallel coordinates)",
        description="Serve optuna-dashboard on the sweep's study, live while the sweep runs. It listens on "
        "127.0.0.1 only: reach it from elsewhere through an SSH tunnel (ssh -L 8081:127.0.0.1:8081 HEAD).",
    )
    dashboard.add_argument("sweep_dir", type=str, help="the sweep's directory")
    dashboard.add_argument(
        "--port", type=int, default=8081, help="the port to listen on (8080 is Ray's metrics port on the cluster files)"
    )
    dashboard.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (anyone who reaches it "
        "sees and can annotate the study: keep it on 127.0.0.1 unless the network is yours)",
    )
    dashboard.set_defaults(handler=_cmd_dashboard)

    report = commands.add_parser("report", help="write a Markdown/HTML report with plots for a sweep")
    report.add_argument("sweep_dir", type=str)
    report.add_argument("--out", type=str, help="directory for report.md/report.html (default: SWEEP_DIR/report)")
    report.add_argument("--metric", default="val_top1", help="the metric the report ranks and plots")
    report.add_argument(
        "--test-top",
        type=int,
        default=1,
        help="score the top N trials on the test split (0: none; it decodes the whole split once per trial)",
    )
    report.set_defaults(handler=_cmd_report)

    distill = commands.add_parser(
        "distill",
        help="the method alone, without Ray: a teacher and a distilled student on in-memory generated clips "
        "(a few minutes; real data goes through `sweep`)",
    )
    distill.add_argument(
        "--synthetic-smoke",
        action="store_true",
        required=True,
        help="train a teacher and distil a student on generated clips, printing every term",
    )
    distill.add_argument("--size", type=int, default=64, help="frame height and width in pixels")
    distill.add_argument("--teacher-steps", type=int, default=300, help="teacher training steps")
    distill.add_argument("--student-steps", type=int, default=300, help="student distillation steps")
    distill.add_argument("--batch-size", type=int, default=16, help="clips per step")
    distill.add_argument("--seed", type=int, default=0, help="seed of the clips and of both networks")
    distill.set_defaults(handler=_cmd_distill)
    return parser


def _print_warning(command: str, default: Callable[..., None], message: Warning | str, category: type, *rest) -> None:
    """A damaged file left out of a sweep's reading, as one line on stderr (Python's own format
    adds the line of specdistill that warned, which tells a user nothing)."""
    from orchestrator.results import DamagedRecord

    if issubclass(category, DamagedRecord):
        print(f"specdistill {command}: warning: {message}", file=sys.stderr)
    else:
        default(message, category, *rest)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand. Bad inputs (files, fields, values) end with one clear line, not a traceback."""
    from orchestrator.outcome import SweepError

    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = functools.partial(_print_warning, args.command, warnings.showwarning)
            return args.handler(args)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"specdistill {args.command}: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a write that failed (a full disk, a lost mount): the message names the path
        message = error.strerror if error.strerror and error.filename is None else str(error)  # no "[Errno 28]"
        print(f"specdistill {args.command}: {message}", file=sys.stderr)
        return 1
    except SweepError as error:  # a sweep inside a longer command (the demo) did not end well
        print(f"specdistill {args.command}: {error}", file=sys.stderr)
        return error.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
