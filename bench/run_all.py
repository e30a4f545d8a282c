"""``make bench``: run every ``bench/*.py`` script with its CPU-sized defaults, one after another.

Scripts run in separate processes, in name order, so one benchmark's Ray session, threads or
memory cannot colour the next one's figures. The first failure stops the run with its exit code.
``soft_targets.py`` reads a kept ablation run (its teacher and clips), so ``ablation.py`` keeps its
run in a temporary directory and ``soft_targets.py``, later in name order, is pointed at it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# Scripts that write (ablation.py) or read (soft_targets.py) one kept ablation run.
SHARE_ABLATION_RUN = ("ablation.py", "soft_targets.py")


def bench_scripts() -> list[Path]:
    """Every ``*.py`` beside this one, in name order; ``_*.py`` are helpers the scripts share."""
    return sorted(
        path for path in BENCH_DIR.glob("*.py") if path.name != Path(__file__).name and not path.name.startswith("_")
    )


def invocations(work: Path) -> list[list[str]]:
    """The command line of every script, in the order they run; ``work`` holds the shared ablation run."""
    return [
        [sys.executable, str(script), *(["--keep", str(work)] if script.name in SHARE_ABLATION_RUN else [])]
        for script in bench_scripts()
    ]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        return run(invocations(Path(tmp) / "ablation"))


def run(commands: list[list[str]]) -> int:
    """Each command in turn from the repository root; the first non-zero exit status ends the run."""
    for command in commands:
        script = Path(command[1])
        print(f"== {script.name}", flush=True)
        start = time.perf_counter()
        completed = subprocess.run(command, cwd=BENCH_DIR.parent, check=False)
        print(f"== {script.name}: exit {completed.returncode} after {time.perf_counter() - start:.0f} s", flush=True)
        if completed.returncode != 0:
            return completed.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
