"""The drawings of what a student learned measure what the losses compare."""

from __future__ import annotations

import numpy as np
import torch

from orchestrator.spectra import Drawn, kernel_distributions, plot_kernels, plot_spectra, tap_spectra
from training.losses.config import TapPair
from training.models import VideoClassifier, create_model


def _pointwise(frames: int) -> VideoClassifier:
    """A network that mixes nothing in time (1×1×1 convolutions): its tap keeps the clip's own spectrum."""
    stem = torch.nn.Conv3d(3, 4, kernel_size=1)
    return VideoClassifier(
        stem=stem,
        stages={"stage1": torch.nn.Conv3d(4, 4, kernel_size=1)},
        num_classes=3,
        num_frames=frames,
        frame_level=False,
    )


def test_a_tap_spectrum_is_the_mean_normalised_amplitude_per_bin() -> None:
    model, frames = _pointwise(8), 8
    t = torch.arange(frames, dtype=torch.float32)
    clips = torch.randn(2, 3, 1, 16, 16) + torch.cos(2 * torch.pi * 2 * t / frames).view(1, 1, frames, 1, 1)
    spectrum = tap_spectra(model, clips, ["stage1"])["stage1"]
    with torch.no_grad():
        features = model(clips, taps=["stage1"]).features["stage1"].numpy()
    amplitude = np.abs(np.fft.rfft(features, axis=2, norm="ortho")).mean(axis=(3, 4))  # N×C×K
    amplitude /= np.linalg.norm(amplitude, axis=2, keepdims=True)
    np.testing.assert_allclose(spectrum, amplitude.mean(axis=(0, 1)), rtol=1e-5, atol=1e-6)
    assert spectrum.shape == (frames // 2 + 1,)
    assert spectrum[2] > 10 * spectrum[[1, 3, 4]].max()  # the motion's frequency stands out
    still = tap_spectra(model, torch.randn(2, 3, 1, 16, 16).expand(2, 3, frames, 16, 16), ["stage1"])["stage1"]
    assert still[1:].max() < 1e-5  # nothing changes in time, nothing above frequency 0


def test_kernel_distributions_are_distributions_over_the_kernel_bins() -> None:
    model = create_model("tsm_resnet18", num_classes=3, num_frames=4)
    maps = kernel_distributions(model, ["stage1", "stage4"], temperature=1.0)
    for values in maps.values():
        assert values.shape == (3, 3) and abs(values.sum() - 1) < 1e-5 and (values > 0).all()
    sharper = kernel_distributions(model, ["stage1"], temperature=0.2)["stage1"]
    assert sharper.max() > maps["stage1"].max()  # a lower τ_p concentrates the distribution


def test_the_plots_are_drawn_for_every_pair(tmp_path) -> None:
    pairs = [TapPair(student="stage2", teacher="stage3")]
    drawn = Drawn(
        spectra={role: {"stage2->stage3": np.linspace(1, 0.1, 5)} for role in ("teacher", "distilled student")},
        kernels={role: {"stage2->stage3": np.full((3, 3), 1 / 9)} for role in ("teacher", "distilled student")},
    )
    assert plot_spectra(drawn, pairs, str(tmp_path)) and plot_kernels(drawn, pairs, str(tmp_path))
    assert not plot_spectra(Drawn(), pairs, str(tmp_path))  # no teacher, nothing to compare with
