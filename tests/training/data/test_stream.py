from __future__ import annotations

import itertools
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from training.data.normalise import MEAN, STD
from training.data.shards import RowFilter
from training.data.stream import (
    ClipBatch,
    ClipCollate,
    ClipSampling,
    clip_dataset,
    decode_batch,
    decode_blocks,
    file_order,
    iterate_clips,
)


def _paths(motion_shards, split: str) -> list[str]:
    root, manifest = motion_shards
    return manifest.shard_paths(root, split)


def test_in_process_iterator_yields_normalised_clips_and_all_labels(motion_shards) -> None:
    batches = list(iterate_clips(_paths(motion_shards, "train"), ClipSampling(num_frames=8, size=32), batch_size=7))
    clips = torch.cat([b.clips for b in batches])
    labels = torch.cat([b.labels for b in batches])
    assert clips.shape == (50, 3, 8, 32, 32) and clips.dtype == torch.float32
    assert labels.dtype == torch.int64
    assert Counter(labels.tolist()) == dict.fromkeys(range(10), 5)
    lowest, highest = (0 - MEAN[0]) / STD[0], (1 - MEAN[0]) / STD[0]
    assert lowest - 1e-5 <= clips.min() < clips.max() <= highest + 1e-5


def test_shuffled_epochs_visit_every_clip_once_in_whole_batches(motion_shards) -> None:
    """Training in-process: a new order every epoch, every clip once, and rows carried over from one
    file to the next so that only the last batch is short (the same file twice = two files)."""
    path = _paths(motion_shards, "train")[0]
    sampling = ClipSampling(num_frames=4, size=16, min_scale=1.0)
    rng = np.random.default_rng(0)
    epochs = [list(iterate_clips([path, path], sampling, batch_size=8, shuffle=rng)) for _ in range(2)]
    for batches in epochs:
        assert [len(b.labels) for b in batches] == [8] * 12 + [4]  # 100 clips
        assert Counter(torch.cat([b.labels for b in batches]).tolist()) == dict.fromkeys(range(10), 10)
    first, second = (torch.cat([b.labels for b in batches]) for batches in epochs)
    assert not torch.equal(first, second)


def test_an_endless_stream_reshuffles_every_pass_in_whole_batches(motion_shards) -> None:
    """A training run's one stream: passes follow each other without a short batch between them."""
    path = _paths(motion_shards, "train")[0]
    sampling = ClipSampling(num_frames=4, size=16, min_scale=1.0)
    stream = iterate_clips([path], sampling, batch_size=8, shuffle=np.random.default_rng(0), passes=None)
    batches = list(itertools.islice(stream, 25))  # 200 clips: four passes over 50
    assert [len(b.labels) for b in batches] == [8] * 25
    labels = torch.cat([b.labels for b in batches]).tolist()
    assert Counter(labels) == dict.fromkeys(range(10), 20)
    assert labels[:50] != labels[50:100]


def test_a_skipped_stream_starts_at_the_batch_the_whole_stream_reaches_there(motion_shards) -> None:
    """Skipping draws what it skips (order and frame offsets): a resumed run's clips are the ones an
    uninterrupted run would have taken next, across a pass boundary too. Crops are off here; the
    loop restores torch's generator for them."""
    path = _paths(motion_shards, "train")[0]
    sampling = ClipSampling(num_frames=4, size=16, min_scale=1.0)

    def stream(skip: int, count: int) -> list[ClipBatch]:
        shuffle = np.random.default_rng(5)
        return list(
            itertools.islice(
                iterate_clips([path], sampling, batch_size=8, shuffle=shuffle, passes=None, skip=skip), count
            )
        )

    whole, resumed = stream(0, 8), stream(4, 4)  # 50 clips a pass: batches 4-7 cross into pass 2
    for expected, got in zip(whole[4:], resumed, strict=True):
        assert torch.equal(expected.clips, got.clips) and torch.equal(expected.labels, got.labels)
    assert not torch.equal(whole[0].clips, resumed[0].clips)


def test_file_order_draws_a_new_permutation_every_pass() -> None:
    order = list(file_order(6, 4, np.random.default_rng(0)))
    passes = [tuple(order[start : start + 6]) for start in range(0, 24, 6)]
    assert all(sorted(p) == list(range(6)) for p in passes) and len(set(passes)) > 1
    assert order == list(file_order(6, 4, np.random.default_rng(0)))
    assert list(file_order(3, 2, None)) == [0, 1, 2, 0, 1, 2]
    assert list(itertools.islice(file_order(2, None, None), 5)) == [0, 1, 0, 1, 0]


def test_evaluation_views_are_deterministic(motion_shards) -> None:
    sampling = ClipSampling(num_frames=4, size=32, train=False, clips=3)
    first = next(iterate_clips(_paths(motion_shards, "test"), sampling, batch_size=4))
    again = next(iterate_clips(_paths(motion_shards, "test"), sampling, batch_size=4))
    assert first.clips.shape == (4, 3, 3, 4, 32, 32)
    torch.testing.assert_close(first.clips, again.clips)


def test_training_never_flips_unless_flip_is_label_safe() -> None:
    # A clip whose left half is black and right half white: a flip would swap them.
    from training.data.codec import encode_clip

    frames = np.zeros((6, 32, 32, 3), dtype=np.uint8)
    frames[:, :, 16:] = 255
    batch = {"video": np.array([encode_clip(frames)] * 16, dtype=object), "label": np.zeros(16), "num_frames": [6] * 16}

    def flipped(flip: bool) -> int:
        out = decode_batch(batch, ClipSampling(num_frames=4, size=32, flip=flip, min_scale=0.9))["clip"]
        left, right = out[..., :8].mean(axis=(1, 2, 3, 4)), out[..., -8:].mean(axis=(1, 2, 3, 4))
        return int((left > right).sum())

    assert flipped(False) == 0
    assert flipped(True) > 0


def test_undecodable_clips_are_dropped_and_counted(motion_shards, tmp_path: Path) -> None:
    table = pq.read_table(_paths(motion_shards, "test"))
    videos = table.column("video").to_pylist()
    videos[1], videos[4] = b"", videos[4][:100]
    broken = table.set_column(table.schema.get_field_index("video"), "video", pa.array(videos, pa.binary()))
    pq.write_table(broken, tmp_path / "broken.parquet")
    batches = list(iterate_clips([str(tmp_path / "broken.parquet")], ClipSampling(size=32), batch_size=5))
    assert sum(b.skipped for b in batches) == 2
    assert sum(len(b.labels) for b in batches) == len(videos) - 2


def test_collate_keeps_the_batch_on_the_requested_device() -> None:
    batch = {"clip": np.zeros((2, 4, 3, 8, 8), np.uint8), "label": np.array([1, 2]), "ok": np.array([True, False])}
    out = ClipCollate("cpu")(batch)
    assert out.clips.shape == (1, 3, 4, 8, 8) and out.labels.tolist() == [1] and out.skipped == 1


@pytest.mark.slow
def test_ray_data_pipeline_streams_several_passes_to_a_consumer(motion_shards, ray_local) -> None:
    """One iteration of a two-pass dataset: a run's epochs come from a single execution."""
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    sampling = ClipSampling(num_frames=8, size=32)
    dataset = clip_dataset(_paths(motion_shards, "train"), sampling, passes=2, decode_batch_size=4)
    collate = ClipCollate()
    labels: list[int] = []
    for batch in dataset.iterator().iter_torch_batches(batch_size=8, collate_fn=collate, local_shuffle_buffer_size=16):
        assert batch.clips.shape[1:] == (3, 8, 32, 32) and batch.clips.dtype == torch.float32
        labels += batch.labels.tolist()
    assert Counter(labels) == dict.fromkeys(range(10), 10)


@pytest.mark.slow
def test_a_carved_splits_rows_are_all_the_ray_data_pipeline_decodes(motion_shards, ray_local) -> None:
    """A split carved out of another's shards (``specdistill carve``) names its clips; the pipeline
    drops the others before decoding them."""
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    paths = _paths(motion_shards, "train")
    table = pq.read_table(paths, columns=["clip_id", "label"])
    kept = {
        i
        for i, label in zip(table.column("clip_id").to_pylist(), table.column("label").to_pylist(), strict=True)
        if label < 3
    }
    dataset = clip_dataset(paths, ClipSampling(num_frames=8, size=32), rows=RowFilter(include=frozenset(kept)))
    labels = [label for batch in dataset.iter_batches(batch_size=None) for label in batch["label"].tolist()]
    assert sorted(labels) == [0] * 5 + [1] * 5 + [2] * 5


def test_clip_dataset_refuses_zero_passes(motion_shards) -> None:
    with pytest.raises(ValueError, match="passes must be at least 1, got 0"):
        clip_dataset(_paths(motion_shards, "train"), ClipSampling(num_frames=8, size=32), passes=0)


def test_pipeline_is_planned_with_its_own_data_context(motion_shards, ray_local) -> None:
    """The tuned settings travel with the dataset (Train workers execute it with them), and the
    caller's context, used by its other datasets, is left as it was."""
    import ray.data
    from ray.data._internal.execution.backpressure_policy import (
        ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY,
        ConcurrencyCapBackpressurePolicy,
        ResourceBudgetBackpressurePolicy,
    )

    def settings(context: ray.data.DataContext) -> tuple:
        policies = context.get_config(ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY, None)
        gen_buffer = context._max_num_blocks_in_streaming_gen_buffer  # private: must survive Ray upgrades
        return context.target_max_block_size, context.use_datasource_v2, gen_buffer, policies

    caller = ray.data.DataContext.get_current()
    before = settings(caller)
    dataset = clip_dataset(_paths(motion_shards, "train"), ClipSampling(num_frames=8, size=32))
    block_size, v2_reader, gen_buffer, policies = settings(dataset.context)
    assert (block_size, v2_reader, gen_buffer) == (2 * 2**20, False, 8)
    assert ResourceBudgetBackpressurePolicy in policies and ConcurrencyCapBackpressurePolicy not in policies
    assert ray.data.DataContext.get_current() is caller and settings(caller) == before != settings(dataset.context)
    ray_defaults = clip_dataset(
        _paths(motion_shards, "train"), ClipSampling(num_frames=8, size=32), data_context=caller.copy()
    )
    assert settings(ray_defaults.context) == before


def test_each_read_task_decodes_what_it_reads(motion_shards, ray_local, capsys) -> None:
    """Read and decode are one fused operator (bench/RESULTS.md: kept apart, read tasks held
    CPU slots while their blocks waited, and 2 CPUs decoded about one task at a time)."""
    dataset = clip_dataset(_paths(motion_shards, "train"), ClipSampling(num_frames=8, size=32), passes=2)
    dataset.explain()
    optimized_physical = capsys.readouterr().out.split("Physical Plan (Optimized)")[1]
    assert "ReadParquet->MapBatches(decode_blocks)" in optimized_physical


def test_decode_blocks_hands_on_a_block_in_batches_of_the_given_size(motion_shards) -> None:
    block = pq.read_table(_paths(motion_shards, "test"), columns=["video", "label", "num_frames"]).to_pydict()
    block = {name: np.asarray(column, dtype=object if name == "video" else None) for name, column in block.items()}
    batches = list(decode_blocks(block, ClipSampling(num_frames=8, size=32), batch_size=4))
    sizes = [len(b["label"]) for b in batches]
    assert sizes[:-1] == [4] * (len(sizes) - 1) and 1 <= sizes[-1] <= 4 and sum(sizes) == len(block["label"])
    assert np.concatenate([b["label"] for b in batches]).tolist() == block["label"].tolist()
    assert all(b["ok"].all() and b["clip"].dtype == np.uint8 for b in batches)
