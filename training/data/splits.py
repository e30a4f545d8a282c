"""The three splits every dataset has, and how the ones a source does not bring are drawn.

* ``train``: what students and teachers learn from.
* ``tune``: the selection split, carved out of the training clips. Every decision a sweep makes
  reads it and nothing else: ASHA's rungs, Optuna's samples, ``best``.
* ``test``: a source's official validation split (or, for a folder tree, a held-out part of it),
  for what is reported: ``evaluate``, ``ensemble``, the report's and the demo's final tables. No
  decision ever reads it, so the figures it gives are not optimistic by construction.

Both drawn splits are stratified by class and seeded, and a class's draw depends only on its own
clips (the generator is seeded by the class name), so adding a class or a clip elsewhere leaves
every other class's split as it was.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import numpy as np

TRAIN, TUNE, TEST = "train", "tune", "test"
DEFAULT_TUNE_FRACTION = 0.1
DEFAULT_TEST_FRACTION = 0.2


def check_fraction(name: str, fraction: float) -> None:
    if not 0 < fraction < 1:
        raise ValueError(f"{name} must be in (0, 1), got {fraction}")


def stratified_pick(clip_ids: Sequence[str], class_name: str, *, fraction: float, seed: int, salt: str) -> set[str]:
    """``round(n·fraction)`` of one class's ``n`` clips — at least one, and at most ``n − 1`` so
    the class keeps one where the pick came from (none when ``n < 2``). ``salt`` tells two draws
    of one seed apart (the test split's and the selection split's)."""
    ordered = sorted(clip_ids)
    n = len(ordered)
    count = min(max(1, round(n * fraction)), n - 1) if n >= 2 else 0
    rng = np.random.default_rng([seed, zlib.crc32(f"{salt}:{class_name}".encode())])
    return {ordered[i] for i in rng.permutation(n)[:count]}


def carve(
    clips: Iterable[tuple[str, str, str]], *, source: str, target: str, fraction: float, seed: int
) -> dict[str, str]:
    """``(clip_id, class_name, split)`` → ``{clip_id: split}`` with ``fraction`` of each class's
    ``source`` clips moved to ``target``."""
    assigned: dict[str, str] = {}
    by_class: dict[str, list[str]] = {}
    for clip_id, class_name, split in clips:
        assigned[clip_id] = split
        if split == source:
            by_class.setdefault(class_name, []).append(clip_id)
    for class_name, ids in by_class.items():
        for clip_id in stratified_pick(ids, class_name, fraction=fraction, seed=seed, salt=target):
            assigned[clip_id] = target
    return assigned


def selection_split_hint(data: str) -> str:
    """What to run when a dataset written before the selection split existed lacks it."""
    return f"carve one out of the training clips without rewriting the shards: `specdistill carve {data}`"
