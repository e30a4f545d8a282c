"""A sweep of hundreds of short trials: does anything grow with the trial count?

Runs ``specdistill sweep`` as a user would (a subprocess, its own local Ray) on an Optuna space
of ``--trials`` tiny trials (a narrow TSM-MobileNetV2, one epoch of two steps, ``--concurrency``
at a time) and watches it from outside: each time its progress line says a trial finished, it
samples the sweep driver's resident memory and CPU time, the GCS server's memory and the time;
at the end, the size of Tune's state files (``experiment_state-*.json``, the searcher's and the
grid's), which hold every trial and so grow with their number by design. It prints
those figures at trial 10 and at the last trial, and the wall-clock and driver CPU seconds per
finished trial over ten finishes (trials 11–20, after Ray's start, and the last ten), with the
ratio last/early for each. Goal: every ratio within 1.2 (flat).

    python bench/load.py                       # 300 trials, 2 at a time (2–4 min on 2 cores)
    python bench/load.py --trials 40           # a quick look

Run it where no ``ray start`` head is running: the sweep would join that cluster instead of
starting its own, and the GCS figure would be missing (printed as 0).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from training.data.embedded import SynthSpec, write_embedded_dataset

SPACE = {
    "parameters": {
        "optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        "optim.weight_decay": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
    }
}
STATE_PREFIXES = ("experiment_state-", "searcher-state-", "basic-variant-state-")
WINDOW = 10


@dataclass(frozen=True)
class Sample:
    """The sweep as it stood when its ``finished``-th trial finished."""

    finished: int
    seconds: float
    driver_mb: float
    driver_cpu_s: float
    gcs_mb: float


def write_sweep(root: Path, trials: int, concurrency: int, keep_checkpoints: int) -> Path:
    data = write_embedded_dataset(root / "data", SynthSpec(clips_per_class=6, num_frames=4, size=32), workers=1)
    (root / "space.yaml").write_text(yaml.safe_dump(SPACE))
    config = {
        "name": "load",
        "storage_path": str(root / "runs"),
        "search_space": "space.yaml",
        "train": {
            "stage": "teacher",
            "data": {"path": str(data), "num_frames": 4, "size": 32, "loader": "in_process"},
            "model": "tsm_mobilenet_v2",
            "model_kwargs": {"width_mult": 0.25},
            "optim": {"epochs": 1, "batch_size": 4, "max_steps_per_epoch": 2},
        },
        "tune": {
            "num_samples": trials,
            "max_concurrent_trials": concurrency,
            "scheduler": "fifo",
            "keep_checkpoints": keep_checkpoints,
            "seed": 0,
        },
        "resources": {"workers": 1, "cpus_per_worker": 1},
    }
    path = root / "load.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def rss_mb(pid: int) -> float:
    """Resident memory of a process now (``VmRSS``), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far, 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Ray's GCS and raylet are children of the driver that started them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def gcs_pid(driver: int) -> int | None:
    for pid in descendants(driver):
        try:
            if b"gcs_server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def state_kb(sweep_dir: Path) -> float:
    """Tune's own state in the sweep directory: what a snapshot rewrites and a resume reads."""
    if not sweep_dir.is_dir():
        return 0.0
    files = [p for p in sweep_dir.iterdir() if p.name.startswith(STATE_PREFIXES)]
    return sum(p.stat().st_size for p in files) / 1024


def watch(config: Path) -> tuple[list[Sample], int]:
    """Run the sweep, sampling at each finished trial; returns the samples and its exit status."""
    command = [sys.executable, "-m", "orchestrator.cli", "sweep", str(config)]
    started = time.perf_counter()
    # Its own local Ray: without RAY_ADDRESS it joins no cluster (bench on a machine with no `ray start` head).
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
    samples: list[Sample] = []
    gcs: int | None = None
    assert process.stdout is not None
    for line in process.stdout:
        if " finished at epoch " not in line:
            continue
        gcs = gcs or gcs_pid(process.pid)
        samples.append(
            Sample(
                finished=len(samples) + 1,
                seconds=time.perf_counter() - started,
                driver_mb=rss_mb(process.pid),
                driver_cpu_s=cpu_s(process.pid),
                gcs_mb=rss_mb(gcs) if gcs else 0.0,
            )
        )
        if len(samples) % 50 == 0:
            print(f"{len(samples)} trials finished after {samples[-1].seconds / 60:.1f} min", flush=True)
    return samples, process.wait()


def pace(samples: list[Sample], upto: int | None, figure: str) -> float:
    """How much of ``figure`` (wall seconds, driver CPU seconds) each trial took, over the ``WINDOW``
    finishes ending at trial ``upto`` (the last one when None)."""
    upto = len(samples) if upto is None else upto
    first, last = samples[upto - 1 - WINDOW], samples[upto - 1]
    return (getattr(last, figure) - getattr(first, figure)) / WINDOW


def render(samples: list[Sample], state: float) -> str:
    """Trial 10 against the last trial; the early pace over trials 11–20, after Ray's start.
    ``state``: the size of Tune's state files in KB once the sweep ended (while it runs, Tune
    rewrites them in place, so a size read then may be of half a file)."""
    early, late = samples[WINDOW - 1], samples[-1]
    rows = [
        ("sweep driver RSS, MB", early.driver_mb, late.driver_mb),
        ("GCS server RSS, MB", early.gcs_mb, late.gcs_mb),
        (
            "wall s per finished trial (10 finishes)",
            pace(samples, 2 * WINDOW, "seconds"),
            pace(samples, None, "seconds"),
        ),
        (
            "driver CPU s per finished trial",
            pace(samples, 2 * WINDOW, "driver_cpu_s"),
            pace(samples, None, "driver_cpu_s"),
        ),
    ]
    lines = [f"| figure | at trial {early.finished} | at trial {late.finished} | ratio |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {a:.2f} | {b:.2f} | {b / a if a else float('nan'):.2f} |" for name, a, b in rows]
    lines.append(f"\nTune's experiment state at the end: {state:.0f} KB, {state / late.finished:.1f} KB per trial")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--keep-checkpoints",
        type=int,
        default=2,
        help="tune.keep_checkpoints (the default 2; with 1, Tune snapshots its whole state at every checkpoint)",
    )
    args = parser.parse_args()
    if args.trials < 2 * WINDOW:
        parser.error(f"--trials must be at least {2 * WINDOW}: the figures compare two windows of {WINDOW}")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        config = write_sweep(Path(tmp), args.trials, args.concurrency, args.keep_checkpoints)
        samples, status = watch(config)
        state = state_kb(Path(tmp) / "runs" / "load")
    command = shlex.join(["python", "bench/load.py", *sys.argv[1:]])
    print(f"\ncommand: {command}\nsweep exit status {status}; {len(samples)} of {args.trials} trials finished")
    if len(samples) < 2 * WINDOW:
        return 1
    print(f"wall clock {samples[-1].seconds / 60:.1f} min\n\n{render(samples, state)}")
    return 0 if status == 0 and len(samples) == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
