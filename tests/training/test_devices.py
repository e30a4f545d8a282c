"""``train.device`` is obeyed, and asking for CUDA where it cannot be used fails with the reason."""

from __future__ import annotations

import pytest
import torch

from orchestrator.config import SweepConfig
from training.devices import DeviceUnusable, resolve_device
from training.failures import is_deterministic

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the failure where CUDA is unusable")


@needs_no_cuda
def test_cuda_asked_for_or_reserved_where_it_is_unusable_fails_with_torch_s_reason() -> None:
    with pytest.raises(DeviceUnusable, match=r"^train\.device is cuda, but CUDA is unusable here: .*CUDA 13") as caught:
        resolve_device("cuda")
    assert not is_deterministic(caught.value)  # a property of the node: Tune's retry may land on another
    with pytest.raises(DeviceUnusable, match=r"^the trial reserved a GPU, but CUDA is unusable here"):
        resolve_device("auto", gpu_reserved=True)


@needs_no_cuda
def test_auto_and_cpu_train_on_the_cpu_here() -> None:
    assert resolve_device("auto") == resolve_device("cpu") == torch.device("cpu")


def _sweep(device: str, gpus: float) -> dict:
    train = {"stage": "teacher", "data": {"path": "d"}, "model": "tsm_resnet18", "device": device}
    return {"name": "s", "train": train, "resources": {"gpus_per_worker": gpus}}


@pytest.mark.parametrize(
    ("device", "gpus", "match"),
    [
        ("cuda", 0, "train.device is cuda but resources.gpus_per_worker is 0"),
        ("cpu", 1, "train.device is cpu but resources.gpus_per_worker is 1: those GPUs would sit idle"),
    ],
)
def test_a_device_that_contradicts_the_reservation_is_refused(device: str, gpus: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SweepConfig.model_validate(_sweep(device, gpus))
    SweepConfig.model_validate(_sweep("auto", gpus))
