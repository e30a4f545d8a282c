"""Multi-worker trials, killed workers and killed sweep drivers, against real Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest

from orchestrator.results import read_sweep
from orchestrator.selection import export_best
from orchestrator.sweep import run_sweep
from training.checkpoint import load_exported

pytestmark = pytest.mark.slow
FIXED_SPACE = {"variants": {"base": {}}}


def _results(sweep_dir: str | Path) -> list[list[dict]]:
    return [trial.results for trial in read_sweep(sweep_dir)]


def _first_epoch_reported(sweep_dir: Path) -> bool:
    return any(len(lines) >= 1 for lines in _trial_result_lines(sweep_dir))


def _train_run_registered_a_checkpoint(sweep_dir: Path) -> bool:
    """True once the Train controller has registered a checkpoint, which is what a restarted worker
    group resumes from. A checkpoint directory alone is not enough: workers write it at once, but
    the controller only collects reports at its health-check poll (every 2 s), so on a fast machine
    two epochs can be on disk before either is registered, and a kill then restarts from scratch.
    Ray writes the snapshot in place, so a half-written file counts as not yet."""
    for path in sweep_dir.glob("train_runs/*/checkpoint_manager_snapshot.json"):
        try:
            if json.loads(path.read_text()).get("latest_checkpoint_result") is not None:
                return True
        except json.JSONDecodeError:
            continue
    return False


def _trial_result_lines(sweep_dir: Path) -> list[list[dict]]:
    lines = []
    for path in sweep_dir.glob("*/result.json"):
        lines.append([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
    return lines


def test_a_two_worker_trial_survives_a_killed_train_worker_and_reports_like_one_worker(
    ray_local, write_sweep, tmp_path, wait_for
) -> None:
    """DDP over gloo across two Train workers; one is killed and the worker group restarts from its
    checkpoint, and the trial reports and exports as a single-worker trial does.

    The kill lands once the controller has registered a checkpoint (its snapshot in the Train run's
    storage says so). Watched there, not in Tune's results, which arrive later: epochs follow each
    other in seconds once the data pipeline runs, and Tune's view can lag to the run's end. Workers
    that earlier tests left listed as alive (the state API lags) are set aside: killing one of those
    kills whatever task now runs in its process, not this run's worker."""
    from ray.util.state import list_actors

    def train_workers() -> dict[str, int]:
        # This session's cluster by address: another Ray on the machine would make "auto" ambiguous.
        alive = list_actors(
            address=ray_local.get_runtime_context().gcs_address,
            filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")],
        )
        return {actor.actor_id: actor.pid for actor in alive}

    epochs = 8
    config = write_sweep(
        "killworker",
        space=FIXED_SPACE,
        resources={"workers": 2, "cpus_per_worker": 1, "worker_max_failures": 1},
        train={"optim": {"epochs": epochs, "batch_size": 8, "max_steps_per_epoch": 3}},
    )
    sweep_dir = tmp_path / "runs" / "killworker"
    earlier = set(train_workers())
    ended: dict = {}
    runner = threading.Thread(target=lambda: ended.update(outcome=run_sweep(config)))
    runner.start()
    wait_for(lambda: _train_run_registered_a_checkpoint(sweep_dir), 240, "a registered checkpoint")
    workers = {actor: pid for actor, pid in train_workers().items() if actor not in earlier}
    assert len(workers) == 2
    os.kill(sorted(workers.values())[-1], signal.SIGKILL)
    runner.join(timeout=400)
    assert not runner.is_alive()
    assert ended["outcome"].errored == []
    (results,) = _results(sweep_dir)
    last = results[-1]
    assert last["epoch"] == epochs
    assert last["resumes"] == 1, "the worker group did not restart from a checkpoint"
    assert last["step"] == epochs * 3, "the step counter restarted instead of continuing"
    assert "checkpoint_path" in last
    assert {"val_top1", "val_top5", "train/kd", "train/spectrum", "clips_per_s", "skipped_clips"} <= set(last)
    exported = export_best(sweep_dir, tmp_path / "best", portable=False)[0]
    assert load_exported(exported)[1].model == "tsm_mobilenet_v2"


def test_killed_single_worker_trial_is_retried_from_its_checkpoint(ray_local, write_sweep, tmp_path, wait_for) -> None:
    config = write_sweep(
        "killtrial",
        space=FIXED_SPACE,
        train={"optim": {"epochs": 3, "batch_size": 8, "max_steps_per_epoch": 3}},
        tune={"max_failures": 1},
    )
    sweep_dir = tmp_path / "runs" / "killtrial"
    ended: dict = {}
    runner = threading.Thread(target=lambda: ended.update(outcome=run_sweep(config)))
    runner.start()
    wait_for(lambda: _first_epoch_reported(sweep_dir), 240, "the first epoch's report")
    pid = _trial_result_lines(sweep_dir)[0][0]["pid"]
    os.kill(pid, signal.SIGKILL)
    runner.join(timeout=400)
    assert not runner.is_alive()
    assert ended["outcome"].errored == []
    (results,) = _results(sweep_dir)
    assert results[-1]["epoch"] == 3 and results[-1]["resumes"] >= 1
    assert results[-1]["step"] == 3 * 3


def test_resume_after_the_sweep_driver_dies_keeps_finished_trials(write_sweep, tmp_path, wait_for) -> None:
    config = write_sweep(
        "resume",
        space={"parameters": {"optim.lr": {"type": "float", "low": 0.001, "high": 0.01}}},
        train={"optim": {"epochs": 2, "batch_size": 8, "max_steps_per_epoch": 3}},
        tune={"num_samples": 3},
    )
    sweep_dir = tmp_path / "runs" / "resume"
    command = [sys.executable, "-m", "orchestrator.cli"]
    env = os.environ | {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.Popen(
        [*command, "sweep", str(config)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def one_finished_and_next_started() -> bool:
            lines = _trial_result_lines(sweep_dir)
            return any(r and r[-1]["epoch"] == 2 for r in lines) and len(lines) >= 2

        wait_for(one_finished_and_next_started, 300, "one finished trial and a second one running")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started
        driver.wait()
    finished_before = {
        trial.trial_id: len(trial.results)
        for trial in read_sweep(sweep_dir)
        if trial.results and trial.results[-1]["epoch"] == 2
    }
    assert finished_before
    resumed = subprocess.run(
        [*command, "sweep", "--resume", str(sweep_dir)], env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = read_sweep(sweep_dir)
    assert len(trials) == 3
    assert all(t.results and t.results[-1]["epoch"] == 2 for t in trials)
    for trial in trials:
        if trial.trial_id in finished_before:
            assert len(trial.results) == finished_before[trial.trial_id], "a finished trial ran again"
    # One Optuna study across both drivers, its trials those of the sweep.
    study_file = f"sqlite:///{sweep_dir / 'optuna.db'}"
    assert optuna.get_all_study_names(study_file) == ["resume"]
    study = optuna.load_study(study_name="resume", storage=study_file)
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 3, study.trials
