"""Sweep configs and search spaces are refused before Ray starts, with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.config import SweepConfig, load_sweep_config, read_sweep_config
from search_spaces import SearchSpace, available
from training.config import TrainConfig, with_overrides


def test_shipped_spaces_load_and_fit_a_distillation_config(write_sweep) -> None:
    assert {"quick", "paper", "ablation", "ablation-diagnostics"} <= set(available())
    for name in available():
        config, space = load_sweep_config(write_sweep(space=name))
        assert space.name == name
        assert config.train.teachers[0].startswith("/")


@pytest.mark.parametrize(
    ("sections", "match"),
    [
        ({"tune": {"num_sampels": 3}}, r"tune\.num_sampels: Extra inputs are not permitted"),
        ({"train": {"objective": {"kd_temperature": -1.0}}}, r"train\.objective\.kd_temperature: .*greater than 0"),
        ({"train": {"collaboration": {"mode": "both"}}}, r"train\.collaboration\.mode"),
        ({"resources": {"workers": 0}}, r"resources\.workers"),
        ({"name": "has spaces"}, r"name: String should match pattern"),
    ],
)
def test_bad_sweep_fields_are_named(write_sweep, sections: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_sweep_config(write_sweep(**sections))


def test_a_bad_search_space_is_refused_before_ray_naming_the_parameter(write_sweep) -> None:
    space = {"parameters": {"objective.kd_wieght": {"type": "float", "low": 0.1, "high": 1}}}
    with pytest.raises(ValueError, match=r"parameters\.objective\.kd_wieght.*no field 'kd_wieght'"):
        load_sweep_config(write_sweep(space=space))


def test_a_searched_value_that_cannot_run_is_refused_before_ray_naming_file_and_field(write_sweep) -> None:
    import ray

    started_before = ray.is_initialized()
    space = {"parameters": {"objective.spectrum_low_bins": {"type": "categorical", "choices": [None, 9]}}}
    path = write_sweep(space=space)
    with pytest.raises(
        ValueError,
        match=rf"{path}: search space 'space', parameters\.objective\.spectrum_low_bins = 9: "
        r"train\.objective\.spectrum_low_bins: 9 is more than the 5 temporal frequency bins",
    ):
        load_sweep_config(path)
    assert ray.is_initialized() == started_before


def test_missing_teacher_or_data_is_refused_before_ray(write_sweep, tmp_path) -> None:
    with pytest.raises(ValueError, match="not an exported model"):
        load_sweep_config(write_sweep(train={"teachers": [str(tmp_path / "nowhere")]}))


def test_reading_a_config_whose_inputs_come_later_still_validates_its_fields(write_sweep, tmp_path) -> None:
    nowhere = str(tmp_path / "nowhere")
    config, _ = read_sweep_config(write_sweep(train={"teachers": [nowhere]}))
    assert config.train.teachers == [nowhere]
    with pytest.raises(ValueError, match=r"tune\.num_sampels"):
        read_sweep_config(write_sweep(train={"teachers": [nowhere]}, tune={"num_sampels": 3}))


def test_cli_refuses_bad_yaml_with_one_line_and_no_ray(write_sweep, capsys) -> None:
    import ray

    started_before = ray.is_initialized()  # an earlier test in this session may have started Ray
    code = main(["sweep", str(write_sweep(tune={"num_samples": -1}))])
    assert code == 2
    assert "tune.num_samples" in capsys.readouterr().err
    assert ray.is_initialized() == started_before


def test_overrides_apply_by_dotted_path_and_revalidate() -> None:
    base = TrainConfig(stage="distill", data={"path": "d"}, model="tsm_mobilenet_v2", teachers=["t"])
    changed = with_overrides(base, {"objective.kd_weight": 0.25, "optim.lr": 0.01})
    assert (changed.objective.kd_weight, changed.optim.lr) == (0.25, 0.01)
    with pytest.raises(ValueError, match="greater than 0"):
        with_overrides(base, {"objective.parameter_temperature": 0})


def test_the_sweep_record_round_trips_and_a_bad_one_is_refused_before_ray(write_sweep, tmp_path, capsys) -> None:
    import ray

    from orchestrator.sweep import SWEEP_FILE, read_sweep_record, write_sweep_record

    config, space = load_sweep_config(write_sweep())
    path = write_sweep_record(config, space)
    assert Path(path) == Path(config.sweep_dir, SWEEP_FILE)
    record = read_sweep_record(config.sweep_dir)
    assert SweepConfig.model_validate(record["config"]) == config
    assert SearchSpace.model_validate(record["space"]) == space

    started_before = ray.is_initialized()
    assert main(["sweep", "--resume", str(tmp_path)]) == 2
    assert f"{tmp_path / SWEEP_FILE} not found" in capsys.readouterr().err
    Path(path).write_text('{"config": ')
    assert main(["sweep", "--resume", config.sweep_dir]) == 2
    assert f"{path}: not valid JSON" in capsys.readouterr().err
    Path(path).write_text(json.dumps({"config": {**record["config"], "resources": {"workers": 0}}}))
    assert main(["sweep", "--resume", config.sweep_dir]) == 2
    assert f"{path}: in 'config': resources.workers" in capsys.readouterr().err
    assert ray.is_initialized() == started_before
