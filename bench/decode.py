"""How many 8×224² training clips one CPU core decodes from Kinetics-shaped videos, by data path.

A ResNet-50 → MobileNetV2 distillation step at 8×224² takes ~166 ms for 32 clips on an H100
(``bench/RESULTS.md``): a GPU wants ~190 clips/s. This measures what one core delivers from
videos shaped like Kinetics' (10 s at 30 fps, 340×256 and 640×360, H.264 with x264's default
250-frame GOP, textured content in motion), TSN-sampling 8 frames per clip and resizing them to a
short side of 256 (the crop to 224 costs nothing beside decoding):

  from start   ``decode_clip(seek_ahead=None)``: decodes from the start up to the last sampled
               frame (what the code did before it learned to seek)
  seek         ``decode_clip`` as shipped: seeks to the keyframe before each sampled frame more
               than ``--ahead`` frames ahead, and decodes forward from there
  reencoded    the videos as ``specdistill ingest`` stores them by default
               (``codec.reencode_clip``: short side 256, a keyframe every ``--gop`` frames),
               read with ``decode_clip`` as shipped

It prints clips/s on one core for each, the cores one GPU at 190 clips/s would need, the bytes per
video, and the seconds ingest spends re-encoding one video.

    python bench/decode.py [--videos 4] [--clips 48] [--ahead 12] [--gop 8]
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable, Sequence

import av
import numpy as np

from training.data.codec import decode_clip, reencode_clip
from training.data.sampling import tsn_indices

FPS, SECONDS, FRAMES_PER_CLIP, SHORT_SIDE = 30, 10, 8, 256
SIZES = ((340, 256), (640, 360))
GPU_CLIPS_PER_S = 190.0


def make_video(width: int, height: int, *, seed: int, gop: int = 250, fps: int = FPS, seconds: int = SECONDS) -> bytes:
    """A texture panning across the frame, encoded as H.264 (x264 defaults but for ``gop``)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (height + 64, width + 64, 3), dtype=np.uint8)
    texture = (texture.astype(np.float32) * 0.6 + np.linspace(0, 100, width + 64)[None, :, None]).astype(np.uint8)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(gop), "keyint_min": str(min(gop, 25))}
        for k in range(fps * seconds):
            x, y = (2 * k) % 64, k % 64
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[y : y + height, x : x + width]), "rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def clips_per_second(videos: list[bytes], clips: int, decode: Callable[[bytes, Sequence[int]], np.ndarray]) -> float:
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for k in range(clips):
        decode(videos[k % len(videos)], sorted(tsn_indices(FPS * SECONDS, FRAMES_PER_CLIP, rng).tolist()))
    return clips / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=4, help="videos of each size")
    parser.add_argument("--clips", type=int, default=48, help="clips decoded per path and size")
    parser.add_argument("--ahead", type=int, default=12, help="seek past gaps larger than this many frames")
    parser.add_argument("--gop", type=int, default=8, help="keyframe interval of the re-encoded videos")
    args = parser.parse_args()
    print("| source | path | clips/s, one core | cores per GPU at 190 clips/s | MB per video |")
    print("|---|---|---:|---:|---:|")
    for width, height in SIZES:
        videos = [make_video(width, height, seed=s) for s in range(args.videos)]
        started = time.perf_counter()
        short = [reencode_clip(v, short_side=SHORT_SIDE, gop=args.gop)[0] for v in videos]
        reencode_s = (time.perf_counter() - started) / len(videos)
        paths = {
            "from start": (videos, lambda d, i: decode_clip(d, i, short_side=SHORT_SIDE, seek_ahead=None)),
            "seek": (videos, lambda d, i: decode_clip(d, i, short_side=SHORT_SIDE, seek_ahead=args.ahead)),
            f"reencoded (GOP {args.gop})": (
                short,
                lambda d, i: decode_clip(d, i, short_side=SHORT_SIDE, seek_ahead=args.ahead),
            ),
        }
        for name, (data, decode) in paths.items():
            rate = clips_per_second(data, args.clips, decode)
            size = sum(map(len, data)) / len(data) / 2**20
            print(f"| {width}×{height} | {name} | {rate:.1f} | {GPU_CLIPS_PER_S / rate:.0f} | {size:.2f} |")
        print(f"(ingest re-encoded one {width}×{height} video in {reencode_s:.1f} s on one core)")


if __name__ == "__main__":
    main()
