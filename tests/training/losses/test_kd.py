import numpy as np
import pytest
import scipy.special
import torch

from training.losses.kd import ensemble_logits, kd_loss, mutual_loss


def reference_kd(student: np.ndarray, teacher: np.ndarray, tau: float) -> float:
    p = scipy.special.softmax(teacher / tau, axis=1)
    q = scipy.special.softmax(student / tau, axis=1)
    rows = [
        sum(pi * (np.log(pi) - np.log(qi)) for pi, qi in zip(pr, qr, strict=True)) for pr, qr in zip(p, q, strict=True)
    ]
    return float(np.mean(rows) * tau**2)


@pytest.mark.parametrize("tau", [1.0, 4.0, 0.5])
def test_kd_loss_matches_hand_written_kl(rng, tau):
    student, teacher = rng.normal(size=(5, 7)) * 3, rng.normal(size=(5, 7)) * 3
    got = kd_loss(torch.from_numpy(student), torch.from_numpy(teacher), tau)
    assert got.item() == pytest.approx(reference_kd(student, teacher, tau), abs=1e-6, rel=1e-6)


def test_mutual_loss_is_the_kl_from_the_student_to_the_teacher(rng):
    student, teacher = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    got = mutual_loss(torch.from_numpy(teacher), torch.from_numpy(student), 2.0)
    assert got.item() == pytest.approx(reference_kd(teacher, student, 2.0), abs=1e-6)


def test_kd_loss_is_zero_for_identical_logits(rng):
    logits = torch.from_numpy(rng.normal(size=(4, 5)))
    assert kd_loss(logits, logits.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-12)


def test_kd_loss_passes_gradcheck_and_leaves_the_teacher_without_gradient(rng):
    student = torch.from_numpy(rng.normal(size=(3, 4))).requires_grad_()
    teacher = torch.from_numpy(rng.normal(size=(3, 4))).requires_grad_()
    assert torch.autograd.gradcheck(lambda s: kd_loss(s, teacher, 2.0), (student,))
    kd_loss(student, teacher, 2.0).backward()
    assert teacher.grad is None


def test_mutual_loss_passes_gradcheck_and_leaves_the_student_without_gradient(rng):
    teacher = torch.from_numpy(rng.normal(size=(3, 4))).requires_grad_()
    student = torch.from_numpy(rng.normal(size=(3, 4))).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: mutual_loss(t, student, 3.0), (teacher,))
    mutual_loss(teacher, student, 3.0).backward()
    assert student.grad is None


@pytest.mark.parametrize("tau", [0.0, -2.0])
def test_non_positive_temperature_is_refused(tau):
    with pytest.raises(ValueError, match="temperature must be positive"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), tau)


def test_mismatched_logit_shapes_are_refused_with_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(2, 3\)"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 4), 1.0)


def test_ensemble_logits_soften_to_the_mean_of_member_probabilities(rng):
    members = [torch.from_numpy(rng.normal(size=(4, 6)) * 2) for _ in range(3)]
    tau = 3.0
    expected = torch.stack([torch.softmax(z / tau, dim=1) for z in members]).mean(0)
    torch.testing.assert_close(torch.softmax(ensemble_logits(members, tau) / tau, dim=1), expected)
