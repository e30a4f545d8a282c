"""The sweep as an Optuna study in durable storage, so ``optuna-dashboard`` (``specdistill
dashboard``) shows it live: optimisation history, parameter importance, parallel coordinates and
each trial's learning curve, the views Ray's own dashboard has no Tune page for.

An Optuna sweep's searcher keeps its study there itself. A grid sweep is recorded in the same form
by :class:`StudyRecorder`: one Optuna trial per Tune trial, its parameters the variant and seed,
its intermediate values the metric at each epoch and its value the last one reported (what Ray's
Optuna searcher tells its study too). The study is named after the sweep and opened with
``load_if_exists``, so ``sweep --resume`` goes on adding to the same one.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ray.tune import Callback

from training import storage

STUDY_FILE = "optuna.db"
NO_STUDY = "none"


def study_url(config: Any) -> str | None:  # config: orchestrator.config.SweepConfig
    """Where ``config``'s study lives: an RDB URL as given, an SQLite file in a local sweep
    directory for ``auto``, and nowhere (``None``) for ``none`` or ``auto`` on a storage URI, where
    SQLite cannot live."""
    setting = config.tune.study_storage
    if setting == NO_STUDY:
        return None
    if setting != "auto":
        return setting
    if storage.is_uri(config.sweep_dir):
        return None
    return f"sqlite:///{Path(config.sweep_dir).resolve() / STUDY_FILE}"


def recorded_study_url(sweep_dir: str | Path) -> str:
    """The study of the sweep in ``sweep_dir`` as its record says, for ``specdistill dashboard``:
    ``auto`` is the ``optuna.db`` in that directory (wherever the sweep has been copied or moved),
    which must exist. Errors say why there is none."""
    from orchestrator.sweep import read_sweep_record

    setting = read_sweep_record(sweep_dir).get("config", {}).get("tune", {}).get("study_storage", "auto")
    where = storage.display(sweep_dir)
    if setting == NO_STUDY:
        raise ValueError(f"{where} keeps no Optuna study: it ran with tune.study_storage: none")
    if setting != "auto":
        return setting
    if storage.is_uri(sweep_dir):
        raise ValueError(
            f"{where} keeps no Optuna study: SQLite cannot live in a bucket, and the sweep named no "
            "tune.study_storage URL (give one, e.g. postgresql://…, to the next sweep)"
        )
    database = Path(sweep_dir).resolve() / STUDY_FILE
    if not database.is_file():
        raise FileNotFoundError(f"{database} not found: the sweep ran before sweeps kept their Optuna study")
    return f"sqlite:///{database}"


def check_url(url: str) -> None:
    """Refuse a study URL whose form or database driver is wrong, without connecting (a dry run
    writes nothing; reaching the database is checked when the sweep opens it, before any trial)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as error:
        raise ValueError(f"tune.study_storage {url}: not a database URL this machine can open ({error})") from None


def open_storage(url: str):  # -> optuna.storages.RDBStorage
    """The study's storage, creating an SQLite file's directory first; errors name the URL."""
    import optuna

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as error:  # SQLAlchemy raises a different kind for each database and driver
        raise ValueError(f"tune.study_storage {url}: cannot open ({str(error).splitlines()[0]})") from error


def open_study(url: str, name: str, mode: str):  # -> optuna.Study
    import optuna

    direction = "maximize" if mode == "max" else "minimize"
    return optuna.create_study(storage=open_storage(url), study_name=name, direction=direction, load_if_exists=True)


class StudyRecorder(Callback):
    """Records a grid sweep's trials into its study as they end (an Optuna sweep's searcher does
    this itself). A failure to record is a warning, never the sweep's end: the study is a view.
    Tune pickles its callbacks with the sweep and checkpoints their ``get_state``, so the open
    storage is left out of both and the per-epoch values survive ``--resume``."""

    def __init__(self, url: str, name: str, metric: str, mode: str, variants: list[str], seeds: list[int]) -> None:
        self.url, self.name, self.metric, self.mode = url, name, metric, mode
        self.variants, self.seeds = variants, seeds
        self.curves: dict[str, dict[int, float]] = {}
        self._study = None

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "_study"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _study=None)

    def get_state(self) -> dict[str, Any]:
        return {"curves": self.curves}

    def set_state(self, state: dict[str, Any]) -> None:
        self.curves = state.get("curves", {})

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        value = result.get(self.metric)
        if isinstance(value, int | float):
            self.curves.setdefault(trial.trial_id, {})[int(result.get("training_iteration", iteration))] = value

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, failed=True)

    def _record(self, trial: Any, *, failed: bool) -> None:
        import optuna
        from optuna.distributions import CategoricalDistribution
        from optuna.trial import TrialState

        curve = self.curves.pop(trial.trial_id, {})
        value = (trial.last_result or {}).get(self.metric)
        done = not failed and isinstance(value, int | float)
        try:
            if self._study is None:
                self._study = open_study(self.url, self.name, self.mode)
            states = (TrialState.COMPLETE,) if done else (TrialState.COMPLETE, TrialState.FAIL)
            recorded = self._study.get_trials(deepcopy=False, states=states)
            if any(t.user_attrs.get("tune_trial_id") == trial.trial_id for t in recorded):
                return  # recorded before a resume (a failed trial that a resume ran again adds its end)
            self._study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.COMPLETE if done else TrialState.FAIL,
                    value=float(value) if done else None,
                    params={"variant": trial.config["variant"], "seed": trial.config["seed"]},
                    distributions={
                        "variant": CategoricalDistribution(self.variants),
                        "seed": CategoricalDistribution(self.seeds),
                    },
                    intermediate_values=curve,
                    user_attrs={"tune_trial_id": trial.trial_id},
                )
            )
        except Exception as error:  # a locked or unreachable database, a study of another grid
            warnings.warn(f"trial {trial.trial_id} is not in the Optuna study {self.url}: {error}", stacklevel=2)
