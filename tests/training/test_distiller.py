"""``Distiller``: one step of the student (and, in mutual mode, the teacher), and its state."""

import io

import pytest
import torch

from training.config import OptimConfig
from training.distiller import Distiller
from training.losses import CollaborationConfig, DistillationObjective, ObjectiveConfig
from training.models import create_model


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
    distiller = Distiller(student, [teacher], objective=ObjectiveConfig())
    teacher_before, student_before = _snapshot(teacher), _snapshot(student)
    result = distiller.step(*_batch())
    for key, value in teacher.state_dict().items():  # weights and BatchNorm statistics alike
        assert torch.equal(value, teacher_before[key]), key
    assert any(not torch.equal(v, student_before[k]) for k, v in student.state_dict().items())
    assert set(result.metrics) == {"loss", "ce", "kd", "spectrum", "parameter"}
    assert result.logits.shape == (4, 4)


def test_mutual_mode_updates_the_teacher_too():
    student, teacher = _pair()
    distiller = Distiller(
        student, [teacher], objective=ObjectiveConfig(), collaboration=CollaborationConfig(mode="mutual")
    )
    before = _snapshot(teacher)
    result = distiller.step(*_batch())
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


@pytest.mark.parametrize("teachers", [0, 2])
def test_mutual_mode_without_exactly_one_teacher_is_refused(teachers: int):
    student, teacher = _pair()
    with pytest.raises(ValueError, match="exactly one teacher"):
        Distiller(
            student,
            [teacher] * teachers,
            objective=ObjectiveConfig(terms=["ce"]),
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
    distiller = Distiller(student, [teacher], objective=config)
    assert len(distiller.objective.adapters) == 0 and distiller.objective.student_taps == []
    result = distiller.step(*_batch())
    assert set(result.metrics) == {"loss", "ce", "kd"}


def test_terms_not_listed_are_off_whatever_their_weight():
    student, teacher = _pair()
    distiller = Distiller(student, [teacher], objective=ObjectiveConfig(terms=["ce", "kd"], feature_weight=1.0))
    assert len(distiller.objective.adapters) == 0
    assert set(distiller.step(*_batch()).metrics) == {"loss", "ce", "kd"}


def test_teacher_ensemble_builds_adapters_per_member_and_averages_terms():
    student, teacher = _pair()
    other = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=4)
    distiller = Distiller(student, [teacher, other], objective=ObjectiveConfig(taps=["stage3"]))
    assert sorted(distiller.objective.adapters) == ["t0:stage3->stage3", "t1:stage3->stage3"]
    assert distiller.step(*_batch()).metrics["spectrum"] > 0


def test_cross_entropy_alone_reduces_the_loss_on_a_fixed_batch():
    model = create_model("tsm_mobilenet_v2", num_classes=4, num_frames=4, width_mult=0.5)
    distiller = Distiller(model)  # no teacher: how a teacher itself is trained
    clips, labels = _batch()
    losses = [distiller.step(clips, labels).metrics["loss"] for _ in range(15)]
    assert losses[-1] < losses[0] * 0.5


def test_weight_decay_spares_the_log_variances_of_uncertainty_weighting():
    """Decay would pull every log-variance towards 0, every term's weight towards 1."""

    def one_step(weight_decay: float) -> Distiller:
        torch.manual_seed(0)
        student, teacher = _pair()
        objective = ObjectiveConfig(weighting="uncertainty", feature_weight=1.0)
        distiller = Distiller(student, [teacher], objective=objective, optim=OptimConfig(weight_decay=weight_decay))
        distiller.step(*_batch())
        return distiller

    plain, decayed = one_step(0.0), one_step(0.5)
    for name, value in plain.objective.weighting.log_variances.items():
        assert torch.equal(value, decayed.objective.weighting.log_variances[name]), name
    assert not torch.equal(plain.student.fc.weight, decayed.student.fc.weight)
    adapters = list(zip(plain.objective.adapters.parameters(), decayed.objective.adapters.parameters(), strict=True))
    assert adapters and any(not torch.equal(a, b) for a, b in adapters)


# The stand-in old optimizer is stepped by a scheduler built for the one it replaced, which warns.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")
def test_a_checkpoint_with_the_log_variances_in_the_student_s_group_still_resumes() -> None:
    """Written before the log-variances had a group of their own: same parameters, one group."""

    def build() -> Distiller:
        torch.manual_seed(0)
        student, teacher = _pair()
        return Distiller(student, [teacher], objective=ObjectiveConfig(weighting="uncertainty"), total_steps=4)

    older = build()
    groups = older.optimizers["student"].param_groups
    merged = [p for group in groups for p in group["params"]]
    hyper = {k: v for k, v in groups[0].items() if k != "params"}  # with the one-cycle schedule's keys
    older.optimizers["student"] = torch.optim.AdamW([{**hyper, "params": merged}])
    older.step(*_batch())
    saved = older.state_dict()
    assert len(saved["optimizers"]["student"]["param_groups"]) == 1

    restored = build()
    restored.load_state_dict(saved)
    optimizer = restored.optimizers["student"]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [1e-4, 0.0]
    log_variance = next(iter(restored.objective.weighting.log_variances.values()))
    old_log_variance = next(iter(older.objective.weighting.log_variances.values()))
    assert torch.equal(
        optimizer.state[log_variance]["exp_avg"], older.optimizers["student"].state[old_log_variance]["exp_avg"]
    )
    restored.step(*_batch())


@pytest.mark.parametrize("mode", ["frozen", "mutual"])
def test_a_distiller_restored_from_its_state_takes_the_same_next_step(mode: str):
    def build() -> Distiller:
        torch.manual_seed(0)
        student, teacher = _pair()
        config = ObjectiveConfig(weighting="uncertainty")
        return Distiller(
            student, [teacher], objective=config, collaboration=CollaborationConfig(mode=mode), total_steps=4
        )

    clips, labels = _batch()
    original = build()
    for _ in range(2):
        original.step(clips, labels)
    saved = io.BytesIO()  # through a file, as in a checkpoint: the live state shares its tensors
    torch.save(original.state_dict(), saved)
    saved.seek(0)
    restored = build()
    restored.load_state_dict(torch.load(saved, weights_only=True))
    for distiller in (original, restored):
        torch.manual_seed(1)  # dropout, if any
        distiller.step(clips, labels)
    for key, value in original.student.state_dict().items():
        assert torch.equal(value, restored.student.state_dict()[key]), key
    assert original.state_dict()["schedulers"] == restored.state_dict()["schedulers"]
    if mode == "mutual":
        assert torch.equal(original.teachers[0].fc.weight, restored.teachers[0].fc.weight)
