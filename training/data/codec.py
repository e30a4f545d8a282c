"""Encoding and decoding clips with PyAV (torchvision 0.29 has no video reader).

Shards keep each clip as its encoded file, so decoding happens in Ray Data workers, which sample
frame indices first and stop decoding after the last one they need.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.video.frame import PictureType


class DecodeError(ValueError):
    """A clip's bytes are not a decodable video (empty, truncated, not video, …)."""


@dataclass(frozen=True)
class ClipInfo:
    """What probing found: the container format PyAV detected and the decoded frame count and size."""

    container: str
    num_frames: int
    height: int
    width: int


def encode_clip(frames: np.ndarray, *, fps: int = 12, qp: int = 18, preset: str = "veryfast") -> bytes:
    """``T×H×W×3`` uint8 RGB → H.264 MP4 bytes (yuv420p, so odd heights/widths lose their last row/column).

    A constant quantiser ``qp`` (not CRF): with CRF the same clip encoded to different bytes
    depending on what the process had done before (other encodes, importing torch, being a forked
    worker), while a seed must give the same dataset in any process. ``qp=18`` keeps the round trip within
    a few grey levels, which tests pin.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected T×H×W×3 uint8 frames, got shape {frames.shape} dtype {frames.dtype}")
    height, width = frames.shape[1] - frames.shape[1] % 2, frames.shape[2] - frames.shape[2] % 2
    if len(frames) == 0 or height == 0 or width == 0:
        raise ValueError(f"cannot encode an empty clip of shape {frames.shape}")
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"qp": str(qp), "preset": preset}
        stream.codec_context.thread_count = 1  # parallelism comes from encoding many clips at once
        for frame in frames:
            rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:height, :width]), format="rgb24")
            container.mux(stream.encode(rgb))
        container.mux(stream.encode())
    return buffer.getvalue()


def _open(data: bytes) -> av.container.InputContainer:
    if not data:
        raise DecodeError("empty file (0 bytes)")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, UnicodeDecodeError) as error:
        raise DecodeError(f"not a readable container: {error}") from error
    if not container.streams.video:
        container.close()
        raise DecodeError(f"no video stream in {container.format.name} container")
    # One decoder thread (and one swscale thread in ``decode_clip``): FFmpeg's default builds a
    # thread pool per clip and per frame conversion, which cost ~20× the decode itself on short
    # clips; parallelism comes from decoding many clips at once instead.
    container.streams.video[0].codec_context.thread_count = 1
    return container


def probe_clip(data: bytes) -> ClipInfo:
    """Decode every frame once to learn the true frame count; headers lie for truncated files and
    WebM often has no count at all, and a truncated file is exactly what ingest must catch."""
    with _open(data) as container:
        stream = container.streams.video[0]
        count, height, width = 0, 0, 0
        try:
            for frame in container.decode(stream):
                count, height, width = count + 1, frame.height, frame.width
        except av.FFmpegError as error:
            raise DecodeError(f"decoding failed after {count} frames: {error}") from error
        if count == 0:
            raise DecodeError(f"no decodable frames in {container.format.name} container")
        return ClipInfo(container=container.format.name.split(",")[0], num_frames=count, height=height, width=width)


def resized(frame: av.VideoFrame, short_side: int | None) -> dict[str, int]:
    """``to_ndarray`` arguments that give ``frame`` a shorter side of ``short_side`` (none for None)."""
    if short_side is None or min(frame.width, frame.height) == short_side:
        return {}
    scale = short_side / min(frame.width, frame.height)
    return {
        "width": max(short_side, round(frame.width * scale)),
        "height": max(short_side, round(frame.height * scale)),
    }


# A gap between two sampled frames longer than this is crossed by seeking to the keyframe before
# the next one instead of decoding every frame in between: 1.3× the clips per core on long-GOP
# 10 s videos, 2.2–4.3× on ones re-encoded with a keyframe every 8 frames (bench/RESULTS.md,
# "Decoding Kinetics-shaped videos"); clips shorter than this never seek.
SEEK_AHEAD = 12


def decode_clip(
    data: bytes, indices: Sequence[int], *, short_side: int | None = None, seek_ahead: int | None = SEEK_AHEAD
) -> np.ndarray:
    """Frames at ``indices`` (any order, repeats allowed) as ``len(indices)×H×W×3`` uint8 RGB.

    ``short_side`` resizes each kept frame inside FFmpeg (cheaper than resizing after) so its
    shorter side has that many pixels, keeping the aspect ratio for the crop that follows. Gaps
    longer than ``seek_ahead`` frames are crossed by seeking (None: never seek), where the frames'
    timestamps map exactly onto frame numbers; a video whose timestamps do not (variable frame
    rate, none at all) is decoded from the start, so either way index ``i`` is the ``i``-th frame.
    Raises ``DecodeError`` when the file cannot be read or ends before the largest index.
    """
    if len(indices) == 0:
        raise ValueError("indices is empty: ask for at least one frame")
    order = sorted(set(indices))
    kept = None
    if seek_ahead is not None and any(b - a > seek_ahead for a, b in zip([-1, *order], order, strict=False)):
        kept = _decode_seeking(data, order, seek_ahead, short_side)
    if kept is None:
        kept = _decode_from_start(data, set(order), order[-1], short_side)
    return np.stack([kept[i] for i in indices])


def _decode_from_start(data: bytes, wanted: set[int], last: int, short_side: int | None) -> dict[int, np.ndarray]:
    kept: dict[int, np.ndarray] = {}
    with _open(data) as container:
        stream = container.streams.video[0]
        position = -1
        try:
            for position, frame in enumerate(container.decode(stream)):
                if position in wanted:
                    kept[position] = frame.to_ndarray(format="rgb24", threads=1, **resized(frame, short_side))
                if position >= last:
                    break
        except av.FFmpegError as error:
            raise DecodeError(f"decoding failed at frame {position + 1}: {error}") from error
    if last not in kept:
        raise DecodeError(f"clip has {position + 1} decodable frames, index {last} requested")
    return kept


def _decode_seeking(data: bytes, order: list[int], ahead: int, short_side: int | None) -> dict[int, np.ndarray] | None:
    """``order``'s frames (sorted, distinct), seeking across long gaps; None where the timestamps
    cannot be trusted to number the frames (the caller then decodes from the start)."""
    kept: dict[int, np.ndarray] = {}
    with _open(data) as container:
        stream = container.streams.video[0]
        rate, base, start = stream.average_rate, stream.time_base, stream.start_time
        if not rate or base is None or start is None:
            return None
        frames, position = None, -1
        try:
            for target in order:
                if frames is None or target - position > ahead:
                    container.seek(start + int(target / rate / base), stream=stream, backward=True)
                    frames = container.decode(stream)
                for frame in frames:
                    if frame.pts is None:
                        return None
                    position = round((frame.pts - start) * base * rate)
                    if position >= target:
                        break
                else:
                    return None  # ended before the target: let the plain decode say how many frames there are
                if position != target:
                    return None  # a frame number the timestamps skipped: they do not count frames
                kept[target] = frame.to_ndarray(format="rgb24", threads=1, **resized(frame, short_side))
        except av.FFmpegError:
            return None
    return kept


def reencode_clip(
    data: bytes, *, short_side: int, gop: int, qp: int = 28, preset: str = "veryfast"
) -> tuple[bytes, int]:
    """A video re-encoded for training: H.264 MP4 at a constant frame rate, scaled down (never up)
    so its shorter side has ``short_side`` pixels, a keyframe every ``gop`` frames (so a sampled
    frame is at most ``gop - 1`` frames of decoding after a seek). Returns the bytes and the frame
    count; raises ``DecodeError`` for a source that is not a readable video, as ``probe_clip`` does.

    A constant quantiser, as in ``encode_clip``: the same source gives the same bytes in any process
    (CRF does not). ``qp`` 28 gives about CRF 23's bytes, and half of ``qp`` 23's, which also
    decodes at half the speed (``bench/decode.py`` on 640×360 sources: 1.4 MB and 28 clips/s a
    core against 4.1 MB and 12).
    """
    buffer = io.BytesIO()
    count = 0
    with _open(data) as source, av.open(buffer, mode="w", format="mp4") as target:
        video = source.streams.video[0]
        width, height = video.codec_context.width, video.codec_context.height
        if not width or not height:
            raise DecodeError("the video stream has no frame size")
        scale = min(1.0, short_side / min(width, height))
        width, height = max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))
        rate = video.average_rate or Fraction(25)
        stream = target.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # sc_threshold 0: no extra keyframes at scene cuts, so every GOP has the same length.
        stream.options = {"qp": str(qp), "preset": preset, "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        stream.codec_context.thread_count = 1  # parallelism comes from encoding many clips at once
        try:
            for frame in source.decode(video):
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = count, 1 / rate  # numbered afresh at the constant rate
                scaled.pict_type = PictureType.NONE  # the source's keyframes are not the new GOP's
                target.mux(stream.encode(scaled))
                count += 1
        except av.FFmpegError as error:
            raise DecodeError(f"decoding failed after {count} frames: {error}") from error
        if count == 0:
            raise DecodeError(f"no decodable frames in {source.format.name} container")
        target.mux(stream.encode())
    return buffer.getvalue(), count
