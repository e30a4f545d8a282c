"""``make bench``: run every ``bench/*.py`` script with its CPU-sized defaults, one after another.

Scripts run in separate processes, in name order, so one benchmark's Ray session, threads or
memory cannot colour the next one's figures. The first failure stops the run with its exit code.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def bench_scripts() -> list[Path]:
    """Every ``*.py`` beside this one, in name order; ``_*.py`` are helpers the scripts share."""
    return sorted(
        path for path in BENCH_DIR.glob("*.py") if path.name != Path(__file__).name and not path.name.startswith("_")
    )


def main() -> int:
    for script in bench_scripts():
        print(f"== {script.name}", flush=True)
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, str(script)], cwd=BENCH_DIR.parent, check=False)
        print(f"== {script.name}: exit {completed.returncode} after {time.perf_counter() - start:.0f} s", flush=True)
        if completed.returncode != 0:
            return completed.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
