import pytest
import torch

from training.models import create_model
from training.models.temporal_shift import TemporalShift, temporal_shift


def test_temporal_shift_matches_hand_computed_shift():
    # one clip, T=3 frames, C=4 channels (shift_div=4 → one channel each way), 1×1 pixels; value = 10·t + c
    frames = torch.tensor([[10.0 * t + c for c in range(4)] for t in range(3)]).view(3, 4, 1, 1)
    shifted = temporal_shift(frames, num_frames=3, shift_div=4).view(3, 4)
    expected = torch.tensor(
        [
            [10.0, 0.0, 2.0, 3.0],  # channel 0 ← frame 1; channel 1 ← (before frame 0) zero
            [20.0, 1.0, 12.0, 13.0],  # channel 0 ← frame 2; channel 1 ← frame 0
            [0.0, 11.0, 22.0, 23.0],  # channel 0 ← (after the last frame) zero; channel 1 ← frame 1
        ]
    )
    torch.testing.assert_close(shifted, expected)


def test_temporal_shift_keeps_clips_apart_in_a_batch():
    frames = torch.arange(2 * 2 * 2, dtype=torch.float32).view(4, 2, 1, 1)  # 2 clips × 2 frames × 2 channels
    shifted = temporal_shift(frames, num_frames=2, shift_div=2).view(2, 2, 2)
    torch.testing.assert_close(shifted, torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[6.0, 0.0], [0.0, 5.0]]]))


def test_temporal_shift_refuses_a_batch_that_is_not_whole_clips():
    with pytest.raises(ValueError, match="not a multiple of num_frames=4"):
        temporal_shift(torch.zeros(6, 8, 1, 1), num_frames=4, shift_div=8)


def test_temporal_shift_module_refuses_shift_div_below_two():
    with pytest.raises(ValueError, match="shift_div"):
        TemporalShift(torch.nn.Identity(), num_frames=4, shift_div=1)


@pytest.mark.parametrize("name", ["tsm_resnet18", "tsm_mobilenet_v2"])
def test_tsm_logits_depend_on_frame_order_but_a_no_shift_model_ignores_it(name):
    clips = torch.randn(2, 3, 4, 32, 32)
    reordered = clips[:, :, torch.tensor([2, 0, 3, 1])]
    # Train-mode BatchNorm (batch statistics are permutation-invariant too): an untrained MobileNetV2
    # in eval mode saturates its ReLU6s and returns the same logits for every input.
    tsm = create_model(name, num_classes=5, num_frames=4)
    no_shift = create_model(name, num_classes=5, num_frames=4, shift_div=0)
    with torch.no_grad():
        assert (tsm(clips).logits - tsm(reordered).logits).abs().max() > 1e-4
        torch.testing.assert_close(no_shift(clips).logits, no_shift(reordered).logits, atol=1e-5, rtol=1e-5)
