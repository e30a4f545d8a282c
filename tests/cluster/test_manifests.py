"""The files in cluster/ are valid for the tools that read them, and agree with the product:
`ray up`'s own schema, KubeRay's RayJob shape with sweep configs the CLI accepts, a Grafana
dashboard over the gauges training/telemetry.py exports, and the local-head script's checks.
No cloud, Kubernetes or Ray cluster is involved."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from orchestrator.config import SweepConfig
from search_spaces import load_space
from training.telemetry import GAUGED, TAG_KEYS

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


def _rayjob_documents() -> dict[str, dict]:
    documents = [d for d in yaml.safe_load_all((CLUSTER / "kuberay-rayjob.yaml").read_text()) if d]
    return {d["kind"]: d for d in documents}


def _container(pod_template: dict) -> dict:
    (container,) = pod_template["spec"]["containers"]
    return container


def test_cluster_yaml_passes_ray_ups_schema_validation() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())
    validate_config(prepare_config(config))  # raises on an unknown or mistyped field
    assert config["provider"]["type"] == "aws"


def test_cluster_yaml_has_a_cpu_head_and_autoscaled_gpu_workers() -> None:
    config = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"].get("GPU", 0) == 0
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert any(t["resources"].get("GPU", 0) >= 1 and t["min_workers"] < t["max_workers"] for t in workers)


def test_cluster_yaml_starts_every_node_with_token_auth_and_metrics() -> None:
    config = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())
    head, worker = " ".join(config["head_start_ray_commands"]), " ".join(config["worker_start_ray_commands"])
    for commands in (head, worker):
        assert "RAY_AUTH_MODE=token" in commands and "--metrics-export-port" in commands
    assert "--dashboard-host" in head
    assert any(remote.endswith(".ray/auth_token") for remote in config["file_mounts"])


def test_rayjob_manifest_holds_a_configmap_and_a_rayjob() -> None:
    documents = _rayjob_documents()
    assert set(documents) == {"ConfigMap", "RayJob"}
    job = documents["RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    assert "specdistill sweep /config/sweep.yaml" in spec["entrypoint"]
    assert spec["rayClusterSpec"]["authOptions"]["mode"] == "token"


def test_rayjob_head_is_cpu_only_and_workers_get_one_gpu_each() -> None:
    cluster = _rayjob_documents()["RayJob"]["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert "nvidia.com/gpu" not in _container(head["template"])["resources"]["limits"]
    (gpu_group,) = cluster["workerGroupSpecs"]
    assert _container(gpu_group["template"])["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_rayjob_mounts_its_configmap_where_the_entrypoint_reads_it() -> None:
    documents = _rayjob_documents()
    template = documents["RayJob"]["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in _container(template)["volumeMounts"]}
    assert volumes[mounts["/config"]]["configMap"]["name"] == documents["ConfigMap"]["metadata"]["name"]


@pytest.mark.parametrize("name", ["teacher.yaml", "sweep.yaml"])
def test_rayjob_sweep_configs_are_valid_and_keep_everything_in_object_storage(name: str) -> None:
    payload = yaml.safe_load(_rayjob_documents()["ConfigMap"]["data"][name])
    config = SweepConfig.model_validate(payload)
    locations = [config.storage_path, config.train.data.path, *config.train.teachers]
    assert all(location.startswith("s3://") for location in locations), locations
    if config.train.stage == "distill":
        load_space(config.search_space).check_against(config.train)


def test_rayjob_assumes_no_shared_disk_and_gives_every_pod_the_storage_credentials() -> None:
    job = _rayjob_documents()["RayJob"]
    cluster = job["spec"]["rayClusterSpec"]
    templates = [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]
    for template in templates:
        assert not any("persistentVolumeClaim" in volume for volume in template["spec"]["volumes"])
        assert _container(template)["envFrom"][0]["secretRef"]["name"] == "specdistill-s3"
    paths = [word for word in job["spec"]["entrypoint"].split() if "/" in word and not word.startswith("/config/")]
    assert paths and all(p.rstrip(";'").startswith("s3://") for p in paths), paths


def test_cluster_yaml_gives_head_and_workers_access_to_the_bucket_and_installs_the_package() -> None:
    config = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())
    for node_type in config["available_node_types"].values():
        assert "IamInstanceProfile" in node_type["node_config"]
    assert any("pip install" in command and "specdistill" in command for command in config["setup_commands"])
    (gpu_type,) = [t for t in config["available_node_types"].values() if t["resources"].get("GPU")]
    assert gpu_type["resources"]["GPU"] == 1


def test_grafana_dashboard_has_a_per_trial_panel_for_every_gauge() -> None:
    dashboard = json.loads((CLUSTER / "grafana-specdistill.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for metric in GAUGED:
        # Ray exports a ray.util.metrics Gauge named specdistill_<metric> as ray_specdistill_<metric>.
        by_tags = "by (sweep, student, trial_id)"
        assert any(f"ray_specdistill_{metric}{{" in e and by_tags in e for e in expressions), metric
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert set(TAG_KEYS) <= set(variables)  # pick a sweep, a student, trials
    for tag in TAG_KEYS:
        assert all(f'{tag}=~"${tag}"' in e for e in expressions), tag


def test_prometheus_scrapes_what_ray_discovers_and_grafana_provisions_the_dashboard() -> None:
    from ray._private.ray_constants import PROMETHEUS_SERVICE_DISCOVERY_FILE

    prometheus = yaml.safe_load((CLUSTER / "prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["file_sd_configs"][0]["files"] == [f"/tmp/ray/{PROMETHEUS_SERVICE_DISCOVERY_FILE}"]
    provisioning = CLUSTER / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "specdistill.yaml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus" and source["url"].endswith(":9090")
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "specdistill.yaml").read_text())["providers"]
    # The provider loads every dashboard JSON in the folder it is pointed at: cluster/ holds exactly ours.
    assert provider["options"]["path"] == "${SPECDISTILL_DASHBOARDS}"
    assert [p.name for p in CLUSTER.glob("*.json")] == ["grafana-specdistill.json"]


def _start_head(*args: str, **env: str) -> subprocess.CompletedProcess:
    # RAY=false: should a check regress, the script fails instead of starting a real head.
    return subprocess.run(
        [str(CLUSTER / "start-local-head.sh"), *args],
        env=os.environ | {"RAY": "false"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_local_head_script_is_valid_bash_and_executable() -> None:
    script = CLUSTER / "start-local-head.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    result = _start_head("--help")
    assert result.returncode == 0 and "Usage:" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--bogus"], {}, "unknown option"),
        (["--port"], {}, "--port needs a value"),
        (["--temp-dir", "/tmp/" + "x" * 60], {}, "too long"),
        ([], {"RAY_AUTH_MODE": "disabled"}, "only starts heads with token auth"),
    ],
)
def test_start_local_head_refuses_bad_settings_before_starting_ray(args, env, message) -> None:
    result = _start_head(*args, **env)
    assert result.returncode == 2 and message in result.stderr


def test_no_port_is_opened_beyond_the_cluster_network() -> None:
    """The metrics port has no authentication: KubeRay's head Service stays ClusterIP, and the AWS
    nodes keep the security group ``ray up`` makes (SSH from anywhere, every port only between
    the cluster's own nodes), with no group of their own that could open more."""
    cluster = _rayjob_documents()["RayJob"]["spec"]["rayClusterSpec"]
    assert cluster["headGroupSpec"]["serviceType"] == "ClusterIP"
    config = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())
    for node_type in config["available_node_types"].values():
        assert "SecurityGroupIds" not in node_type["node_config"]
        assert "NetworkInterfaces" not in node_type["node_config"]
    assert "security_group" not in config["provider"]
