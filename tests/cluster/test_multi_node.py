"""Several nodes on one machine: a head that offers trials no CPU and two worker nodes, every input
and output on a real S3 endpoint (no shared disk). Single-worker trials and a 2-worker
``TorchTrainer`` trial run on the worker nodes; killing the node that runs the 2-worker trial's
workers moves it to the other node, where it continues from its last checkpoint, and the trials
that had finished are left as they were."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.results import read_sweep
from training import storage
from training.checkpoint import ModelCard, export_model, load_exported
from training.data.embedded import SynthSpec, write_embedded_dataset
from training.data.shards import load_manifest
from training.models import create_model

pytestmark = pytest.mark.slow

COMMAND = [sys.executable, "-m", "orchestrator.cli"]
EPOCHS, STEPS = 8, 3


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch) -> str:
    """The S3 endpoint in this process's environment, which the nodes started here inherit; returns
    a fresh bucket's URI with the data and an (untrained) teacher in it."""
    for name, value in s3_endpoint.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    bucket = s3_endpoint.make_bucket("specdistill-nodes")
    write_embedded_dataset(f"{bucket}/data", SynthSpec(clips_per_class=6, num_frames=12, size=32, seed=3))
    classes = load_manifest(f"{bucket}/data").classes
    teacher = create_model("tsm_resnet18", num_classes=len(classes), num_frames=8)
    card = ModelCard(model="tsm_resnet18", model_kwargs={}, classes=classes, num_frames=8, size=32)
    export_model(f"{bucket}/teacher", teacher, card)
    return bucket


@pytest.fixture
def cluster():
    """A head with no CPUs for trials (it runs the GCS and the dashboard Train V2 needs) and two
    worker nodes of 4 logical CPUs each."""
    from ray.cluster_utils import Cluster

    with socket.socket() as probe:  # not 8265: the session's local Ray (ray_local) may hold it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    head_args = {"num_cpus": 0, "include_dashboard": True, "dashboard_port": port}
    head = Cluster(initialize_head=True, connect=False, head_node_args=head_args)
    try:
        workers = {node.node_id: node for node in (head.add_node(num_cpus=4), head.add_node(num_cpus=4))}
        yield head, workers
    finally:
        head.shutdown()


def _sweep_yaml(work: Path, bucket: str, name: str, variants: dict, resources: dict) -> Path:
    (work / f"{name}-space.yaml").write_text(yaml.safe_dump({"variants": variants}))
    config = {
        "name": name,
        "storage_path": f"{bucket}/runs",
        "search_space": f"{name}-space.yaml",
        "train": {
            "stage": "distill",
            "data": {"path": f"{bucket}/data", "num_frames": 8, "size": 32},
            "model": "tsm_mobilenet_v2",
            "teachers": [f"{bucket}/teacher"],
            "optim": {"epochs": EPOCHS, "batch_size": 8, "max_steps_per_epoch": STEPS},
        },
        "tune": {"scheduler": "fifo", "max_concurrent_trials": 2},
        "resources": resources,
    }
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _registered_a_checkpoint(train_runs: str) -> bool:
    """Whether a Train run's controller has registered a checkpoint (a directory in storage is not
    yet one: the controller collects reports at its health check)."""
    for run in storage.children(train_runs):
        try:
            snapshot = json.loads(storage.read_text(storage.join(train_runs, run, "checkpoint_manager_snapshot.json")))
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        if snapshot.get("latest_checkpoint_result") is not None:
            return True
    return False


def test_trials_run_on_worker_nodes_and_a_killed_node_moves_a_trial_to_the_other(
    s3_env: str, cluster, tmp_path: Path
) -> None:
    from ray.util.state import list_actors

    bucket, (head, workers) = s3_env, cluster
    single = _sweep_yaml(
        tmp_path,
        bucket,
        "single",
        {"lr_low": {"optim.lr": 1e-3, "optim.epochs": 2}, "lr_high": {"optim.lr": 4e-3, "optim.epochs": 2}},
        {"workers": 1, "cpus_per_worker": 1},
    )
    ddp = _sweep_yaml(
        tmp_path, bucket, "ddp", {"only": {}}, {"workers": 2, "cpus_per_worker": 1, "worker_max_failures": 2}
    )
    address = ["--address", head.address]

    done = subprocess.run([*COMMAND, "sweep", str(single), *address], capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    finished = read_sweep(f"{bucket}/runs/single")
    assert len(finished) == 2 and all(t.results[-1]["epoch"] == 2 for t in finished)
    assert {r["node_id"] for t in finished for r in t.results} <= set(workers), "a trial ran on the head"
    before = {t.trial_id: storage.read_text(storage.join(t.directory, "result.json")) for t in finished}

    log = tmp_path / "ddp.log"
    with log.open("w") as out:
        driver = subprocess.Popen([*COMMAND, "sweep", str(ddp), *address], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 300
        while not _registered_a_checkpoint(f"{bucket}/runs/ddp/train_runs"):
            assert driver.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        alive = list_actors(
            address=head.address, filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")]
        )
        assert len(alive) == 2
        victim = alive[0].node_id
        head.remove_node(workers[victim], allow_graceful=False)
        assert driver.wait(timeout=500) == 0, log.read_text()[-3000:]
    finally:
        if driver.poll() is None:
            driver.kill()

    (trial,) = read_sweep(f"{bucket}/runs/ddp")
    results = trial.results
    assert sorted({r["epoch"] for r in results}) == list(range(1, EPOCHS + 1))
    steps = next(r["step"] for r in results if r["epoch"] == 1)  # an epoch's steps (its share of the data)
    assert all(r["step"] == r["epoch"] * steps for r in results), "an epoch after the move restarted its steps"
    last = results[-1]
    assert last["epoch"] == EPOCHS and last["step"] == EPOCHS * steps, "the step counter did not continue"
    assert last["resumes"] >= 1, "the trial started again from scratch instead of its checkpoint"
    (survivor,) = set(workers) - {victim}
    assert results[0]["node_id"] == victim and last["node_id"] == survivor
    # The finished trials are as they were, and their best student still exports from storage.
    assert {t.trial_id: storage.read_text(storage.join(t.directory, "result.json")) for t in finished} == before
    best = subprocess.run(
        [*COMMAND, "best", f"{bucket}/runs/single", "--export", f"{bucket}/best", "--no-portable"],
        capture_output=True,
        text=True,
    )
    assert best.returncode == 0, best.stderr[-2000:]
    assert load_exported(f"{bucket}/best")[1].model == "tsm_mobilenet_v2"
