import numpy as np
import pytest
import scipy.fft
import scipy.interpolate
import torch
from torch import nn

from training.losses.parameter import (
    KernelPair,
    TeacherEnergyCache,
    dct2,
    kernel_frequency_energy,
    parameter_distribution_loss,
    spatial_kernels,
)


def reference_energy(kernels: list[np.ndarray], size: tuple[int, int] | None = None) -> np.ndarray:
    target = size or kernels[0].shape[-2:]
    total = np.zeros(target)
    for kernel in kernels:
        energy = (scipy.fft.dctn(kernel, axes=(-2, -1), norm="ortho") ** 2).reshape(-1, *kernel.shape[-2:]).sum(0)
        if energy.shape != tuple(target):
            grid = (np.linspace(0, 1, energy.shape[0]), np.linspace(0, 1, energy.shape[1]))
            points = np.stack(
                np.meshgrid(np.linspace(0, 1, target[0]), np.linspace(0, 1, target[1]), indexing="ij"),
                axis=-1,
            )
            energy = scipy.interpolate.RegularGridInterpolator(grid, energy)(points)
        total += energy
    return total


def reference_kl(student_energy: np.ndarray, teacher_energy: np.ndarray, tau: float) -> float:
    def distribution(energy):
        logits = np.log(energy.ravel() + 1e-12) / tau
        e = np.exp(logits - logits.max())
        return e / e.sum()

    p, q = distribution(teacher_energy), distribution(student_energy)
    return float(sum(pi * (np.log(pi) - np.log(qi)) for pi, qi in zip(p, q, strict=True)))


def test_dct2_matches_scipy_dctn(rng):
    kernels = rng.normal(size=(4, 3, 5, 3))
    expected = scipy.fft.dctn(kernels, axes=(-2, -1), norm="ortho")
    np.testing.assert_allclose(dct2(torch.from_numpy(kernels)).numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("tau", [0.5, 1.0, 3.0])
def test_parameter_loss_matches_scipy_reference(rng, tau):
    student = [rng.normal(size=(8, 1, 3, 3)), rng.normal(size=(6, 8, 3, 3))]
    teacher = [rng.normal(size=(16, 16, 3, 3)) * np.linspace(2, 0.1, 9).reshape(3, 3)]
    student_3d, teacher_3d = [rng.normal(size=(4, 2, 3, 3, 3))], [rng.normal(size=(8, 4, 3, 3, 3))]
    pairs = [
        KernelPair([torch.from_numpy(k) for k in student], [torch.from_numpy(k) for k in teacher]),
        KernelPair([torch.from_numpy(k) for k in student_3d], [torch.from_numpy(k) for k in teacher_3d]),
    ]
    expected = np.mean(
        [
            reference_kl(reference_energy(student), reference_energy(teacher), tau),
            reference_kl(reference_energy(student_3d), reference_energy(teacher_3d), tau),
        ]
    )
    assert parameter_distribution_loss(pairs, tau).item() == pytest.approx(expected, abs=1e-6, rel=1e-6)


def test_kernel_of_another_size_is_resampled_bilinearly_to_the_teachers(rng):
    small, large = rng.normal(size=(4, 4, 3, 3)), rng.normal(size=(4, 4, 5, 5))
    got = kernel_frequency_energy([torch.from_numpy(small), torch.from_numpy(large)], size=(3, 3))
    np.testing.assert_allclose(got.numpy(), reference_energy([small, large], (3, 3)), atol=1e-10)
    teacher = [torch.from_numpy(rng.normal(size=(8, 8, 3, 3)))]
    loss = parameter_distribution_loss([KernelPair([torch.from_numpy(large)], teacher)], 1.0)
    expected = reference_kl(reference_energy([large], (3, 3)), reference_energy([teacher[0].numpy()]), 1.0)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_kernel_size_mismatch_can_be_refused_with_the_shapes(rng):
    pair = KernelPair([torch.zeros(4, 4, 5, 5)], [torch.ones(4, 4, 3, 3)], name="stage2->stage2")
    with pytest.raises(ValueError, match=r"stage2->stage2.*\(4, 4, 5, 5\).*\(5, 5\).*\(3, 3\)"):
        parameter_distribution_loss([pair], 1.0, mismatch="error")


def test_parameter_loss_is_zero_for_identical_kernels(rng):
    kernels = [torch.from_numpy(rng.normal(size=(8, 4, 3, 3)))]
    assert parameter_distribution_loss([KernelPair(kernels, [k.clone() for k in kernels])]).item() == pytest.approx(
        0.0, abs=1e-12
    )


def test_parameter_loss_is_invariant_to_permuting_output_channels(rng):
    student = torch.from_numpy(rng.normal(size=(8, 4, 3, 3)))
    teacher = [torch.from_numpy(rng.normal(size=(16, 4, 3, 3)))]
    permuted = student[torch.from_numpy(rng.permutation(8))]
    base = parameter_distribution_loss([KernelPair([student], teacher)])
    torch.testing.assert_close(parameter_distribution_loss([KernelPair([permuted], teacher)]), base)


def test_parameter_loss_passes_gradcheck(rng):
    student = torch.from_numpy(rng.normal(size=(3, 2, 3, 3))).requires_grad_()
    teacher = [torch.from_numpy(rng.normal(size=(4, 2, 3, 3)))]
    assert torch.autograd.gradcheck(lambda s: parameter_distribution_loss([KernelPair([s], teacher)], 0.7), (student,))


@pytest.mark.parametrize("tau", [0.0, -1.0])
def test_non_positive_temperature_is_refused(tau):
    pair = KernelPair([torch.ones(2, 2, 3, 3)], [torch.ones(2, 2, 3, 3)])
    with pytest.raises(ValueError, match="tau_p must be positive"):
        parameter_distribution_loss([pair], tau)


def test_empty_pair_list_is_refused():
    with pytest.raises(ValueError, match="at least one kernel pair"):
        parameter_distribution_loss([])


def test_a_side_without_kernels_is_refused():
    with pytest.raises(ValueError, match="no kernels"):
        parameter_distribution_loss([KernelPair([], [torch.ones(2, 2, 3, 3)], name="stage1")])


def test_spatial_kernels_skips_pointwise_and_temporal_only_convolutions():
    block = nn.Sequential(
        nn.Conv2d(3, 4, 1),
        nn.Conv2d(4, 4, 3, groups=4),
        nn.Conv3d(4, 4, (3, 1, 1)),
        nn.Conv3d(4, 4, (1, 3, 3)),
    )
    assert [tuple(k.shape) for k in spatial_kernels(block)] == [(4, 1, 3, 3), (4, 4, 1, 3, 3)]


def test_teacher_energy_cache_recomputes_only_when_a_teacher_kernel_changes() -> None:
    """A frozen teacher's map is computed once; an in-place update (mutual learning's optimiser
    step) bumps the weight's version and the next call sees the new kernels. No gradient reaches
    the teacher through the cache."""
    teacher = [torch.nn.Parameter(torch.randn(6, 4, 3, 3)), torch.nn.Parameter(torch.randn(8, 6, 3, 3))]
    student = torch.randn(4, 1, 3, 3, requires_grad=True)
    pair = KernelPair([student], teacher, name="stage2->stage2")
    cache = TeacherEnergyCache()
    first = cache.energy(pair, "resample")
    assert cache.energy(pair, "resample") is first
    torch.testing.assert_close(first, kernel_frequency_energy([t.detach() for t in teacher]))
    with torch.no_grad():
        teacher[1].mul_(2.0)
    updated = cache.energy(pair, "resample")
    assert updated is not first
    torch.testing.assert_close(updated, kernel_frequency_energy([t.detach() for t in teacher]))
    loss = parameter_distribution_loss([pair], 0.7, teacher_energies=cache)
    torch.testing.assert_close(
        loss, parameter_distribution_loss([KernelPair([student], [t.detach() for t in teacher])], 0.7)
    )
    loss.backward()
    assert student.grad is not None and all(t.grad is None for t in teacher)
