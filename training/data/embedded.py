"""The embedded motion dataset (``specdistill synth``): clips whose classes differ only in how an
object moves, rendered, H.264-encoded and written as shards.

Every class draws its shape, colours, background, position, orientation and size from the same
distributions, so any single frame is equally likely under every class; only the order of frames
tells them apart. A frame-averaging model is therefore capped near chance within each pair of
time-reversed classes (left/right, clockwise/counter-clockwise, approach/recede…), and temporal
modelling is what a model must learn.

Clip ``i`` is rendered from its own generator seeded by ``(seed, i)``, so the dataset is identical
whatever the number of processes rendering it, and clips can be produced out of order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from training.data.codec import encode_clip
from training.data.shards import DEFAULT_SHARD_BYTES, ClipRecord, DatasetWriter
from training.data.splits import DEFAULT_TEST_FRACTION, DEFAULT_TUNE_FRACTION, TEST, TRAIN, TUNE, check_fraction

PathLike = TypeVar("PathLike", str, Path)

MOTION_CLASSES: tuple[str, ...] = (
    "translate_left",
    "translate_right",
    "translate_up",
    "translate_down",
    "rotate_clockwise",
    "rotate_counterclockwise",
    "oscillate_slow",
    "oscillate_fast",
    "approach",
    "recede",
)
SHAPES = ("rectangle", "ellipse", "triangle")


@dataclass(frozen=True)
class Trajectory:
    """Per-frame centre (``x``, ``y`` in pixels), orientation ``angle`` (radians) and ``scale``; each ``T``."""

    x: np.ndarray
    y: np.ndarray
    angle: np.ndarray
    scale: np.ndarray


def motion_trajectory(label: int, rng: np.random.Generator, num_frames: int, size: int) -> Trajectory:
    """Sample the motion of class ``label`` over normalised time ``u ∈ [0, 1]`` (frame-count independent)."""
    name = MOTION_CLASSES[label]
    u = np.linspace(0.0, 1.0, num_frames)
    cx, cy = rng.uniform(0.35, 0.65, size=2) * size
    angle0 = rng.uniform(0, np.pi)
    x, y = np.full(num_frames, cx), np.full(num_frames, cy)
    angle, scale = np.full(num_frames, angle0), np.ones(num_frames)
    if name.startswith("translate"):
        distance = rng.uniform(0.4, 0.55) * size
        dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[name.split("_")[1]]
        x, y = cx + dx * distance * (u - 0.5), cy + dy * distance * (u - 0.5)
    elif name.startswith("rotate"):
        sense = 1.0 if name == "rotate_clockwise" else -1.0  # image y points down: +angle turns clockwise
        angle = angle0 + sense * np.deg2rad(rng.uniform(70, 120)) * u
    elif name.startswith("oscillate"):
        cycles = rng.uniform(1.0, 1.4) if name == "oscillate_slow" else rng.uniform(2.0, 2.8)
        amplitude = rng.uniform(0.15, 0.22) * size
        axis = rng.uniform(0, np.pi)
        offset = amplitude * np.sin(2 * np.pi * cycles * u + rng.uniform(0, 2 * np.pi))
        x, y = cx + offset * np.cos(axis), cy + offset * np.sin(axis)
    else:  # approach / recede: log-scale symmetric around a random middle size
        ratio, middle = rng.uniform(2.2, 3.0), rng.uniform(0.85, 1.15)
        log_scale = np.log(ratio) * (u - 0.5)
        scale = middle * np.exp(log_scale if name == "approach" else -log_scale)
    return Trajectory(x=x, y=y, angle=angle, scale=scale)


def _soft_step(distance: np.ndarray) -> np.ndarray:
    """Anti-aliased inside test: ~1 where ``distance`` (pixels inside the edge) > 1, ~0 below −1."""
    return 1.0 / (1.0 + np.exp(-2.5 * distance))


def _object_mask(shape: str, traj: Trajectory, half_length: float, half_width: float, size: int) -> np.ndarray:
    """``T×H×W`` coverage in [0, 1] of an elongated shape following ``traj``."""
    grid = np.arange(size, dtype=np.float64) + 0.5
    dx = grid[None, None, :] - traj.x[:, None, None]
    dy = grid[None, :, None] - traj.y[:, None, None]
    cos, sin = np.cos(traj.angle)[:, None, None], np.sin(traj.angle)[:, None, None]
    along, across = dx * cos + dy * sin, -dx * sin + dy * cos
    a, b = half_length * traj.scale[:, None, None], half_width * traj.scale[:, None, None]
    if shape == "rectangle":
        return _soft_step(a - np.abs(along)) * _soft_step(b - np.abs(across))
    if shape == "ellipse":
        radius = np.sqrt((along / a) ** 2 + (across / b) ** 2)
        return _soft_step((1.0 - radius) * b)
    # triangle: base at along=−a, apex at along=+a, so it points one way and rotation is visible
    half_span = b * (a - along) / (2 * a)
    return _soft_step(along + a) * _soft_step(half_span - np.abs(across))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A static, smooth random texture (``H×W×3`` in [0, 1]) so the object is not on a flat field:
    a 5×5 grid of random colours, bilinearly upsampled."""
    coarse = rng.uniform(0, 1, size=(5, 5, 3))
    position = np.linspace(0, 4, size)
    low = np.minimum(position.astype(int), 3)
    frac = (position - low)[:, None]
    rows = coarse[low] * (1 - frac[..., None]) + coarse[low + 1] * frac[..., None]
    texture = rows[:, low] * (1 - frac[None]) + rows[:, low + 1] * frac[None]
    base = rng.uniform(0.15, 0.85, size=3)
    return np.clip(base + 0.4 * (texture - 0.5), 0, 1)


def render_clip(label: int, rng: np.random.Generator, *, num_frames: int, size: int) -> np.ndarray:
    """One clip of class ``label`` as ``T×H×W×3`` uint8 RGB frames."""
    if not 0 <= label < len(MOTION_CLASSES):
        raise ValueError(f"label must be in [0, {len(MOTION_CLASSES)}), got {label}")
    if num_frames < 2 or size < 16:
        raise ValueError(f"need num_frames >= 2 and size >= 16, got num_frames={num_frames}, size={size}")
    traj = motion_trajectory(label, rng, num_frames, size)
    shape = SHAPES[rng.integers(len(SHAPES))]
    half_length = rng.uniform(0.18, 0.26) * size
    half_width = rng.uniform(0.35, 0.55) * half_length
    mask = _object_mask(shape, traj, half_length, half_width, size)[..., None]
    background = _background(rng, size)
    colour = (background.mean(axis=(0, 1)) + rng.uniform(0.35, 0.6) * rng.choice([-1, 1], size=3)) % 1.0
    frames = background[None] * (1 - mask) + colour[None, None, None] * mask
    frames += rng.normal(0, 0.03, size=frames.shape)
    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def render_dataset(num_clips: int, *, num_frames: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``num_clips`` clips with balanced labels: ``(N×T×H×W×3 uint8, N int64)``, deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_clips) % len(MOTION_CLASSES)
    rng.shuffle(labels)
    clips = np.stack([render_clip(int(y), rng, num_frames=num_frames, size=size) for y in labels])
    return clips, labels.astype(np.int64)


@dataclass(frozen=True)
class SynthSpec:
    """How many clips per class and of what shape; ``test_fraction`` of each class are the test
    split, then ``tune_fraction`` of the rest the selection split (``training.data.splits``)."""

    clips_per_class: int
    num_frames: int = 16
    size: int = 64
    seed: int = 0
    test_fraction: float = DEFAULT_TEST_FRACTION
    tune_fraction: float = DEFAULT_TUNE_FRACTION

    def __post_init__(self) -> None:
        if self.clips_per_class < 3:
            raise ValueError(
                f"clips_per_class must be >= 3 (a train, a tune and a test clip), got {self.clips_per_class}"
            )
        check_fraction("test_fraction", self.test_fraction)
        check_fraction("tune_fraction", self.tune_fraction)

    def plan(self) -> list[tuple[int, int, str]]:
        """``(index, label, split)`` for every clip: in each class the first clips are the test
        split, the next ones the selection split, the rest the training split.

        The order is shuffled (deterministically) so shards are not sorted by class: streaming
        readers then only need a small local shuffle buffer to get mixed batches.
        """
        n = self.clips_per_class
        test = min(max(1, round(n * self.test_fraction)), n - 2)
        tune = min(max(1, round((n - test) * self.tune_fraction)), n - test - 1)

        def split(k: int) -> str:
            return TEST if k < test else TUNE if k < test + tune else TRAIN

        plan = [(label * n + k, label, split(k)) for label in range(len(MOTION_CLASSES)) for k in range(n)]
        order = np.random.default_rng([self.seed, 2**31]).permutation(len(plan))
        return [plan[i] for i in order]


def _render_encoded(job: tuple[SynthSpec, int, int]) -> bytes:
    spec, index, label = job
    rng = np.random.default_rng([spec.seed, index])
    return encode_clip(render_clip(label, rng, num_frames=spec.num_frames, size=spec.size))


def _encoded_clips(spec: SynthSpec, workers: int) -> Iterator[bytes]:
    jobs = [(spec, index, label) for index, label, _ in spec.plan()]
    if workers <= 1:
        yield from map(_render_encoded, jobs)
        return
    with ProcessPoolExecutor(workers) as pool:
        # ``map`` keeps order and bounds nothing, but a clip is a few kB: the whole run fits easily.
        yield from pool.map(_render_encoded, jobs, chunksize=16)


def write_embedded_dataset(
    out: PathLike,
    spec: SynthSpec,
    *,
    workers: int = 1,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    progress: Callable[[int], None] | None = None,
) -> PathLike:
    """Render, encode and shard the dataset into ``out`` (a local directory or a storage URI);
    returns ``out``. Splits: ``train``, ``tune`` and ``test``."""
    with DatasetWriter(out, list(MOTION_CLASSES), source=f"synth:seed={spec.seed}", shard_bytes=shard_bytes) as writer:
        for (index, label, split), video in zip(spec.plan(), _encoded_clips(spec, workers), strict=True):
            record = ClipRecord(
                clip_id=f"synth-{spec.seed}-{index:06d}",
                label=label,
                label_name=MOTION_CLASSES[label],
                video=video,
                container="mp4",
                num_frames=spec.num_frames,
                source=f"synth:seed={spec.seed}:index={index}",
            )
            writer.write(split, record)
            if progress is not None:
                progress(1)
    return out
