"""What the training loop asks of its surroundings (:class:`Session`), and its three implementations.

The loop never calls Ray for its context: in Ray 2.60 ``ray.train.report`` raises inside a Tune
function and Train's local mode is refused there, so a single-worker trial (run straight in the
Tune trainable, seconds of overhead) and a multi-worker one (a ``TorchTrainer`` launched from the
trainable) need different calls for the same needs: where tensors live, how a network is wrapped,
the training stream, the validation slice, reductions across ranks, reports and the latest
checkpoint. ``LocalSession`` answers them with no Ray at all (benchmarks, debugging).

Validation clips are decoded in-process by each rank from its slice of the validation shards
(deterministic sampling, so they are decoded once and cached when small): evaluation then costs
no Ray Data start-up per epoch and needs no collective beyond one all-reduce of the counts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn

from training.data.shards import SplitSource
from training.data.stream import ClipBatch, ClipCollate, ClipSampling, iterate_clips
from training.devices import Requested, resolve_device
from training.telemetry import TrialGauges

if TYPE_CHECKING:
    import ray.data

VAL_CACHE_BYTES = 1 << 30


class Session(Protocol):
    rank: int
    world_size: int
    device: torch.device

    def prepare(self, module: nn.Module, *, trainable: bool) -> nn.Module:
        """Move to the device; wrap in DDP when ``trainable`` and there is more than one worker."""

    def train_batches(self, batch_size: int, start: int = 0) -> Generator[ClipBatch, None, None]:
        """This rank's training batches for the whole run, without end: the loop asks once and
        takes ``steps_per_epoch`` batches per epoch, so epochs do not restart the data pipeline.
        A resumed run asks from batch ``start`` on: in-process streams then continue exactly where
        the interrupted run stopped; Ray Data streams, which have no fixed order, start afresh."""

    def val_batches(self, batch_size: int) -> Iterable[ClipBatch]:
        """This rank's slice of the validation set."""

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor: ...

    def report(self, metrics: dict[str, float], checkpoint: Callable[[Path], None] | None) -> None:
        """Report ``metrics``; ``checkpoint(dir)`` writes the checkpoint to attach (rank 0's is kept)."""

    def latest_checkpoint(self) -> AbstractContextManager[Path | None]:
        """The run's latest checkpoint as a local directory for a ``with`` block, or None."""


class _ValidationCache:
    """This rank's validation clips: decoded in-process once and kept when they fit in memory."""

    def __init__(self, source: SplitSource, sampling: ClipSampling, rank: int, world_size: int, device: torch.device):
        self.source, self.sampling, self.rank, self.world_size, self.device = source, sampling, rank, world_size, device
        self._cached: list[ClipBatch] | None = None

    def batches(self, batch_size: int) -> Iterable[ClipBatch]:
        if self._cached is not None:
            return self._cached
        part = (self.rank, self.world_size)
        batches = list(
            iterate_clips(
                self.source.paths,
                self.sampling,
                batch_size=batch_size,
                device=self.device,
                part=part,
                rows=self.source.rows,
            )
        )
        if sum(b.clips.numel() * b.clips.element_size() for b in batches) <= VAL_CACHE_BYTES:
            self._cached = batches
        return batches


TrainBatches = Callable[[int, int], Generator[ClipBatch, None, None]]


def in_process_batches(source: SplitSource, sampling: ClipSampling, device: torch.device, *, seed: int) -> TrainBatches:
    """Training batches decoded in the calling process, endless, in a new random order every pass."""

    def batches(batch_size: int, start: int = 0) -> Generator[ClipBatch, None, None]:
        shuffle = np.random.default_rng(seed)
        return iterate_clips(
            source.paths,
            sampling,
            batch_size=batch_size,
            device=device,
            shuffle=shuffle,
            passes=None,
            skip=start,
            rows=source.rows,
        )

    return batches


def ray_data_batches(iterator: ray.data.DataIterator, device: torch.device) -> TrainBatches:
    """Training batches from a Ray Data pipeline (decode tasks run beside the trainer): a
    dataset's ``iterator()`` in a trial, ``get_dataset_shard`` in a Train worker.

    Build the dataset with all the run's passes (``clip_dataset(passes=loop.passes_per_run(...))``)
    so that one execution feeds the whole run. A shorter dataset still works: the stream starts
    a new execution whenever one ends (the per-epoch restart that costs about a second each).
    A resumed run's ``start`` is not skipped: the execution's order is not fixed, so there is no
    position to return to, and decoding batches only to drop them would cost the time they take.
    """

    def batches(batch_size: int, start: int = 0) -> Generator[ClipBatch, None, None]:
        while True:
            delivered = False
            for batch in iterator.iter_torch_batches(
                batch_size=batch_size,
                collate_fn=ClipCollate(device),
                local_shuffle_buffer_size=4 * batch_size,
                drop_last=True,
                prefetch_batches=2,
            ):
                delivered = True
                yield batch
            if not delivered:  # an empty dataset would otherwise restart forever
                return

    return batches


class _OneProcess:
    """What the sessions that train in a single process share: rank 0 of 1, the given device and
    training stream, and this process's validation cache."""

    rank = 0
    world_size = 1

    def __init__(self, train: TrainBatches, val_source: SplitSource, val: ClipSampling, device: torch.device):
        self.device = device
        self._train = train
        self._val = _ValidationCache(val_source, val, 0, 1, device)

    def prepare(self, module: nn.Module, *, trainable: bool) -> nn.Module:
        return module.to(self.device)

    def train_batches(self, batch_size: int, start: int = 0) -> Generator[ClipBatch, None, None]:
        return self._train(batch_size, start)

    def val_batches(self, batch_size: int) -> Iterable[ClipBatch]:
        return self._val.batches(batch_size)

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        return values


class LocalSession(_OneProcess):
    """The loop in this process with no Ray at all: in-process decoding, metrics kept in
    ``history``. The baseline that Ray's overhead is measured against (``bench/``), and a way to
    debug a config without a cluster."""

    def __init__(
        self,
        train_source: SplitSource,
        val_source: SplitSource,
        train: ClipSampling,
        val: ClipSampling,
        *,
        seed: int = 0,
        device: torch.device | None = None,
    ):
        device = device or resolve_device("auto")
        super().__init__(in_process_batches(train_source, train, device, seed=seed), val_source, val, device)
        self.history: list[dict[str, float]] = []

    def report(self, metrics: dict[str, float], checkpoint: Callable[[Path], None] | None) -> None:
        self.history.append(metrics)

    @contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        yield None


class TuneSession(_OneProcess):
    """A single-worker trial running inside the Tune function trainable; ``train`` gives the run's
    training stream (``in_process_batches`` or ``ray_data_batches``)."""

    def __init__(
        self, train: TrainBatches, val_source: SplitSource, val: ClipSampling, device: torch.device, gauges: TrialGauges
    ):
        super().__init__(train, val_source, val, device)
        self._gauges = gauges

    def report(self, metrics: dict[str, float], checkpoint: Callable[[Path], None] | None) -> None:
        import ray
        import ray.tune

        self._gauges.publish(metrics)
        metrics = metrics | {"node_id": ray.get_runtime_context().get_node_id()}  # where the epoch ran
        _report(ray.tune.report, ray.tune.Checkpoint, metrics, checkpoint)

    def latest_checkpoint(self) -> AbstractContextManager[Path | None]:
        import ray.tune

        return _checkpoint_directory(ray.tune.get_checkpoint())


class TrainSession:
    """One worker of a ``TorchTrainer`` (DDP over gloo on CPU, NCCL on GPU)."""

    def __init__(self, val_source: SplitSource, val: ClipSampling, gauges: TrialGauges, requested: Requested = "auto"):
        import ray
        import ray.train
        import ray.train.torch

        context = ray.train.get_context()
        self.rank, self.world_size = context.get_world_rank(), context.get_world_size()
        resolve_device(requested, gpu_reserved=bool(ray.get_gpu_ids()))  # fail here, not on CPUs silently
        self.device = ray.train.torch.get_device()
        self._train = ray_data_batches(ray.train.get_dataset_shard("train"), self.device)
        self._val = _ValidationCache(val_source, val, self.rank, self.world_size, self.device)
        self._gauges = gauges if self.rank == 0 else None

    def prepare(self, module: nn.Module, *, trainable: bool) -> nn.Module:
        import ray.train.torch

        return ray.train.torch.prepare_model(module, parallel_strategy="ddp" if trainable else None)

    def train_batches(self, batch_size: int, start: int = 0) -> Generator[ClipBatch, None, None]:
        return self._train(batch_size, start)

    def val_batches(self, batch_size: int) -> Iterable[ClipBatch]:
        return self._val.batches(batch_size)

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            torch.distributed.all_reduce(values)
        return values

    def report(self, metrics: dict[str, float], checkpoint: Callable[[Path], None] | None) -> None:
        import ray
        import ray.train

        if self._gauges is not None:
            self._gauges.publish(metrics)
        metrics = metrics | {"node_id": ray.get_runtime_context().get_node_id()}  # where the epoch ran
        # Every rank must call report the same number of times (it is a barrier); only rank 0 writes.
        _report(ray.train.report, ray.train.Checkpoint, metrics, checkpoint if self.rank == 0 else None)

    def latest_checkpoint(self) -> AbstractContextManager[Path | None]:
        import ray.train

        return _checkpoint_directory(ray.train.get_checkpoint())


def _report(
    report: Callable[..., None],
    checkpoint_type: Any,
    metrics: dict[str, float],
    checkpoint: Callable[[Path], None] | None,
) -> None:
    """``report(metrics)``, with the checkpoint ``checkpoint(dir)`` writes when there is one: Tune's
    and Train's report calls and checkpoint classes have the same shape but are not the same."""
    if checkpoint is None:
        report(metrics)
        return
    with tempfile.TemporaryDirectory() as directory:
        checkpoint(Path(directory))
        report(metrics, checkpoint=checkpoint_type.from_directory(directory))


@contextmanager
def _checkpoint_directory(found: Any) -> Iterator[Path | None]:
    """A Tune or Train checkpoint (or None) as a local directory for the ``with`` block."""
    if found is None:
        yield None
        return
    with found.as_directory() as directory:
        yield Path(directory)
