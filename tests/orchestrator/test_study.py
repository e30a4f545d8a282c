"""A sweep is kept as an Optuna study that optuna-dashboard opens: Optuna sweeps through their
searcher, grids through the recorder, one study per sweep."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import optuna
import pytest

from orchestrator.cli import main
from orchestrator.config import load_sweep_config
from orchestrator.report import write_report
from orchestrator.spectra import KERNELS_PNG, SPECTRA_PNG
from orchestrator.study import STUDY_FILE, recorded_study_url, study_url
from orchestrator.study_plots import HISTORY_PNG
from orchestrator.sweep import run_sweep

SPACE = {"parameters": {"optim.lr": {"type": "float", "low": 0.001, "high": 0.01, "log": True}}}


def _study(sweep_dir: Path, name: str) -> optuna.Study:
    url = f"sqlite:///{sweep_dir / STUDY_FILE}"
    assert optuna.get_all_study_names(url) == [name]
    return optuna.load_study(study_name=name, storage=url)


def test_where_the_study_lives(write_sweep, tmp_path) -> None:
    config, _ = load_sweep_config(write_sweep())
    assert study_url(config) == f"sqlite:///{tmp_path / 'runs' / 'sweep' / STUDY_FILE}"
    for setting, expected in [("none", None), ("postgresql://db.internal/sweeps", "postgresql://db.internal/sweeps")]:
        assert (
            study_url(config.model_copy(update={"tune": config.tune.model_copy(update={"study_storage": setting})}))
            == expected
        )
    on_s3 = config.model_copy(update={"storage_path": "s3://bucket/runs"})
    assert study_url(on_s3) is None  # SQLite cannot live in a bucket: an RDB URL must be given


def test_a_study_url_that_cannot_be_opened_is_refused_before_ray(write_sweep, capsys) -> None:
    assert main(["sweep", str(write_sweep(tune={"study_storage": "nosuchdb://x"})), "--dry-run"]) == 2
    assert "tune.study_storage nosuchdb://x: not a database URL this machine can open" in capsys.readouterr().err
    assert not list(Path.cwd().glob("*.db"))  # a dry run creates no database


def test_the_dashboard_opens_the_study_in_the_directory_it_is_given(tmp_path) -> None:
    def sweep(name: str, setting: str, database: bool) -> Path:
        directory = tmp_path / name
        directory.mkdir()
        record = {"config": {"storage_path": "/elsewhere/runs", "tune": {"study_storage": setting}}}
        (directory / "specdistill-sweep.json").write_text(json.dumps(record))
        if database:
            optuna.create_study(storage=f"sqlite:///{directory / STUDY_FILE}", study_name=name)
        return directory

    moved = sweep("moved", "auto", database=True)  # recorded elsewhere, copied here
    assert recorded_study_url(moved) == f"sqlite:///{moved / STUDY_FILE}"
    with pytest.raises(FileNotFoundError, match="the sweep ran before sweeps kept their Optuna study"):
        recorded_study_url(sweep("older", "auto", database=False))
    with pytest.raises(ValueError, match=r"it ran with tune\.study_storage: none"):
        recorded_study_url(sweep("none", "none", database=False))
    assert recorded_study_url(sweep("rdb", "postgresql://db/sweeps", database=False)) == "postgresql://db/sweeps"


@pytest.mark.slow
def test_an_optuna_sweep_is_a_study_logged_to_mlflow_and_the_dashboard_serves_it(
    ray_local, write_sweep, tmp_path
) -> None:
    mlflow_store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tune = {"num_samples": 2, "scheduler": "fifo", "mlflow": {"tracking_uri": mlflow_store}}
    outcome = run_sweep(write_sweep("studied", space=SPACE, tune=tune))
    assert outcome.exit_code == 0
    study = _study(tmp_path / "runs" / "studied", "studied")
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(set(t.params) == {"overrides/optim.lr"} and sorted(t.intermediate_values) == [1, 2] for t in trials)

    # tune.mlflow: one MLflow run per trial, with its searched value and every epoch's metric.
    client = mlflow.MlflowClient(tracking_uri=mlflow_store)
    runs = client.search_runs([client.get_experiment_by_name("studied").experiment_id])
    assert len(runs) == 2
    assert {r.data.params["overrides/optim.lr"] for r in runs} == {str(t.params["overrides/optim.lr"]) for t in trials}
    assert all(len(client.get_metric_history(r.info.run_id, "val_top1")) == 2 for r in runs)

    # The report draws what the exported student learned against its teacher, on test clips.
    report = Path(write_report(tmp_path / "runs" / "studied"))
    page = report.read_text()
    for name in (SPECTRA_PNG, KERNELS_PNG, HISTORY_PNG):
        assert f'<img src="{name}"' in page and (report.parent / name).stat().st_size > 10_000

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "orchestrator.cli", "dashboard", str(tmp_path / "runs" / "studied")]
    server = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    studies = json.load(response)["study_summaries"]
            except OSError:
                assert server.poll() is None, server.communicate()[1].decode()[-2000:]
                time.sleep(0.5)
        assert studies is not None, "the dashboard did not answer within 60 s"
        assert [s["study_name"] for s in studies] == ["studied"]
        detail = f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}"
        with urllib.request.urlopen(detail, timeout=30) as response:
            assert len(json.load(response)["trials"]) == 2
    finally:
        server.terminate()
        server.wait(timeout=30)
