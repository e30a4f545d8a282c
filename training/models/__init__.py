"""Teachers and students by name: ``create_model("tsm_mobilenet_v2", num_classes=10, num_frames=8)``."""

from training.models import tsm, video3d  # noqa: F401  (fill the registry)
from training.models.base import ModelOutput, TapInfo, VideoClassifier
from training.models.describe import ModelDescription, describe
from training.models.registry import create_model, list_models, register_model

__all__ = [
    "ModelDescription",
    "ModelOutput",
    "TapInfo",
    "VideoClassifier",
    "create_model",
    "describe",
    "list_models",
    "register_model",
]
