"""The two levers ``bench/takeoff.py`` adds to a run: precise BatchNorm statistics and zero-initialised
residual branches."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual

from bench.takeoff import precise_bn, zero_init_residual
from training.models import create_model


def test_precise_bn_sets_the_plain_average_of_the_batches_statistics():
    torch.manual_seed(0)
    norm = nn.BatchNorm1d(3, momentum=0.1)
    batches = [torch.randn(8, 3) * (i + 1) + i for i in range(4)]
    norm.train()
    precise_bn(norm, iter(batches))

    arrays = [b.numpy() for b in batches]
    np.testing.assert_allclose(norm.running_mean.numpy(), np.mean([a.mean(0) for a in arrays], axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm.running_var.numpy(), np.mean([a.var(0, ddof=1) for a in arrays], axis=0), rtol=1e-5)
    assert norm.momentum == 0.1  # training goes on with its own running average


def test_zero_init_residual_makes_every_residual_block_the_identity():
    torch.manual_seed(0)
    model = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=2, shift_div=3)
    zero_init_residual(model)
    model.eval()
    blocks = [m for m in model.modules() if isinstance(m, InvertedResidual) and m.use_res_connect]
    assert blocks
    for block in blocks:
        channels = block.conv[-1].num_features
        x = torch.randn(2, channels, 4, 4)
        torch.testing.assert_close(block(x), x)
