"""One registry of model builders, filled by a decorator beside each builder (timm's pattern)."""

from __future__ import annotations

from collections.abc import Callable

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
