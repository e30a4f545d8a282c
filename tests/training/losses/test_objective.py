import pytest
import torch
import torch.nn.functional as F

from training.losses import TERMS, CollaborationConfig, DistillationObjective, ObjectiveConfig, TeacherObjective
from training.losses.kd import mutual_loss
from training.losses.spectrum import SpectrumOptions, spectrum_loss
from training.models import create_model


def _outputs(objective, student, teacher, clips):
    return student(clips, taps=objective.student_taps), teacher(clips, taps=objective.teacher_taps)


@pytest.mark.parametrize("options", [SpectrumOptions(), SpectrumOptions(log_amplitude=True, low_bins=3, phase=True)])
def test_spectrum_term_is_spectrum_loss_of_the_adapted_taps(options: SpectrumOptions):
    """The objective projects DFT coefficients instead of features (cheaper); the value must not move."""
    student = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=8, width_mult=0.5)
    teacher = create_model("tsm_resnet18", num_classes=4, num_frames=8)
    config = ObjectiveConfig(
        spectrum_log_amplitude=options.log_amplitude, spectrum_low_bins=options.low_bins, spectrum_phase=options.phase
    )
    objective = DistillationObjective(config, student, [teacher])
    student_out, teacher_out = _outputs(objective, student, teacher, torch.randn(2, 3, 8, 32, 32))
    got = objective(student_out, [teacher_out], torch.tensor([0, 1]), student, [teacher]).terms["spectrum"]
    adapted, targets = objective.adapters.adapted(config.taps, student_out, teacher_out, 0)
    expected = spectrum_loss(adapted, [t.detach() for t in targets], options)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_taps_of_different_time_lengths_are_refused_naming_the_taps():
    student = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=8, width_mult=0.5)
    teacher = create_model("r3d_18", num_classes=4, num_frames=8)  # halves time in stages 2–4
    objective = DistillationObjective(ObjectiveConfig(parameter_weight=0.0), student, [teacher])
    student_out, teacher_out = _outputs(objective, student, teacher, torch.randn(2, 3, 8, 32, 32))
    with pytest.raises(ValueError, match=r"'stage2'->'stage2': student has 8 time steps, teacher 4"):
        objective(student_out, [teacher_out], torch.tensor([0, 1]), student, [teacher])


def test_every_weight_field_has_a_registered_term_and_every_term_a_weight() -> None:
    assert set(ObjectiveConfig().weights()) == set(TERMS)


def test_terms_are_summed_with_their_weights_in_registry_order() -> None:
    student = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=8, width_mult=0.5)
    teacher = create_model("tsm_resnet18", num_classes=4, num_frames=8)
    config = ObjectiveConfig(kd_weight=0.5, spectrum_weight=2.0, parameter_weight=0.25, feature_weight=3.0)
    objective = DistillationObjective(config, student, [teacher])
    student_out, teacher_out = _outputs(objective, student, teacher, torch.randn(2, 3, 8, 32, 32))
    out = objective(student_out, [teacher_out], torch.tensor([0, 1]), student, [teacher])
    assert list(out.terms) == [name for name in TERMS if name in config.active_weights()]
    expected = sum(config.active_weights()[name] * value for name, value in out.terms.items())
    torch.testing.assert_close(out.total, expected)


def test_the_teachers_half_is_its_cross_entropy_plus_the_weighted_mutual_kl(rng) -> None:
    teacher_logits = torch.tensor(rng.standard_normal((5, 4)), dtype=torch.float32, requires_grad=True)
    student_logits = torch.tensor(rng.standard_normal((5, 4)), dtype=torch.float32, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 0])
    config = CollaborationConfig(mode="mutual", mutual_weight=0.7, mutual_temperature=3.0)
    out = TeacherObjective(config)(teacher_logits, student_logits, labels)
    ce = F.cross_entropy(teacher_logits, labels)
    assert out.terms["ce"].item() == pytest.approx(ce.item())
    assert out.terms["mutual"].item() == pytest.approx(mutual_loss(teacher_logits, student_logits, 3.0).item())
    assert out.total.item() == pytest.approx(ce.item() + 0.7 * out.terms["mutual"].item())
    out.total.backward()
    assert student_logits.grad is None and teacher_logits.grad is not None
