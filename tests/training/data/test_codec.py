from __future__ import annotations

import numpy as np
import pytest

from training.data.codec import DecodeError, decode_clip, encode_clip, probe_clip
from training.data.embedded import render_clip


def _smooth_clip(frames: int = 8, height: int = 48, width: int = 64) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([np.stack([yy * 3 + 4 * t, xx * 3, 128 + 0 * xx], -1) for t in range(frames)]).astype(np.uint8)


def test_round_trip_of_smooth_frames_is_within_three_grey_levels_on_average() -> None:
    clip = _smooth_clip()
    decoded = decode_clip(encode_clip(clip), range(len(clip)))
    error = np.abs(decoded.astype(int) - clip)
    assert decoded.shape == clip.shape
    assert error.mean() < 3 and error.max() <= 16


def test_round_trip_of_noisy_generated_clip_is_within_ten_grey_levels_on_average() -> None:
    # The generated clips carry sensor-like noise (σ≈8 grey levels) that H.264 partly smooths away.
    clip = render_clip(4, np.random.default_rng(0), num_frames=8, size=32)
    decoded = decode_clip(encode_clip(clip), range(8))
    assert np.abs(decoded.astype(int) - clip).mean() < 10


def test_probe_counts_frames_and_reads_size() -> None:
    info = probe_clip(encode_clip(_smooth_clip(frames=11)))
    assert (info.num_frames, info.height, info.width) == (11, 48, 64)


def test_decode_returns_requested_indices_in_order_with_repeats() -> None:
    clip = _smooth_clip(frames=6)
    data = encode_clip(clip)
    everything = decode_clip(data, range(6))
    picked = decode_clip(data, [4, 1, 1, 5])
    np.testing.assert_array_equal(picked, everything[[4, 1, 1, 5]])


def test_decode_resizes_short_side_and_keeps_aspect_ratio() -> None:
    frames = decode_clip(encode_clip(_smooth_clip(height=48, width=64)), [0], short_side=24)
    assert frames.shape == (1, 24, 32, 3)


def test_encode_crops_odd_sizes_to_even() -> None:
    info = probe_clip(encode_clip(_smooth_clip(height=33, width=45)))
    assert (info.height, info.width) == (32, 44)


@pytest.mark.parametrize(
    ("name", "corrupt"),
    [
        ("empty", lambda data: b""),
        ("text", lambda data: b"this is a README, not a video\n" * 10),
        ("random bytes", lambda data: np.random.default_rng(0).bytes(4000)),
        ("truncated", lambda data: data[: len(data) // 2]),
    ],
)
def test_broken_data_raises_decode_error(name: str, corrupt) -> None:
    data = corrupt(encode_clip(_smooth_clip()))
    with pytest.raises(DecodeError):
        probe_clip(data)
    with pytest.raises(DecodeError):
        decode_clip(data, [0])


def test_decode_past_the_last_frame_names_the_frame_count() -> None:
    with pytest.raises(DecodeError, match="4 decodable frames, index 9"):
        decode_clip(encode_clip(_smooth_clip(frames=4)), [0, 9])


def test_encode_rejects_wrong_dtype_and_shape() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_clip(np.zeros((4, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="T×H×W×3"):
        encode_clip(np.zeros((4, 8, 8), dtype=np.uint8))
