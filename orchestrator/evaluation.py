"""``specdistill evaluate`` and ``specdistill ensemble``: held-out accuracy of exported models, on
the test split by default (the one split no sweep decision reads).

Evaluation decodes in-process with deterministic sampling (``k`` interleaved views per clip,
softmax probabilities averaged over views), so two runs give identical numbers. An ensemble
averages its members' probabilities; members are scored as parallel Ray tasks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from orchestrator.cluster import connect
from training import storage
from training.checkpoint import ModelCard, exported_members, load_exported, write_ensemble
from training.data.shards import MANIFEST_NAME, load_manifest
from training.data.splits import TEST
from training.data.stream import ClipSampling, iterate_clips
from training.metrics import confusion_matrix
from training.threads import single_threaded_torch


@dataclass
class Probabilities:
    """``probs``: ``N×C`` class probabilities, ``labels``: ``N``; ``skipped``: undecodable clips."""

    probs: np.ndarray
    labels: np.ndarray
    skipped: int
    classes: list[str]


def model_probabilities(
    export_dir: str | Path, data_dir: str | Path, *, split: str = TEST, clips: int = 1, batch_size: int = 16
) -> Probabilities:
    """Run one exported model over a split of a shard directory (local paths or storage URIs)."""
    model, card = load_exported(export_dir)
    return probabilities(model, card, data_dir, split=split, clips=clips, batch_size=batch_size, name=str(export_dir))


def probabilities(
    model: torch.nn.Module,
    card: ModelCard,
    data_dir: str | Path,
    *,
    split: str = TEST,
    clips: int = 1,
    batch_size: int = 16,
    name: str = "the model",
) -> Probabilities:
    """``model`` (in eval mode, fed as ``card`` says) over a split; ``name`` says whose it is in errors."""
    manifest = load_manifest(data_dir)
    if manifest.classes != card.classes:
        where = storage.display(storage.join(data_dir, MANIFEST_NAME))
        raise ValueError(f"{storage.display(name)} was trained on other classes than {where} lists")
    sampling = ClipSampling(num_frames=card.num_frames, size=card.size, train=False, clips=clips)
    probs, labels, skipped = [], [], 0
    with torch.no_grad():
        source = manifest.split(data_dir, split)
        for batch in iterate_clips(source.paths, sampling, batch_size=batch_size, rows=source.rows):
            skipped += batch.skipped
            if not len(batch.labels):
                continue
            views = batch.clips.shape[1] if batch.clips.dim() == 6 else 1
            logits = model(batch.clips.flatten(0, 1) if views > 1 else batch.clips).logits
            probs.append(logits.softmax(dim=1).unflatten(0, (-1, views)).mean(dim=1).numpy())
            labels.append(batch.labels.numpy())
    if not probs:
        raise ValueError(f"{storage.display(data_dir)}: split {split!r} has no decodable clip")
    return Probabilities(np.concatenate(probs), np.concatenate(labels), skipped, card.classes)


@dataclass
class EvaluationReport:
    top1: float
    top5: float
    per_class: dict[str, float]
    confusion: np.ndarray
    clips: int
    skipped: int

    def render(self) -> str:
        lines = [f"top-1 {self.top1:.4f}  top-5 {self.top5:.4f}  on {self.clips} clips ({self.skipped} skipped)"]
        width = max(len(name) for name in self.per_class)
        lines += [f"  {name:<{width}}  {accuracy:.3f}" for name, accuracy in self.per_class.items()]
        lines.append("confusion (rows: true class, columns: predicted, in class order):")
        lines += ["  " + " ".join(f"{v:3d}" for v in row) for row in self.confusion.tolist()]
        return "\n".join(lines)


def score(result: Probabilities) -> EvaluationReport:
    probs, labels = torch.tensor(result.probs), torch.tensor(result.labels)  # copies: Ray's arrays are read-only
    top = probs.topk(min(5, probs.shape[1]), dim=1).indices
    confusion = confusion_matrix(top[:, 0], labels, len(result.classes)).numpy()
    totals = confusion.sum(axis=1)
    per_class = {
        name: float(confusion[i, i] / totals[i]) if totals[i] else float("nan") for i, name in enumerate(result.classes)
    }
    return EvaluationReport(
        top1=float((top[:, 0] == labels).float().mean()),
        top5=float((top == labels[:, None]).any(dim=1).float().mean()),
        per_class=per_class,
        confusion=confusion,
        clips=len(labels),
        skipped=result.skipped,
    )


def _members_probabilities(members: list[str], data_dir: str | Path, split: str, clips: int) -> list[Probabilities]:
    """Score members as parallel Ray tasks when there are several (one CPU each)."""
    if len(members) == 1:
        return [model_probabilities(members[0], data_dir, split=split, clips=clips)]
    import ray

    connect()
    task = ray.remote(num_cpus=1)(model_probabilities)
    refs = [task.remote(str(m), str(data_dir), split=split, clips=clips) for m in members]
    return ray.get(refs)


def evaluate_members(
    path: str | Path, data_dir: str | Path, *, split: str = TEST, clips: int = 1
) -> list[EvaluationReport]:
    """Each model behind an export scored alone: the runs of a trial with repeats, exported as an
    ensemble, give one figure per seed (a single model gives its own)."""
    return [score(result) for result in _members_probabilities(exported_members(path), data_dir, split, clips)]


def evaluate_export(path: str | Path, data_dir: str | Path, *, split: str = TEST, clips: int = 1) -> EvaluationReport:
    """Evaluate an exported model or ensemble (mean of the members' probabilities)."""
    results = _members_probabilities(exported_members(path), data_dir, split, clips)
    mean = np.mean([r.probs for r in results], axis=0)
    return score(Probabilities(mean, results[0].labels, results[0].skipped, results[0].classes))


@dataclass
class EnsembleReport:
    ensemble: EvaluationReport
    members: list[tuple[str, EvaluationReport]]

    def render(self) -> str:
        best = max(report.top1 for _, report in self.members)
        lines = [f"{'member':<40}{'top-1':>8}{'top-5':>8}"]
        lines += [f"{storage.display(path):<40}{r.top1:>8.4f}{r.top5:>8.4f}" for path, r in self.members]
        lines.append(f"{'ensemble (mean probabilities)':<40}{self.ensemble.top1:>8.4f}{self.ensemble.top5:>8.4f}")
        lines.append(f"ensemble − best member: {self.ensemble.top1 - best:+.4f} top-1")
        return "\n".join(lines)


def build_ensemble(
    sweep_dir: str | Path,
    directory: str | Path,
    data_dir: str | Path,
    *,
    top_k: int,
    metric: str = "val_top1",
    mode: str = "max",
    split: str = TEST,
    clips: int = 1,
    portable: bool = True,
) -> EnsembleReport:
    """Export the top-``k`` trials as an ensemble directory and score it against its members
    (``portable``: each member with its ONNX file and torch.export program, as ``best`` writes them)."""
    from orchestrator.selection import export_best

    if top_k < 2:
        raise ValueError(f"an ensemble needs top_k >= 2, got {top_k}")
    members = export_best(sweep_dir, directory, metric=metric, mode=mode, top_k=top_k, portable=portable)
    results = _members_probabilities(members, data_dir, split, clips)
    reports = [(member, score(result)) for member, result in zip(members, results, strict=True)]
    mean = np.mean([r.probs for r in results], axis=0)
    ensemble = score(Probabilities(mean, results[0].labels, results[0].skipped, results[0].classes))
    write_ensemble(directory, members, {"sweep": str(sweep_dir), "metric": metric, f"{split}_top1": ensemble.top1})
    return EnsembleReport(ensemble, reports)


def cpu_latency_ms(card_model: tuple[torch.nn.Module, ModelCard], *, repeats: int = 10) -> float:
    """Median single-clip forward time on one CPU thread (batch 1): the deployment figure, and one
    that other processes on the machine disturb far less than a multi-threaded one."""
    model, card = card_model
    clip = torch.randn(1, 3, card.num_frames, card.size, card.size)
    timings = []
    with single_threaded_torch(), torch.no_grad():
        model(clip)
        for _ in range(repeats):
            started = time.perf_counter()
            model(clip)
            timings.append(time.perf_counter() - started)
    return float(np.median(timings) * 1000)
