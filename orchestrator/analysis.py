"""What mattered in a sweep: each searched parameter's importance (Optuna's PED-ANOVA), and the
CE-only baseline a distillation sweep is measured against.

Importance is computed from the trials' own files (each trial's searched values and its best
metric, the figure it is ranked by), not from the sweep's Optuna study, so a grid sweep, a sweep in
a bucket and a sweep run before studies were kept are all analysed alike. PED-ANOVA asks how much
each parameter's distribution differs between the top trials and all of them; it needs no model
fit (fANOVA would need scikit-learn) and is meaningful from a handful of trials.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Sequence
from typing import Any

from orchestrator.results import Mode, TrialRow, is_number

MIN_TRIALS = 4  # below this the "top trials" are nearly all of them, and importance is noise
TOP_TRIALS = 3


def importances(rows: Sequence[TrialRow], columns: Sequence[str], mode: Mode) -> dict[str, float] | None:
    """Each varied parameter's share of importance (summing to 1), most important first; None when
    fewer than ``MIN_TRIALS`` trials reported the metric or no parameter varied."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    scored = [r for r in rows if r.best is not None]
    if len(scored) < MIN_TRIALS:
        return None
    distributions: dict[str, Any] = {}
    for column in columns:
        values = [r.searched.get(column) for r in scored]
        if all(is_number(v) for v in values):
            low, high = min(values), max(values)
            if low < high:  # on a log scale where the space spans decades, as learning rates and weights do
                log = low > 0 and high > 10 * low
                distributions[column] = FloatDistribution(float(low), float(high), log=log)
        elif len({repr(v) for v in values}) > 1:
            distributions[column] = CategoricalDistribution(sorted({_choice(v) for v in values}, key=str))
    if not distributions:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per in-memory study on the terminal
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    for row in scored:
        params = {
            name: float(row.searched[name]) if isinstance(d, FloatDistribution) else _choice(row.searched.get(name))
            for name, d in distributions.items()
        }
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=row.best))
    with warnings.catch_warnings():  # PED-ANOVA warns when the top quantile is a single trial
        warnings.simplefilter("ignore")
        # The top trials are at least three of them: the top tenth of a small sweep is one trial,
        # whose every value (its seed too) then looks decisive.
        top = min(1.0, max(0.1, TOP_TRIALS / len(scored)))
        evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=top)
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def ce_only_baseline(rows: Sequence[TrialRow]) -> float | None:
    """The mean best metric of the trials that trained with cross-entropy alone (a sweep's or
    ablation's CE-only variant, or every other weight at 0), or None when the sweep has none."""
    values = [r.best for r in rows if r.best is not None and set(r.config.objective.active_weights()) == {"ce"}]
    return statistics.fmean(values) if values else None


def variant_summary(rows: Sequence[TrialRow], metric: str, mode: Mode) -> tuple[list[str], list[list[str]]] | None:
    """A grid sweep's variants, best mean first: trials, mean ± standard deviation, min and max of
    their best ``metric`` over seeds; None for a sweep that is not a grid or runs one seed each."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        variant = row.searched.get("variant")
        if variant is not None and row.best is not None:
            groups.setdefault(str(variant), []).append(row.best)
    if not groups or max(map(len, groups.values())) < 2:
        return None
    order = sorted(groups, key=lambda v: statistics.fmean(groups[v]), reverse=mode == "max")
    header = ["variant", "trials", f"mean best {metric}", "std", "min", "max"]
    body = []
    for variant in order:
        values = groups[variant]
        spread = f"{statistics.stdev(values):.4f}" if len(values) > 1 else "—"
        extremes = [f"{min(values):.4f}", f"{max(values):.4f}"]
        body.append([variant, str(len(values)), f"{statistics.fmean(values):.4f}", spread, *extremes])
    return header, body


def _choice(value: Any) -> Any:
    """A value Optuna accepts as a categorical choice (None, bool, int, float or str)."""
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)
