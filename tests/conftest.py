"""Shared fixtures: deterministic torch, a local Ray, a small embedded dataset and a teacher for it,
and a real S3 endpoint on 127.0.0.1."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from bench._s3 import S3Server, s3_server


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
    """A small embedded dataset on disk (10 classes × 7 clips, 12 frames, 32×32; per class 5 train,
    1 tune, 1 test): ``(dir, manifest)``."""
    from training.data.embedded import SynthSpec, write_embedded_dataset
    from training.data.shards import load_manifest

    out = tmp_path_factory.mktemp("motion") / "shards"
    write_embedded_dataset(out, SynthSpec(clips_per_class=7, num_frames=12, size=32, seed=3))
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


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 endpoint for the session: moto's standalone server in a process of its own on
    127.0.0.1 (an HTTP server, not an in-process patch of boto or pyarrow)."""
    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def storage_root(request, tmp_path: Path, monkeypatch) -> str:
    """An empty place to write: a local directory, or a fresh bucket on the session's S3 server."""
    if request.param == "local":
        return str(tmp_path)
    server = request.getfixturevalue("s3_endpoint")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    return server.make_bucket(f"storage-{secrets.token_hex(6)}")


class SmallFilesystems:
    """Fresh tmpfs mounts for writes that fail the way a full disk makes them fail (ENOSPC)."""

    def __init__(self, root: Path) -> None:
        self.root, self.mounted = root, []

    def mount(self, mib: int) -> Path:
        """A tmpfs of ``mib`` MiB. Mounting needs root, which these machines and their CI run as;
        elsewhere the test is skipped, saying why."""
        point = self.root / f"small{len(self.mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}): needs root")
        self.mounted.append(point)
        return point

    @staticmethod
    def fill(directory: Path, leave_bytes: int) -> Path:
        """Take all but ``leave_bytes`` of the free space of ``directory``'s filesystem; returns the filler."""
        filler = directory / "filler"
        filler.write_bytes(bytes(max(0, shutil.disk_usage(directory).free - leave_bytes)))
        return filler

    def unmount_all(self) -> None:
        for point in self.mounted:
            subprocess.run(["umount", "--lazy", str(point)], check=True)


@pytest.fixture
def small_filesystems(tmp_path: Path) -> Iterator[SmallFilesystems]:
    filesystems = SmallFilesystems(tmp_path)
    yield filesystems
    filesystems.unmount_all()
