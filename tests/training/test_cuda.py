"""The CUDA path: bf16 autocast, device placement and the teacher-energy cache on a GPU.

CI has no GPU, so these skip there; `bash bench/gpu.sh` runs them on a GPU machine (bench/RESULTS.md
has the last run). What they pin: every loss term under autocast stays within bf16 rounding of the float32
CPU value (the spectrum's FFT and the parameter term's DCT must not silently run in half precision),
a frozen and a mutual step run end to end on the device, and the fused teacher spectrum (Triton)
gives the values of ``torch.fft``.
"""

from __future__ import annotations

import copy

import pytest
import torch

from training.distiller import Distiller
from training.losses import CollaborationConfig, DistillationObjective, ObjectiveConfig
from training.losses.spectrum import SpectrumOptions, target_spectrum
from training.models import create_model
from training.precision import Precision

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")


def _pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    student = create_model("tsm_mobilenet_v2", num_classes=5, num_frames=8)
    teacher = create_model("tsm_resnet18", num_classes=5, num_frames=8)
    return student, teacher


def _terms(objective, student, teacher, clips, labels) -> dict[str, float]:
    out = objective(
        student(clips, taps=objective.student_taps),
        [teacher(clips, taps=objective.teacher_taps)],
        labels,
        student,
        [teacher],
    )
    return {name: value.item() for name, value in out.terms.items()}


def test_every_term_under_bf16_autocast_is_within_rounding_of_float32_on_the_cpu():
    student, teacher = _pair()
    student.eval(), teacher.eval()  # running BatchNorm statistics: same function on both devices
    config = ObjectiveConfig(feature_weight=1.0)
    objective = DistillationObjective(config, student, [teacher])
    clips, labels = torch.randn(4, 3, 8, 64, 64), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        expected = _terms(objective, student, teacher, clips, labels)
        gpu = [copy.deepcopy(m).to(CUDA) for m in (objective, student, teacher)]
        with Precision.for_device(CUDA).autocast():
            got = _terms(*gpu, clips.to(CUDA), labels.to(CUDA))
    assert set(got) == set(expected) == {"ce", "kd", "spectrum", "parameter", "feature"}
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=0.03, abs=1e-4), name
    # The parameter term reads only the weights, and it opts out of autocast: float32 on both sides.
    assert got["parameter"] == pytest.approx(expected["parameter"], rel=1e-5)


@pytest.mark.parametrize("mode", ["frozen", "mutual"])
def test_a_distillation_step_runs_on_the_gpu_and_moves_the_right_weights(mode: str):
    student, teacher = _pair()
    distiller = Distiller(
        student,
        [teacher],
        objective=ObjectiveConfig(),
        collaboration=CollaborationConfig(mode=mode),
        precision=Precision.for_device(CUDA),
    )
    teacher_before = teacher.fc.weight.detach().clone()
    clips, labels = torch.randn(4, 3, 8, 64, 64, device=CUDA), torch.tensor([0, 1, 2, 3], device=CUDA)
    for _ in range(2):  # the second step reads the teacher-energy cache (frozen) or refills it (mutual)
        result = distiller.step(clips, labels)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values()), result.metrics
    assert result.logits.device.type == "cuda"
    assert torch.equal(teacher.fc.weight, teacher_before) == (mode == "frozen")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_fused_teacher_spectrum_equals_the_fft_one_on_the_same_tap(dtype: torch.dtype):
    """Triton's kernel for ``spectrum_kernel: auto`` on CUDA: the same values as ``torch.fft`` on the
    same tap (both sum in float32), at a ResNet-50 stage-2 shape with an odd batch and with phase."""
    tap = torch.randn(3, 512, 8, 28, 28, device=CUDA).to(dtype)
    for options in (SpectrumOptions(), SpectrumOptions(log_amplitude=True, low_bins=3, phase=True)):
        fused, fft = target_spectrum(tap, options), target_spectrum(tap, options, "fft")
        torch.testing.assert_close(fused.amplitude, fft.amplitude, rtol=1e-5, atol=1e-6)
        if options.phase:
            torch.testing.assert_close(fused.cos, fft.cos, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(fused.sin, fft.sin, rtol=1e-4, atol=1e-5)
