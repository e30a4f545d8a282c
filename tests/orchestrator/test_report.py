"""``write_report`` on sweep directories laid out exactly as Tune leaves them (no Ray started)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from orchestrator.plots import COST_PNG, CURVES_PNG, PARAMETERS_PNG
from orchestrator.report import cost_points, write_report
from orchestrator.results import DamagedRecord, read_sweep, trial_rows
from training.checkpoint import ModelCard, export_model
from training.config import DataConfig, OptimConfig, TrainConfig
from training.data.shards import Manifest, SplitInfo, write_manifest
from training.failures import FAILURE_NAME
from training.models import create_model

EPOCHS = 4


def searched(kd_weight: float, lr: float, mode: str) -> dict[str, Any]:
    """Overrides as the ``quick`` space's Optuna search stores them in ``params.json``."""
    return {"objective.kd_weight": kd_weight, "optim.lr": lr, "collaboration.mode": mode}


# trial id -> (searched overrides, val_top1 per epoch); an empty curve is a trial that never reported.
TRIALS: dict[str, tuple[dict[str, Any], list[float]]] = {
    "a1b2c_00000": (searched(0.2, 1e-3, "frozen"), [0.2, 0.4, 0.5, 0.4]),
    "a1b2c_00001": (searched(3.5, 7e-3, "frozen"), [0.1]),
    "a1b2c_00002": (searched(1.0, 3e-3, "mutual") | {"collaboration.mutual_temperature": 4.0}, [0.3, 0.5, 0.6, 0.7]),
    "a1b2c_00003": (searched(0.5, 2e-3, "frozen"), []),
}
# Without a result.json, read_sweep takes the trial id from the directory name.
RESULTLESS_DIR = "specdistill_trial_a1b2c_00003_3_2026-11-27_06-00-00"
RESULTLESS_ID = "a1b2c_00003"


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = create_model("tsm_resnet18", num_classes=10, num_frames=8)
    card = ModelCard(
        model="tsm_resnet18",
        model_kwargs={},
        classes=[f"class{i}" for i in range(10)],
        num_frames=8,
        size=32,
        metrics={"val_top1": 0.8},
    )
    return Path(export_model(tmp_path_factory.mktemp("teacher") / "teacher", model, card))


def base_config(teachers: list[str], tmp: Path) -> TrainConfig:
    """A distillation config whose dataset is deliberately absent."""
    return TrainConfig(
        stage="distill",
        data=DataConfig(path=str(tmp / "data"), num_frames=8, size=32),
        model="tsm_mobilenet_v2",
        teachers=teachers,
        optim=OptimConfig(epochs=EPOCHS, batch_size=8),
    )


def write_dataset_manifest(directory: Path, num_classes: int) -> None:
    """A ``dataset.json`` with one (empty) shard: all the report needs to count the student's classes."""
    directory.mkdir(parents=True)
    (directory / "val-0.parquet").touch()
    split = SplitInfo(clips=1, bytes=0, shards=["val-0.parquet"], class_counts=[1] + [0] * (num_classes - 1))
    classes = [f"c{i}" for i in range(num_classes)]
    write_manifest(directory, Manifest(classes=classes, splits={"val": split}, source="test"))


def make_search_sweep(files, root: Path, teachers: list[str]) -> Path:
    """The ``TRIALS`` as an Optuna sweep of the ``quick`` space left them (``files``: ``sweep_files``)."""
    sweep = root / "demo-distill"
    train = base_config(teachers, root)
    for index, (trial_id, (overrides, curve)) in enumerate(TRIALS.items()):
        files.write_trial(sweep, index, files.params(train, overrides=overrides), curve, trial_id)
    return sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, teacher: Path, sweep_files) -> Path:
    return make_search_sweep(sweep_files, tmp_path_factory.mktemp("runs"), [str(teacher)])


@pytest.fixture(scope="module")
def report(sweep: Path) -> Path:
    return Path(write_report(sweep))


def table_rows(markdown: str) -> dict[str, list[str]]:
    """Markdown table rows keyed by trial id (the second column), header and rule left out."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines() if line.startswith("| ")]
    return {cells[1]: cells for cells in rows[2:]}


def test_report_writes_html_and_markdown_into_the_sweep_with_readable_pngs(report: Path, sweep: Path) -> None:
    assert report == sweep / "report" / "report.html"
    assert (sweep / "report" / "report.md").is_file()
    page = report.read_text()
    for name in (PARAMETERS_PNG, CURVES_PNG, COST_PNG):
        with Image.open(report.parent / name) as image:
            image.verify()
        assert f'<img src="{name}"' in page


def test_table_lists_every_trial_ranked_with_its_best_and_last_value(report: Path) -> None:
    rows = table_rows((report.parent / "report.md").read_text())
    assert set(rows) == set(TRIALS)
    assert rows["a1b2c_00002"][:6] == ["1", "a1b2c_00002", "finished", "0.7000", "0.7000", "4/4"]
    assert rows["a1b2c_00000"][:6] == ["2", "a1b2c_00000", "finished", "0.5000", "0.4000", "4/4"]
    # searched columns, sorted: collaboration.mode, collaboration.mutual_temperature, objective.kd_weight, optim.lr
    assert rows["a1b2c_00002"][6:] == ["mutual", "4", "1", "0.003"]
    assert rows["a1b2c_00000"][6:] == ["frozen", "", "0.2", "0.001"]


def test_early_stopped_and_resultless_trials_are_marked(report: Path) -> None:
    rows = table_rows((report.parent / "report.md").read_text())
    assert rows["a1b2c_00001"][2:6] == ["stopped early", "0.1000", "0.1000", "1/4"]
    assert rows[RESULTLESS_ID][:3] == ["—", RESULTLESS_ID, "no result"]
    assert 'class="stopped-early"' in report.read_text()


def test_header_names_the_best_trial_and_the_export_command(report: Path, sweep: Path) -> None:
    markdown = (report.parent / "report.md").read_text()
    assert "Best trial: `a1b2c_00002` with val_top1 = 0.7000 at epoch 4" in markdown
    assert f"`specdistill best {sweep} --export DIR`" in markdown


def test_cost_points_put_the_teacher_above_the_cheaper_students(sweep: Path, teacher: Path) -> None:
    points, notes = cost_points(trial_rows(read_sweep(sweep), "val_top1", "max"), "val_top1")
    teachers = [p for p in points if p.role == "teacher"]
    students = {p.label: p for p in points if p.role == "student"}
    assert notes == []
    assert [(p.label, p.value) for p in teachers] == [(teacher.name, 0.8)]
    assert set(students) == {"a1b2c_00000", "a1b2c_00001", "a1b2c_00002"}
    assert students["a1b2c_00002"].value == 0.7
    assert all(0 < s.gflops < teachers[0].gflops for s in students.values())


def test_a_missing_teacher_is_noted_and_the_students_still_plotted(tmp_path: Path, sweep_files) -> None:
    write_dataset_manifest(tmp_path / "data", num_classes=10)
    sweep = make_search_sweep(sweep_files, tmp_path, [str(tmp_path / "gone")])
    points, notes = cost_points(trial_rows(read_sweep(sweep), "val_top1", "max"), "val_top1")
    assert {p.role for p in points} == {"student"}
    assert len(notes) == 1 and "gone" in notes[0]
    page = Path(write_report(sweep, tmp_path / "out")).read_text()
    assert "gone" in page and COST_PNG in page


def test_without_teacher_or_dataset_the_flops_plot_is_left_out_with_notes(tmp_path: Path, sweep_files) -> None:
    sweep = make_search_sweep(sweep_files, tmp_path, [str(tmp_path / "gone")])
    page = Path(write_report(sweep, tmp_path / "out")).read_text()
    assert "gone" in page and "count classes" in page and COST_PNG not in page


def test_grid_sweeps_list_variant_and_seed(tmp_path: Path, teacher: Path, sweep_files) -> None:
    train = base_config([str(teacher)], tmp_path)
    variants = {"kd_only": {"objective.spectrum_weight": 0.0}, "full": {}}
    for index, (variant, seed) in enumerate([("kd_only", 0), ("full", 0), ("full", 1)]):
        params = sweep_files.params(train, variants=variants, variant=variant, seed=seed)
        sweep_files.write_trial(tmp_path / "grid", index, params, [0.1 * (index + 1)] * EPOCHS, f"g_{index}")
    rows = table_rows((Path(write_report(tmp_path / "grid")).parent / "report.md").read_text())
    assert rows["g_2"][:2] == ["1", "g_2"] and rows["g_2"][6:] == ["full", "1"]
    assert rows["g_0"][6:] == ["kd_only", "0"]


def test_a_metric_no_trial_reported_is_refused_with_the_known_keys(sweep: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"val_top7.*val_top5"):
        write_report(sweep, tmp_path, metric="val_top7")


def test_a_missing_sweep_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        write_report(tmp_path / "nope")


def test_failed_trials_and_damaged_files_are_named_in_the_notes(tmp_path: Path, teacher: Path, sweep_files) -> None:
    sweep = make_search_sweep(sweep_files, tmp_path, [str(teacher)])
    (failed,) = sweep.glob("*_a1b2c_00001_*")
    (failed / FAILURE_NAME).write_text('{"error": "NonFiniteLoss", "message": "non-finite loss at step 9"}')
    (damaged,) = sweep.glob("*_a1b2c_00000_*")
    with (damaged / "result.json").open("a") as results:
        results.write('{"epoch": 5, "val_')
    with pytest.warns(DamagedRecord):
        markdown = (Path(write_report(sweep, tmp_path / "out")).parent / "report.md").read_text()
    assert table_rows(markdown)["a1b2c_00001"][2] == "error"
    assert "- trial a1b2c_00001 failed: non-finite loss at step 9" in markdown
    assert f"- left out: {damaged / 'result.json'}: line 5 is not a result, left out" in markdown
