import pytest
import torch

from training.losses import CollaborationConfig, DistillationObjective, ObjectiveConfig
from training.models import create_model
from training.step import distillation_step, supervised_step


def _pair():
    student = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=4, width_mult=0.5)
    teacher = create_model("tsm_resnet18", num_classes=4, num_frames=4)
    return student, teacher


def _batch():
    return torch.randn(4, 3, 4, 32, 32), torch.tensor([0, 1, 2, 3])


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_frozen_mode_leaves_the_teacher_bit_identical_and_trains_the_student():
    student, teacher = _pair()
    objective = DistillationObjective(ObjectiveConfig(), student, [teacher])
    optimizer = torch.optim.SGD([*student.parameters(), *objective.parameters()], lr=0.1)
    teacher_before, student_before = _snapshot(teacher), _snapshot(student)
    clips, labels = _batch()
    result = distillation_step(
        clips, labels, student=student, teachers=[teacher], objective=objective, student_optimizer=optimizer
    )
    for key, value in teacher.state_dict().items():  # weights and BatchNorm statistics alike
        assert torch.equal(value, teacher_before[key]), key
    assert any(not torch.equal(v, student_before[k]) for k, v in student.state_dict().items())
    assert set(result.metrics) == {"loss", "ce", "kd", "spectrum", "parameter"}
    assert result.logits.shape == (4, 4)


def test_mutual_mode_updates_the_teacher_too():
    student, teacher = _pair()
    objective = DistillationObjective(ObjectiveConfig(), student, [teacher])
    optimizer = torch.optim.SGD([*student.parameters(), *objective.parameters()], lr=0.1)
    teacher_optimizer = torch.optim.SGD(teacher.parameters(), lr=0.01)
    before = _snapshot(teacher)
    clips, labels = _batch()
    result = distillation_step(
        clips,
        labels,
        student=student,
        teachers=[teacher],
        objective=objective,
        student_optimizer=optimizer,
        teacher_optimizer=teacher_optimizer,
        collaboration=CollaborationConfig(mode="mutual"),
    )
    assert not torch.equal(teacher.fc.weight, before["fc.weight"])
    assert {"teacher/loss", "teacher/ce", "teacher/mutual"} <= set(result.metrics)


def test_student_objective_sends_no_gradient_into_the_teacher():
    student, teacher = _pair()
    objective = DistillationObjective(ObjectiveConfig(feature_weight=1.0), student, [teacher])
    clips, labels = _batch()
    out = objective(
        student(clips, taps=objective.student_taps),
        [teacher(clips, taps=objective.teacher_taps)],
        labels,
        student,
        [teacher],
    )
    out.total.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert objective.adapters["t0:stage2->stage2"].project.weight.grad is not None


def test_mutual_mode_without_a_teacher_optimizer_is_refused():
    student, teacher = _pair()
    objective = DistillationObjective(ObjectiveConfig(), student, [teacher])
    with pytest.raises(ValueError, match="teacher_optimizer"):
        distillation_step(
            *_batch(),
            student=student,
            teachers=[teacher],
            objective=objective,
            student_optimizer=torch.optim.SGD(student.parameters(), lr=0.1),
            collaboration=CollaborationConfig(mode="mutual"),
        )


def test_objective_refuses_a_tap_the_teacher_lacks_naming_the_field():
    student = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=4)
    teacher = create_model("tsm_resnet18", num_classes=4, num_frames=4)
    with pytest.raises(ValueError, match=r"objective.taps: teacher tap 'layer3' does not exist.*stage1"):
        DistillationObjective(ObjectiveConfig(taps=[["stage3", "layer3"]]), student, [teacher])


def test_objective_with_distillation_terms_needs_a_teacher():
    student = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=4)
    with pytest.raises(ValueError, match="no teacher"):
        DistillationObjective(ObjectiveConfig(), student, [])


def test_switched_off_terms_build_no_adapters_and_are_not_computed():
    student, teacher = _pair()
    config = ObjectiveConfig(spectrum_weight=0, parameter_weight=0)
    objective = DistillationObjective(config, student, [teacher])
    assert len(objective.adapters) == 0 and objective.student_taps == []
    result = distillation_step(
        *_batch(),
        student=student,
        teachers=[teacher],
        objective=objective,
        student_optimizer=torch.optim.SGD(student.parameters(), lr=0.1),
    )
    assert set(result.metrics) == {"loss", "ce", "kd"}


def test_teacher_ensemble_builds_adapters_per_member_and_averages_terms():
    student, teacher = _pair()
    other = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=4)
    objective = DistillationObjective(ObjectiveConfig(taps=["stage3"]), student, [teacher, other])
    assert sorted(objective.adapters) == ["t0:stage3->stage3", "t1:stage3->stage3"]
    result = distillation_step(
        *_batch(),
        student=student,
        teachers=[teacher, other],
        objective=objective,
        student_optimizer=torch.optim.SGD(student.parameters(), lr=0.1),
    )
    assert result.metrics["spectrum"] > 0


def test_supervised_step_reduces_the_loss_on_a_fixed_batch():
    model = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=4, width_mult=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    clips, labels = _batch()
    losses = [supervised_step(clips, labels, model=model, optimizer=optimizer).metrics["loss"] for _ in range(15)]
    assert losses[-1] < losses[0] * 0.5
