import math

import pytest
import torch

from training.losses.weighting import FixedWeighting, UncertaintyWeighting


def test_fixed_weighting_is_the_weighted_sum():
    terms = {"ce": torch.tensor(2.0), "kd": torch.tensor(3.0)}
    assert FixedWeighting({"ce": 1.0, "kd": 0.5})(terms).item() == pytest.approx(3.5)


def test_uncertainty_weighting_starts_at_the_configured_weights():
    weighting = UncertaintyWeighting({"ce": 1.0, "spectrum": 0.25})
    assert weighting.current_weights() == pytest.approx({"ce": 1.0, "spectrum": 0.25})
    terms = {"ce": torch.tensor(2.0), "spectrum": torch.tensor(4.0)}
    expected = 1.0 * 2.0 + 0.0 + 0.25 * 4.0 + math.log(4.0)
    assert weighting(terms).item() == pytest.approx(expected, rel=1e-6)


def test_uncertainty_weighting_learns_to_down_weight_a_large_term():
    weighting = UncertaintyWeighting({"small": 1.0, "large": 1.0})
    optimizer = torch.optim.SGD(weighting.parameters(), lr=0.1)
    for _ in range(200):
        optimizer.zero_grad()
        weighting({"small": torch.tensor(0.1), "large": torch.tensor(10.0)}).backward()
        optimizer.step()
    weights = weighting.current_weights()
    # The optimum of exp(-s) L + s is s = log L, i.e. weight 1/L.
    assert weights["small"] == pytest.approx(10.0, rel=0.05)
    assert weights["large"] == pytest.approx(0.1, rel=0.05)


def test_uncertainty_weighting_refuses_zero_initial_weight():
    with pytest.raises(ValueError, match="positive initial weights"):
        UncertaintyWeighting({"ce": 0.0})
