from __future__ import annotations

import numpy as np
import pytest

from training.data.sampling import multi_clip_indices, tsn_indices, uniform_indices


def test_tsn_takes_one_frame_inside_each_segment() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        indices = tsn_indices(40, 8, rng)
        segments = indices // 5
        np.testing.assert_array_equal(segments, np.arange(8))


def test_tsn_varies_between_draws() -> None:
    rng = np.random.default_rng(0)
    draws = {tuple(tsn_indices(40, 8, rng)) for _ in range(10)}
    assert len(draws) > 1


def test_uniform_takes_segment_centres() -> None:
    np.testing.assert_array_equal(uniform_indices(16, 4), [2, 6, 10, 14])


def test_multi_clip_views_interleave_and_stay_in_their_segments() -> None:
    views = multi_clip_indices(30, 3, clips=2)
    np.testing.assert_array_equal(views, [[2, 12, 22], [7, 17, 27]])


def test_short_clips_repeat_frames_instead_of_failing() -> None:
    indices = uniform_indices(3, 8)
    assert len(indices) == 8 and indices.min() >= 0 and indices.max() == 2
    assert np.all(np.diff(indices) >= 0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: uniform_indices(0, 8), "available=0"),
        (lambda: uniform_indices(10, 0), "num_frames"),
        (lambda: multi_clip_indices(10, 4, clips=0), "clips"),
    ],
)
def test_bad_arguments_are_refused_by_name(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
