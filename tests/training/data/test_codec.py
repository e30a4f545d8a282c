from __future__ import annotations

import numpy as np
import pytest

from training.data.codec import DecodeError, decode_clip, encode_clip, probe_clip, reencode_clip
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


def _long_video(gop: int, frames: int = 90, fps: int = 30) -> bytes:
    """A texture panning across 96×64 frames (every frame different), H.264 with B-frames and a
    keyframe every ``gop`` frames: what a seek has to land in exactly."""
    import io

    import av

    rng = np.random.default_rng(gop)
    texture = rng.integers(0, 256, (64 + frames, 96 + frames, 3), dtype=np.uint8)  # pans a pixel a frame
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"preset": "veryfast", "qp": "20", "g": str(gop), "bf": "2"}
        for k in range(frames):
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[k : k + 64, k : k + 96]), "rgb24")
            container.mux(stream.encode(image))
        container.mux(stream.encode())
    return buffer.getvalue()


@pytest.mark.parametrize("gop", [250, 8])
def test_seeking_gives_exactly_the_frames_decoding_from_the_start_gives(gop: int, rng) -> None:
    data = _long_video(gop)
    for _ in range(6):
        indices = sorted(rng.choice(90, size=6, replace=False).tolist())
        seeking = decode_clip(data, indices, short_side=32)
        plain = decode_clip(data, indices, short_side=32, seek_ahead=None)
        np.testing.assert_array_equal(seeking, plain)
    with pytest.raises(DecodeError, match="clip has 90 decodable frames, index 120 requested"):
        decode_clip(data, [5, 120])


def test_reencoding_scales_down_keeps_every_frame_and_puts_a_keyframe_every_gop() -> None:
    import io

    import av

    source = _long_video(250, frames=300)  # long enough for the encoder's lookahead to fill (it once failed there)
    data, count = reencode_clip(source, short_side=32, gop=8)
    assert count == 300 and probe_clip(data).num_frames == 300
    info = probe_clip(data)
    assert (info.height, info.width) == (32, 48)  # 64×96 scaled to a short side of 32
    with av.open(io.BytesIO(data)) as container:
        keyframes = [i for i, p in enumerate(p for p in container.demux(video=0) if p.size) if p.is_keyframe]
    assert keyframes == list(range(0, 300, 8))
    original = decode_clip(source, [44, 45, 46], short_side=32).astype(int)
    (again,) = decode_clip(data, [45]).astype(int)
    distances = [np.abs(again - frame).mean() for frame in original]
    assert distances[1] < min(distances[0], distances[2]), distances  # frame 45 is still frame 45
    assert reencode_clip(source, short_side=256, gop=8)[0] != source  # never scaled up, still re-encoded
    assert probe_clip(reencode_clip(source, short_side=256, gop=8)[0]).height == 64
    with pytest.raises(DecodeError):
        reencode_clip(b"not a video at all", short_side=32, gop=8)
