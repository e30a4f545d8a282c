"""The training loop both stages run, on one worker or many: ``train_loop_per_worker(config)``.

Teacher stage: ``model`` with cross-entropy. Distill stage: ``model`` as the student of the
exported ``teachers`` with the full objective, teachers frozen or (mutual) learning alongside.
An epoch is ``steps_per_epoch`` consecutive batches of one training stream that lasts the whole
run, so the data pipeline never restarts between epochs. Each epoch ends with an evaluation on
the validation split and one report carrying a checkpoint that holds everything needed to
resume, so a restarted worker continues at the next epoch with its step counter, optimiser
moments and schedule intact; with the in-process loader on CPU, bit for bit as if never stopped.

With ``repeats`` (a sweep's ``tune.repeats``), one trial trains that many runs of its config,
seeded ``seed``, ``seed + 1``, …, in lockstep: every epoch each run takes its next batches of the
one stream and is evaluated, and the report carries their mean under the usual names (what ASHA,
Optuna and ``best`` rank), its spread (``val_top1_std``…) and each run's own (``repeat<r>/…``).
The seed then decides less of what a sweep picks. Each run draws from a random generator of its
own, so adding a repeat does not change another's initialisation.
"""

from __future__ import annotations

import contextlib
import itertools
import resource
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from training.checkpoint import load_training_state, run_states, save_training_state
from training.config import TrainConfig
from training.data.shards import Manifest, load_manifest
from training.data.stream import ClipBatch, ClipSampling
from training.distiller import Distiller
from training.failures import check_finite, failing_fast
from training.metrics import topk_correct
from training.models.describe import cost
from training.precision import Precision
from training.session import Session, TrainSession
from training.telemetry import TrialGauges


def samplings(config: TrainConfig) -> tuple[ClipSampling, ClipSampling]:
    """Training (TSN, random crop) and validation (uniform, centre crop, ``eval_clips`` views) sampling."""
    data = config.data
    train = ClipSampling(num_frames=data.num_frames, size=data.size, flip=data.flip, min_scale=data.min_scale)
    val = ClipSampling(num_frames=data.num_frames, size=data.size, train=False, clips=data.eval_clips)
    return train, val


def steps_per_epoch(config: TrainConfig, manifest: Manifest, world_size: int) -> int:
    """Batches each rank takes per epoch: the split shared equally, whole batches only."""
    clips = manifest.splits[config.data.train_split].clips
    steps = clips // (world_size * config.optim.batch_size)
    if steps == 0:
        raise ValueError(
            f"{config.data.path}: {clips} training clips cannot fill one batch of {config.optim.batch_size} "
            f"on each of {world_size} workers; lower optim.batch_size"
        )
    return min(steps, config.optim.max_steps_per_epoch or steps)


def passes_per_run(config: TrainConfig, manifest: Manifest, world_size: int, repeats: int = 1) -> int:
    """Passes over the training split that a whole trial consumes (fewer than ``optim.epochs`` when
    ``max_steps_per_epoch`` cuts epochs short; ``repeats`` runs share the stream): the Ray Data
    pipeline is built for all of them, so one execution feeds the trial and the epochs take
    consecutive batches from it."""
    clips = manifest.splits[config.data.train_split].clips
    steps = steps_per_epoch(config, manifest, world_size)
    needed = repeats * config.optim.epochs * steps * world_size * config.optim.batch_size
    return -(-needed // clips)


def _average_gradients_across_ranks(module: nn.Module, world_size: int) -> None:
    """DDP syncs the student's gradients; the objective's own parameters (tap adapters, uncertainty
    log-variances) live outside it, so they average their gradients with a hook instead."""
    if world_size == 1:
        return

    def hook(parameter: torch.Tensor) -> None:
        torch.distributed.all_reduce(parameter.grad)
        parameter.grad /= world_size

    for parameter in module.parameters():
        parameter.register_post_accumulate_grad_hook(hook)


def _empty_on_any_rank(clips: int, session: Session) -> bool:
    """Whether any rank's batch lost all its clips to decode errors. Ranks then skip the step
    together: one rank skipping alone would leave the others waiting in DDP's gradient all-reduce."""
    if session.world_size == 1:
        return clips == 0
    empty = torch.tensor([float(clips == 0)], device=session.device)
    return bool(session.all_reduce_sum(empty).item() > 0)


def evaluate(model: nn.Module, session: Session, batch_size: int) -> dict[str, float]:
    """Top-1/top-5/cross-entropy over the validation split, summed across ranks. Multi-view batches
    (``N×V×3×T×H×W``) average the views' softmax probabilities."""
    model.eval()
    totals = torch.zeros(5, dtype=torch.float64, device=session.device)
    with torch.no_grad():
        for batch in session.val_batches(batch_size):
            clips = batch.clips
            views = clips.shape[1] if clips.dim() == 6 else 1
            logits = model(clips.flatten(0, 1) if views > 1 else clips).logits.float()
            probs = logits.softmax(dim=1).unflatten(0, (-1, views)).mean(dim=1)
            log_probs = probs.clamp_min(1e-12).log()
            totals += torch.tensor(
                [
                    topk_correct(log_probs, batch.labels, 1),
                    topk_correct(log_probs, batch.labels, 5),
                    F.nll_loss(log_probs, batch.labels, reduction="sum").item(),
                    len(batch.labels),
                    batch.skipped,
                ],
                dtype=torch.float64,
                device=session.device,
            )
    top1, top5, loss, count, skipped = session.all_reduce_sum(totals).tolist()
    if count == 0:
        raise RuntimeError("the validation split yielded no decodable clip")
    return {"val_top1": top1 / count, "val_top5": top5 / count, "val_loss": loss / count, "val_skipped": skipped}


def run_training(config: dict[str, Any], session: Session, *, repeats: int = 1) -> None:
    """Train for ``optim.epochs`` epochs (resuming from the session's latest checkpoint), reporting
    metrics and a checkpoint after each; ``repeats`` runs in lockstep. See the module docstring."""
    cfg = TrainConfig.model_validate(config)
    runs = [_Run(cfg.model_copy(update={"seed": cfg.seed + r}), session) for r in range(repeats)]
    with session.latest_checkpoint() as directory:
        if directory is not None:
            state, _ = load_training_state(directory)
            for run, run_state in zip(runs, run_states(state, repeats, directory), strict=True):
                run.restore(run_state)
    # One stream for the trial (see Session.train_batches), from where a resumed trial stopped
    # (every epoch each run takes `steps` batches); closing it stops a Ray Data execution that
    # would otherwise keep decoding for passes no one will take.
    stream = session.train_batches(cfg.optim.batch_size, runs[0].epoch * runs[0].steps * repeats)
    # What the trained model costs to run, on this trial's device (fp32, eval mode), beside its
    # accuracy in every report: what `best --pareto` and the latency/FLOPs budgets select on.
    figures = cost(runs[0].distiller.student, size=cfg.data.size, batch=min(cfg.optim.batch_size, 16))
    try:
        while runs[0].epoch < cfg.optim.epochs:
            metrics = combined([run.train_epoch(stream) for run in runs]) | figures
            session.report(metrics, checkpoint=_checkpoint_writer(runs))
    finally:
        stream.close()


SPREAD = ("val_top1", "val_top5", "val_loss")


def combined(per_run: list[dict[str, float]]) -> dict[str, float]:
    """One report for the runs of a trial: the mean of every metric under its own name (the sum of
    skipped clips, the peak of the process's memory; a value every run shares, such as the epoch
    and step counters, as it is), the standard deviation of the validation metrics
    (``<name>_std``), and each run's validation metrics (``repeat<r>/<name>``). A single run's
    metrics as they are."""
    if len(per_run) == 1:
        return per_run[0]
    first = per_run[0]
    metrics = {
        name: value if all(run[name] == value for run in per_run) else statistics.fmean(run[name] for run in per_run)
        for name, value in first.items()
    }
    # Counts of the trial's whole work add up; the process's memory is one figure.
    metrics["skipped_clips"] = sum(run["skipped_clips"] for run in per_run)
    metrics["peak_rss_mb"] = max(run["peak_rss_mb"] for run in per_run)
    metrics |= {f"{name}_std": statistics.stdev(run[name] for run in per_run) for name in SPREAD}
    metrics |= {f"repeat{r}/{name}": run[name] for r, run in enumerate(per_run) for name in SPREAD}
    return metrics | {"repeats": len(per_run)}


def _checkpoint_writer(runs: list[_Run]) -> Callable[[Path], None]:
    """Writes every run as it stands now (counters and states taken at this call)."""
    states = [run.state() for run in runs]
    state = states[0] if len(runs) == 1 else {"repeats": states, "classes": states[0]["classes"]}
    config = runs[0].cfg.model_dump(mode="json")

    def save(directory: Path) -> None:
        save_training_state(directory, state, config)

    return save


class _Run:
    """One run's distillation and how far it has got: everything a checkpoint holds, built once so
    that an epoch and a checkpoint each read as one method."""

    def __init__(self, cfg: TrainConfig, session: Session) -> None:
        torch.manual_seed(cfg.seed)
        self.cfg, self.session = cfg, session
        self.manifest = load_manifest(cfg.data.path)
        self.steps = steps_per_epoch(cfg, self.manifest, session.world_size)
        self.epoch = self.step = self.skipped = self.resumes = 0
        self.distiller = Distiller.from_config(
            cfg,
            self.manifest.classes,
            total_steps=self.steps * cfg.optim.epochs,
            precision=Precision.for_device(session.device),
            prepare=lambda network, trainable: session.prepare(network, trainable=trainable),
        )
        _average_gradients_across_ranks(self.distiller.objective, session.world_size)
        self.rng = torch.get_rng_state()  # this run's own draws (crops, dropout), kept apart from other runs'

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from the state :meth:`state` gave (read back from a checkpoint)."""
        self.distiller.load_state_dict(state)
        self.epoch, self.step, self.skipped = state["epoch"], state["step"], state["skipped"]
        self.resumes = state["resumes"] + 1
        # Crops and dropout go on as if never interrupted (checkpoints written before this key
        # existed resume with the generator as seeded).
        if "torch_rng" in state:
            self.rng = state["torch_rng"]

    def train_epoch(self, stream: Iterator[ClipBatch]) -> dict[str, float]:
        """The next ``steps`` batches of ``stream``, then the validation pass: the epoch's metrics."""
        torch.set_rng_state(self.rng)
        try:
            return self._train_epoch(stream)
        finally:
            self.rng = torch.get_rng_state()

    def _train_epoch(self, stream: Iterator[ClipBatch]) -> dict[str, float]:
        sums: dict[str, float] = defaultdict(float)
        taken, seen, correct, started = 0, 0, 0, time.perf_counter()
        for batch in itertools.islice(stream, self.steps):
            self.skipped += batch.skipped
            if _empty_on_any_rank(len(batch.labels), self.session):
                continue
            result = self.distiller.step(batch.clips, batch.labels)
            self.step += 1
            check_finite(self.step, result.metrics, self.cfg.seed)
            taken += 1
            for name, value in result.metrics.items():
                sums[name] += value
            seen += len(batch.labels)
            correct += topk_correct(result.logits, batch.labels, 1)
        elapsed = time.perf_counter() - started
        self.epoch += 1
        batches = max(1, taken)
        metrics = {
            "epoch": self.epoch,
            "step": self.step,
            **evaluate(self.distiller.model, self.session, self.cfg.optim.batch_size),
            "train_loss": sums.pop("loss", 0.0) / batches,
            "train_top1": correct / max(1, seen),
            **{f"train/{name}": value / batches for name, value in sums.items()},
            "clips_per_s": seen * self.session.world_size / max(elapsed, 1e-9),
            "skipped_clips": self.skipped,
            "resumes": self.resumes,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "lr": self.distiller.schedulers["student"].get_last_lr()[0],
        }
        if self.cfg.stage == "distill" and self.cfg.objective.weighting == "uncertainty":
            metrics |= {f"weight/{name}": w for name, w in self.distiller.objective.current_weights().items()}
        return metrics

    def state(self) -> dict[str, Any]:
        """Everything to continue this run exactly: its distillation, counters and generator."""
        return {
            **self.distiller.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "skipped": self.skipped,
            "resumes": self.resumes,
            "classes": self.manifest.classes,
            "torch_rng": self.rng,
        }


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """``TorchTrainer`` entry point: ``config`` is a ``TrainConfig`` dict plus ``_gauge_tags`` (the
    trial's :class:`~training.telemetry.TrialGauges` tags) and ``_repeats`` (runs in lockstep, see the
    module docstring).

    The trainer's ``"train"`` dataset should make ``passes_per_run`` passes (``clip_dataset(passes=...)``):
    the workers then read the whole run from one execution.
    """
    config = dict(config)
    tags = config.pop("_gauge_tags", {"sweep": "train", "trial_id": "train", "student": config.get("model", "")})
    repeats = config.pop("_repeats", 1)
    trial_dir = config.pop("_trial_dir", None)
    with failing_fast(trial_dir) if trial_dir else contextlib.nullcontext():
        cfg = TrainConfig.model_validate(config)
        manifest = load_manifest(cfg.data.path)
        _, val = samplings(cfg)
        gauges = TrialGauges(**tags)
        session = TrainSession(manifest.split(cfg.data.path, cfg.data.val_split), val, gauges, cfg.device)
        run_training(config, session, repeats=repeats)
