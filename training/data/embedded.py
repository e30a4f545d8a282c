"""``specdistill synth``: the embedded motion dataset, rendered, H.264-encoded and written as shards.

Clip ``i`` is rendered from its own generator seeded by ``(seed, i)``, so the dataset is identical
whatever the number of processes rendering it, and clips can be produced out of order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.codec import encode_clip
from training.data.shards import DEFAULT_SHARD_BYTES, ClipRecord, DatasetWriter
from training.data.synthetic import MOTION_CLASSES, render_clip


@dataclass(frozen=True)
class SynthSpec:
    clips_per_class: int
    num_frames: int = 16
    size: int = 64
    seed: int = 0
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.clips_per_class < 2:
            raise ValueError(f"clips_per_class must be >= 2 (one train, one val), got {self.clips_per_class}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")

    def plan(self) -> list[tuple[int, int, str]]:
        """``(index, label, split)`` for every clip; the first ``val`` clips of each class are validation.

        The order is shuffled (deterministically) so shards are not sorted by class: streaming
        readers then only need a small local shuffle buffer to get mixed batches.
        """
        val = max(1, round(self.clips_per_class * self.val_fraction))
        plan = [
            (label * self.clips_per_class + k, label, "val" if k < val else "train")
            for label in range(len(MOTION_CLASSES))
            for k in range(self.clips_per_class)
        ]
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
    out: Path,
    spec: SynthSpec,
    *,
    workers: int = 1,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Render, encode and shard the dataset into ``out``; returns ``out``. Splits: ``train`` and ``val``."""
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
