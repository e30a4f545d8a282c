"""From uint8 frames to model input: layout and normalisation, against numpy."""

import numpy as np
import pytest
import torch

from training.data.normalise import MEAN, STD, clips_to_tensor, normalise


def test_clips_become_channel_first_and_normalised_per_channel(rng) -> None:
    frames = rng.integers(0, 256, (2, 4, 6, 5, 3), dtype=np.uint8)  # N×T×H×W×3 as decoded
    expected = (frames.astype(np.float64) / 255 - np.array(MEAN)) / np.array(STD)
    got = clips_to_tensor(frames)
    assert got.shape == (2, 3, 4, 6, 5) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected.transpose(0, 4, 1, 2, 3), rtol=1e-5, atol=1e-5)


def test_frames_of_the_wrong_layout_are_refused_with_their_shape() -> None:
    with pytest.raises(ValueError, match=r"…×T×3×H×W frames, got shape \(4, 6, 5\)"):
        normalise(torch.zeros(4, 6, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"N×T×H×W×3 frames, got shape \(2, 4, 6, 5, 4\)"):
        clips_to_tensor(np.zeros((2, 4, 6, 5, 4), dtype=np.uint8))
