"""Accuracy against cost: the trials no other trial beats on both (the Pareto front), and the
trials a deployment budget admits. Costs are what each trial reported of its trained model
(``training.models.describe.cost``): latency at batch 1 on the trial's device, GFLOPs per clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.selection import RankedTrial

LATENCY = "latency_ms_batch1"
GFLOPS = "gflops_per_clip"


@dataclass(frozen=True)
class Budget:
    """The most a deployment can pay per clip; ``None`` leaves that cost free."""

    max_latency_ms: float | None = None
    max_gflops: float | None = None

    def __post_init__(self) -> None:
        for name, limit in (("--max-latency-ms", self.max_latency_ms), ("--max-gflops", self.max_gflops)):
            if limit is not None and not limit > 0:
                raise ValueError(f"{name} must be a positive number, got {limit:g}")

    @property
    def limits(self) -> dict[str, float]:
        pairs = ((LATENCY, self.max_latency_ms), (GFLOPS, self.max_gflops))
        return {key: limit for key, limit in pairs if limit is not None}

    def __str__(self) -> str:
        return ", ".join(f"{key} ≤ {limit:g}" for key, limit in self.limits.items()) or "no budget"


NO_BUDGET = Budget()


def with_costs(trials: Sequence[RankedTrial], keys: Sequence[str]) -> list[RankedTrial]:
    """The trials whose chosen result reports every cost in ``keys``; refuses a sweep where none
    does (one run before trials reported their costs)."""
    costed = [t for t in trials if all(isinstance(t.result.get(key), int | float) for key in keys)]
    if trials and not costed:
        raise ValueError(
            f"no trial reported {' and '.join(keys)}: the sweep ran before trials reported their model's cost"
        )
    return costed


def admitted(trials: Sequence[RankedTrial], budget: Budget) -> list[RankedTrial]:
    """The trials within ``budget``, in their order (best first stays best first)."""
    limits = budget.limits
    return [t for t in with_costs(trials, list(limits)) if all(t.result[key] <= cap for key, cap in limits.items())]


def pareto_front(trials: Sequence[RankedTrial], metric: str, mode: str, cost: str = LATENCY) -> list[RankedTrial]:
    """Trials that no other trial matches or beats on ``metric`` while costing no more, with one of
    the two strictly better; cheapest first. Trials tied on both are all kept."""
    sign = 1.0 if mode == "max" else -1.0
    points = [(t, sign * float(t.result[metric]), float(t.result[cost])) for t in with_costs(trials, [cost])]
    front = [
        (trial, score, price)
        for trial, score, price in points
        if not any(s >= score and p <= price and (s > score or p < price) for _, s, p in points)
    ]
    return [trial for trial, _, _ in sorted(front, key=lambda point: (point[2], -point[1]))]
