"""``make demo`` / ``specdistill demo``: the main job end to end on the embedded dataset.

synth → train the teacher → distillation sweep (``quick`` space, ASHA) → export the best student →
train a cross-entropy-only student with the same budget → evaluate all three on held-out clips and
print accuracy, size, FLOPs and CPU latency side by side. Everything lands in ``demo-output/``;
the YAMLs it runs are ``configs/demo-*.yaml``, ready to copy for real data.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import load_sweep_config, load_teacher_config
from orchestrator.evaluation import cpu_latency_ms, evaluate_export
from orchestrator.selection import export_best
from orchestrator.sweep import launch
from orchestrator.teachers import train_teachers
from search_spaces import SearchSpace
from training.checkpoint import load_exported
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
    role: str
    model: str
    top1: float
    top5: float
    mparams: float
    gflops: float
    latency_ms: float


def _row(role: str, export: Path, data: Path) -> Row:
    report = evaluate_export(export, data)
    model, card = load_exported(export)
    info = describe(model, height=card.size, width=card.size)
    return Row(
        role, card.model, report.top1, report.top5, info.mparams, info.gflops_per_clip, cpu_latency_ms((model, card))
    )


def render_table(rows: list[Row]) -> str:
    header = f"{'':<27}{'model':<18}{'top-1':>7}{'top-5':>7}{'params M':>10}{'GFLOPs':>9}{'CPU ms/clip, 1 thread':>23}"
    lines = [header, "-" * len(header)]
    lines += [
        f"{r.role:<27}{r.model:<18}{r.top1:>7.3f}{r.top5:>7.3f}{r.mparams:>10.2f}{r.gflops:>9.3f}{r.latency_ms:>23.1f}"
        for r in rows
    ]
    return "\n".join(lines)


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

    stage("4/5 baseline: the same student trained with cross-entropy only, same budget")
    ce_only = SearchSpace(name="ce-only", variants={"ce_only": {"objective.terms": ["ce"]}})
    # One trial alone: give it every core the sweep's trials shared.
    resources = distill_config.resources.model_copy(
        update={"cpus_per_worker": distill_config.resources.cpus_per_worker * distill_config.tune.max_concurrent_trials}
    )
    baseline_config = distill_config.model_copy(update={"name": "demo-ce-student", "resources": resources})
    ce_only.check_against(baseline_config.train)
    launch(baseline_config, ce_only, echo=echo).raise_for_status()
    baseline = export_best(baseline_config.sweep_dir, spec.output / "ce-student")[0]

    stage("5/5 evaluating on the test split (no decision of the sweeps read it)")
    rows = [
        _row("teacher", teacher, data),
        _row("student, CE only", baseline, data),
        _row("student, distilled (best)", student, data),
    ]
    echo("\n" + render_table(rows))
    echo(
        f"\ndemo finished in {(time.perf_counter() - started) / 60:.1f} min. Best student: {student}\n"
        f"next: specdistill report {distill_config.sweep_dir}   |   "
        f"tensorboard --logdir {distill_config.storage_path}"
    )
    return rows
