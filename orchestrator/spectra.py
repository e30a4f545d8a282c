"""What the student learned, drawn: the two pictures the method is about.

* **Temporal spectra at each tap**: the mean amplitude per temporal-frequency bin of a tap's
  features on test clips, per channel normalised as the spectrum term normalises it
  (``training.losses.spectrum``), for the teacher, the distilled student, the same student
  untrained, and a CE-only student where the sweep has one.
* **Kernel-frequency distributions**: for each stage pair the parameter term compares, the
  distribution ``softmax(log energy / τ_p)`` over the spatial DCT bins of the stage's kernels
  (``training.losses.parameter``), for the same models, with ``KL(P_teacher ‖ P_model)`` in each title.

The untrained student is the trial's architecture built afresh from the trial's seed (or from its
``train.init``): the starting point distillation moved away from. An ensemble teacher is drawn by
its first member.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib.figure import Figure

from orchestrator.plots import save_figure
from training import storage
from training.config import TrainConfig
from training.losses.config import TapPair
from training.losses.parameter import frequency_log_distribution, kernel_frequency_energy, spatial_kernels
from training.losses.spectrum import temporal_spectrum
from training.models import VideoClassifier

SPECTRA_PNG = "temporal_spectra.png"
KERNELS_PNG = "kernel_frequencies.png"
STYLES = {  # role → line style: the teacher solid black, the distilled student the eye-catching colour
    "teacher": {"color": "black", "linewidth": 2.2},
    "distilled student": {"color": "C1", "linewidth": 2.2},
    "untrained student": {"color": "C7", "linewidth": 1.4, "linestyle": ":"},
    "CE-only student": {"color": "C0", "linewidth": 1.6, "linestyle": "--"},
}


@dataclass
class Drawn:
    """Each model's view, keyed by its role: tap spectra (pair key → bins) and kernel
    distributions (pair key → ``k×k`` probabilities)."""

    spectra: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    kernels: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def tap_spectra(model: VideoClassifier, clips: torch.Tensor, taps: Sequence[str]) -> dict[str, np.ndarray]:
    """Mean normalised amplitude per temporal-frequency bin at each of ``taps``, over ``clips``."""
    with torch.no_grad():
        features = model.eval()(clips, taps=list(taps)).features
    return {tap: temporal_spectrum(features[tap]).amplitude.mean(dim=(0, 1)).numpy() for tap in taps}


def kernel_distributions(model: VideoClassifier, stages: Sequence[str], temperature: float) -> dict[str, np.ndarray]:
    """The parameter term's distribution over spatial frequencies for each of ``stages``."""
    maps = {}
    with torch.no_grad():
        for stage in stages:
            energy = kernel_frequency_energy(spatial_kernels(model.stages[stage]), name=stage)
            maps[stage] = frequency_log_distribution(energy, temperature).exp().reshape(energy.shape).numpy()
    return maps


def draw_models(models: dict[str, VideoClassifier], config: TrainConfig, clips: torch.Tensor) -> Drawn:
    """Spectra and kernel distributions of ``models`` (role → model; ``teacher`` among them) at the
    tap and stage pairs ``config``'s objective compares."""
    objective = config.objective
    drawn = Drawn()
    for role, model in models.items():
        side = "teacher" if role == "teacher" else "student"
        taps = {pair.key(): getattr(pair, side) for pair in objective.taps}
        stages = {pair.key(): getattr(pair, side) for pair in objective.parameter_stages}
        spectra = tap_spectra(model, clips, list(taps.values()))
        kernels = kernel_distributions(model, list(stages.values()), objective.parameter_temperature)
        drawn.spectra[role] = {key: spectra[tap] for key, tap in taps.items()}
        drawn.kernels[role] = {key: kernels[stage] for key, stage in stages.items()}
    return drawn


def plot_spectra(drawn: Drawn, pairs: Sequence[TapPair], out: str) -> bool:
    """One panel per tap pair: each model's mean amplitude against the temporal-frequency bin."""
    if not pairs or "teacher" not in drawn.spectra:
        return False
    figure = Figure(figsize=(4.4 * len(pairs), 3.8), layout="constrained")
    axes = figure.subplots(1, len(pairs), squeeze=False)[0]
    for ax, pair in zip(axes, pairs, strict=True):
        for role, spectra in drawn.spectra.items():
            values = spectra[pair.key()]
            ax.plot(np.arange(len(values)), values, marker="o", markersize=3, label=role, **STYLES[role])
        ax.set_title(f"tap {pair.student} ← teacher {pair.teacher}", fontsize=10)
        ax.set_xlabel("temporal frequency bin (0 = the clip's mean)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean amplitude (per channel, normalised)")
    axes[-1].legend(fontsize=8)
    save_figure(figure, storage.join(out, SPECTRA_PNG))
    return True


def plot_kernels(drawn: Drawn, pairs: Sequence[TapPair], out: str) -> bool:
    """A grid of heat maps: a row per stage pair, a column per model, each titled with its KL
    divergence from the teacher's distribution (what the parameter term minimises)."""
    if not pairs or "teacher" not in drawn.kernels:
        return False
    roles = list(drawn.kernels)
    figure = Figure(figsize=(2.6 * len(roles) + 0.8, 2.5 * len(pairs)), layout="constrained")
    axes = figure.subplots(len(pairs), len(roles), squeeze=False)
    for row, pair in enumerate(pairs):
        teacher = drawn.kernels["teacher"][pair.key()]
        for column, role in enumerate(roles):
            ax, values = axes[row][column], drawn.kernels[role][pair.key()]
            image = ax.imshow(values, cmap="magma", vmin=0, vmax=float(teacher.max()) * 1.5)
            title = role if role == "teacher" else f"{role}\nKL {_kl(teacher, values):.3f}"
            ax.set_title(title if row == 0 or role == "teacher" else f"KL {_kl(teacher, values):.3f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(f"{pair.student} ← {pair.teacher}", fontsize=8)
        figure.colorbar(image, ax=list(axes[row]), shrink=0.8, label="share of energy")
    figure.suptitle("spatial DCT frequency (low top-left → high bottom-right)", fontsize=9)
    save_figure(figure, storage.join(out, KERNELS_PNG))
    return True


def _kl(teacher: np.ndarray, model: np.ndarray) -> float:
    """``KL(P_teacher ‖ P_model)``; a model's map of another size is compared after resampling in
    the loss, and is compared on its own bins here only when the sizes agree."""
    if teacher.shape != model.shape:
        return float("nan")
    p, q = teacher.ravel(), model.ravel()
    return max(0.0, float(np.sum(p * (np.log(p + 1e-12) - np.log(q + 1e-12)))))  # no "-0.000" from rounding


def what_was_learned(sweep_dir: str, metric: str, mode: str, out: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Draw the spectra and kernel distributions of the student ``best`` would export, against its
    teacher, itself untrained and the sweep's best CE-only student (if it has one), on up to
    ``CLIPS`` test clips. Returns the report's ``(title, png)`` images and notes saying what could
    not be drawn (a teacher sweep, or teachers and data that did not travel with a copied sweep)."""
    from orchestrator.selection import best_repeat, rank_trials, trial_model
    from training.checkpoint import exported_members, load_exported
    from training.models import create_model
    from training.models.pretrained import load_initial_weights

    try:
        ranked = rank_trials(sweep_dir, metric, mode)
    except ValueError:
        return [], []
    best = ranked[0]
    config = best.record.spec.train_config()
    if config.stage != "distill":
        return [], []
    ce_only = next((t for t in ranked if set(t.record.spec.train_config().objective.active_weights()) == {"ce"}), None)
    try:
        student, card = trial_model(best, best_repeat(best, metric, mode))  # the run `best` exports
        teacher, _ = load_exported(exported_members(config.teachers[0])[0])
        clips = _test_clips(config)
        reference = trial_model(ce_only, best_repeat(ce_only, metric, mode))[0] if ce_only is not None else None
    except (FileNotFoundError, ValueError) as error:
        return [], [f"what the student learned is not drawn: {error}"]
    seed = int(card.config.get("seed", config.seed))
    torch.manual_seed(seed)  # as the trial's run built its student
    untrained = create_model(
        config.model, num_classes=len(card.classes), num_frames=card.num_frames, **config.model_kwargs
    )
    if config.init is not None:
        load_initial_weights(untrained, config.init)
    models = {"teacher": teacher, "distilled student": student, "untrained student": untrained}
    if reference is not None:
        models["CE-only student"] = reference
    drawn = draw_models(models, config, clips)
    images = []
    if plot_spectra(drawn, config.objective.taps, out):
        images.append(
            (f"What the student learned: temporal spectra at each tap ({len(clips)} test clips)", SPECTRA_PNG)
        )
    if plot_kernels(drawn, config.objective.parameter_stages, out):
        images.append(("What the student learned: kernel-frequency distributions (the parameter term)", KERNELS_PNG))
    return images, [f"spectra and kernels drawn for trial {best.record.trial_id} (seed {seed}), the run best exports"]


CLIPS = 32


def _test_clips(config: TrainConfig) -> torch.Tensor:
    """Up to ``CLIPS`` clips of the test split, prepared as evaluation prepares them."""
    from training.data.shards import load_manifest
    from training.data.stream import ClipSampling, take_clips

    data = config.data
    source = load_manifest(data.path).split(data.path, data.test_split)
    sampling = ClipSampling(num_frames=data.num_frames, size=data.size, train=False)
    clips = take_clips(source.paths, sampling, CLIPS, source.rows)
    if clips is None:
        raise ValueError(f"{storage.display(data.path)}: split {data.test_split!r} has no decodable clip")
    return clips
