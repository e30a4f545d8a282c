"""Two kinds of checkpoint.

* A **training checkpoint** (``state.pt`` + ``config.json``): everything to resume a run exactly —
  student (and teacher in mutual mode), objective adapters, optimisers, schedulers, epoch, step
  and the resolved config. Loaded with ``torch.load(weights_only=True)``: no pickle code runs.
* An **exported model** (``model.safetensors`` + ``model.json``): what users ship — weights plus
  everything needed to rebuild and feed the model (name, kwargs, class names, input spec, metrics,
  the config that trained it), readable without this package's training code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from training.data.normalise import MEAN, STD
from training.models import VideoClassifier, create_model

STATE_NAME = "state.pt"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
META_NAME = "model.json"
ENSEMBLE_NAME = "ensemble.json"
EXPORT_FORMAT = 1


def save_training_state(directory: Path, state: dict[str, Any], config: dict[str, Any]) -> None:
    """Write ``state`` (tensors, state dicts and numbers only) and the resolved ``config`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(state, directory / STATE_NAME)
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=str))


def load_training_state(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, config)`` saved by ``save_training_state``; errors name the directory."""
    path = Path(directory) / STATE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {directory} is not a specdistill training checkpoint")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state, json.loads((Path(directory) / CONFIG_NAME).read_text())


@dataclass
class ModelCard:
    """``model.json``: enough to rebuild the network and prepare its input without the training code."""

    model: str
    model_kwargs: dict[str, Any]
    classes: list[str]
    num_frames: int
    size: int
    mean: tuple[float, ...] = MEAN
    std: tuple[float, ...] = STD
    metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    format: int = EXPORT_FORMAT

    @property
    def input_spec(self) -> str:
        return f"N×3×{self.num_frames}×{self.size}×{self.size} float, RGB in [0,1] normalised by mean/std"


def export_model(directory: Path, model: VideoClassifier, card: ModelCard) -> Path:
    """Write ``model``'s weights (safetensors) and ``card`` into ``directory``; returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, directory / WEIGHTS_NAME, metadata={"model": card.model})
    (directory / META_NAME).write_text(json.dumps(asdict(card) | {"input": card.input_spec}, indent=2) + "\n")
    return directory


def load_card(directory: Path) -> ModelCard:
    path = Path(directory) / META_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {directory} is not an exported model (see `specdistill best`)")
    payload = json.loads(path.read_text())
    payload.pop("input", None)
    if payload.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: format {payload.get('format')!r}, this build reads {EXPORT_FORMAT}")
    try:
        return ModelCard(**payload)
    except TypeError as error:
        raise ValueError(f"{path}: malformed ({error})") from error


def load_exported(directory: str | Path, map_location: str | torch.device = "cpu") -> tuple[VideoClassifier, ModelCard]:
    """Rebuild an exported model in eval mode: ``(model, card)``."""
    card = load_card(Path(directory))
    model = create_model(card.model, num_classes=len(card.classes), num_frames=card.num_frames, **card.model_kwargs)
    weights = load_file(Path(directory) / WEIGHTS_NAME, device=str(map_location))
    _load_strict(model, weights, Path(directory) / WEIGHTS_NAME)
    return model.to(map_location).eval(), card


def write_ensemble(directory: Path, members: list[Path], info: dict[str, Any]) -> Path:
    """An ensemble is a directory of exported members plus ``ensemble.json`` naming them."""
    relative = [str(Path(m).resolve().relative_to(Path(directory).resolve())) for m in members]
    (Path(directory) / ENSEMBLE_NAME).write_text(json.dumps({"members": relative, **info}, indent=2) + "\n")
    return Path(directory)


def exported_members(path: str | Path) -> list[Path]:
    """The exported models behind ``path``: its members if it is an ensemble, else itself."""
    path = Path(path)
    manifest = path / ENSEMBLE_NAME
    if not manifest.is_file():
        load_card(path)  # fails clearly if this is not an exported model either
        return [path]
    members = [path / m for m in json.loads(manifest.read_text())["members"]]
    if not members:
        raise ValueError(f"{manifest}: the ensemble has no members")
    return members


def _load_strict(model: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(f"{source} does not fit the model it names: {error}") from error
