"""Trial metrics as Ray metrics gauges, so trials can be compared live in the Ray dashboard.

Ray 2.60's dashboard has no Tune or Train tab; its Metrics view (Prometheus + Grafana) shows any
``ray.util.metrics`` gauge. Each gauge is tagged with the sweep's name, the trial id and the model
the trial trains (the student; the teacher in a teacher sweep), one series per trial, so a Grafana
panel can pick a sweep and compare students.
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
    "latency_ms_batch1": "forward time of one clip of the trained model, on its trial's device",
    "gflops_per_clip": "forward GFLOPs of one clip of the trained model",
}
TAG_KEYS = ("sweep", "trial_id", "student")
_GAUGES: dict[str, Gauge] = {}


def _gauge(name: str) -> Gauge:
    # One Gauge object per name and process: Ray registers a metric once per name.
    if name not in _GAUGES:
        _GAUGES[name] = Gauge(f"specdistill_{name}", description=GAUGED[name], tag_keys=TAG_KEYS)
    return _GAUGES[name]


class TrialGauges:
    """One trial's gauges: ``publish`` sets those of its reported metrics that are gauged."""

    def __init__(self, *, sweep: str, trial_id: str, student: str) -> None:
        self.tags = {"sweep": sweep, "trial_id": trial_id, "student": student}

    def publish(self, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if name in GAUGED:
                _gauge(name).set(float(value), tags=self.tags)
