"""The paper's ablation on the embedded motion dataset, run through the real sweep machinery.

One teacher (``tsm_resnet18``, trained here exactly as ``make demo`` trains it), one student
(``tsm_mobilenet_v2``) and one budget for every row; the rows are the variants of
``search_spaces/ablation.yaml`` (which loss terms are on), each run once per seed, as one
``specdistill sweep`` with a FIFO scheduler so that every trial gets the whole budget. The training
recipe is the demo's (``configs/demo-distill.yaml``: data, optimiser, objective weights, tap
choice, temperatures); only the budget options below change it.

Prints, per row, the mean ± standard deviation over seeds of the top-1 and top-5 on the test split
of each trial's last checkpoint (not its best epoch: picking per seed would favour noisy rows; and
the test split, which no trial was selected or stopped on), the teacher's accuracy on the same
clips, each of the paper's claims checked against the table (a difference of means counts as
reproduced only when it exceeds twice its standard error), every row against the space's first
(CE-only here), the selection split's top-1 along the way, and when each seed took off: the
first epoch its selection-split top-1 reached three times chance.

    python bench/ablation.py                       # CPU-sized: 3 seeds × 7 rows, ~25 min on 2 cores
    python bench/ablation.py --seeds 0 1 2 3 4 --epochs 6 --keep runs/ablation

A run at a budget that tells the rows apart takes hours on a small machine, so ``--keep DIR`` also
continues: given the same options again, it reuses the dataset and the exported teacher it finds
there and resumes the sweep (finished trials are kept, unfinished ones go on from their last
epoch's checkpoint). Other options than the ones the run started with are refused, naming each
field that differs, because one table must not mix budgets. Another grid kept in the same
directory (``--space ablation-diagnostics``: the spectrum row with one option changed at a time)
runs as a sweep of its own on the same dataset and teacher.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import SweepConfig, read_sweep_config
from orchestrator.evaluation import evaluate_export, probabilities, score
from orchestrator.outcome import SweepError
from orchestrator.results import TrialRecord, read_sweep
from orchestrator.seeds import PairedDifference, paired_difference
from orchestrator.selection import RankedTrial, trial_model
from orchestrator.sweep import SWEEP_FILE, launch, read_sweep_record, resume_sweep
from orchestrator.teachers import train_teachers
from search_spaces import SearchSpace, load_space
from training.config import with_overrides
from training.data.embedded import MOTION_CLASSES, SynthSpec, write_embedded_dataset
from training.data.shards import MANIFEST_NAME, load_manifest

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"

# The paper's claims as (better row, worse row) pairs, in the order the paper makes them.
CLAIMS = [
    ("spectrum", "logit_kd", "spectrum distillation beats logit KD"),
    ("spectrum", "fitnets_feature_mse", "spectrum distillation beats feature MSE on raw taps (FitNets)"),
    ("spectrum_parameter", "spectrum", "parameter-distribution distillation adds to spectrum distillation"),
    ("full_mutual", "spectrum_parameter", "collaborative (mutual) learning adds again"),
]


@dataclass(frozen=True)
class Row:
    """One variant's last-checkpoint accuracies on the test split, one entry per seed that
    finished, and each of those seeds' selection-split top-1 after every epoch (its learning curve)."""

    variant: str
    seeds: list[int]
    top1: list[float]
    top5: list[float]
    curves: list[list[float]]

    @staticmethod
    def _mean_std(values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else float("nan")

    @property
    def top1_by_seed(self) -> dict[int, float]:
        return dict(zip(self.seeds, self.top1, strict=True))

    @property
    def top1_mean_std(self) -> tuple[float, float]:
        return self._mean_std(self.top1)

    @property
    def top5_mean_std(self) -> tuple[float, float]:
        return self._mean_std(self.top5)


def epoch_results(record: TrialRecord, epochs: int) -> list[dict] | None:
    """The trial's last report for each epoch 1..``epochs``, or None if it did not get to the end
    (a resumed trial reports the epochs after its checkpoint again: the later report counts)."""
    by_epoch = {r["epoch"]: r for r in record.results if "val_top1" in r and "epoch" in r}
    return [by_epoch[epoch] for epoch in range(1, epochs + 1)] if epochs in by_epoch else None


def test_scores(record: TrialRecord, last: dict) -> tuple[float, float]:
    """Top-1 and top-5 on the test split of the checkpoint reported with the trial's last result."""
    checkpoint = record.checkpoint_of(last)
    if checkpoint is None:
        raise SystemExit(f"{record.directory}: the last epoch's checkpoint is gone (kept by recency: see configs)")
    model, card = trial_model(RankedTrial(record, last, checkpoint))
    data = record.spec.train_config().data
    report = score(probabilities(model, card, data.path, split=data.test_split, clips=data.eval_clips))
    return report.top1, report.top5


def collect_rows(sweep_dir: str, space: SearchSpace, epochs: int) -> tuple[list[Row], list[str]]:
    """Rows in the space's order (scoring each finished trial on the test split), and a line for
    each trial that did not finish."""
    finished: dict[str, list[tuple[int, list[dict], tuple[float, float]]]] = {name: [] for name in space.variants}
    missing = []
    for record in read_sweep(sweep_dir):
        variant, seed = record.spec.variant, record.spec.seed
        results = epoch_results(record, epochs)
        if results is None:
            missing.append(f"{variant}, seed {seed}: no result after epoch {epochs} (see {record.directory})")
        else:
            finished[variant].append((seed, results, test_scores(record, results[-1])))
    rows = []
    for variant, trials in finished.items():
        trials.sort(key=lambda item: item[0])
        rows.append(
            Row(
                variant,
                [seed for seed, _, _ in trials],
                [top1 for _, _, (top1, _) in trials],
                [top5 for _, _, (_, top5) in trials],
                [[float(r["val_top1"]) for r in results] for _, results, _ in trials],
            )
        )
    return rows, missing


def judge(better: Row, worse: Row) -> tuple[PairedDifference | None, str]:
    """The two rows compared seed by seed (every row of the grid runs on the same seeds, so a seed's
    shared luck cancels), and the verdict: reproduced / not shown / reversed."""
    compared = paired_difference(better.top1_by_seed, worse.top1_by_seed)
    if compared is None:
        return None, "too few seeds finished"
    if compared.mean > 2 * compared.error:
        return compared, "reproduced"
    if compared.mean < -2 * compared.error:
        return compared, "reversed"
    return compared, "not shown (within 2 standard errors)"


def _paired_cells(compared: PairedDifference) -> str:
    """``Δ ± s.e. | in standard errors | ahead on``: the cells both comparison tables print."""
    ratio = f"{compared.mean / compared.error:+.1f}" if compared.error > 0 else "—"
    return f"{compared.mean:+.3f} ± {compared.error:.3f} | {ratio} | {compared.ahead} of {compared.seeds}"


def render_against_reference(rows: list[Row]) -> str:
    """Every row against the space's first (CE-only in the ablation, the unchanged spectrum row in
    the diagnostics), seed by seed: whether a term helps at all, which the claims' pairwise table
    does not say."""
    reference = rows[0]
    lines = [
        f"| row | Δ top-1 against `{reference.variant}`, paired (± s.e.) | in standard errors | seeds ahead |",
        "|---|---:|---:|---:|",
    ]
    for row in rows[1:]:
        compared = paired_difference(row.top1_by_seed, reference.top1_by_seed)
        cells = "too few seeds finished | |" if compared is None else _paired_cells(compared)
        lines.append(f"| {row.variant} | {cells} |")
    return "\n".join(lines)


def configs(args: argparse.Namespace, work: Path, sweep_name: str) -> tuple[SweepConfig, SweepConfig]:
    """The demo's teacher and distillation configs, pointed at ``work`` and given this run's budget;
    the sweep is named after its space, so grids kept in one directory share its data and teacher."""
    data, runs = str(work / "data"), str(work / "runs")
    teacher, _ = read_sweep_config(CONFIGS / "demo-teacher.yaml")
    teacher = teacher.model_copy(
        update={
            "name": "ablation-teacher",
            "storage_path": runs,
            "train": with_overrides(teacher.train, {"data.path": data, "optim.epochs": args.teacher_epochs}),
        }
    )
    distill, _ = read_sweep_config(CONFIGS / "demo-distill.yaml")
    train = with_overrides(
        distill.train,
        {
            "data.path": data,
            "teachers": [str(work / "teacher")],
            "optim.epochs": args.epochs,
            "optim.max_steps_per_epoch": args.max_steps_per_epoch,
        },
    )
    # Every trial keeps its last checkpoint, which the table scores on the test split. The grid's
    # seeds are the repeats here: one run a trial, so that each seed is one row of the table.
    tune = distill.tune.model_copy(
        update={
            "repeats": 1,
            "scheduler": "fifo",
            "max_concurrent_trials": args.concurrency,
            "keep_checkpoints": 1,
            "keep_checkpoints_by": "recency",
        }
    )
    distill = distill.model_copy(update={"name": sweep_name, "storage_path": runs, "train": train, "tune": tune})
    return teacher, distill


def render(rows: list[Row], teacher: tuple[float, float]) -> str:
    lines = [
        "| row | top-1, mean ± std | top-5, mean ± std | seeds | top-1 per seed |",
        "|---|---:|---:|---:|---|",
        f"| teacher (tsm_resnet18) | {teacher[0]:.3f} | {teacher[1]:.3f} | 1 | |",
    ]
    for row in rows:
        if not row.top1:
            lines.append(f"| {row.variant} | — | — | 0 | |")
            continue
        (m1, s1), (m5, s5) = row.top1_mean_std, row.top5_mean_std
        per_seed = ", ".join(f"{value:.3f}" for value in row.top1)
        lines.append(f"| {row.variant} | {m1:.3f} ± {s1:.3f} | {m5:.3f} ± {s5:.3f} | {len(row.top1)} | {per_seed} |")
    by_name = {row.variant: row for row in rows}
    claims = [(b, w, claim) for b, w, claim in CLAIMS if b in by_name and w in by_name]
    if claims:  # a diagnostics grid has none of the claims' row pairs
        lines += [
            "",
            "| paper's claim | Δ top-1, paired (± s.e.) | in standard errors | seeds ahead | verdict |",
            "|---|---:|---:|---:|---|",
        ]
    for better, worse, claim in claims:
        compared, verdict = judge(by_name[better], by_name[worse])
        cells = "— | |" if compared is None else _paired_cells(compared)
        lines.append(f"| {claim} (`{better}` − `{worse}`) | {cells} | {verdict} |")
    return "\n".join(lines)


def take_off(curve: list[float], chance: float) -> int | None:
    """The first epoch whose selection-split top-1 reached three times chance (None: never)."""
    threshold = 3 * chance - 1e-9  # 0.3 of 10 classes is not 3 * 0.1 in floating point
    return next((epoch for epoch, top1 in enumerate(curve, start=1) if top1 >= threshold), None)


def render_take_off(rows: list[Row], epochs: int, steps: int, chance: float) -> str:
    """When each seed left chance: the noise between seeds is mostly when that happens, and a seed
    that leaves late ends low because the rate has annealed by then."""
    quarter = max(1, round(epochs / 4))
    lines = [
        f"| row | seeds at 3× chance by epoch {quarter} (a quarter) | take-off epoch per seed (×{steps} steps) |",
        "|---|---:|---|",
    ]
    for row in rows:
        epochs_seen = [take_off(curve, chance) for curve in row.curves]
        early = sum(e is not None and e <= quarter for e in epochs_seen)
        listed = ", ".join("never" if e is None else str(e) for e in epochs_seen)
        lines.append(f"| {row.variant} | {early} of {len(epochs_seen)} | {listed} |")
    return "\n".join(lines)


def render_curves(rows: list[Row], epochs: int) -> str:
    """Mean top-1 over seeds after a quarter, half, three quarters and all of the epochs: whether a
    row learns faster or only took off sooner, which a final-epoch table cannot tell apart."""
    marks = sorted({max(1, round(epochs * quarter / 4)) for quarter in range(1, 5)})
    lines = [
        "| row | " + " | ".join(f"epoch {mark}" for mark in marks) + " |",
        "|---|" + "---:|" * len(marks),
    ]
    for row in rows:
        if row.curves:
            means = [statistics.fmean(curve[mark - 1] for curve in row.curves) for mark in marks]
            lines.append(f"| {row.variant} | " + " | ".join(f"{mean:.3f}" for mean in means) + " |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="ablation", help="grid search space (name or YAML path)")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the space's seeds (at least 2)")
    parser.add_argument("--clips-per-class", type=int, default=100, help="embedded dataset size (80%% train)")
    parser.add_argument("--teacher-epochs", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=4, help="student epochs per trial")
    parser.add_argument("--max-steps-per-epoch", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=2, help="trials at a time (one CPU each)")
    parser.add_argument(
        "--keep",
        type=Path,
        help="work directory to keep (data, teacher, sweep), or a kept one to continue; default: temporary",
    )
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="print the tables of the trials of --keep DIR that have finished, and start nothing",
    )
    args = parser.parse_args()
    if args.seeds is not None and len(args.seeds) < 2:
        parser.error("--seeds needs at least two seeds: a single run has no spread")
    if args.table_only and (args.keep is None or not args.keep.is_dir()):
        parser.error("--table-only reads a kept run: give its directory with --keep")
    return args


def differences(stored: object, asked: object, prefix: str = "") -> list[str]:
    """One line per leaf where two JSON-like values differ, named by its dotted path."""
    if isinstance(stored, dict) and isinstance(asked, dict):
        lines = []
        for key in sorted(stored.keys() | asked.keys()):
            lines += differences(stored.get(key), asked.get(key), f"{prefix}{key}.")
        return lines
    return [] if stored == asked else [f"{prefix.rstrip('.')}: {stored!r} in the kept run, {asked!r} now"]


def check_same_run(sweep_dir: str, config: SweepConfig, space: SearchSpace | None = None, *, role: str = "") -> None:
    """Refuse to continue a kept sweep whose training recipe (or grid) differs from this
    invocation's; ``role`` prefixes the field names (``teacher.`` for the teacher's sweep)."""
    path = Path(sweep_dir) / SWEEP_FILE
    try:
        payload = read_sweep_record(sweep_dir)
        lines = differences(payload["config"]["train"], config.train.model_dump(mode="json"), f"{role}train.")
        if space is not None:
            lines += differences(payload["space"], space.model_dump(), "space.")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(
            f"{path}: cannot tell which options the kept run had ({error!r}); give a new --keep directory"
        ) from error
    if lines:
        listed = "\n  ".join(lines)
        raise SystemExit(f"{path}: the kept run differs from these options; give a new --keep directory.\n  {listed}")


def prepare_data(data: Path, clips_per_class: int) -> None:
    """Write the embedded dataset, or reuse a complete one of the asked-for size."""
    path = data / MANIFEST_NAME
    if path.is_file():
        clips = sum(split.clips for split in load_manifest(data).splits.values())
        if clips != clips_per_class * len(MOTION_CLASSES):
            raise SystemExit(
                f"{path}: {clips} clips, --clips-per-class {clips_per_class} asks for "
                f"{clips_per_class * len(MOTION_CLASSES)}; give a new --keep directory"
            )
        return
    if data.exists():
        raise SystemExit(f"{data} has no {MANIFEST_NAME} (its writing was interrupted): remove {data} and run again")
    write_embedded_dataset(data, SynthSpec(clips_per_class=clips_per_class, num_frames=8, size=32), workers=2)


def prepare_teacher(config: SweepConfig, export: Path) -> Path:
    """Train and export the teacher, or reuse the one a kept run exported with the same recipe."""
    if (export / "model.json").is_file():
        check_same_run(config.sweep_dir, config, role="teacher.")  # optim.epochs here is --teacher-epochs
        return export
    if Path(config.sweep_dir).exists():
        raise SystemExit(
            f"{config.sweep_dir} holds a teacher sweep that exported nothing: remove it (and {export}) to train again"
        )
    outcome, exported = train_teachers(config, export)
    outcome.raise_for_status()
    return exported[0]


def run_grid(config: SweepConfig, space: SearchSpace) -> None:
    """Launch the ablation sweep, or resume the kept one (which keeps its own ``--concurrency``)."""
    sweep_dir = Path(config.sweep_dir)
    if not (sweep_dir / SWEEP_FILE).is_file():
        launch(config, space).raise_for_status()
        return
    check_same_run(config.sweep_dir, config, space)
    if not any(sweep_dir.glob("experiment_state-*.json")):
        raise SystemExit(f"{sweep_dir} was stopped before Tune saved any state: remove it to start the grid again")
    resume_sweep(config.sweep_dir).raise_for_status()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    space = load_space(args.space)
    if args.seeds is not None:
        space = space.model_copy(update={"seeds": args.seeds})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-ablation-") as tmp:
        work = args.keep.resolve() if args.keep else Path(tmp)
        teacher_config, distill_config = configs(args, work, space.name)
        space.check_against(distill_config.train)
        if args.table_only:
            check_same_run(distill_config.sweep_dir, distill_config, space)
            teacher = work / "teacher"
        else:
            prepare_data(work / "data", args.clips_per_class)
            teacher = prepare_teacher(teacher_config, work / "teacher")
            run_grid(distill_config, space)
        teacher_report = evaluate_export(teacher, work / "data", clips=distill_config.train.data.eval_clips)
        rows, missing = collect_rows(distill_config.sweep_dir, space, args.epochs)
    minutes = (time.perf_counter() - started) / 60
    command = shlex.join(["python", "bench/ablation.py", *sys.argv[1:]])
    print(f"\ncommand: {command}\nwall clock: {minutes:.1f} min; load average now {os.getloadavg()[0]:.2f}\n")
    print(render(rows, (teacher_report.top1, teacher_report.top5)))
    print(f"\nEach row against the first:\n\n{render_against_reference(rows)}")
    print(
        "\nSelection-split top-1 along the way (mean over the seeds that finished):\n\n"
        + render_curves(rows, args.epochs)
    )
    chance = 1 / len(MOTION_CLASSES)
    print(f"\nTake-off:\n\n{render_take_off(rows, args.epochs, args.max_steps_per_epoch, chance)}")
    for line in missing:
        print(f"missing: {line}")


if __name__ == "__main__":
    try:
        main()
    except SweepError as error:  # stopped by a signal (state kept, resume command given) or trials failed
        print(f"bench/ablation.py: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
