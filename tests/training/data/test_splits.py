"""Drawing the splits a source does not bring: stratified, seeded, per class."""

from __future__ import annotations

from collections import Counter

import pytest

from training.data.splits import TEST, TRAIN, TUNE, carve, check_fraction, stratified_pick


def test_a_pick_is_the_same_for_the_same_seed_whatever_the_order_and_changes_with_it():
    clip_ids = [f"a/{k:02d}" for k in range(10)]

    def pick(seed: int, salt: str = TUNE) -> set[str]:
        return stratified_pick(clip_ids, "a", fraction=0.3, seed=seed, salt=salt)

    assert pick(0) == pick(0) == stratified_pick(clip_ids[::-1], "a", fraction=0.3, seed=0, salt=TUNE)
    assert len(pick(0)) == 3
    assert any(pick(seed) != pick(0) for seed in range(1, 4))
    assert any(pick(seed, TEST) != pick(seed) for seed in range(4)), "the test and tune draws are not independent"


@pytest.mark.parametrize(("n", "count"), [(1, 0), (2, 1), (3, 1), (10, 3)])
def test_a_pick_takes_at_least_one_clip_and_leaves_at_least_one(n: int, count: int):
    assert len(stratified_pick([str(k) for k in range(n)], "a", fraction=0.3, seed=0, salt=TUNE)) == count


def test_carving_moves_a_fraction_of_each_classs_source_clips_and_nothing_else():
    clips = [(f"{c}{k}", c, TRAIN) for c in "ab" for k in range(10)] + [("t0", "a", TEST)]
    assigned = carve(clips, source=TRAIN, target=TUNE, fraction=0.2, seed=0)
    counts = Counter((clip_id[0], split) for clip_id, split in assigned.items())
    assert counts[("a", TUNE)] == counts[("b", TUNE)] == 2 and assigned["t0"] == TEST


def test_a_fraction_outside_zero_one_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"tune_fraction must be in \(0, 1\), got 1.5"):
        check_fraction("tune_fraction", 1.5)
