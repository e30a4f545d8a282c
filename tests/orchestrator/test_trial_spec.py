"""``TrialSpec``: what a trial is, written into Tune's param space and read back from ``params.json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.config import load_sweep_config
from orchestrator.trial_spec import OVERRIDES_KEY, TrialSpec
from search_spaces import SearchSpace

GRID = SearchSpace(
    name="grid",
    variants={"ce": {"objective.terms": ["ce"]}, "member1": {"seed": 7, "model": "tsm_resnet18"}},
    seeds=[0, 1],
)


@pytest.fixture
def sweep(write_sweep):
    return load_sweep_config(write_sweep(tune={"metric": "val_loss", "mode": "min", "keep_checkpoints": 3}))


def test_the_spec_carries_what_every_trial_shares(sweep) -> None:
    config, space = sweep
    spec = TrialSpec.for_sweep(config, space)
    assert spec.train == config.train and spec.resources == config.resources
    assert (spec.metric, spec.mode, spec.keep_checkpoints) == ("val_loss", "min", 3)
    assert spec.train_runs == f"{config.sweep_dir}/train_runs"
    assert spec.searched == {} and spec.label == "" and spec.train_config() == config.train


def test_an_optuna_param_space_leaves_the_searched_values_to_the_searcher(sweep) -> None:
    config, space = sweep
    params = TrialSpec.for_sweep(config, space).param_space(space)
    assert not {OVERRIDES_KEY, "variant", "seed"} & set(params)
    # What Tune stores after the searcher has nested its suggestions reads back as the same spec.
    sampled = params | {OVERRIDES_KEY: {"objective.kd_weight": 0.5, "optim.lr": 0.002}}
    spec = TrialSpec.from_params(json.loads(json.dumps(sampled)))
    assert spec.train_config().objective.kd_weight == 0.5 and spec.train_config().optim.lr == 0.002
    assert spec.label == "kd_weight=0.5, lr=0.002"


def test_a_grid_param_space_crosses_variants_and_seeds(sweep) -> None:
    config, _ = sweep
    params = TrialSpec.for_sweep(config, GRID).param_space(GRID)
    assert params["variant"] == {"grid_search": ["ce", "member1"]}
    assert params["seed"] == {"grid_search": [0, 1]}
    spec = TrialSpec.from_params(params | {"variant": "ce", "seed": 1})
    assert spec.train_config().seed == 1 and spec.train_config().objective.active_weights() == {"ce": 1.0}
    assert spec.searched == {"variant": "ce", "seed": 1} and spec.label == "variant=ce, seed=1"


def test_a_variant_may_set_its_own_seed_over_the_grids(sweep) -> None:
    config, _ = sweep
    params = TrialSpec.for_sweep(config, GRID).param_space(GRID)
    cfg = TrialSpec.from_params(params | {"variant": "member1", "seed": 0}).train_config()
    assert (cfg.seed, cfg.model) == (7, "tsm_resnet18")


def test_optuna_suggestions_made_outside_tune_land_as_overrides(sweep) -> None:
    config, space = sweep
    spec = TrialSpec.for_sweep(config, space).sampled({f"{OVERRIDES_KEY}/optim.lr": 0.004})
    assert spec.overrides == {"optim.lr": 0.004} and spec.train_config().optim.lr == 0.004


def test_a_foreign_or_broken_params_file_is_refused_naming_it(sweep) -> None:
    config, _ = sweep
    with pytest.raises(ValueError, match=r"runs/x/params\.json: not a specdistill trial .*train"):
        TrialSpec.from_params({"lr": 0.1}, "runs/x/params.json")
    params = TrialSpec.for_sweep(config, GRID).param_space(GRID)
    with pytest.raises(ValueError, match="variant 'nope' is not one of the grid's: ce, member1"):
        TrialSpec.from_params(params | {"variant": "nope", "seed": 0})


def test_reading_sweeps_imports_neither_the_trainable_nor_the_training_loop_nor_ray_data() -> None:
    """``best`` and ``report`` only read files: importing them must not drag in Ray Data and the loop."""
    code = (
        "import sys, orchestrator.selection, orchestrator.report, orchestrator.results;"
        "print(sorted(m for m in ('training.loop', 'ray.data', 'orchestrator.trial', 'ray.tune') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    loaded = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
