"""The gauges a trial publishes reach Prometheus through Ray's own metrics export, tagged with the
sweep, the trial and the student, so a Grafana panel can pick a sweep and compare students."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

pytestmark = pytest.mark.slow


def test_published_gauges_are_exported_with_sweep_trial_and_student_tags(ray_local) -> None:
    import ray

    @ray.remote
    class Trial:  # a process that publishes as a trial does, and stays up while we scrape
        def publish(self) -> None:
            from training.telemetry import TrialGauges

            gauges = TrialGauges(sweep="metrics-sweep", trial_id="abc12_00003", student="tsm_mobilenet_v2")
            gauges.publish({"val_top1": 0.625, "latency_ms_batch1": 4.5, "not_gauged": 1.0})

    trial = Trial.remote()
    ray.get(trial.publish.remote())
    (node,) = [n for n in ray.nodes() if n["Alive"]]
    endpoint = f"http://127.0.0.1:{node['MetricsExportPort']}/metrics"
    pattern = re.compile(r"^ray_specdistill_val_top1\{(?P<tags>[^}]*)\} (?P<value>\S+)$", re.MULTILINE)
    deadline, found = time.monotonic() + 90, None
    while found is None and time.monotonic() < deadline:  # Ray exports every few seconds
        with urllib.request.urlopen(endpoint, timeout=10) as response:
            found = pattern.search(response.read().decode())
        if found is None:
            time.sleep(2)
    assert found is not None, f"no ray_specdistill_val_top1 series at {endpoint} within 90 s"
    tags = dict(re.findall(r'(\w+)="([^"]*)"', found["tags"]))
    assert {k: tags.get(k) for k in ("sweep", "trial_id", "student")} == {
        "sweep": "metrics-sweep",
        "trial_id": "abc12_00003",
        "student": "tsm_mobilenet_v2",
    }
    assert float(found["value"]) == 0.625
    ray.kill(trial)
