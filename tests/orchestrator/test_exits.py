"""Exit statuses a scheduler can act on: 0 all well, 1 a trial failed, 128 + n stopped by signal n."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.results import read_sweep
from training.checkpoint import load_exported

pytestmark = pytest.mark.slow

COMMAND = [sys.executable, "-m", "orchestrator.cli"]


def _epochs(sweep_dir: Path) -> list[int]:
    """The last epoch each trial reported so far (none before Tune wrote the first trial)."""
    try:
        return [t.results[-1]["epoch"] for t in read_sweep(sweep_dir) if t.results]
    except (FileNotFoundError, ValueError):
        return []


def test_a_failed_trial_makes_the_sweep_exit_1_naming_it_and_its_error_file(
    ray_local, write_sweep, exported_teacher: Path, tmp_path: Path, capsys
) -> None:
    """A teacher whose weights are damaged passes the checks before Ray (they read its card, not
    100 MB of weights) and fails in its trial; the other trial is untouched."""
    damaged = shutil.copytree(exported_teacher, tmp_path / "damaged")
    (damaged / "model.safetensors").write_bytes(b"\0" * 64)
    space = {"variants": {"sound": {}, "damaged": {"teachers": [str(damaged)]}}}
    config = write_sweep("fails", space=space, tune={"max_failures": 0})
    assert main(["sweep", str(config)]) == 1
    err = capsys.readouterr().err
    (failed,) = [t for t in read_sweep(tmp_path / "runs" / "fails") if t.spec.variant == "damaged"]
    error_file = Path(failed.directory) / "error.txt"
    assert f"trial {failed.trial_id} failed: see {error_file}" in err and error_file.is_file()
    assert "2 trials, 1 errored" in err
    (sound,) = [t for t in read_sweep(tmp_path / "runs" / "fails") if t.spec.variant == "sound"]
    assert sound.results[-1]["epoch"] == 2


def test_a_diverging_trial_fails_at_its_first_nan_without_retries_and_the_sweep_goes_on(
    ray_local, write_sweep, tmp_path: Path, capsys
) -> None:
    """A learning rate of 1e30 makes the second step's loss NaN. The trial ends there, as failed,
    with the step and every term; its two allowed retries stop before building anything; the
    other trial finishes, and ``best`` exports it."""
    space = {"variants": {"sound": {}, "diverging": {"optim.lr": 1e30}}}
    config = write_sweep("diverges", space=space, tune={"max_failures": 2})
    assert main(["sweep", str(config)]) == 1
    err = capsys.readouterr().err
    trials = {t.spec.variant: t for t in read_sweep(tmp_path / "runs" / "diverges")}
    diverging, sound = trials["diverging"], trials["sound"]
    assert diverging.results == [] and sound.results[-1]["epoch"] == 2
    assert re.match(r"NonFiniteLoss: non-finite loss at step 2 \(seed 0\): loss=nan, ce=nan, kd=nan", diverging.failure)
    assert f"trial {diverging.trial_id} failed: {diverging.failure} (see " in err
    error_log = (Path(diverging.directory) / "error.txt").read_text()
    assert error_log.count("Failure #") == 3 and error_log.count("recorded by an earlier attempt") == 2
    assert main(["best", str(tmp_path / "runs" / "diverges"), "--export", str(tmp_path / "best"), "--no-portable"]) == 0
    assert load_exported(tmp_path / "best")[1].provenance["trial_id"] == sound.trial_id


def test_a_diverging_two_worker_trial_refuses_trains_worker_group_restart_too(
    ray_local, write_sweep, tmp_path: Path
) -> None:
    """Ray Train restarts a failed worker group (``worker_max_failures``) before Tune sees the trial
    fail: the restarted workers find the record and stop at once, and so does Tune's retry."""
    space = {"variants": {"diverging": {"optim.lr": 1e30}}}
    resources = {"workers": 2, "cpus_per_worker": 1, "worker_max_failures": 1}
    config = write_sweep("diverges2", space=space, tune={"max_failures": 1}, resources=resources)
    assert main(["sweep", str(config)]) == 1
    (trial,) = read_sweep(tmp_path / "runs" / "diverges2")
    assert trial.results == [] and trial.failure.startswith("NonFiniteLoss: non-finite loss at step 2")
    error_log = (Path(trial.directory) / "error.txt").read_text()
    # Failure 1 is Train's, carrying its refused worker-group restart; failure 2, Tune's refused retry.
    assert error_log.count("Failure #") == 2 and error_log.count("recorded by an earlier attempt") == 2


def test_a_terminated_sweep_exits_143_and_prints_the_command_that_continues_it(
    write_sweep, tmp_path: Path, wait_for
) -> None:
    """SIGTERM, what a scheduler sends (Ctrl-C's SIGINT, 130, is the S3 end-to-end test's stop)."""
    config = write_sweep(
        "stopped",
        space={"variants": {"only": {}}},
        train={"optim": {"epochs": 4, "batch_size": 8, "max_steps_per_epoch": 3}},
    )
    sweep_dir = tmp_path / "runs" / "stopped"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    log = tmp_path / "sweep.log"
    with log.open("w") as out:
        driver = subprocess.Popen([*COMMAND, "sweep", str(config)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _epochs(sweep_dir) and _epochs(sweep_dir)[0] >= 1, 240, "the first epoch's report")
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=180) == 143, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
    printed = log.read_text()
    match = re.search(r"stopped by SIGTERM: the sweep's state is saved; continue it with `([^`]+)`", printed)
    assert match, printed[-3000:]
    assert match.group(1) == f"specdistill sweep --resume {sweep_dir}"
    resumed = subprocess.run(
        [*COMMAND, *shlex.split(match.group(1))[1:]], env=env, capture_output=True, text=True, timeout=400
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (trial,) = read_sweep(sweep_dir)
    assert trial.results[-1]["epoch"] == 4 and trial.results[-1]["step"] == 4 * 3


def test_a_stopped_teacher_run_continues_with_the_printed_command_and_then_exports(
    write_sweep, tmp_path: Path, wait_for
) -> None:
    optim = {"epochs": 4, "batch_size": 8, "max_steps_per_epoch": 2}  # room to stop it in the middle
    config = write_sweep("teacher", train={"stage": "teacher", "teachers": [], "model": "tsm_resnet18", "optim": optim})
    sweep_dir = tmp_path / "runs" / "teacher"
    export = tmp_path / "exported"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    log = tmp_path / "teacher.log"
    with log.open("w") as out:
        driver = subprocess.Popen(
            [*COMMAND, "train-teacher", str(config), "--export", str(export)], env=env, stdout=out, stderr=out
        )
    try:
        wait_for(lambda: _epochs(sweep_dir) and _epochs(sweep_dir)[0] >= 1, 240, "the first epoch's report")
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=180) == 143, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
    assert not export.exists(), "a teacher was exported from an unfinished run"
    match = re.search(r"continue it with `([^`]+)`", log.read_text())
    assert match and match.group(1).endswith("--resume"), log.read_text()[-3000:]
    resumed = subprocess.run(
        [*COMMAND, *shlex.split(match.group(1))[1:]], env=env, capture_output=True, text=True, timeout=400
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"teacher exported: {export}" in resumed.stdout
    (trial,) = read_sweep(sweep_dir)
    assert trial.results[-1]["epoch"] == 4 and trial.results[-1]["resumes"] >= 1
