"""Streaming decoded clips from shards: a ``ray.data.Dataset`` for Train workers and a plain
in-process iterator over the same shards for evaluation and benchmarks.

Both run the same two functions: ``decode_batch`` (encoded bytes → sampled, augmented uint8
frames, on CPU) and ``ClipCollate`` (uint8 → normalised float clips on the consumer's device).
Clips stay uint8 until the consumer, so the object store carries a quarter of the float bytes.
A clip that fails to decode comes out flagged ``ok=False`` and is dropped and counted by the
collate, so one bad file never stops an epoch.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from ray.data.collate_fn import NumpyBatchCollateFn
from torch import Tensor

from training import storage
from training.data.codec import DecodeError, decode_clip
from training.data.normalise import normalise
from training.data.sampling import multi_clip_indices, tsn_indices
from training.data.shards import RowFilter
from training.data.transforms import clip_transform
from training.threads import single_threaded_torch

COLUMNS = ["video", "label", "num_frames"]
MiB = 2**20
STREAMING_GEN_BUFFER_BLOCKS = 8


def pipeline_context():  # -> ray.data.DataContext
    """A copy of the caller's ``DataContext`` tuned for a few shards of encoded video feeding
    training, rather than Ray Data's defaults for large tabular reads. Measured with
    ``bench/pipeline.py`` on 2 cores, the defaults lose about a third of the throughput:

    * 128 MiB blocks would make a read task hold a whole shard's encoded bytes before decoding
      the first clip; 2 MiB of encoded video (~40–50 clips at a time) keeps a task's memory to a
      few MiB and hands decoded clips on early;
    * the V2 Parquet reader lists files through a pool of footer-reading actors started afresh on
      every execution (seconds each on a small node); the V1 reader reads footers in its tasks;
    * per-operator CPU reservation keeps a core idle for the reader, which is done in milliseconds;
    * the concurrency-cap backpressure policy starts every execution from a low cap and ramps up
      slowly; decode tasks are then bounded by the CPU and object store
      budget alone (the resource-budget and downstream-capacity policies stay on);
    * a task pauses once 2 of its output blocks (8 decoded clips each) wait to be taken by the
      executor, and on 2 busy cores the executor takes a while: with room for 8 the two decode
      workers went from ~0.7 to ~0.85 cores busy each (+20–30 % clips/s) for ~10 MiB more
      buffered frames. The setting is private (``_max_num_blocks_in_streaming_gen_buffer``), so
      a Ray upgrade must keep the attribute: ``tests/training/data/test_stream.py`` checks it.
    """
    import ray.data
    from ray.data._internal.execution import backpressure_policy

    context = ray.data.DataContext.get_current().copy()
    context.target_max_block_size = 2 * MiB
    context.use_datasource_v2 = False
    context.op_resource_reservation_enabled = False
    context._max_num_blocks_in_streaming_gen_buffer = STREAMING_GEN_BUFFER_BLOCKS
    context.set_config(
        backpressure_policy.ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY,
        [
            policy
            for policy in backpressure_policy.ENABLED_BACKPRESSURE_POLICIES
            if policy is not backpressure_policy.ConcurrencyCapBackpressurePolicy
        ],
    )
    return context


@dataclass(frozen=True)
class ClipSampling:
    """How clips are drawn: ``train`` selects TSN sampling and random crops, otherwise ``clips``
    evenly interleaved views with a centre crop. ``flip`` must only be set when a mirrored clip
    keeps its label."""

    num_frames: int = 8
    size: int = 64
    train: bool = True
    flip: bool = False
    min_scale: float = 0.6
    clips: int = 1

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.size < 8 or self.clips < 1:
            raise ValueError(f"need num_frames >= 1, size >= 8, clips >= 1; got {self}")
        if self.train and self.clips != 1:
            raise ValueError(f"training samples one clip per video, got clips={self.clips}")

    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one video's output: ``[clips×]T×3×size×size``."""
        views = (self.clips,) if self.clips > 1 else ()
        return (*views, self.num_frames, 3, self.size, self.size)


def decode_batch(
    batch: dict[str, np.ndarray], sampling: ClipSampling, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """Ray Data ``map_batches`` body: columns ``video``/``label``/``num_frames`` → ``clip`` (uint8,
    ``N×`` ``sampling.frame_shape()``), ``label`` (int64) and ``ok`` (bool; False = not decodable).

    Training frame offsets are drawn from ``rng``; crops and flips from torch's global generator.
    The in-process loader passes a generator seeded per batch so that a seed repeats a run
    exactly; Ray Data decode tasks finish in no fixed order anyway, and draw fresh offsets."""
    with single_threaded_torch():
        return _decode_batch(batch, sampling, rng if rng is not None else np.random.default_rng())


def decode_blocks(
    block: dict[str, np.ndarray], sampling: ClipSampling, batch_size: int, rows: RowFilter | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Ray Data ``map_batches`` body fused into the read task: one read block (about 2 MiB of
    encoded clips) decoded ``batch_size`` clips at a time, each batch handed on when it is done;
    rows the split does not keep (``rows``) are dropped before anything is decoded."""
    if rows is not None:
        mask = rows.keep(block["clip_id"])
        block = {name: block[name][mask] for name in COLUMNS}
    for start in range(0, len(block["label"]), batch_size):
        yield decode_batch({name: column[start : start + batch_size] for name, column in block.items()}, sampling)


def _decode_batch(
    batch: dict[str, np.ndarray], sampling: ClipSampling, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    transform = clip_transform(sampling.size, train=sampling.train, flip=sampling.flip, min_scale=sampling.min_scale)
    count = len(batch["label"])
    clips = np.zeros((count, *sampling.frame_shape()), dtype=np.uint8)
    ok = np.zeros(count, dtype=bool)
    short_side = round(sampling.size / sampling.min_scale**0.5) if sampling.train else sampling.size
    for row, (video, available) in enumerate(zip(batch["video"], batch["num_frames"], strict=True)):
        if sampling.train:
            indices = tsn_indices(int(available), sampling.num_frames, rng)[None]
        else:
            indices = multi_clip_indices(int(available), sampling.num_frames, sampling.clips)
        try:
            frames = decode_clip(video, indices.ravel().tolist(), short_side=short_side)
        except DecodeError:
            continue
        views = (
            torch.from_numpy(frames)
            .permute(0, 3, 1, 2)
            .reshape(len(indices), sampling.num_frames, 3, *frames.shape[1:3])
        )
        clips[row] = np.stack([transform(view).numpy() for view in views]).reshape(sampling.frame_shape())
        ok[row] = True
    return {"clip": clips, "label": batch["label"].astype(np.int64), "ok": ok}


@dataclass
class ClipBatch:
    """``clips``: ``N×3×T×H×W`` float (``N×V×3×T×H×W`` for ``V`` eval views); ``labels``: ``N`` int64;
    ``skipped``: clips of this batch dropped because they could not be decoded."""

    clips: Tensor
    labels: Tensor
    skipped: int


class ClipCollate(NumpyBatchCollateFn):
    """``iter_torch_batches`` collate: drops undecodable clips, moves uint8 to ``device``, normalises."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    def __call__(self, batch: dict[str, np.ndarray]) -> ClipBatch:
        ok = np.asarray(batch["ok"], dtype=bool)
        # Boolean indexing copies, so the tensors own writable memory (Ray hands out read-only views).
        clips = torch.from_numpy(np.asarray(batch["clip"])[ok]).to(self.device, non_blocking=True)
        labels = torch.from_numpy(np.asarray(batch["label"], dtype=np.int64)[ok]).to(self.device)
        return ClipBatch(clips=normalise(clips), labels=labels, skipped=int((~ok).sum()))


def clip_dataset(
    paths: Sequence[str],
    sampling: ClipSampling,
    *,
    passes: int = 1,
    seed: int = 0,
    decode_batch_size: int = 8,
    rows: RowFilter | None = None,
    data_context=None,  # ray.data.DataContext | None
):  # -> ray.data.Dataset
    """Lazy Ray Data pipeline making ``passes`` passes over shard ``paths`` (keeping ``rows`` of
    them, for a carved split) in one execution.

    A training run should ask for all its passes here rather than iterate a one-pass dataset once
    per epoch: every execution re-plans the read and starts its decode tasks and prefetch buffers
    from nothing, which cost about a second per epoch on 2 cores (``bench/pipeline.py``). Training
    visits the files in a new order on every pass (seeded by ``seed``); shards are written in
    shuffled clip order, and consumers add a local shuffle buffer. Evaluation keeps stored order.

    The dataset is planned under ``data_context`` (default: ``pipeline_context()``); a Dataset
    keeps the context it was created with, also inside Train workers, so the caller's own context
    and its other datasets are left as they were.
    """
    import ray.data

    if passes < 1:
        raise ValueError(f"passes must be at least 1, got {passes}")
    shuffle = np.random.default_rng(seed) if sampling.train else None
    ordered = [paths[index] for index in file_order(len(paths), passes, shuffle)]
    with ray.data.DataContext.current(data_context or pipeline_context()):
        # One read task per file visit, and decoding with no batch_size of its own: Ray fuses a
        # read into the next map only then (no split factor on the read, no minimum batch on the
        # map), so each task reads one shard and decodes it. Kept apart, a read task held its CPU
        # slot for as long as its blocks waited to be decoded, and 2 CPUs ran about one decode
        # task at a time (bench/RESULTS.md). Parallelism is therefore shard visits in flight:
        # a run of one pass over one shard decodes on one CPU.
        dataset = ray.data.read_parquet(ordered, override_num_blocks=len(ordered))
        return dataset.select_columns(_columns(rows)).map_batches(
            decode_blocks,
            fn_kwargs={"sampling": sampling, "batch_size": decode_batch_size, "rows": rows},
            batch_size=None,
            num_cpus=1,
            zero_copy_batch=True,
        )


def file_order(count: int, passes: int | None, shuffle: np.random.Generator | None) -> Iterator[int]:
    """File indices for ``passes`` passes over ``count`` files (``None``: endless), each pass a new
    permutation drawn from ``shuffle``, or stored order without it."""
    for _ in itertools.count() if passes is None else range(passes):
        yield from (shuffle.permutation(count) if shuffle is not None else range(count))


def iterate_clips(
    paths: Sequence[str],
    sampling: ClipSampling,
    *,
    batch_size: int,
    device: torch.device | str = "cpu",
    part: tuple[int, int] = (0, 1),
    shuffle: np.random.Generator | None = None,
    passes: int | None = 1,
    skip: int = 0,
    rows: RowFilter | None = None,
) -> Iterator[ClipBatch]:
    """The same decode and collate, in this process: for evaluation, baselines and single-worker
    trials that decode in their own process. ``rows``: which rows of the shards to keep (a
    carved split's); the others are never decoded.

    ``part=(rank, world_size)`` keeps every ``world_size``-th batch starting at ``rank``, skipped
    before decoding, so ranks split the work instead of repeating it. ``shuffle`` visits the files
    in a new random order on each pass and the clips of each file in a random order (one file's
    encoded bytes are held at a time), and seeds each batch's training frame offsets, so that with
    torch's global generator (crops) it fixes every clip of the stream; without it, files and clips
    come in stored order. ``passes=None`` never ends: a training run takes the batches it needs
    from one stream. ``skip`` drops the stream's first batches undecoded but with every random draw
    made, so a resumed run gets the batches that followed where it stopped.
    """
    rank, world_size = part
    collate = ClipCollate(device)
    for index, columns in enumerate(_encoded_batches(paths, batch_size, shuffle, passes, rows)):
        offsets = np.random.default_rng(shuffle.integers(2**63)) if shuffle is not None else None
        if index >= skip and index % world_size == rank:
            yield collate(decode_batch(columns, sampling, offsets))


def take_clips(
    paths: Sequence[str], sampling: ClipSampling, count: int, rows: RowFilter | None = None
) -> Tensor | None:
    """The first ``count`` decodable clips of a split's shards in stored order, prepared as
    ``sampling`` says, without decoding further: what checks and drawings of a model run on.
    None when the split has no decodable clip."""
    batches, taken = [], 0
    for batch in iterate_clips(paths, sampling, batch_size=count, rows=rows):
        batches.append(batch.clips)
        taken += len(batch.clips)
        if taken >= count:
            break
    return torch.cat(batches)[:count] if taken else None


def _encoded_batches(
    paths: Sequence[str],
    batch_size: int,
    shuffle: np.random.Generator | None,
    passes: int | None,
    rows: RowFilter | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Encoded rows in batches of ``batch_size``. Stored order: batches stop at file ends (the
    evaluation path splits by batch index). Shuffled: rows carry over between files and passes, so
    only the stream's last batch can be short. A shard that cannot be read is named in the error."""
    columns = _columns(rows)
    if shuffle is None:
        for file_index in file_order(len(paths), passes, None):
            with _naming(paths[file_index]):
                batches = pq.ParquetFile(paths[file_index]).iter_batches(batch_size=batch_size, columns=columns)
                for record_batch in batches:
                    kept = _kept(record_batch, rows)
                    if kept.num_rows:
                        yield _numpy_columns(kept)
        return
    pending = None
    for file_index in file_order(len(paths), passes, shuffle):
        with _naming(paths[file_index]):
            table = _kept(pq.read_table(paths[file_index], columns=columns), rows)
        table = table.take(shuffle.permutation(table.num_rows))
        if pending is not None:
            table = pa.concat_tables([pending, table])
        whole = table.num_rows - table.num_rows % batch_size
        for start in range(0, whole, batch_size):
            yield _numpy_columns(table.slice(start, batch_size))
        pending = table.slice(whole)
    if pending is not None and pending.num_rows:
        yield _numpy_columns(pending)


def _columns(rows: RowFilter | None) -> list[str]:
    """The columns a read needs: ``clip_id`` too when rows are filtered by it."""
    return COLUMNS if rows is None else [*COLUMNS, "clip_id"]


def _kept(rows_read: pa.Table | pa.RecordBatch, rows: RowFilter | None) -> pa.Table | pa.RecordBatch:
    if rows is None:
        return rows_read
    return rows_read.filter(pa.array(rows.keep(rows_read.column("clip_id").to_numpy(zero_copy_only=False))))


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """A shard Parquet cannot read (damaged, truncated, gone) fails naming the shard."""
    try:
        yield
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{storage.display(path)}: not a readable Parquet shard ({error})") from None


def _numpy_columns(rows: pa.Table | pa.RecordBatch) -> dict[str, np.ndarray]:
    return {name: rows.column(name).to_numpy(zero_copy_only=False) for name in COLUMNS}
