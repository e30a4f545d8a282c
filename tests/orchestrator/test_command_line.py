"""Command-line habits: ``--set`` on every command that reads a sweep YAML (validated as the file
is), ``--dry-run`` that starts nothing, and every default shown in ``--help``."""

from __future__ import annotations

import argparse
import shutil

import pytest
import yaml

from orchestrator.cli import build_parser, main
from orchestrator.overrides import parse_overrides


def _resolved(out: str) -> dict:
    """The resolved config a dry run prints, read back."""
    return yaml.safe_load(out[out.index("resolved config:\n") + len("resolved config:\n") :])


def test_set_changes_fields_and_a_dry_run_prints_the_plan_without_starting(write_sweep, tmp_path, capsys) -> None:
    config = write_sweep(space="quick")
    sets = ["--set", "train.optim.lr=0.01", "--set", "tune.num_samples=3", "--set", "train.objective.terms=[ce, kd]"]
    assert main(["sweep", str(config), *sets, "--dry-run"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert (
        first
        == f"sweep sweep → {tmp_path / 'runs' / 'sweep'}: 3 trials, at most 1 at a time (dry run: nothing started)"
    )
    assert "search space quick (optuna):" in out
    resolved = _resolved(out)
    assert resolved["train"]["optim"]["lr"] == 0.01 and resolved["train"]["objective"]["terms"] == ["ce", "kd"]
    assert resolved["tune"]["num_samples"] == 3
    assert not (tmp_path / "runs").exists()  # nothing was started, nothing written


def test_a_grid_counts_variants_times_seeds_and_repeats_are_said(write_sweep, capsys) -> None:
    space = {"variants": {"a": {}, "b": {"optim.lr": 0.004}, "c": {}}, "seeds": [0, 1]}
    assert main(["sweep", str(write_sweep(space=space)), "--set", "tune.repeats=2", "--dry-run"]) == 0
    assert ": 6 trials, 2 seeded runs each, at most 1 at a time" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("train.optim.lrr=0.01", "train.optim.lrr: Extra inputs are not permitted"),
        ("tune.num_samples=0", "tune.num_samples: Input should be greater than or equal to 1"),
        ("train.optim.lr", "--set train.optim.lr: expected FIELD=VALUE"),
        ("train..lr=1", "--set train..lr=1: expected FIELD=VALUE"),
        ("name.inner=1", "--set name.inner: name is 'sweep', not a section with fields"),
        ("train.objective.terms=[ce, kd", "--set train.objective.terms=[ce, kd: the value is not valid YAML"),
    ],
)
def test_a_bad_set_is_refused_naming_it(write_sweep, capsys, item: str, message: str) -> None:
    assert main(["sweep", str(write_sweep()), "--set", item, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_set_paths_are_relative_to_where_the_command_runs(write_sweep, motion_shards, tmp_path, monkeypatch, capsys):
    data, _ = motion_shards
    here = tmp_path / "here"
    shutil.copytree(data, here / "shards")
    monkeypatch.chdir(here)
    assert main(["sweep", str(write_sweep()), "--set", "train.data.path=shards", "--dry-run"]) == 0
    assert _resolved(capsys.readouterr().out)["train"]["data"]["path"] == str(here / "shards")
    assert main(["sweep", str(write_sweep()), "--set", "train.data.path=elsewhere", "--dry-run"]) == 2
    assert str(here / "elsewhere") in capsys.readouterr().err
    assert parse_overrides(["train.init=IMAGENET1K_V1"]) == {"train.init": "IMAGENET1K_V1"}


def test_train_teacher_takes_set_and_dry_run(write_sweep, tmp_path, capsys) -> None:
    config = write_sweep("teacher", train={"stage": "teacher", "teachers": []})
    command = ["train-teacher", str(config), "--export", str(tmp_path / "t"), "--ensemble", "3"]
    assert main([*command, "--set", "train.model=tsm_resnet18", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert ": 3 trials (the teacher's members) (dry run: nothing started)" in out.splitlines()[0]
    assert _resolved(out)["train"]["model"] == "tsm_resnet18"
    assert not (tmp_path / "t").exists()


def test_resume_keeps_its_config(capsys) -> None:
    assert main(["sweep", "--resume", "runs/x", "--set", "train.optim.lr=1"]) == 2
    assert "--resume continues a sweep with the config it started with" in capsys.readouterr().err


def test_every_default_is_shown_in_help() -> None:
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in subcommands.choices.items():
        text = command.format_help()
        for action in command._actions:
            off = action.default in (None, [], argparse.SUPPRESS) or action.default is False
            if action.option_strings and not off:
                assert action.help, f"{name} {action.option_strings[0]} has no help"
                wrapped = " ".join(text.split())
                assert f"default: {action.default}" in wrapped, f"{name} {action.option_strings[0]}"


def test_a_resumed_teacher_sweep_takes_only_the_set_fields_that_locate_it(capsys) -> None:
    command = ["train-teacher", "teacher.yaml", "--export", "t", "--resume"]
    assert main([*command, "--set", "train.optim.lr=1"]) == 2
    assert "--set only for name and storage_path" in capsys.readouterr().err
    assert main([*command, "--dry-run"]) == 2
