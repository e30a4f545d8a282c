"""Which trial failures deserve a retry, and the record that stops the retry of one that does not.

Tune retries a failed trial up to ``tune.max_failures`` times from its last checkpoint, and Ray
Train restarts a trial's worker group up to ``resources.worker_max_failures`` times: right for a
killed worker or a lost node, wasted work for an error the same config raises again (a loss that
diverged, a config a trial refuses). Neither has a per-error retry rule, so a trial that meets
such an error writes it to ``failure.json`` in its directory before raising, and a retried trial
or restarted worker group that finds the record raises it again at once, before building anything.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from training import storage

FAILURE_NAME = "failure.json"


class TrialFailed(RuntimeError):
    """A failure that a retry of the same trial would meet again."""


class NonFiniteLoss(TrialFailed):
    """The objective went to NaN or infinity: the weights after it are garbage, and a retry from the
    last checkpoint follows the same path to the same step."""

    def __init__(self, step: int, terms: Mapping[str, float], seed: int) -> None:
        values = ", ".join(f"{name}={value:.4g}" for name, value in terms.items())
        super().__init__(f"non-finite loss at step {step} (seed {seed}): {values}")


def check_finite(step: int, terms: Mapping[str, float], seed: int) -> None:
    """Raise :class:`NonFiniteLoss` unless the step's ``loss`` is finite (``terms`` are floats the
    step has already synchronised, so the check costs nothing on a GPU)."""
    if not math.isfinite(terms["loss"]):
        raise NonFiniteLoss(step, terms, seed)


def is_deterministic(error: BaseException) -> bool:
    """Errors of config and code (values, types, missing keys) recur on retry; I/O, Ray and
    ``RuntimeError`` may not (a lost connection, a dead actor; CUDA and NCCL failures share
    ``RuntimeError`` with shape mismatches, which ``Preflight`` refuses before any trial starts)."""
    if isinstance(error, TrialFailed):
        return True
    return isinstance(error, ValueError | TypeError | LookupError | AttributeError | NotImplementedError)


def record_path(trial_dir: str) -> str:
    return storage.join(trial_dir, FAILURE_NAME)


def read_record(trial_dir: str) -> str | None:
    """The message of the failure the trial recorded, None when it recorded none; ``ValueError``
    naming the file when the record is damaged."""
    path = record_path(trial_dir)
    try:
        return str(json.loads(storage.read_text(path))["message"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as error:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"{storage.display(path)}: not a failure record ({error!r})") from error


@contextmanager
def failing_fast(trial_dir: str) -> Iterator[None]:
    """Run a trial (or one Train worker of it) so that a deterministic failure is not retried: an
    earlier attempt's record is raised at once, and a new one is recorded before it propagates."""
    try:
        recorded = read_record(trial_dir)
    except ValueError as error:
        recorded = str(error)
    if recorded is not None:
        raise TrialFailed(
            f"{recorded} (recorded by an earlier attempt in {storage.display(record_path(trial_dir))}; "
            "not retried, since the same config fails the same way: delete that file to try again)"
        )
    try:
        yield
    except Exception as error:
        if is_deterministic(error):
            record = {"error": type(error).__name__, "message": f"{type(error).__name__}: {error}"}
            with contextlib.suppress(OSError):  # storage down too: the trial's own error still propagates
                storage.write_text(record_path(trial_dir), json.dumps(record))
        raise
