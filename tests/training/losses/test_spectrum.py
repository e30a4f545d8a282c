import cmath

import numpy as np
import pytest
import torch

from training.losses import DistillationObjective, ObjectiveConfig
from training.losses.fused_spectrum import direct_spectrum_parts, fused_spectrum_parts, twiddle
from training.losses.spectrum import (
    SpectrumOptions,
    TapAdapter,
    spectrum_distance,
    spectrum_from_means,
    spectrum_loss,
    target_spectrum,
    temporal_spectrum,
)
from training.models import create_model


def reference_spectrum(features: np.ndarray, options: SpectrumOptions) -> dict[str, np.ndarray]:
    coefficients = np.fft.rfft(features, axis=2, norm="ortho")
    if options.low_bins is not None:
        coefficients = coefficients[:, :, : options.low_bins]
    amplitude = np.abs(coefficients).mean(axis=(3, 4))
    if options.log_amplitude:
        amplitude = np.log1p(amplitude)
    amplitude = amplitude / np.linalg.norm(amplitude, axis=2, keepdims=True)
    out = {"amplitude": amplitude}
    if options.phase:
        out["cos"] = np.cos(np.angle(coefficients)).mean(axis=(3, 4))
        out["sin"] = np.sin(np.angle(coefficients)).mean(axis=(3, 4))
    return out


def reference_loss(students: list[np.ndarray], teachers: list[np.ndarray], options: SpectrumOptions) -> float:
    losses = []
    for student, teacher in zip(students, teachers, strict=True):
        s, t = reference_spectrum(student, options), reference_spectrum(teacher, options)
        distance = ((s["amplitude"] - t["amplitude"]) ** 2).sum(axis=2)
        if options.phase:
            distance = distance + (((s["cos"] - t["cos"]) ** 2 + (s["sin"] - t["sin"]) ** 2) / 2).mean(axis=2)
        losses.append(distance.mean())
    return float(np.mean(losses))


OPTIONS = [
    SpectrumOptions(),
    SpectrumOptions(log_amplitude=True),
    SpectrumOptions(low_bins=3),
    SpectrumOptions(phase=True),
    SpectrumOptions(log_amplitude=True, low_bins=2, phase=True),
]


@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_spectrum_loss_matches_numpy_reference(rng, options):
    shapes = [(2, 4, 8, 3, 3), (2, 5, 7, 2, 4)]
    students = [rng.normal(size=s) for s in shapes]
    teachers = [rng.normal(size=s) for s in shapes]
    got = spectrum_loss([torch.from_numpy(x) for x in students], [torch.from_numpy(x) for x in teachers], options)
    assert got.item() == pytest.approx(reference_loss(students, teachers, options), abs=1e-6, rel=1e-6)


def test_temporal_spectrum_has_unit_norm_per_channel_and_half_plus_one_bins(rng):
    spectrum = temporal_spectrum(torch.from_numpy(rng.normal(size=(3, 6, 10, 4, 4))))
    assert spectrum.amplitude.shape == (3, 6, 6)
    torch.testing.assert_close(spectrum.amplitude.norm(dim=2), torch.ones(3, 6, dtype=torch.float64))


@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_spectrum_loss_is_zero_for_identical_features(rng, options):
    features = torch.from_numpy(rng.normal(size=(2, 4, 8, 3, 3)))
    assert spectrum_loss([features], [features.clone()], options).item() == pytest.approx(0.0, abs=1e-12)


def test_spectrum_loss_is_invariant_to_per_channel_rescale(rng):
    student = torch.from_numpy(rng.normal(size=(2, 4, 8, 3, 3)))
    teacher = torch.from_numpy(rng.normal(size=(2, 4, 8, 3, 3)))
    scale = torch.from_numpy(rng.uniform(0.1, 20.0, size=(1, 4, 1, 1, 1)))
    base = spectrum_loss([student], [teacher])
    torch.testing.assert_close(spectrum_loss([student * scale], [teacher]), base)
    torch.testing.assert_close(spectrum_loss([student], [teacher * scale]), base)


def test_spectrum_loss_sees_a_change_of_motion_frequency():
    t = torch.arange(16, dtype=torch.float64)
    slow = torch.sin(2 * torch.pi * 1 * t / 16).view(1, 1, 16, 1, 1).expand(1, 2, 16, 2, 2)
    fast = torch.sin(2 * torch.pi * 5 * t / 16).view(1, 1, 16, 1, 1).expand(1, 2, 16, 2, 2)
    assert spectrum_loss([slow], [fast]).item() > 1.0
    assert spectrum_loss([slow], [slow * 3]).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_spectrum_loss_passes_gradcheck(rng, options):
    student = torch.from_numpy(rng.normal(size=(2, 3, 6, 2, 2))).requires_grad_()
    teacher = torch.from_numpy(rng.normal(size=(2, 3, 6, 2, 2)))
    assert torch.autograd.gradcheck(lambda s: spectrum_loss([s], [teacher], options), (student,))


def test_mismatched_time_lengths_are_refused_with_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 4, 8, 3, 3\).*\(2, 4, 6, 3, 3\)"):
        spectrum_loss([torch.zeros(2, 4, 8, 3, 3)], [torch.zeros(2, 4, 6, 3, 3)])


def test_wrong_rank_is_refused_with_the_shape():
    with pytest.raises(ValueError, match=r"N×C×T×H×W.*\(2, 4, 8\)"):
        spectrum_loss([torch.zeros(2, 4, 8)], [torch.zeros(2, 4, 8)])


def test_empty_tap_lists_are_refused():
    with pytest.raises(ValueError, match="at least one tap pair"):
        spectrum_loss([], [])


def test_unequal_tap_lists_are_refused():
    with pytest.raises(ValueError, match="one teacher tap per student tap"):
        spectrum_loss([torch.zeros(1, 1, 4, 1, 1)], [])


def test_low_bins_must_be_positive():
    with pytest.raises(ValueError, match="low_bins"):
        SpectrumOptions(low_bins=0)


def test_tap_adapter_maps_channels_and_space_and_keeps_time():
    adapter = TapAdapter(student_channels=24, teacher_channels=64)
    out = adapter(torch.randn(2, 24, 8, 8, 8), (4, 4))
    assert out.shape == (2, 64, 8, 4, 4)


@pytest.mark.parametrize("options", OPTIONS, ids=repr)
def test_adapter_spectrum_transforms_first_and_equals_the_spectrum_of_the_adapted_tap(rng, options):
    adapter = TapAdapter(student_channels=5, teacher_channels=12).double()
    student = torch.from_numpy(rng.normal(size=(2, 5, 8, 6, 6)))
    got = adapter.spectrum(student, (3, 3), options)
    expected = reference_spectrum(adapter(student, (3, 3)).detach().numpy(), options)
    for name, value in expected.items():
        np.testing.assert_allclose(getattr(got, name).detach().numpy(), value, atol=1e-12, err_msg=name)


def test_adapter_spectrum_passes_gradcheck_for_the_tap_and_the_projection(rng):
    adapter = TapAdapter(student_channels=3, teacher_channels=4).double()
    weight = adapter.project.weight.detach().clone().requires_grad_()
    del adapter.project.weight
    adapter.project.weight = weight  # a plain tensor, so gradcheck's perturbations reach the module
    student = torch.from_numpy(rng.normal(size=(2, 3, 6, 2, 2))).requires_grad_()
    teacher = temporal_spectrum(torch.from_numpy(rng.normal(size=(2, 4, 6, 2, 2))))
    assert torch.autograd.gradcheck(
        lambda tap, _: spectrum_distance(adapter.spectrum(tap, (2, 2)), teacher), (student, weight)
    )


def test_a_tap_that_is_zero_all_along_the_clip_gets_a_zero_gradient_not_nan():
    """Dead (all-zero) features give DFT coefficients of exactly 0, where |z| has no derivative."""
    adapter = TapAdapter(student_channels=3, teacher_channels=4)
    student = torch.zeros(2, 3, 8, 4, 4, requires_grad=True)
    teacher = temporal_spectrum(torch.randn(2, 4, 8, 4, 4))
    spectrum_distance(adapter.spectrum(student, (4, 4)), teacher).backward()
    assert torch.equal(student.grad, torch.zeros_like(student))
    assert torch.isfinite(adapter.project.weight.grad).all()


# The fused teacher spectrum: the DFT written out equals numpy's FFT, eager and compiled.


@pytest.mark.parametrize("frames", range(1, 18))
def test_twiddles_are_the_dft_exponentials_and_exact_on_the_axes(frames):
    for k in range(frames // 2 + 1):
        for t in range(frames):
            expected = cmath.exp(-2j * cmath.pi * k * t / frames)
            cos, sin = twiddle(k, t, frames)
            assert (cos, sin) == pytest.approx((expected.real, expected.imag), abs=1e-12)
            if (2 * k * t) % frames == 0:  # θ a multiple of π: the DC and Nyquist rows
                assert sin == 0.0 and cos in (1.0, -1.0)


def _direct(features: torch.Tensor, options: SpectrumOptions):
    bins = features.shape[2] // 2 + 1
    bins = bins if options.low_bins is None else min(bins, options.low_bins)
    return spectrum_from_means(*direct_spectrum_parts(features, bins, options.phase), options=options)


@pytest.mark.parametrize("options", OPTIONS, ids=repr)
@pytest.mark.parametrize("shape", [(2, 4, 8, 3, 3), (2, 5, 7, 2, 4), (1, 3, 16, 5, 2)])
def test_direct_spectrum_matches_the_numpy_fft(rng, options, shape):
    features = rng.normal(size=shape)
    expected = reference_spectrum(features, options)
    got = _direct(torch.from_numpy(features), options)
    np.testing.assert_allclose(got.amplitude.numpy(), expected["amplitude"], rtol=1e-10, atol=1e-12)
    if options.phase:
        np.testing.assert_allclose(got.cos.numpy(), expected["cos"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got.sin.numpy(), expected["sin"], rtol=1e-9, atol=1e-12)


def test_a_bfloat16_tap_is_summed_in_float32_as_the_fft_path_does(rng):
    tap = torch.from_numpy(rng.normal(size=(2, 6, 8, 4, 4))).to(torch.bfloat16)
    options = SpectrumOptions(phase=True)
    direct, fft = _direct(tap, options), temporal_spectrum(tap, options)
    assert direct.amplitude.dtype == torch.float32
    for name in ("amplitude", "cos", "sin"):
        torch.testing.assert_close(getattr(direct, name), getattr(fft, name), rtol=1e-5, atol=1e-6)


def test_a_tap_constant_in_time_has_all_its_energy_at_zero_frequency():
    spectrum = _direct(torch.ones(1, 2, 8, 3, 3), SpectrumOptions(phase=True))
    torch.testing.assert_close(spectrum.amplitude, torch.tensor([1.0, 0, 0, 0, 0]).expand(1, 2, 5), atol=1e-6, rtol=0)
    assert spectrum.sin[..., [0, 4]].eq(0).all()  # DC and Nyquist coefficients are real


def test_target_spectrum_on_the_cpu_is_the_fft_one_without_a_graph(rng):
    tap = torch.from_numpy(rng.normal(size=(2, 4, 8, 3, 3))).requires_grad_()
    got = target_spectrum(tap, SpectrumOptions(low_bins=3))
    assert not got.amplitude.requires_grad
    torch.testing.assert_close(got.amplitude, temporal_spectrum(tap.detach(), SpectrumOptions(low_bins=3)).amplitude)


def test_the_config_refuses_an_unknown_spectrum_kernel():
    with pytest.raises(ValueError, match="spectrum_kernel"):
        ObjectiveConfig(spectrum_kernel="cufft")


@pytest.mark.slow
def test_compiled_on_the_cpu_the_fused_kernel_gives_the_fft_values_and_the_same_loss(rng):
    """Inductor's C++ backend here (one compilation per tap shape and options, seconds each);
    ``tests/training/test_cuda.py`` pins its Triton one."""
    tap = torch.from_numpy(rng.normal(size=(2, 6, 8, 5, 5))).float()
    options = SpectrumOptions(log_amplitude=True, low_bins=3, phase=True)
    fused, fft = target_spectrum(tap, options, "fused"), target_spectrum(tap, options, "fft")
    for name in ("amplitude", "cos", "sin"):
        torch.testing.assert_close(getattr(fused, name), getattr(fft, name), rtol=1e-5, atol=1e-6)

    student = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=8).eval()
    teacher = create_model("tsm_resnet18", num_classes=4, num_frames=8).eval()
    clips, labels = torch.randn(2, 3, 8, 32, 32), torch.tensor([0, 3])
    values = {}
    for kernel in ("fused", "fft"):
        torch.manual_seed(0)  # the same adapters on both sides
        config = ObjectiveConfig(terms=["spectrum"], taps=["stage4"], spectrum_kernel=kernel)
        objective = DistillationObjective(config, student, [teacher])
        with torch.no_grad():
            out = objective(
                student(clips, taps=objective.student_taps),
                [teacher(clips, taps=objective.teacher_taps)],
                labels,
                student,
                [teacher],
            )
        values[kernel] = out.terms["spectrum"].item()
    assert values["fused"] == pytest.approx(values["fft"], rel=1e-5)


@pytest.mark.slow
def test_a_machine_that_cannot_compile_the_kernel_gets_an_error_naming_the_way_out(monkeypatch):
    from torch._inductor import config as inductor

    torch._dynamo.reset()
    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/c++",))
    try:
        with pytest.raises(RuntimeError, match=r"could not be compiled on cpu .*spectrum_kernel: fft"):
            fused_spectrum_parts(torch.randn(1, 2, 8, 3, 3), 5, False)
    finally:
        torch._dynamo.reset()
