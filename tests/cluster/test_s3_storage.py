"""Everything in object storage: ingest → train-teacher → a sweep interrupted and resumed → best →
report → evaluate → ensemble, every location an ``s3://`` URI on a real S3 endpoint (moto's server on
127.0.0.1), run as a user runs it: the command line, in processes of its own, each starting Ray.
Nothing of the data, teacher, trials or exports may land on local disk."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from training.data.codec import encode_clip
from training.data.embedded import MOTION_CLASSES, render_clip

pytestmark = pytest.mark.slow

COMMAND = [sys.executable, "-m", "orchestrator.cli"]
SWEEP = "s3-distill"


def _source_tree(root: Path, clips_per_class: int = 5) -> Path:
    """A class-per-folder tree of H.264 clips, as a user's videos on disk would be."""
    for label, name in enumerate(MOTION_CLASSES):
        for k in range(clips_per_class):
            frames = render_clip(label, np.random.default_rng([label, k]), num_frames=8, size=32)
            (root / name).mkdir(parents=True, exist_ok=True)
            (root / name / f"{name}_{k}.mp4").write_bytes(encode_clip(frames))
    return root


def _configs(work: Path, bucket: str) -> tuple[Path, Path]:
    data = {"path": f"{bucket}/data", "num_frames": 8, "size": 32, "min_scale": 1.0, "loader": "in_process"}
    teacher = {
        "name": "s3-teacher",
        "storage_path": f"{bucket}/runs",
        "train": {
            "stage": "teacher",
            "data": data,
            "model": "tsm_resnet18",
            "optim": {"epochs": 1, "batch_size": 8, "max_steps_per_epoch": 2},
        },
        "tune": {"scheduler": "fifo"},
    }
    distill = {
        "name": SWEEP,
        "storage_path": f"{bucket}/runs",
        "search_space": "space.yaml",
        "train": {
            "stage": "distill",
            "data": data,
            "model": "tsm_mobilenet_v2",
            "teachers": [f"{bucket}/teacher"],
            "optim": {"epochs": 3, "batch_size": 8, "max_steps_per_epoch": 2},
        },
        "tune": {"scheduler": "fifo", "max_concurrent_trials": 1},
    }
    space = {"variants": {"lr_low": {"optim.lr": 1e-3}, "lr_high": {"optim.lr": 4e-3}}, "seeds": [0]}
    (work / "space.yaml").write_text(yaml.safe_dump(space))
    (work / "teacher.yaml").write_text(yaml.safe_dump(teacher))
    (work / "distill.yaml").write_text(yaml.safe_dump(distill))
    return work / "teacher.yaml", work / "distill.yaml"


def test_a_sweep_lives_in_object_storage_from_ingest_to_evaluation(s3_endpoint, tmp_path: Path) -> None:
    bucket = s3_endpoint.make_bucket("specdistill-e2e")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= s3_endpoint.env | {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    work = tmp_path / "work"
    work.mkdir()
    source = _source_tree(tmp_path / "videos")
    teacher_yaml, distill_yaml = _configs(work, bucket)

    def run(*args: str, timeout: int = 400) -> subprocess.CompletedProcess:
        done = subprocess.run([*COMMAND, *args], env=env, cwd=work, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done

    run("ingest", "--format", "folder", "--workers", "1", str(source), f"{bucket}/data")
    run("train-teacher", str(teacher_yaml), "--export", f"{bucket}/teacher")

    # The sweep, stopped by Ctrl-C once its first trial has reported an epoch to storage.
    log = work / "sweep.log"
    with log.open("w") as out:
        driver = subprocess.Popen([*COMMAND, "sweep", str(distill_yaml)], env=env, cwd=work, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 300
        while "epoch 1/3" not in log.read_text():
            assert driver.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        driver.send_signal(signal.SIGINT)
        assert driver.wait(timeout=180) == 130, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()
    stopped = r"stopped by SIGINT: the sweep's state is saved; continue it with `specdistill (sweep --resume [^`]+)`"
    resume = re.search(stopped, log.read_text())
    assert resume and resume.group(1) == f"sweep --resume {bucket}/runs/{SWEEP}", log.read_text()[-2000:]
    run(*resume.group(1).split())

    sweep = f"{bucket}/runs/{SWEEP}"
    ranked = run("best", sweep, "--export", f"{bucket}/best").stdout
    assert re.search(r"^1 .*variant=lr_", ranked, re.MULTILINE) and f"exported {bucket}/best" in ranked
    run("report", sweep)
    evaluated = run("evaluate", f"{bucket}/best", "--data", f"{bucket}/data").stdout
    assert re.search(r"top-1 [0-9.]+  top-5 [0-9.]+  on 10 clips \(0 skipped\)", evaluated), evaluated
    # `best` above already wrote and checked the portable conversions in the bucket.
    ensemble = ["--top-k", "2", "--data", f"{bucket}/data", "--export", f"{bucket}/ens", "--no-portable"]
    ensembled = run("ensemble", sweep, *ensemble).stdout
    assert f"{bucket}/ens/top1" in ensembled and "ensemble − best member" in ensembled, ensembled

    keys = set(s3_endpoint.keys("specdistill-e2e"))
    for expected in (
        "data/dataset.json",
        "data/rejects.jsonl",
        "teacher/model.safetensors",
        "teacher/model.json",
        f"runs/{SWEEP}/specdistill-sweep.json",
        f"runs/{SWEEP}/report/report.html",
        f"runs/{SWEEP}/report/learning_curves.png",
        "best/model.safetensors",
        "best/model.json",
        "ens/ensemble.json",
        "ens/top2/model.safetensors",
    ):
        assert expected in keys, f"{expected} not in the bucket; it holds {sorted(keys)[:40]}"
    trials = {key.split("/")[2] for key in keys if key.startswith(f"runs/{SWEEP}/") and key.endswith("/result.json")}
    assert len(trials) == 2
    for trial in trials:
        body = s3_endpoint.get("specdistill-e2e", f"runs/{SWEEP}/{trial}/result.json")
        assert json.loads(body.splitlines()[-1])["epoch"] == 3, f"{trial} did not finish after the resume"
    left_local = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert [p for p in left_local if not p.startswith("videos/")] == [
        "work/distill.yaml",
        "work/space.yaml",
        "work/sweep.log",
        "work/teacher.yaml",
    ]
