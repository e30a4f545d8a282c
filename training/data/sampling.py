"""Which frames of a clip a model sees: TSN segment sampling for training, fixed sampling for evaluation.

All three split the clip into ``T`` equal segments and take one frame per segment, so a sample
always spans the whole action (TSN, Wang et al. 2016); they differ in where inside each segment.
Clips shorter than ``T`` frames repeat frames rather than fail.
"""

from __future__ import annotations

import numpy as np


def _check(available: int, num_frames: int) -> None:
    if available < 1:
        raise ValueError(f"a clip needs at least one frame, got available={available}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")


def _at(available: int, num_frames: int, offsets: np.ndarray) -> np.ndarray:
    """Frame index at fractional position ``offsets`` ∈ [0, 1) inside each of ``num_frames`` segments."""
    segment = available / num_frames
    positions = (np.arange(num_frames) + offsets) * segment
    return np.minimum(positions.astype(np.int64), available - 1)


def tsn_indices(available: int, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """One random frame per segment (training): ``num_frames`` sorted indices into ``available`` frames."""
    _check(available, num_frames)
    return _at(available, num_frames, rng.uniform(0, 1, num_frames))


def uniform_indices(available: int, num_frames: int) -> np.ndarray:
    """The centre frame of each segment (single-view evaluation)."""
    _check(available, num_frames)
    return _at(available, num_frames, np.full(num_frames, 0.5))


def multi_clip_indices(available: int, num_frames: int, clips: int) -> np.ndarray:
    """``clips × num_frames``: view ``j`` takes each segment's frame at offset ``(j + 0.5) / clips``, so
    the views interleave and together cover the clip densely (multi-view evaluation)."""
    _check(available, num_frames)
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips}")
    return np.stack([_at(available, num_frames, np.full(num_frames, (j + 0.5) / clips)) for j in range(clips)])
