"""Mixed precision is decided in one place: bf16 autocast on CUDA only."""

import torch

from training.precision import Precision


def test_the_cpu_runs_in_full_precision_even_when_amp_is_asked_for() -> None:
    precision = Precision.for_device(torch.device("cpu"), amp=True)
    assert not precision.amp
    layer = torch.nn.Linear(4, 2)
    with precision.autocast():
        assert layer(torch.randn(3, 4)).dtype == torch.float32
