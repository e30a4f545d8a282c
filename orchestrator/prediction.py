"""``specdistill predict``: the top classes of video files, from an exported student (or ensemble).

A video goes through the decode and sampling ``evaluate`` uses (the card's frame count and size,
``k`` interleaved views) and is normalised with the card's own mean and std, so a file scores
exactly as the same clip scores inside a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training import storage
from training.checkpoint import ModelCard, exported_members, load_exported
from training.data.codec import DecodeError, probe_clip
from training.data.stream import ClipSampling, decode_batch


@dataclass
class Prediction:
    """One video's ``top`` classes, most probable first, as ``(class, probability)``."""

    path: Path
    top: list[tuple[str, float]]

    def render(self) -> str:
        ranked = "  ".join(f"{name} {probability:.3f}" for name, probability in self.top)
        return f"{self.path}: {ranked}"


def clip_views(video: bytes, card: ModelCard, *, clips: int = 1) -> torch.Tensor:
    """``clips×3×T×H×W`` float views of an encoded video, prepared as the card says."""
    available = probe_clip(video).num_frames
    sampling = ClipSampling(num_frames=card.num_frames, size=card.size, train=False, clips=clips)
    row = {
        "video": np.array([video], dtype=object),
        "label": np.zeros(1, dtype=np.int64),
        "num_frames": np.array([available]),
    }
    decoded = decode_batch(row, sampling)
    if not decoded["ok"][0]:
        raise DecodeError("decoding failed while sampling its frames")
    frames = torch.from_numpy(decoded["clip"][0]).reshape(clips, card.num_frames, 3, card.size, card.size)
    shape = (1, 3, 1, 1, 1)
    mean, std = torch.tensor(card.mean).view(shape), torch.tensor(card.std).view(shape)
    return (frames.transpose(1, 2).float() / 255.0 - mean) / std


def predict_files(
    export: str | Path, videos: list[Path], *, top: int = 5, clips: int = 1
) -> tuple[list[Prediction], list[str]]:
    """Predictions for every readable video in ``videos``, and one error line per file that is not
    (a missing or undecodable file costs itself, not the rest). An ensemble averages its members'
    probabilities, as ``evaluate`` does."""
    members = [load_exported(member) for member in exported_members(export)]
    classes = members[0][1].classes
    for member, (_, card) in zip(exported_members(export), members, strict=True):
        if card.classes != classes:
            raise ValueError(f"{storage.display(member)} has other classes than the ensemble's first member")
    predictions, errors = [], []
    for path in videos:
        try:
            video = path.read_bytes()
            probabilities = _probabilities(video, members, clips)
        except (OSError, DecodeError) as error:
            errors.append(f"{path}: {error}")
            continue
        order = np.argsort(-probabilities, kind="stable")[: min(top, len(classes))]
        predictions.append(Prediction(path, [(classes[i], float(probabilities[i])) for i in order]))
    return predictions, errors


def _probabilities(video: bytes, members: list[tuple[torch.nn.Module, ModelCard]], clips: int) -> np.ndarray:
    """The mean over members and views of the softmax, as ``evaluate`` averages them."""
    total = None
    with torch.no_grad():
        for model, card in members:
            probabilities = model(clip_views(video, card, clips=clips)).logits.softmax(dim=1).mean(dim=0)
            total = probabilities if total is None else total + probabilities
    return (total / len(members)).numpy()
