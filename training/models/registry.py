"""One registry of model builders, filled by a decorator beside each builder (timm's pattern)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from training.models.base import VideoClassifier

ModelBuilder = Callable[..., VideoClassifier]
_BUILDERS: dict[str, ModelBuilder] = {}


def register_model(builder: ModelBuilder) -> ModelBuilder:
    """Register ``builder`` under its function name."""
    if builder.__name__ in _BUILDERS:
        raise ValueError(f"model {builder.__name__!r} is registered twice")
    _BUILDERS[builder.__name__] = builder
    return builder


def list_models() -> list[str]:
    """Names :func:`create_model` accepts, sorted."""
    return sorted(_BUILDERS)


def create_model(name: str, *, num_classes: int, num_frames: int, **kwargs: object) -> VideoClassifier:
    """Build a registered model with freshly initialised weights (nothing is downloaded)."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _BUILDERS[name](num_classes=num_classes, num_frames=num_frames, **kwargs)


def load_weights(model: VideoClassifier, path: str | Path) -> VideoClassifier:
    """Load a state dict saved by ``torch.save(model.state_dict())`` — never unpickles arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise ValueError(f"{path} is not a weights_only-loadable state dict: {error}") from error
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"weights in {path} do not fit {type(model).__name__}: {error}") from error
    return model
