"""Search spaces: loading and validating the YAML, checking every value against a training config
before any trial runs, and the define-by-run function Optuna samples from."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from search_spaces import available, load_space
from training.config import TrainConfig, with_overrides

BASE = TrainConfig(stage="distill", data={"path": "data"}, model="tsm_mobilenet_v2", teachers=["teacher"])


def _space_file(tmp_path: Path, payload: object) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(payload))
    return path


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({}, "exactly one of 'parameters'"),
        ({"parameters": {}}, "exactly one of 'parameters'"),
        ({"parameters": {"objective.kd_temperature": {"type": "float", "low": -2, "high": 4}}}, "kd_temperature"),
        ({"parameters": {"objective.kd_wieght": {"type": "float", "low": 0.1, "high": 1}}}, "no field 'kd_wieght'"),
        ({"parameters": {"optim.lr": {"type": "float", "low": 0, "high": 1, "log": True}}}, "log scale needs low > 0"),
        ({"parameters": {"optim.lr": {"type": "float", "low": 1, "high": 0.1}}}, "low < high"),
        ({"parameters": {"collaboration.mode": {"type": "categorical"}}}, "non-empty 'choices'"),
        (
            {
                "parameters": {
                    "collaboration.mutual_temperature": {
                        "type": "float",
                        "low": 1,
                        "high": 4,
                        "when": {"collaboration.mode": "mutual"},
                    }
                }
            },
            "not a parameter listed before it",
        ),
        ({"variants": {"broken": {"objective.spectrum_weight": -1}}}, r"variants\.broken"),
        ({"variants": {"typo": {"objective.terms": ["ce", "kdd"]}}}, r"variants\.typo.*unknown term 'kdd'"),
        ({"variants": {"row": {}}, "seeds": []}, "seeds is empty"),
    ],
)
def test_bad_search_spaces_are_refused_naming_the_parameter(tmp_path: Path, space: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_space(_space_file(tmp_path, space)).check_against(BASE)


def test_a_space_file_that_is_not_a_mapping_or_not_yaml_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"space\.yaml: expected a mapping"):
        load_space(_space_file(tmp_path, ["a", "b"]))
    (tmp_path / "space.yaml").write_text("parameters: [unclosed")
    with pytest.raises(ValueError, match=r"space\.yaml: not valid YAML"):
        load_space(tmp_path / "space.yaml")


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    """YAML keeps the last of two equal keys: a second weight further down would silently win."""
    (tmp_path / "space.yaml").write_text(
        "variants:\n  row:\n    objective.kd_weight: 1.0\n    objective.spectrum_weight: 2.0\n"
        "    objective.kd_weight: 0.5\n"
    )
    with pytest.raises(ValueError, match=r"space\.yaml: .*'objective\.kd_weight' on line 5 is also on line 3"):
        load_space(tmp_path / "space.yaml")


def test_merge_keys_are_not_duplicates_and_a_key_that_is_a_list_is_named(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(
        "variants:\n  base: &row {objective.kd_weight: 1.0, objective.spectrum_weight: 2.0}\n"
        "  less_kd: {<<: *row, objective.kd_weight: 0.5}\n"
    )
    variants = load_space(tmp_path / "space.yaml").variants
    assert variants["less_kd"] == {"objective.kd_weight": 0.5, "objective.spectrum_weight": 2.0}
    (tmp_path / "space.yaml").write_text("variants:\n  ? [a, b]\n  : {}\n")
    with pytest.raises(ValueError, match=r"space\.yaml: not valid YAML .*a key on line 2 is a list"):
        load_space(tmp_path / "space.yaml")


def _conditioned(choices: dict, value: object) -> dict:
    return {
        "parameters": {
            "objective.spectrum_low_bins": choices,
            "objective.spectrum_weight": {
                "type": "float",
                "low": 0.1,
                "high": 1.0,
                "when": {"objective.spectrum_low_bins": value},
            },
        }
    }


@pytest.mark.parametrize(
    ("choices", "value", "match"),
    [
        # The training config would coerce "2" to 2, but Optuna hands back the choice as written.
        ({"type": "categorical", "choices": ["2", "3"]}, 2, r"choices are \['2', '3'\]"),
        ({"type": "categorical", "choices": [2, 3]}, "2", r"choices are \[2, 3\]"),
        ({"type": "categorical", "choices": [2, 3]}, 4, r"choices are \[2, 3\]"),
        ({"type": "int", "low": 2, "high": 3}, 4, r"an int in \[2, 3\]"),
        ({"type": "float", "low": 2, "high": 3}, 2.0, "a float"),
    ],
)
def test_a_condition_that_can_never_match_is_refused(tmp_path: Path, choices: dict, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=rf"when: objective\.spectrum_low_bins = .* never be sampled.*{match}"):
        load_space(_space_file(tmp_path, _conditioned(choices, value)))


@pytest.mark.parametrize(
    ("choices", "value"),
    [
        ({"type": "categorical", "choices": [2, 3]}, 3),
        ({"type": "categorical", "choices": [2, 3]}, 3.0),  # 3 == 3.0: sampling's comparison meets it
        ({"type": "int", "low": 2, "high": 3}, 3),
    ],
)
def test_a_condition_sampling_can_meet_is_accepted_and_met(tmp_path: Path, choices: dict, value: object) -> None:
    space = load_space(_space_file(tmp_path, _conditioned(choices, value)))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampled = [study.ask() for _ in range(20)]
    for trial in sampled:
        space.define_by_run("train")(trial)
    weighted = [t for t in sampled if "train/objective.spectrum_weight" in t.params]
    assert weighted and all(t.params["train/objective.spectrum_low_bins"] == 3 for t in weighted)


def test_unknown_space_name_lists_the_shipped_ones() -> None:
    with pytest.raises(FileNotFoundError, match="quick"):
        load_space("does-not-exist")


def test_every_shipped_space_fits_the_default_distillation_config() -> None:
    for name in available():
        space = load_space(name)
        assert space.name == name
        space.check_against(BASE)


def test_ablation_rows_name_the_terms_they_switch_on_and_nothing_else_is_on() -> None:
    space = load_space("ablation")
    rows = {name: set(with_overrides(BASE, o).objective.active_weights()) for name, o in space.variants.items()}
    assert rows["ce_only"] == {"ce"}
    assert rows["logit_kd"] == {"ce", "kd"}
    assert rows["fitnets_feature_mse"] == {"ce", "kd", "feature"}
    assert rows["full_mutual"] == {"ce", "kd", "spectrum", "parameter"}


def test_define_by_run_samples_conditionals_only_when_their_condition_holds() -> None:
    space = load_space("quick")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_modes = set()
    for _ in range(12):
        trial = study.ask()
        space.define_by_run("overrides")(trial)
        mode = trial.params["overrides/collaboration.mode"]
        seen_modes.add(mode)
        assert ("overrides/collaboration.mutual_temperature" in trial.params) == (mode == "mutual")
        study.tell(trial, 0.0)
    assert seen_modes == {"frozen", "mutual"}
