"""Shared fixtures: deterministic torch, a local Ray, a small embedded dataset and a teacher for it,
and a real S3 endpoint on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session (start-up costs ~6 s). Four logical CPUs on two cores:
    trials, Train workers and Ray Data tasks each need a CPU slot of their own, or Ray Data's read
    tasks never find one beside a trial and the pipeline hangs. The dashboard stays on: Train V2
    relies on it to clean up after stopped trials."""
    import ray

    ray.init(address="local", num_cpus=4, include_dashboard=True, object_store_memory=300 * 2**20, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def motion_shards(tmp_path_factory: pytest.TempPathFactory):
    """A small embedded dataset on disk (10 classes × 6 clips, 12 frames, 32×32): ``(dir, manifest)``."""
    from training.data.embedded import SynthSpec, write_embedded_dataset
    from training.data.shards import load_manifest

    out = tmp_path_factory.mktemp("motion") / "shards"
    write_embedded_dataset(out, SynthSpec(clips_per_class=6, num_frames=12, size=32, seed=3))
    return out, load_manifest(out)


@pytest.fixture(scope="session")
def exported_teacher(motion_shards, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained ``tsm_resnet18`` exported for ``motion_shards`` (8 frames, 32×32)."""
    from training.checkpoint import ModelCard, export_model
    from training.models import create_model

    _, manifest = motion_shards
    model = create_model("tsm_resnet18", num_classes=len(manifest.classes), num_frames=8)
    card = ModelCard(model="tsm_resnet18", model_kwargs={}, classes=manifest.classes, num_frames=8, size=32)
    return Path(export_model(tmp_path_factory.mktemp("teacher") / "teacher", model, card))


@dataclass(frozen=True)
class S3Endpoint:
    """A running S3-compatible server: ``env`` points boto, pyarrow and Ray's storage at it
    (pass it to subprocesses; Ray processes started with it inherit it)."""

    url: str
    env: dict[str, str]

    def _client(self):  # -> boto3's S3 client, talking to this endpoint only
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        )

    def make_bucket(self, name: str) -> str:
        """Create a bucket and return its ``s3://`` URI."""
        self._client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def get(self, bucket: str, key: str) -> str:
        """An object's text."""
        return self._client().get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def keys(self, bucket: str) -> list[str]:
        """Every object key in the bucket."""
        pages = self._client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """moto's standalone S3 server in a process of its own on 127.0.0.1 (a real HTTP endpoint, not
    an in-process patch of boto or pyarrow), for tests that keep everything in object storage."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        env = {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        yield S3Endpoint(url, env)
    finally:
        server.terminate()
        server.wait(timeout=30)
