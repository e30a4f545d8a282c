"""The loop's data contract: a run asks once for a training stream, takes each epoch as the next
``steps_per_epoch`` batches of it and closes it at the end; Ray Data pipelines are sized to the
whole run so that one execution feeds it, and a stream over a shorter dataset starts another."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from training.checkpoint import load_training_state
from training.config import TrainConfig, with_overrides
from training.data.stream import ClipBatch, ClipSampling, clip_dataset
from training.distiller import Distiller, StepResult
from training.loop import combined, passes_per_run, run_training, samplings, steps_per_epoch
from training.session import LocalSession, ray_data_batches

CPU = torch.device("cpu")


def _config(data_dir: Path, **optim: int) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "stage": "teacher",
            "model": "tsm_mobilenet_v2",
            "data": {"path": str(data_dir), "num_frames": 4, "size": 32, "min_scale": 1.0, "loader": "in_process"},
            "optim": {"batch_size": 8, **optim},
        }
    )


@pytest.mark.parametrize(
    ("epochs", "max_steps", "world_size", "passes"),
    [
        (3, None, 1, 3),  # 6 steps × 8 clips × 3 epochs = 144 clips of 50
        (3, 2, 1, 1),  # epochs cut to 2 steps: 48 clips
        (3, None, 2, 3),  # 3 steps on each of 2 ranks × 3 epochs = 144
        (1, None, 1, 1),
    ],
)
def test_the_pipeline_holds_exactly_the_passes_a_run_takes(
    motion_shards, epochs: int, max_steps: int | None, world_size: int, passes: int
) -> None:
    data_dir, manifest = motion_shards
    config = _config(data_dir, epochs=epochs, max_steps_per_epoch=max_steps)
    needed = epochs * steps_per_epoch(config, manifest, world_size) * world_size * 8
    clips = manifest.splits["train"].clips
    assert passes_per_run(config, manifest, world_size) == passes
    assert (passes - 1) * clips < needed <= passes * clips


class _RecordingSession(LocalSession):
    """A ``LocalSession`` that counts the streams asked for, the batches drawn and the closes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.streams = self.drawn = self.closed = 0

    def train_batches(self, batch_size: int, start: int = 0) -> Generator[ClipBatch, None, None]:
        self.streams += 1
        inner = super().train_batches(batch_size, start)

        def recorded() -> Generator[ClipBatch, None, None]:
            try:
                for batch in inner:
                    self.drawn += 1
                    yield batch
            finally:
                self.closed += 1

        return recorded()


def test_a_run_takes_its_epochs_from_one_stream_and_closes_it(motion_shards) -> None:
    data_dir, manifest = motion_shards
    config = _config(data_dir, epochs=3, max_steps_per_epoch=2)
    train, val = samplings(config)
    session = _RecordingSession(manifest.split(data_dir, "train"), manifest.split(data_dir, "tune"), train, val)
    run_training(config.model_dump(mode="json"), session)
    assert (session.streams, session.drawn, session.closed) == (1, 6, 1)
    assert [(m["epoch"], m["step"]) for m in session.history] == [(1, 2), (2, 4), (3, 6)]


@pytest.mark.slow
def test_a_ray_data_stream_starts_a_new_execution_when_one_ends(motion_shards, ray_local) -> None:
    """A one-pass dataset (10 clips → 2 whole batches of 4) still feeds 5 batches, and an empty
    dataset ends the stream instead of restarting forever."""
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    data_dir, manifest = motion_shards
    dataset = clip_dataset(manifest.shard_paths(data_dir, "tune"), ClipSampling(num_frames=4, size=32))
    stream = ray_data_batches(dataset.iterator(), CPU)(4)
    assert [len(b.labels) for b in itertools.islice(stream, 5)] == [4] * 5
    stream.close()
    assert list(ray_data_batches(dataset.limit(0).iterator(), CPU)(4)) == []


class _LosingFirstBatchSession(LocalSession):
    """A ``LocalSession`` whose first training batch lost every clip to decode errors."""

    def train_batches(self, batch_size: int, start: int = 0) -> Generator[ClipBatch, None, None]:
        inner = super().train_batches(batch_size, start)
        first = next(inner)
        yield ClipBatch(clips=first.clips[:0], labels=first.labels[:0], skipped=len(first.labels))
        yield from inner


def test_epoch_means_count_the_steps_each_epoch_took(motion_shards, monkeypatch) -> None:
    """An empty batch is skipped in epoch 1 only: epoch 1 averages 2 steps, epoch 2 all 3."""
    data_dir, manifest = motion_shards
    config = _config(data_dir, epochs=2, max_steps_per_epoch=3)
    losses: list[float] = []

    original = Distiller.step

    def recorded_step(self: Distiller, clips: torch.Tensor, labels: torch.Tensor) -> StepResult:
        result = original(self, clips, labels)
        losses.append(result.metrics["loss"])
        return result

    monkeypatch.setattr(Distiller, "step", recorded_step)
    train, val = samplings(config)
    session = _LosingFirstBatchSession(manifest.split(data_dir, "train"), manifest.split(data_dir, "tune"), train, val)
    run_training(config.model_dump(mode="json"), session)
    assert [(m["step"], m["skipped_clips"]) for m in session.history] == [(2, 8), (5, 8)]
    assert [m["train_loss"] for m in session.history] == pytest.approx([sum(losses[:2]) / 2, sum(losses[2:]) / 3])


def test_a_seed_repeats_an_in_process_run_exactly(motion_shards) -> None:
    """Random frame offsets and crops included (4 of 12 frames, crops of 60–100 % of the area)."""
    data_dir, manifest = motion_shards
    config = with_overrides(_config(data_dir, epochs=2, max_steps_per_epoch=2), {"data.min_scale": 0.6})
    train, val = samplings(config)
    paths = manifest.split(data_dir, "train"), manifest.split(data_dir, "tune")

    def losses(seed: int) -> list[float]:
        session = LocalSession(*paths, train, val, seed=seed)
        run_training({**config.model_dump(mode="json"), "seed": seed}, session)
        return [m["train_loss"] for m in session.history]

    first = losses(0)
    assert losses(0) == first
    assert losses(1) != first


class _Interrupted(Exception):
    pass


class _CheckpointingSession(LocalSession):
    """A ``LocalSession`` that keeps its latest checkpoint in ``directory``, resumes from it, and
    stops the run (as a crash would) after ``stop_after`` reports."""

    def __init__(self, *args, directory: Path, stop_after: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.directory, self.stop_after = directory, stop_after

    def report(self, metrics: dict[str, float], checkpoint: Callable[[Path], None] | None) -> None:
        super().report(metrics, checkpoint)
        assert checkpoint is not None
        checkpoint(self.directory)
        if len(self.history) == self.stop_after:
            raise _Interrupted

    @contextmanager
    def latest_checkpoint(self) -> Iterator[Path | None]:
        yield self.directory if self.directory.exists() else None


@pytest.mark.parametrize("stage", ["teacher", "distill"])
def test_a_resumed_in_process_run_continues_as_if_never_interrupted(
    motion_shards, exported_teacher, tmp_path, stage: str
) -> None:
    """Same stream position, frame offsets, crops and dropout after the restart, and for a mutual
    distillation also the teacher, its optimiser and the objective's weights: the epochs after it
    match an uninterrupted run's bit for bit (on CPU)."""
    data_dir, manifest = motion_shards
    config = with_overrides(_config(data_dir, epochs=3, max_steps_per_epoch=2), {"data.min_scale": 0.6})
    if stage == "distill":
        config = with_overrides(
            config,
            {
                "stage": "distill",
                "teachers": [str(exported_teacher)],
                "data.num_frames": 8,
                "collaboration.mode": "mutual",
                "objective.weighting": "uncertainty",
            },
        )
    train, val = samplings(config)
    paths = manifest.split(data_dir, "train"), manifest.split(data_dir, "tune")
    whole = _CheckpointingSession(*paths, train, val, directory=tmp_path / "whole")
    run_training(config.model_dump(mode="json"), whole)

    crashed = _CheckpointingSession(*paths, train, val, directory=tmp_path / "resumed", stop_after=1)
    with pytest.raises(_Interrupted):
        run_training(config.model_dump(mode="json"), crashed)
    resumed = _CheckpointingSession(*paths, train, val, directory=tmp_path / "resumed")
    run_training(config.model_dump(mode="json"), resumed)

    assert stage == "teacher" or "weight/kd" in whole.history[0], "not the mutual, uncertainty-weighted run meant"
    assert [m["resumes"] for m in resumed.history] == [1, 1]
    keys = ("step", "lr", "train_loss", "train_top1", "val_loss", "skipped_clips")
    assert [[m[k] for k in keys] for m in crashed.history + resumed.history] == [
        [m[k] for k in keys] for m in whole.history
    ]


class _FillingSession(_CheckpointingSession):
    """A ``_CheckpointingSession`` whose disk fills up, leaving 1 MiB, after its first checkpoint."""

    def __init__(self, *args, filesystems, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.filesystems, self.filler = filesystems, None

    def report(self, metrics: dict[str, float], checkpoint: Callable[[Path], None] | None) -> None:
        super().report(metrics, checkpoint)
        if self.filler is None:
            self.filler = self.filesystems.fill(self.directory.parent, leave_bytes=2**20)


def test_a_checkpoint_that_does_not_fit_keeps_the_last_whole_and_the_run_resumes_once_there_is_room(
    motion_shards, small_filesystems
) -> None:
    """Checkpoint files are written beside and renamed, so the failed write leaves the previous
    checkpoint readable and no temporary file; the rerun resumes from it."""
    data_dir, manifest = motion_shards
    config = _config(data_dir, epochs=3, max_steps_per_epoch=2)
    train, val = samplings(config)
    paths = manifest.split(data_dir, "train"), manifest.split(data_dir, "tune")
    directory = small_filesystems.mount(64) / "checkpoint"
    full = _FillingSession(*paths, train, val, directory=directory, filesystems=small_filesystems)
    with pytest.raises(OSError, match="No space left on device"):
        run_training(config.model_dump(mode="json"), full)
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "state.pt"]
    assert load_training_state(directory)[0]["epoch"] == 1

    full.filler.unlink()
    resumed = _CheckpointingSession(*paths, train, val, directory=directory)
    run_training(config.model_dump(mode="json"), resumed)
    assert [(m["epoch"], m["resumes"]) for m in resumed.history] == [(2, 1), (3, 1)]


def test_repeats_train_in_lockstep_and_report_their_mean_spread_and_each_run(motion_shards, tmp_path) -> None:
    """The first run of a trial with repeats learns its first epoch exactly as the trial without
    them does (its own generator, the stream's first batches); the report is the runs' mean."""
    data_dir, manifest = motion_shards
    config = with_overrides(_config(data_dir, epochs=2, max_steps_per_epoch=2), {"data.min_scale": 0.6})
    train, val = samplings(config)
    paths = manifest.split(data_dir, "train"), manifest.split(data_dir, "tune")
    single = _CheckpointingSession(*paths, train, val, directory=tmp_path / "single", stop_after=1)
    with pytest.raises(_Interrupted):
        run_training(config.model_dump(mode="json"), single)
    three = _CheckpointingSession(*paths, train, val, directory=tmp_path / "three", stop_after=1)
    with pytest.raises(_Interrupted):
        run_training(config.model_dump(mode="json"), three, repeats=3)

    (metrics,) = three.history
    runs = [metrics[f"repeat{r}/val_top1"] for r in range(3)]
    assert metrics["val_top1"] == pytest.approx(sum(runs) / 3)
    assert metrics["val_top1_std"] == pytest.approx(torch.tensor(runs).std().item())
    assert metrics["repeats"] == 3 and metrics["step"] == 2
    assert metrics["repeat0/val_top1"] == single.history[0]["val_top1"]
    state, _ = load_training_state(tmp_path / "three")
    alone, _ = load_training_state(tmp_path / "single")
    assert len(state["repeats"]) == 3
    for key, value in alone["student"].items():
        assert torch.equal(state["repeats"][0]["student"][key], value), key
    differs = [not torch.equal(state["repeats"][1]["student"][k], v) for k, v in alone["student"].items()]
    assert any(differs), "the second run is the first one again"

    resumed = _CheckpointingSession(*paths, train, val, directory=tmp_path / "three")
    run_training(config.model_dump(mode="json"), resumed, repeats=3)
    assert [(m["epoch"], m["resumes"], m["step"]) for m in resumed.history] == [(2, 1, 4)]
    with pytest.raises(ValueError, match="a checkpoint of 3 runs, read as 2"):
        run_training(config.model_dump(mode="json"), resumed, repeats=2)


def test_the_runs_of_a_trial_add_up_their_skipped_clips_share_one_peak_memory_and_keep_their_counters() -> None:
    """Skipped clips are the trial's work lost, so they sum; the runs share one process, so its
    memory is the largest figure seen, not an average that no moment had."""
    runs = [
        {"epoch": 3, "val_top1": 0.2, "val_top5": 0.5, "val_loss": 2.0, "skipped_clips": 1.0, "peak_rss_mb": 900.0},
        {"epoch": 3, "val_top1": 0.4, "val_top5": 0.7, "val_loss": 1.0, "skipped_clips": 2.0, "peak_rss_mb": 950.0},
    ]
    metrics = combined(runs)
    assert metrics["skipped_clips"] == 3.0 and metrics["peak_rss_mb"] == 950.0
    assert metrics["epoch"] == 3 and isinstance(metrics["epoch"], int), "a shared counter turned into a mean"
    assert metrics["val_top1"] == pytest.approx(0.3) and metrics["repeat1/val_top1"] == 0.4
