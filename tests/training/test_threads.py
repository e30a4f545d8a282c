from __future__ import annotations

import pytest
import torch

from orchestrator.evaluation import cpu_latency_ms
from training.checkpoint import ModelCard
from training.models import create_model
from training.threads import single_threaded_torch


def test_one_thread_inside_and_the_callers_count_restored_even_after_an_error() -> None:
    torch.set_num_threads(2)
    with single_threaded_torch():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), single_threaded_torch():
        raise RuntimeError("decode failed")
    assert torch.get_num_threads() == 2


def test_latency_measurement_leaves_the_callers_thread_count() -> None:
    torch.set_num_threads(2)
    model = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=4).eval()
    card = ModelCard(model="tsm_mobilenet_v2", model_kwargs={}, classes=list("abcd"), num_frames=4, size=16)
    assert cpu_latency_ms((model, card), repeats=3) > 0
    assert torch.get_num_threads() == 2
