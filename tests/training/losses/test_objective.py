import pytest
import torch

from training.losses import DistillationObjective, ObjectiveConfig
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
    adapted, targets = objective._adapted_taps(student_out, teacher_out, 0)
    expected = spectrum_loss(adapted, [t.detach() for t in targets], options)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_taps_of_different_time_lengths_are_refused_naming_the_taps():
    student = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=8, width_mult=0.5)
    teacher = create_model("r3d_18", num_classes=4, num_frames=8)  # halves time in stages 2–4
    objective = DistillationObjective(ObjectiveConfig(parameter_weight=0.0), student, [teacher])
    student_out, teacher_out = _outputs(objective, student, teacher, torch.randn(2, 3, 8, 32, 32))
    with pytest.raises(ValueError, match=r"'stage2'->'stage2': student has 8 time steps, teacher 4"):
        objective(student_out, [teacher_out], torch.tensor([0, 1]), student, [teacher])
