"""A real Ray head from cluster/start-local-head.sh, and the whole pipeline submitted to it with
`ray job submit`: synth → train-teacher → a 2-trial sweep → best. Token auth stays on throughout.

Isolation from any other Ray on this machine (the test suite's own, a running demo): the head gets
free ports for everything with a fixed default, its own short temp dir and its own auth token
file. It is stopped without `ray stop` — that would kill every Ray on the machine — by sending
SIGTERM to the `ray start --block` process the script execs into (it shuts down the processes it
started), then SIGKILL to anything left in the head's session or working under its directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
START_HEAD = REPO / "cluster" / "start-local-head.sh"
GRAFANA = REPO / "cluster" / "grafana-specdistill.json"
VENV_BIN = Path(sys.executable).parent
RAY = VENV_BIN / "ray"
HEAD_START_TIMEOUT_S = 180
JOB_TIMEOUT_S = 420
SWEEP_NAME = "cluster-distill"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class LocalHead:
    process: subprocess.Popen
    gcs_port: int
    dashboard_port: int
    metrics_port: int
    token: str
    env: dict[str, str]
    log: Path
    temp_dir: Path
    home: Path

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def api(self, path: str, *, method: str = "GET", token: str | None = "own") -> tuple[int, str]:
        """An HTTP request to the dashboard; ``token=None`` sends none."""
        headers = {} if token is None else {"Authorization": f"Bearer {self.token if token == 'own' else token}"}
        request = urllib.request.Request(self.dashboard + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no head log)"


def _proc_session(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after "(comm)": state ppid pgrp session ...; comm may hold spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[3])


def _leftover_processes(session: int, roots: list[Path]) -> list[int]:
    """Processes of this head: in its session (GCS, raylet, workers) or working under its temp dir
    or its test directory (the job driver runs in a session of its own, from the working dir copy
    under the temp dir; trials chdir into their directories under the test directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            cwd = ""
        if _proc_session(pid) == session or any(cwd == str(root) or cwd.startswith(f"{root}/") for root in roots):
            found.append(pid)
    return found


def _stop_head(head: LocalHead, roots: list[Path]) -> None:
    if head.process.poll() is None:
        head.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.process.wait(timeout=60)
    for pid in _leftover_processes(head.process.pid, roots):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if head.process.poll() is None:
        head.process.wait(timeout=30)


@pytest.fixture(scope="module")
def local_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHead]:
    home = tmp_path_factory.mktemp("head")
    # Short on purpose: Ray's unix sockets live under it (paths are limited to ~107 characters).
    # `<root>/ray`, as Ray's default is `/tmp/ray`: with RAY_TMPDIR=<root>, a process finds this
    # head the way a process on a real head node finds its Ray (Ray records it there).
    temp_root = Path(tempfile.mkdtemp(prefix="rh", dir="/tmp"))
    temp_dir = temp_root / "ray"
    token = secrets.token_hex(32)
    token_file = home / "auth_token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k not in {"RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN"}}
    env |= {
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "RAY": str(RAY),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token_file),
        # Nothing to drain at the end (the job is over): stop at once instead of waiting 30 s.
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
    }
    gcs, dashboard, client, agent, metrics = _free_ports(5)
    log = home / "head.log"
    command = [
        str(START_HEAD),
        "--block",
        "--port", str(gcs),
        "--dashboard-port", str(dashboard),
        "--temp-dir", str(temp_dir),
        "--num-cpus", "4",
        "--",
        "--ray-client-server-port", str(client),
        "--dashboard-agent-listen-port", str(agent),
        "--metrics-export-port", str(metrics),
        "--object-store-memory", str(300 * 2**20),
    ]  # fmt: skip
    with log.open("w") as out:
        # A session of its own: everything the head starts can be found (and only that) at the end.
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    head = LocalHead(process, gcs, dashboard, metrics, token, env, log, temp_dir, home)
    try:
        deadline = time.monotonic() + HEAD_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the head exited with {process.returncode}:\n{head.log_tail()}")
            try:
                if head.api("/api/jobs/")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the head's job API did not answer within {HEAD_START_TIMEOUT_S} s:\n{head.log_tail()}")
            time.sleep(2)
        yield head
    finally:
        _stop_head(head, [temp_dir, home])
        shutil.rmtree(temp_root, ignore_errors=True)


@dataclass
class JobRun:
    status: str
    logs: str
    out: Path
    gauge_lines: set[str] = field(default_factory=set)


def _write_job(job_dir: Path, out: Path) -> None:
    """The job's working dir: the YAMLs and the script it runs. Paths to data and outputs are
    absolute: the job runs from a temporary copy of this directory on the head."""
    job_dir.mkdir(parents=True)
    optim = {"epochs": 1, "batch_size": 8, "max_steps_per_epoch": 2}
    data = {"path": str(out / "data"), "num_frames": 8, "size": 32}
    one_worker = {"workers": 1, "cpus_per_worker": 1}
    teacher = {
        "name": "cluster-teacher",
        "storage_path": str(out / "runs"),
        "train": {"stage": "teacher", "data": data, "model": "tsm_resnet18", "optim": optim},
        "tune": {"scheduler": "fifo", "max_concurrent_trials": 1},
        "resources": one_worker,
    }
    distill = {
        "name": SWEEP_NAME,
        "storage_path": str(out / "runs"),
        "search_space": "space.yaml",  # relative: resolved inside the job's copy of the working dir
        "train": {
            "stage": "distill",
            "data": data,
            "model": "tsm_mobilenet_v2",
            "teachers": [str(out / "teacher")],
            "optim": optim,
        },
        "tune": {"max_concurrent_trials": 1, "scheduler": "asha", "asha": {"grace_period": 1}},
        "resources": one_worker,
    }
    # A grid (two learning rates), not an Optuna space: this test is about the cluster, and at the
    # time of writing an Optuna sweep dies at Tune's first experiment checkpoint ("Can't pickle
    # local object 'SearchSpace.define_by_run.<locals>.sample'", from OptunaSearch.save).
    space = {
        "description": "two learning rates",
        "variants": {"lr_low": {"optim.lr": 1e-3}, "lr_high": {"optim.lr": 4e-3}},
        "seeds": [0],
    }
    (job_dir / "teacher.yaml").write_text(yaml.safe_dump(teacher))
    (job_dir / "distill.yaml").write_text(yaml.safe_dump(distill))
    (job_dir / "space.yaml").write_text(yaml.safe_dump(space))
    q = shlex.quote
    # `specdistill …` as cluster/README.md has users run it: the package comes with the node's
    # environment (here the venv on PATH), the YAMLs with the job's working dir.
    (job_dir / "run.sh").write_text(
        "set -euo pipefail\n"
        'echo "job RAY_ADDRESS=${RAY_ADDRESS:-unset}"\n'
        f"specdistill synth {q(str(out / 'data'))} --clips-per-class 4 --frames 8 --size 32 --workers 1\n"
        f"specdistill train-teacher teacher.yaml --export {q(str(out / 'teacher'))}\n"
        "specdistill sweep distill.yaml\n"
        f"specdistill best {q(str(out / 'runs' / SWEEP_NAME))} --export {q(str(out / 'best'))} --no-portable\n"
    )


def _scrape_gauges(head: LocalHead) -> set[str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{head.metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode(errors="replace")
    except OSError:
        return set()
    return {line for line in text.splitlines() if "specdistill_" in line and not line.startswith("#")}


@pytest.fixture(scope="module")
def job_run(local_head: LocalHead) -> JobRun:
    base = local_head.home / "job"  # under the head's directory: its processes are stopped with the head
    out = base / "out"
    _write_job(base / "job", out)
    submission_id = f"specdistill-test-{secrets.token_hex(4)}"
    submit = subprocess.run(
        [str(RAY), "job", "submit", "--address", local_head.dashboard, "--submission-id", submission_id,
         "--working-dir", str(base / "job"), "--no-wait", "--", "bash", "run.sh"],
        env=local_head.env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert submit.returncode == 0, f"ray job submit failed:\n{submit.stdout}\n{submit.stderr}"
    run = JobRun(status="PENDING", logs="", out=out)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while run.status not in TERMINAL:
        if time.monotonic() > deadline:
            local_head.api(f"/api/jobs/{submission_id}/stop", method="POST")
            break
        time.sleep(5)
        run.gauge_lines |= _scrape_gauges(local_head)
        code, body = local_head.api(f"/api/jobs/{submission_id}")
        if code == 200:
            run.status = json.loads(body)["status"]
    run.gauge_lines |= _scrape_gauges(local_head)
    code, body = local_head.api(f"/api/jobs/{submission_id}/logs")
    run.logs = json.loads(body)["logs"] if code == 200 else f"(logs: HTTP {code} {body})"
    (base / "job.log").write_text(run.logs)  # kept with pytest's temp dirs, for a failed run
    return run


def _explain(run: JobRun) -> str:
    return f"job {run.status}; whole log in {run.out.parent / 'job.log'}; its end:\n{run.logs[-6000:]}"


def test_head_refuses_job_api_requests_without_its_token(local_head: LocalHead) -> None:
    assert local_head.api("/api/jobs/", token=None)[0] == 401
    assert local_head.api("/api/jobs/", token="0" * 64)[0] == 403
    assert local_head.api("/api/jobs/")[0] == 200


def test_submitted_sweep_runs_on_the_head_it_was_submitted_to(local_head: LocalHead, job_run: JobRun) -> None:
    assert job_run.status == "SUCCEEDED", _explain(job_run)
    # Ray sets RAY_ADDRESS for job drivers to the head's GCS (on this machine's address: Ray 2.60
    # swaps 127.0.0.1 for it), so start_ray joins the head instead of starting a Ray of its own.
    assert re.search(rf"^job RAY_ADDRESS=[0-9.]+:{local_head.gcs_port}$", job_run.logs, re.MULTILINE), _explain(job_run)
    # A Ray of its own would report a dashboard on another port.
    assert f"Ray dashboard: http://127.0.0.1:{local_head.dashboard_port} " in job_run.logs, _explain(job_run)
    trials = [p for p in (job_run.out / "runs" / SWEEP_NAME).iterdir() if p.is_dir() and (p / "params.json").is_file()]
    assert len(trials) == 2


def test_submitted_sweep_exports_a_loadable_best_student(job_run: JobRun) -> None:
    from training.checkpoint import load_exported

    assert job_run.status == "SUCCEEDED", _explain(job_run)
    best = job_run.out / "best"
    assert (best / "model.safetensors").is_file() and (best / "model.json").is_file()
    model, card = load_exported(best)
    assert card.model == "tsm_mobilenet_v2"
    assert not model.training


def test_trial_gauges_reach_the_head_under_the_grafana_dashboard_names(job_run: JobRun) -> None:
    assert job_run.status == "SUCCEEDED", _explain(job_run)
    wanted = set(re.findall(r"ray_specdistill_[a-z0-9_]+", GRAFANA.read_text()))
    seen = {line.split("{", 1)[0] for line in job_run.gauge_lines if 'trial_id="' in line}
    assert wanted and wanted <= seen, f"missing {sorted(wanted - seen)}; scraped: {sorted(job_run.gauge_lines)[:10]}"


def test_a_sweep_started_on_the_head_node_joins_its_ray_without_ray_address(
    local_head: LocalHead, job_run: JobRun, tmp_path: Path
) -> None:
    """A user on the head node (after `ray attach`) runs `specdistill sweep` with RAY_ADDRESS unset:
    it finds the head Ray recorded in its temp dir and joins it, instead of failing or starting a
    second Ray beside it."""
    assert job_run.status == "SUCCEEDED", _explain(job_run)
    config = {
        "name": "joined",
        "storage_path": str(tmp_path / "runs"),
        "search_space": "space.yaml",
        "train": {
            "stage": "distill",
            "data": {"path": str(job_run.out / "data"), "num_frames": 8, "size": 32},
            "model": "tsm_mobilenet_v2",
            "teachers": [str(job_run.out / "teacher")],
            "optim": {"epochs": 1, "batch_size": 8, "max_steps_per_epoch": 2},
        },
        "tune": {"scheduler": "fifo"},
    }
    (tmp_path / "space.yaml").write_text(yaml.safe_dump({"variants": {"only": {}}}))
    (tmp_path / "joined.yaml").write_text(yaml.safe_dump(config))
    env = local_head.env | {"RAY_TMPDIR": str(local_head.temp_dir.parent)}
    done = subprocess.run(
        ["specdistill", "sweep", str(tmp_path / "joined.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Ray dashboard: http://127.0.0.1:{local_head.dashboard_port} " in done.stdout, done.stdout[-2000:]
    assert "1 trials, 0 errored" in done.stdout
