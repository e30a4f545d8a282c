"""A one-line-per-event progress display for sweeps (Tune's own table prints every trial's whole
config on each update, which buries the numbers on a terminal)."""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback

from orchestrator.trial_spec import TrialSpec


def _emit(line: str) -> None:
    # Module-level on purpose: Tune pickles its callbacks, and a ``print`` captured before Ray
    # patches ``builtins.print`` (it does, on joining a cluster) no longer pickles.
    print(line, flush=True)


def _number(value: Any) -> str:
    """A reported figure, or ``—`` where the trial did not report it (a misspelt ``tune.metric``
    must not crash the callback, and with it the sweep)."""
    return f"{value:.3f}" if isinstance(value, int | float) else "—"


class SweepProgress(Callback):
    """Prints each trial's epochs as they are reported, and how each trial ended."""

    # Tune pickles the callback with the sweep's state, and a resumed sweep unpickles it into this
    # class as it is now: attributes added since must have a class-level default for older sweeps.
    mode = "max"

    def __init__(self, metric: str, mode: str, epochs: int) -> None:
        self.metric, self.mode, self.epochs = metric, mode, epochs
        self.started = time.perf_counter()
        self.best: float | None = None
        self.names: dict[str, int] = {}

    def setup(self, **info: Any) -> None:
        """Times count from this driver's start: Tune pickles the callback with the sweep, and a
        resumed sweep would otherwise count from another process's clock, its downtime included."""
        self.started = time.perf_counter()

    def _name(self, trial: Any) -> str:
        number = self.names.setdefault(trial.trial_id, len(self.names) + 1)
        return f"trial {number:>2} ({trial.trial_id})"

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        chosen = TrialSpec.from_params(trial.config).label
        _emit(f"[{self._elapsed()}] {self._name(trial)} started: {chosen or 'base config'}")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        value = result.get(self.metric)
        if isinstance(value, int | float):
            better = max if self.mode == "max" else min
            self.best = value if self.best is None else better(self.best, value)
        _emit(
            f"[{self._elapsed()}] {self._name(trial)} epoch {result.get('epoch', '?')}/{self.epochs}  "
            f"{self.metric}={_number(value)}  train_loss={_number(result.get('train_loss'))}  "
            f"{result.get('clips_per_s', 0):.0f} clips/s  (best so far {_number(self.best)})"
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        early = last.get("epoch", self.epochs) < self.epochs
        how = "stopped early by ASHA" if early else "finished"
        _emit(f"[{self._elapsed()}] {self._name(trial)} {how} at epoch {last.get('epoch', '?')}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        _emit(f"[{self._elapsed()}] {self._name(trial)} FAILED: see {trial.local_path}/error.txt")

    def _elapsed(self) -> str:
        seconds = int(time.perf_counter() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"
