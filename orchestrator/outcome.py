"""How a sweep ended, as an exit status a scheduler (Slurm, Kubernetes, a CI job) can act on.

SIGINT (Ctrl-C) and SIGTERM (what schedulers send before they kill) end a sweep the way Tune
ends one on Ctrl-C: the running trials stop, the experiment state is saved one last time and
``fit()`` returns; a second signal acts as it normally would. The outcome then says which signal
it was (exit 128 + its number, with the command that continues the sweep), which trials failed
(exit 1, each with its error file), or that every trial ended well (0).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from training import failures, storage

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class SweepOutcome:
    """``errored``: ``(trial id, error file)`` per failed trial; ``stopped_by``: the signal that
    ended the sweep early, if one did."""

    sweep_dir: str
    trials: int
    resume: str
    errored: list[tuple[str, str]] = field(default_factory=list)
    stopped_by: int | None = None

    @property
    def exit_code(self) -> int:
        if self.stopped_by is not None:
            return 128 + self.stopped_by
        return 1 if self.errored else 0

    def raise_for_status(self) -> SweepOutcome:
        """Itself when every trial ended well, else :class:`SweepError`."""
        if self.exit_code != 0:
            raise SweepError(self)
        return self

    def lines(self) -> list[str]:
        """What to tell the user, most urgent first (the caller prints them on stderr when the exit
        code is not 0)."""
        where = storage.display(self.sweep_dir)
        lines = []
        if self.stopped_by is not None:
            name = signal.Signals(self.stopped_by).name
            lines.append(f"stopped by {name}: the sweep's state is saved; continue it with `{self.resume}`")
        for trial_id, error in self.errored:
            reason = _recorded_reason(posixpath.dirname(error))
            where = f"see {storage.display(error)}"
            lines.append(f"trial {trial_id} failed: {f'{reason} ({where})' if reason else where}")
        lines.append(f"{self.trials} trials, {len(self.errored)} errored: {where}")
        return lines


def _recorded_reason(trial_dir: str) -> str | None:
    """The failure a trial recorded as not worth a retry, if it did and the record is readable."""
    try:
        return failures.read_record(trial_dir)
    except ValueError:
        return None


class SweepError(RuntimeError):
    """A sweep that did not end well, for callers that go on only when it did (the demo, the
    teacher export); ``exit_code`` is the sweep's."""

    def __init__(self, outcome: SweepOutcome) -> None:
        super().__init__("\n".join(outcome.lines()))
        self.exit_code = outcome.exit_code


class _StopOnSignals:
    """SIGINT and SIGTERM set Tune's own stop event (the handler Tune gives SIGUSR1 while it runs),
    once; the handlers that were there before come back for a second signal and afterwards."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        self.restore()
        tune_stop = signal.getsignal(signal.SIGUSR1)
        if not callable(tune_stop):  # Tune is not running yet (starting Ray): nothing to save
            raise KeyboardInterrupt
        tune_stop(signal.SIGUSR1, frame)

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self.handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[_StopOnSignals]:
    """While the block runs, SIGINT and SIGTERM stop the sweep gracefully (see the module docstring)."""
    stopper = _StopOnSignals()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield stopper
        return
    before = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Tune would otherwise take SIGINT from us
    stopper.install()
    try:
        yield stopper
    finally:
        stopper.restore()
        if before is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = before


def fit(tuner: Any, sweep_dir: str, resume: str) -> SweepOutcome:
    """``tuner.fit()`` under :func:`stop_on_signals`; ``resume`` is the command that continues it."""
    with stop_on_signals() as stopper:
        try:
            grid = tuner.fit()
        except KeyboardInterrupt:
            if stopper.received is None:
                raise
            return SweepOutcome(sweep_dir, 0, resume, stopped_by=stopper.received)
    from orchestrator.results import trial_id_from_name

    errored = []
    for result in grid:
        if result.error is not None:
            trial_dir = storage.with_scheme_of(result.path, sweep_dir)
            errored.append((trial_id_from_name(storage.name(trial_dir)), storage.join(trial_dir, "error.txt")))
    return SweepOutcome(sweep_dir, len(grid), resume, errored, stopper.received)
