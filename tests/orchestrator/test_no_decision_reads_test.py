"""The test split is read by nothing a sweep decides with: damage it after ingest, and a sweep
and ``best`` still succeed; only scoring on it fails, naming the damaged shard."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from orchestrator.cli import main
from orchestrator.results import read_sweep
from training.data.shards import load_manifest

pytestmark = pytest.mark.slow


def test_damaged_test_shards_stop_only_the_scoring_on_the_test_split(
    ray_local, write_sweep, motion_shards, tmp_path: Path, capsys
) -> None:
    source, _ = motion_shards
    data = Path(shutil.copytree(source, tmp_path / "data"))
    test_shards = load_manifest(data).splits["test"].shards
    for shard in test_shards:
        (data / shard).write_bytes(b"PAR1 this is no longer a parquet file")
    config = write_sweep(
        "held-out",
        space={"variants": {"a": {}, "b": {"optim.lr": 0.004}}},
        train={"data": {"path": str(data), "num_frames": 8, "size": 32}},
    )
    assert main(["sweep", str(config)]) == 0
    sweep = tmp_path / "runs" / "held-out"
    assert all(t.results[-1]["epoch"] == 2 for t in read_sweep(sweep))
    for trial in read_sweep(sweep):  # each report says what the student costs to run
        last = trial.results[-1]
        assert last["params"] > 0 and last["gflops_per_clip"] > 0 and last["latency_ms_batch1"] > 0
    study = optuna.load_study(study_name="held-out", storage=f"sqlite:///{sweep / 'optuna.db'}")  # the grid, recorded
    assert sorted(t.params["variant"] for t in study.trials) == ["a", "b"]
    assert all(sorted(t.intermediate_values) == [1, 2] and t.value is not None for t in study.trials)
    assert main(["best", str(sweep), "--export", str(tmp_path / "best")]) == 0
    assert (tmp_path / "best" / "model.onnx").is_file()  # checked on the selection split's clips
    assert main(["evaluate", str(tmp_path / "best"), "--data", str(data), "--split", "tune"]) == 0
    assert main(["report", str(sweep)]) == 0  # what needs the test split is noted, the rest is drawn
    markdown = (sweep / "report" / "report.md").read_text()
    assert "what the student learned is not drawn" in markdown and str(data / test_shards[0]) in markdown
    capsys.readouterr()

    assert main(["evaluate", str(tmp_path / "best"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{data / test_shards[0]}: not a readable Parquet shard" in err, err
