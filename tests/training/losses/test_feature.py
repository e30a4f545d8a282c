"""The FitNets baseline: mean over tap pairs of the element-wise MSE, against numpy."""

import numpy as np
import pytest
import torch

from training.distiller import Distiller
from training.losses import ObjectiveConfig
from training.losses.feature import feature_loss
from training.models import create_model


def test_feature_loss_is_the_mean_over_pairs_of_the_elementwise_mse(rng) -> None:
    pairs = [(rng.standard_normal((2, 3, 4, 5, 5)), rng.standard_normal((2, 3, 4, 5, 5))) for _ in range(3)]
    expected = np.mean([np.mean((s - t) ** 2) for s, t in pairs])
    got = feature_loss([torch.tensor(s) for s, _ in pairs], [torch.tensor(t) for _, t in pairs])
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_tap_pairs_of_different_shapes_or_counts_are_refused() -> None:
    with pytest.raises(ValueError, match=r"tap pair 0: adapted student \(1, 2\) and teacher \(1, 3\) differ"):
        feature_loss([torch.zeros(1, 2)], [torch.zeros(1, 3)])
    with pytest.raises(ValueError, match="matching, non-empty tap lists"):
        feature_loss([], [])


def test_the_feature_term_trains_only_the_student_and_its_adapters() -> None:
    student = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=4, width_mult=0.5)
    teacher = create_model("tsm_resnet18", num_classes=4, num_frames=4)
    distiller = Distiller(student, [teacher], objective=ObjectiveConfig(terms=["feature"], feature_weight=1.0))
    adapter = distiller.objective.adapters["t0:stage3->stage3"].project.weight.detach().clone()
    metrics = distiller.step(torch.randn(2, 3, 4, 32, 32), torch.tensor([0, 1])).metrics
    assert set(metrics) == {"loss", "feature"} and metrics["feature"] > 0
    assert not torch.equal(distiller.objective.adapters["t0:stage3->stage3"].project.weight, adapter)
