"""The probe pool: whatever happens to a worker is pinned on the one task it held, and the rest go on."""

from __future__ import annotations

import os
import signal
import time

import pytest

from training.data.probe_pool import ProbeFailed, ProbeLimits, ProbePool

LIMITS = ProbeLimits(memory_mb=256, cpu_s=1)


def hostile(task: str) -> str:
    """What a decode of a hostile file can do to its process, one behaviour per task name."""
    if task == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif task == "killed":
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer does
    elif task == "spin":
        while True:
            pass
    elif task == "hang":
        time.sleep(60)
    elif task == "bomb":
        return str(len(bytearray(1 << 30)))
    elif task == "raise":
        raise KeyError("moov")
    return task.upper()


def test_every_failure_is_pinned_on_its_task_and_the_others_come_back_in_order() -> None:
    tasks = ["a", "crash", "b", "killed", "c", "bomb", "d", "raise", "e", "spin", "f", "hang", "g"]
    started = time.monotonic()
    results = list(ProbePool(hostile, workers=2, limits=LIMITS).map(tasks))
    outcome = {t: str(r) if isinstance(r, ProbeFailed) else r for t, r in zip(tasks, results, strict=True)}
    assert outcome == {
        **{t: t.upper() for t in "abcdefg"},
        "crash": "probe worker died: killed by SIGSEGV",
        "killed": "probe worker died: killed by SIGKILL",
        "bomb": "ran out of memory (256 MB over what its worker started with)",
        "raise": "KeyError: 'moov'",
        "spin": "probe worker died: CPU time limit of 1 s a clip exceeded",
        "hang": "probe timed out after 3 s and was killed",
    }
    assert time.monotonic() - started < 20


def test_results_keep_the_input_order_whatever_order_workers_finish_in() -> None:
    tasks = [f"t{i}" for i in range(30)]
    assert list(ProbePool(str.upper, workers=3, limits=LIMITS).map(tasks)) == [t.upper() for t in tasks]


def test_limits_and_workers_are_checked() -> None:
    with pytest.raises(ValueError, match="probe limits must be >= 1"):
        ProbeLimits(memory_mb=0)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        ProbePool(str.upper, workers=0, limits=LIMITS)
