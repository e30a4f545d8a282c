"""Two kinds of checkpoint.

* A **training checkpoint** (``state.pt`` + ``config.json``): everything to resume a run exactly —
  student (and teacher in mutual mode), objective adapters, optimisers, schedulers, epoch, step
  and the resolved config. Loaded with ``torch.load(weights_only=True)``: no pickle code runs.
* An **exported model** (``model.safetensors`` + ``model.json``, and usually ``model.onnx`` +
  ``model.pt2``): what users ship — weights plus everything needed to rebuild and feed the model
  (name, kwargs, class names, sampling rule, input spec, normalisation, cost, metrics, teachers,
  data, the config that trained it), readable without this package's training code.

Both live at a local path or a storage URI (``training.storage``).
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from training import storage
from training.data.normalise import MEAN, STD
from training.models import VideoClassifier, create_model
from training.models.describe import cost
from training.portable import ONNX_NAME, PROGRAM_NAME, export_portable

STATE_NAME = "state.pt"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
META_NAME = "model.json"
ENSEMBLE_NAME = "ensemble.json"
# 2 added sampling, cost, teachers, dataset, files and package_version; a format-1 card reads
# with those left empty.
EXPORT_FORMAT = 2
READABLE_FORMATS = (1, 2)


def save_training_state(directory: str | Path, state: dict[str, Any], config: dict[str, Any]) -> None:
    """Write ``state`` (tensors, state dicts and numbers only) and the resolved ``config`` into ``directory``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    storage.write_bytes(storage.join(directory, STATE_NAME), buffer.getvalue())
    storage.write_text(storage.join(directory, CONFIG_NAME), json.dumps(config, indent=2, default=str))


def load_training_state(directory: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, config)`` saved by ``save_training_state``; errors name the directory."""
    try:
        data = storage.read_bytes(storage.join(directory, STATE_NAME))
    except FileNotFoundError:
        where = storage.display(directory)
        raise FileNotFoundError(
            f"{where}/{STATE_NAME} not found: {where} is not a specdistill training checkpoint"
        ) from None
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as error:  # truncated or overwritten
        path = storage.display(storage.join(directory, STATE_NAME))
        raise ValueError(f"{path}: not a readable training state ({str(error).splitlines()[0]})") from error
    config_path = storage.join(directory, CONFIG_NAME)
    try:
        return state, json.loads(storage.read_text(config_path))
    except ValueError as error:
        raise ValueError(f"{storage.display(config_path)}: not a readable config ({error})") from error


def run_states(state: dict[str, Any], repeats: int, source: Path | str) -> list[dict[str, Any]]:
    """Each run's state in a training checkpoint: a trial of one run is the checkpoint itself, the
    runs of a trial with repeats are listed under ``repeats`` (``training.loop``)."""
    states = state.get("repeats", [state])
    if len(states) != repeats:
        raise ValueError(f"{storage.display(source)}: a checkpoint of {len(states)} runs, read as {repeats}")
    return states


# How ``evaluate`` (and ``predict``) turn a video into the clip a model takes; the card carries it
# so a deployment prepares its input the same way without reading this package's code.
EVAL_SAMPLING = {
    "frames": "split the video into num_frames equal segments and take the centre frame of each",
    "resize": "scale each frame so its shorter side is size pixels (antialiased), keeping the aspect ratio",
    "crop": "the centre size×size square",
    "layout": "N×3×T×H×W float32: RGB/255, minus mean, divided by std, per channel",
}


@dataclass
class ModelCard:
    """``model.json``: enough to rebuild the network and prepare its input without the training code,
    and what a person choosing a model to ship asks: its cost, its teachers, its data, its build."""

    model: str
    model_kwargs: dict[str, Any]
    classes: list[str]
    num_frames: int
    size: int
    mean: tuple[float, ...] = MEAN
    std: tuple[float, ...] = STD
    sampling: dict[str, str] = field(default_factory=lambda: dict(EVAL_SAMPLING))
    metrics: dict[str, float] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    teachers: list[str] = field(default_factory=list)
    dataset: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)
    package_version: str = ""
    format: int = EXPORT_FORMAT

    @property
    def input_spec(self) -> str:
        return f"N×3×{self.num_frames}×{self.size}×{self.size} float, RGB in [0,1] normalised by mean/std"


def export_model(
    directory: str | Path, model: VideoClassifier, card: ModelCard, *, check_clips: torch.Tensor | None = None
) -> str:
    """Write ``model``'s weights (safetensors) and ``card`` into ``directory`` (a local path or a
    storage URI); returns it. The card gains the model's cost and this package's version. With
    ``check_clips`` (real clips of its data), an ONNX model and a ``torch.export`` program are
    written too, once each reproduces the model on them (:mod:`training.portable`); if one does not,
    the weights and card are still written and the error raised."""
    directory = str(directory)
    for stale in (ONNX_NAME, PROGRAM_NAME):  # an earlier export's conversions must not outlive its weights
        storage.remove(storage.join(directory, stale))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    storage.write_bytes(storage.join(directory, WEIGHTS_NAME), save_safetensors(state, metadata={"model": card.model}))
    card = replace(
        card,
        cost=card.cost or model_cost(model, card.size),
        files={},
        package_version=_package_version(),
        format=EXPORT_FORMAT,
    )
    try:
        if check_clips is not None:
            card = replace(card, files=export_portable(directory, model, check_clips))
    finally:
        payload = json.dumps(asdict(card) | {"input": card.input_spec}, indent=2) + "\n"
        storage.write_text(storage.join(directory, META_NAME), payload)
    return directory


def model_cost(model: VideoClassifier, size: int) -> dict[str, Any]:
    """The card's cost figures (:func:`~training.models.describe.cost`), and where the latency was
    measured: on the exporting machine, which is seldom where the model will run."""
    device = next(model.parameters()).device
    where = f"{device} ({torch.get_num_threads()} threads)" if device.type == "cpu" else str(device)
    return cost(model, size=size) | {"latency_measured_on": where}


def _package_version() -> str:
    try:
        return version("specdistill")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def load_card(directory: str | Path) -> ModelCard:
    path = storage.join(directory, META_NAME)
    try:
        payload = json.loads(storage.read_text(path))
    except FileNotFoundError:
        where = storage.display(path)
        raise FileNotFoundError(
            f"{where} not found: {storage.display(directory)} is not an exported model (see `specdistill best`)"
        ) from None
    payload.pop("input", None)
    if payload.get("format") not in READABLE_FORMATS:
        raise ValueError(
            f"{storage.display(path)}: format {payload.get('format')!r}, this build reads {list(READABLE_FORMATS)}"
        )
    try:
        return ModelCard(**payload)
    except TypeError as error:
        raise ValueError(f"{storage.display(path)}: malformed ({error})") from error


def load_exported(directory: str | Path, map_location: str | torch.device = "cpu") -> tuple[VideoClassifier, ModelCard]:
    """Rebuild an exported model in eval mode: ``(model, card)``."""
    card = load_card(directory)
    model = create_model(card.model, num_classes=len(card.classes), num_frames=card.num_frames, **card.model_kwargs)
    source = storage.join(directory, WEIGHTS_NAME)
    weights = load_safetensors(storage.read_bytes(source))
    _load_strict(model, weights, storage.display(source))
    return model.to(map_location).eval(), card


def write_ensemble(directory: str | Path, members: list[str], info: dict[str, Any]) -> str:
    """An ensemble is a directory of exported members plus ``ensemble.json`` naming them (relative to it)."""
    directory = str(directory)
    relative = [_relative(member, directory) for member in members]
    storage.write_text(
        storage.join(directory, ENSEMBLE_NAME), json.dumps({"members": relative, **info}, indent=2) + "\n"
    )
    return directory


def _relative(member: str | Path, directory: str) -> str:
    if storage.is_uri(directory):
        prefix = directory.rstrip("/") + "/"
        if not str(member).startswith(prefix):
            raise ValueError(f"ensemble member {storage.display(member)} is not inside {storage.display(directory)}")
        return str(member)[len(prefix) :]
    return str(Path(member).resolve().relative_to(Path(directory).resolve()))


def exported_members(path: str | Path) -> list[str]:
    """The exported models behind ``path``: its members if it is an ensemble, else itself."""
    manifest = storage.join(path, ENSEMBLE_NAME)
    try:
        text = storage.read_text(manifest)
    except FileNotFoundError:
        load_card(path)  # fails clearly if this is not an exported model either
        return [str(path)]
    members = [storage.join(path, m) for m in json.loads(text)["members"]]
    if not members:
        raise ValueError(f"{storage.display(manifest)}: the ensemble has no members")
    return members


def _load_strict(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(f"{source} does not fit the model it names: {error}") from error
