"""Trial metrics as Ray metrics gauges, so trials can be compared live in the Ray dashboard.

Ray 2.60's dashboard has no Tune or Train tab; its Metrics view (Prometheus + Grafana) shows any
``ray.util.metrics`` gauge. Each gauge is tagged with the trial id, one series per trial.
"""

from __future__ import annotations

from ray.util.metrics import Gauge

GAUGED = {
    "val_top1": "held-out top-1 accuracy",
    "val_top5": "held-out top-5 accuracy",
    "val_loss": "held-out cross-entropy",
    "train_loss": "mean training objective over the epoch",
    "clips_per_s": "training throughput of this worker group",
    "skipped_clips": "clips that failed to decode and were skipped, cumulative",
    "epoch": "epochs completed",
}
_GAUGES: dict[str, Gauge] = {}


def _gauge(name: str) -> Gauge:
    # One Gauge object per name and process: Ray registers a metric once per name.
    if name not in _GAUGES:
        _GAUGES[name] = Gauge(f"specdistill_{name}", description=GAUGED[name], tag_keys=("trial_id",))
    return _GAUGES[name]


class TrialGauges:
    def __init__(self, trial_id: str) -> None:
        self.tags = {"trial_id": trial_id}

    def publish(self, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if name in GAUGED:
                _gauge(name).set(float(value), tags=self.tags)
