"""``bench/decode.py``: seeking decodes the same frames as decoding from the start."""

from __future__ import annotations

import numpy as np
import pytest

from bench.decode import decode_seeking, make_video, reencode
from training.data.codec import decode_clip, probe_clip


@pytest.fixture(scope="module")
def video() -> bytes:
    """Two seconds of 96×64 at 30 fps, a keyframe every 10 frames."""
    return make_video(96, 64, seed=0, gop=10, seconds=2)


@pytest.mark.parametrize("ahead", [0, 12, 1000])
def test_seeking_gives_the_frames_decoding_from_the_start_gives(video: bytes, ahead: int) -> None:
    indices = [3, 17, 18, 41, 59]
    expected = decode_clip(video, indices, short_side=32)
    assert np.array_equal(decode_seeking(video, indices, short_side=32, ahead=ahead), expected)


def test_reencoding_keeps_every_frame_at_the_new_size(video: bytes) -> None:
    info = probe_clip(reencode(video, short_side=32, gop=4))
    assert (info.num_frames, info.height, info.width) == (60, 32, 48)
