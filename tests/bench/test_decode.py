"""``bench/decode.py``'s videos: Kinetics-shaped clips on which the shipped seeking decode must give
exactly the frames decoding from the start gives, whatever the gap it seeks across."""

from __future__ import annotations

import numpy as np
import pytest

from bench.decode import make_video
from training.data.codec import decode_clip, probe_clip, reencode_clip


@pytest.fixture(scope="module")
def video() -> bytes:
    """Two seconds of 96×64 at 30 fps, a keyframe every 10 frames."""
    return make_video(96, 64, seed=0, gop=10, seconds=2)


@pytest.mark.parametrize("ahead", [0, 12, 1000])
def test_seeking_gives_the_frames_decoding_from_the_start_gives(video: bytes, ahead: int) -> None:
    indices = [3, 17, 18, 41, 59]
    expected = decode_clip(video, indices, short_side=32, seek_ahead=None)
    assert np.array_equal(decode_clip(video, indices, short_side=32, seek_ahead=ahead), expected)
    short, _ = reencode_clip(video, short_side=32, gop=4)
    assert np.array_equal(decode_clip(short, indices, seek_ahead=ahead), decode_clip(short, indices, seek_ahead=None))


def test_the_videos_have_the_shape_asked_for(video: bytes) -> None:
    info = probe_clip(video)
    assert (info.num_frames, info.height, info.width) == (60, 64, 96)
