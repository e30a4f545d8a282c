"""Everything one training run needs, as one validated config (the worker trusts it afterwards).

The same model serves both stages: ``teacher`` trains ``model`` with cross-entropy alone;
``distill`` trains ``model`` as the student of the exported checkpoints in ``teachers`` with
``objective`` and ``collaboration``. A sweep's searched values land in this structure by path
(``objective.kd_weight``), so a bad value is refused here with the field's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from training import storage
from training.losses.config import CollaborationConfig, ObjectiveConfig


class DataConfig(BaseModel):
    """Where the shards are, which splits play which part (``training.data.splits``), and how
    clips are sampled. ``flip`` only when mirroring keeps labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="directory holding dataset.json and the shards: a local path or a storage URI")
    train_split: str = "train"
    val_split: str = Field(
        "tune",
        description="the selection split, evaluated after every epoch: what ASHA, Optuna and `best` decide on",
    )
    test_split: str = Field("test", description="for reported figures only (evaluate, report, demo); never decided on")
    num_frames: int = Field(8, ge=1)
    size: int = Field(64, ge=8)
    flip: bool = False
    min_scale: float = Field(0.6, gt=0, le=1)
    eval_clips: int = Field(1, ge=1)
    decode_batch_size: int = Field(8, ge=1)
    loader: Literal["ray_data", "in_process"] = Field(
        "ray_data",
        description=(
            "ray_data: decode in Ray Data tasks beside the trainer (parallel; what a GPU needs). "
            "in_process: a single-worker trial decodes its own clips between steps, so it never "
            "shares its cores with decode tasks (faster for CPU-only trials on small nodes)"
        ),
    )


class OptimConfig(BaseModel):
    """AdamW with a one-cycle schedule over the whole run; ``teacher_lr`` is the teacher's in mutual mode."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: float = Field(3e-3, gt=0)
    teacher_lr: float = Field(2e-4, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_fraction: float = Field(0.15, gt=0, lt=1)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    max_steps_per_epoch: int | None = Field(None, ge=1, description="cap an epoch (smoke tests)")


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Literal["teacher", "distill"]
    data: DataConfig
    model: str
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    teachers: list[str] = Field(
        default_factory=list, description="exported teachers (or ensembles): local paths or storage URIs"
    )
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    collaboration: CollaborationConfig = Field(default_factory=CollaborationConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    init: str | None = Field(
        None,
        description=(
            "starting weights of the trained model in torchvision's layout: a weights name of its architecture "
            "(IMAGENET1K_V2 for tsm_resnet50, IMAGENET1K_V1 for tsm_resnet18 and tsm_mobilenet_v2, "
            "KINETICS400_V1 for the 3D ResNets) or the path or storage URI of a state dict; the classifier "
            "starts afresh when the class count differs. None: freshly initialised"
        ),
    )

    @model_validator(mode="after")
    def _stage_has_what_it_needs(self) -> TrainConfig:
        if self.stage == "distill" and not self.teachers:
            raise ValueError("teachers is empty: the distill stage needs at least one exported teacher checkpoint")
        if self.stage == "teacher" and self.teachers:
            raise ValueError("teachers must be empty for the teacher stage (it trains with cross-entropy only)")
        if self.collaboration.mode == "mutual" and len(self.teachers) > 1:
            raise ValueError(
                f"collaboration.mode=mutual trains one teacher alongside the student; got {len(self.teachers)} teachers"
            )
        return self

    def resolved(self, base: Path) -> TrainConfig:
        """Local paths made absolute against ``base`` (the YAML's directory), since workers chdir
        into trial directories; storage URIs (``s3://…``) stay as they are."""
        data = self.data.model_copy(update={"path": storage.resolve(self.data.path, base)})
        teachers = [storage.resolve(t, base) for t in self.teachers]
        init = self.init
        if init is not None and storage.is_location(init, WEIGHT_FILE_SUFFIXES):
            init = storage.resolve(init, base)
        return self.model_copy(update={"data": data, "teachers": teachers, "init": init})


# A ``train.init`` that is a file (resolved against the YAML's directory), not a weights name.
WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".safetensors")


# Mappings whose keys are not fields but a model builder's keyword arguments (``model_kwargs.width_mult``).
FREE_FORM = (["model_kwargs"],)


def with_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``config`` with dotted-path values replaced (``{"objective.kd_weight": 0.5}``), re-validated;
    a model's keyword arguments may be set whether or not the config names them
    (``{"model_kwargs.width_mult": 0.5}``), and the model's builder is what checks them.

    Raises ``ValueError`` naming the path when it does not exist or the value is refused.
    """
    payload = config.model_dump()
    for path, value in overrides.items():
        node: Any = payload
        *parents, leaf = path.split(".")
        for index, key in enumerate(parents):
            if not isinstance(node, dict) or key not in node:
                raise ValueError(f"{path}: no field {'.'.join(parents[: index + 1])!r} in the training config")
            node = node[key]
        free_form = parents in FREE_FORM  # a builder's keyword arguments: any key may be set
        if not isinstance(node, dict) or (leaf not in node and not free_form):
            raise ValueError(f"{path}: no field {leaf!r} in {'.'.join(parents) or 'the training config'}")
        node[leaf] = value
    try:
        return TrainConfig.model_validate(payload)
    except ValidationError as error:
        raise ValueError(f"{', '.join(overrides)}: {describe_errors(error)}") from None


def describe_errors(error: ValidationError) -> str:
    """Pydantic's errors as ``field.path: message`` lines, which is what a YAML author needs."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<top>'}: {e['msg']}" for e in error.errors())
