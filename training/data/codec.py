"""Encoding and decoding clips with PyAV (torchvision 0.29 has no video reader).

Shards keep each clip as its encoded file, so decoding happens in Ray Data workers, which sample
frame indices first and stop decoding after the last one they need.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import av
import numpy as np


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


def decode_clip(data: bytes, indices: Sequence[int], *, short_side: int | None = None) -> np.ndarray:
    """Frames at ``indices`` (any order, repeats allowed) as ``len(indices)×H×W×3`` uint8 RGB.

    ``short_side`` resizes each kept frame inside FFmpeg (cheaper than resizing after) so its
    shorter side has that many pixels, keeping the aspect ratio for the crop that follows.
    Raises ``DecodeError`` when the file cannot be read or ends before the largest index.
    """
    if len(indices) == 0:
        raise ValueError("indices is empty: ask for at least one frame")
    wanted = set(indices)
    last = max(indices)
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
    return np.stack([kept[i] for i in indices])
