"""What can be known wrong about a training config without running it, checked before Ray starts.

A config mistake that only shows inside a trial shows in every trial, after Ray has started and
reserved the cluster's resources. So a sweep first checks its base config, and every config its
search space can produce, with :class:`Preflight`: the data and its splits are there, the model
names are registered and build, every teacher is readable, knows the data's classes and takes its
frame count, the objective's taps exist on both sides and agree in time, and the spectrum's bins
fit the taps' time lengths. Errors name the field (``train.teachers[0]: …``).
"""

from __future__ import annotations

import json
from typing import Any

import torch

from training import storage
from training.checkpoint import WEIGHTS_NAME, ModelCard, exported_members, load_card
from training.config import TrainConfig
from training.data.shards import Manifest, load_manifest
from training.losses import TERMS, DistillationObjective
from training.losses.config import CE_ONLY
from training.models import VideoClassifier, create_model
from training.models.base import PROBE_SIZE
from training.models.pretrained import load_initial_weights


class Preflight:
    """Checks training configs, keeping what it read and built between calls: a sweep's configs
    share their data, teachers and models, and a teacher card on S3 costs a request."""

    def __init__(self) -> None:
        self._manifests: dict[str, Manifest] = {}
        self._cards: dict[str, list[tuple[str, ModelCard]]] = {}
        self._models: dict[str, VideoClassifier] = {}
        self._time_lengths: dict[str, dict[str, int]] = {}
        self._checked: set[str] = set()
        self._inits: set[str] = set()

    def check(self, config: TrainConfig) -> None:
        """Raise ``ValueError`` naming the field of the first problem."""
        key = config.model_dump_json()
        if key in self._checked:
            return
        manifest = self._manifest(config)
        classes, frames = manifest.classes, config.data.num_frames
        student = self._model("train.model", config.model, config.model_kwargs, len(classes), frames)
        if config.init is not None:
            self._check_init(config, student)
        teachers = []
        for index, source in enumerate(config.teachers):
            for member, card in self._teacher_cards(index, source):
                field = f"train.teachers[{index}]"
                if card.classes != classes:
                    raise ValueError(
                        f"{field}: {storage.display(member)} was trained on {len(card.classes)} classes "
                        f"({_some(card.classes)}), the data at {storage.display(config.data.path)} has "
                        f"{len(classes)} ({_some(classes)})"
                    )
                if card.num_frames != frames:
                    raise ValueError(
                        f"{field}: {storage.display(member)} takes {card.num_frames} frames, "
                        f"train.data.num_frames is {frames}"
                    )
                teachers.append(self._model(field, card.model, card.model_kwargs, len(classes), frames))
        distill = config.stage == "distill"
        if distill and config.collaboration.mode == "mutual" and len(teachers) != 1:
            raise ValueError(
                f"train.collaboration.mode: mutual trains one teacher beside the student, and train.teachers "
                f"name {len(teachers)} (an ensemble counts as its members)"
            )
        objective = config.objective if distill else CE_ONLY
        try:
            DistillationObjective(objective, student, teachers)  # the taps and stages it pairs exist
        except ValueError as error:
            raise ValueError(f"train.{error}") from None
        if any(TERMS[name].uses_taps for name in objective.active_weights()):
            self._check_time(config, student, teachers)
        self._checked.add(key)

    def _manifest(self, config: TrainConfig) -> Manifest:
        path = config.data.path
        if path not in self._manifests:
            try:
                self._manifests[path] = load_manifest(path)
            except (FileNotFoundError, ValueError) as error:
                raise ValueError(f"train.data.path: {error}") from None
        manifest = self._manifests[path]
        for field, split in (("train_split", config.data.train_split), ("val_split", config.data.val_split)):
            try:
                manifest.split(path, split)
            except ValueError as error:
                raise ValueError(f"train.data.{field}: {error}") from None
        return manifest

    def _teacher_cards(self, index: int, source: str) -> list[tuple[str, ModelCard]]:
        if source not in self._cards:
            try:
                members = exported_members(source)
                cards = [(member, load_card(member)) for member in members]
                for member, _ in cards:
                    if not storage.is_file(storage.join(member, WEIGHTS_NAME)):
                        raise FileNotFoundError(f"{storage.display(storage.join(member, WEIGHTS_NAME))} not found")
            except (FileNotFoundError, ValueError, OSError) as error:
                raise ValueError(f"train.teachers[{index}]: {error}") from None
            self._cards[source] = cards
        return self._cards[source]

    def _check_init(self, config: TrainConfig, student: VideoClassifier) -> None:
        """``train.init`` can be read and fits the student, loaded into the cached one (the other
        checks read its structure, which weights do not change); each file is read once a model."""
        key = json.dumps([config.init, config.model, config.model_kwargs, student.num_classes, student.num_frames])
        if key in self._inits:
            return
        try:
            load_initial_weights(student, config.init)
        except FileNotFoundError as error:
            raise ValueError(str(error)) from None
        self._inits.add(key)

    def _model(self, field: str, name: str, kwargs: dict[str, Any], classes: int, frames: int) -> VideoClassifier:
        key = json.dumps([name, kwargs, classes, frames], sort_keys=True)
        if key not in self._models:
            try:
                self._models[key] = create_model(name, num_classes=classes, num_frames=frames, **kwargs)
            except (ValueError, TypeError) as error:
                raise ValueError(f"{field}: {error}") from None
        return self._models[key]

    def _time_steps(self, model: VideoClassifier, frames: int) -> dict[str, int]:
        """Each tap's time length for clips of ``frames`` frames, from one small dry run."""
        key = str(id(model))
        if key not in self._time_lengths:
            was_training = model.training
            model.eval()
            try:
                with torch.no_grad():
                    out = model(torch.zeros(1, 3, frames, PROBE_SIZE, PROBE_SIZE), taps=list(model.taps))
            finally:
                model.train(was_training)
            self._time_lengths[key] = {name: tensor.shape[2] for name, tensor in out.features.items()}
        return self._time_lengths[key]

    def _check_time(self, config: TrainConfig, student: VideoClassifier, teachers: list[VideoClassifier]) -> None:
        """Tap pairs compared over time must agree in it, and the spectrum needs bins to compare."""
        objective, frames = config.objective, config.data.num_frames
        student_steps = self._time_steps(student, frames)
        spectrum = "spectrum" in objective.active_weights()
        for teacher in teachers:
            teacher_steps = self._time_steps(teacher, frames)
            for pair in objective.taps:
                steps, theirs = student_steps[pair.student], teacher_steps[pair.teacher]
                if steps != theirs:
                    raise ValueError(
                        f"train.objective.taps: {pair.key()}: the student's tap has {steps} time steps at "
                        f"{frames} frames, the teacher's {theirs}; pair taps of equal time length"
                    )
                if not spectrum:
                    continue
                if steps < 2:
                    raise ValueError(
                        f"train.objective.taps: {pair.key()} has 1 time step at {frames} frames: its temporal "
                        "spectrum is one bin, which normalises to 1 on both sides, so the spectrum term would "
                        "be 0; pair earlier taps, or give more frames"
                    )
                bins = steps // 2 + 1
                if objective.spectrum_low_bins is not None and objective.spectrum_low_bins > bins:
                    raise ValueError(
                        f"train.objective.spectrum_low_bins: {objective.spectrum_low_bins} is more than the {bins} "
                        f"temporal frequency bins of tap {pair.key()} ({steps} time steps); at most {bins}"
                    )


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
