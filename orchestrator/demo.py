"""``make demo`` / ``specdistill demo``: the main job end to end on the embedded dataset.

synth → train the teacher → distillation sweep (``quick`` space, ASHA, each configuration run on
several seeds) → export the best student → train a cross-entropy-only student with the same budget
and seeds → evaluate on the test split, which no decision read, and print accuracy (students as
mean ± std over their seeds, and the distilled student's gain in standard errors), size, FLOPs and
CPU latency side by side. A single seed would let luck decide the comparison: on short runs a
student's accuracy depends on its seed as much as on its training. Everything lands in
``demo-output/``; the YAMLs it runs are ``configs/demo-*.yaml``, ready to copy for real data.
"""

from __future__ import annotations

import math
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import load_sweep_config, load_teacher_config
from orchestrator.evaluation import cpu_latency_ms, evaluate_members
from orchestrator.seeds import mean_difference
from orchestrator.selection import export_best
from orchestrator.sweep import launch
from orchestrator.teachers import train_teachers
from search_spaces import SearchSpace
from training.checkpoint import exported_members, load_exported
from training.data.embedded import SynthSpec, write_embedded_dataset
from training.models import describe

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


@dataclass(frozen=True)
class DemoSpec:
    output: Path = REPO / "demo-output"
    clips_per_class: int = 100
    stored_frames: int = 8
    size: int = 32
    seed: int = 0


@dataclass
class Row:
    """One model of the table; a student trained on several seeds has one top-1/top-5 per seed."""

    role: str
    model: str
    top1: list[float]
    top5: list[float]
    mparams: float
    gflops: float
    latency_ms: float


def _row(role: str, export: str, data: Path) -> Row:
    """Score every model behind ``export`` (a trial's seeds exported as an ensemble) one by one;
    the seeds share an architecture, so size and latency come from the first."""
    reports = evaluate_members(export, data)
    model, card = load_exported(exported_members(export)[0])
    info = describe(model, height=card.size, width=card.size)
    return Row(
        role,
        card.model,
        [r.top1 for r in reports],
        [r.top5 for r in reports],
        info.mparams,
        info.gflops_per_clip,
        cpu_latency_ms((model, card)),
    )


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"


def render_table(rows: list[Row]) -> str:
    header = (
        f"{'':<27}{'model':<18}{'seeds':>6}{'top-1':>15}{'top-5':>15}{'params M':>10}{'GFLOPs':>9}"
        f"{'CPU ms/clip, 1 thread':>23}"
    )
    lines = [header, "-" * len(header)]
    lines += [
        f"{r.role:<27}{r.model:<18}{len(r.top1):>6}{_spread(r.top1):>15}{_spread(r.top5):>15}{r.mparams:>10.2f}"
        f"{r.gflops:>9.3f}{r.latency_ms:>23.1f}"
        for r in rows
    ]
    return "\n".join(lines)


def render_gain(distilled: Row, ce_only: Row) -> str:
    compared = mean_difference(distilled.top1, ce_only.top1)
    if compared is None:
        return "one seed a student: no spread to judge the gain by (tune.repeats in configs/demo-distill.yaml)"
    difference, error = compared
    ratio = difference / error if error > 0 else math.inf
    verdict = "outside the seeds' noise" if ratio > 2 else "within the seeds' noise (2 standard errors)"
    return f"distilled − CE-only: {difference:+.3f} ± {error:.3f} top-1 ({ratio:+.1f} standard errors: {verdict})"


def run_demo(spec: DemoSpec = DemoSpec(), echo: Callable[[str], None] = print) -> list[Row]:
    started = time.perf_counter()

    def stage(text: str) -> None:
        echo(f"\n== [{(time.perf_counter() - started) / 60:4.1f} min] {text}")

    if spec.output.exists():
        shutil.rmtree(spec.output)
    data = spec.output / "data"
    stage(f"1/5 synthesising the embedded motion dataset into {data}")
    write_embedded_dataset(
        data,
        SynthSpec(clips_per_class=spec.clips_per_class, num_frames=spec.stored_frames, size=spec.size, seed=spec.seed),
        workers=2,
    )

    stage("2/5 training the teacher (tsm_resnet18)")
    teacher_config = load_teacher_config(CONFIGS / "demo-teacher.yaml")
    outcome, exported = train_teachers(teacher_config, spec.output / "teacher", echo=echo)
    outcome.raise_for_status()
    teacher = exported[0]

    stage("3/5 distillation sweep: tsm_mobilenet_v2 student, search_spaces/quick.yaml, ASHA")
    distill_config, quick = load_sweep_config(CONFIGS / "demo-distill.yaml")
    launch(distill_config, quick, echo=echo).raise_for_status()
    student = export_best(distill_config.sweep_dir, spec.output / "student")[0]
    student_seeds = export_best(
        distill_config.sweep_dir, spec.output / "student-seeds", repeats_as_ensemble=True, portable=False
    )[0]

    stage("4/5 baseline: the same student trained with cross-entropy only, same budget and seeds")
    ce_only = SearchSpace(name="ce-only", variants={"ce_only": {"objective.terms": ["ce"]}})
    # One trial alone: give it every core the sweep's trials shared.
    resources = distill_config.resources.model_copy(
        update={"cpus_per_worker": distill_config.resources.cpus_per_worker * distill_config.tune.max_concurrent_trials}
    )
    baseline_config = distill_config.model_copy(update={"name": "demo-ce-student", "resources": resources})
    ce_only.check_against(baseline_config.train)
    launch(baseline_config, ce_only, echo=echo).raise_for_status()
    baseline = export_best(
        baseline_config.sweep_dir, spec.output / "ce-student-seeds", repeats_as_ensemble=True, portable=False
    )[0]

    stage("5/5 evaluating on the test split (no decision of the sweeps read it)")
    rows = [
        _row("teacher", teacher, data),
        _row("student, CE only", baseline, data),
        _row("student, distilled (best)", student_seeds, data),
    ]
    echo("\n" + render_table(rows) + "\n" + render_gain(rows[2], rows[1]))
    echo(
        f"\ndemo finished in {(time.perf_counter() - started) / 60:.1f} min. Best student: {student} "
        "(weights, card, ONNX and torch.export program)\n"
        f"next: specdistill report {distill_config.sweep_dir}   |   "
        f"tensorboard --logdir {distill_config.storage_path}"
    )
    return rows
