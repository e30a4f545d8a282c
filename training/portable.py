"""A model that runs without specdistill: an ONNX file (for onnxruntime, TensorRT, OpenVINO …) and a
``torch.export`` program (for ``torch.export.load`` and AOTInductor), written beside the safetensors
weights of an export.

Both take ``N×3×T×H×W`` normalised clips with any batch size ``N`` and return ``N×K`` logits; the
feature taps are a training concern and stay behind. Neither is written unless, on the clips it is
given (real clips of the model's data), it reproduces the PyTorch model's logits to within
``TOLERANCE`` (times the largest logit's magnitude where that exceeds 1): a converter that changed
the numbers must fail the export, not the deployment.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from training import storage
from training.data.shards import load_manifest
from training.data.splits import TRAIN, TUNE

ONNX_NAME = "model.onnx"
PROGRAM_NAME = "model.pt2"
TOLERANCE = 1e-4
INPUT_NAME, OUTPUT_NAME = "clips", "logits"


class LogitsOnly(nn.Module):
    """The deployable forward: clips → logits, without the taps (a dict output ONNX cannot name)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clips: Tensor) -> Tensor:
        return self.model(clips).logits


class PortableMismatch(ValueError):
    """A converted model whose logits differ from the PyTorch model's by more than ``TOLERANCE``."""


def reference_clips(data_dir: str | Path, *, num_frames: int, size: int, count: int = 4) -> Tensor:
    """``count`` clips of a dataset, prepared as evaluation prepares them, to check conversions on:
    from the selection split (the training split of a dataset without one), never the test split,
    whose shards nothing but reporting may need."""
    from training.data.stream import ClipSampling, take_clips  # Ray Data: only when clips are read

    manifest = load_manifest(data_dir)
    split = TUNE if TUNE in manifest.splits else TRAIN
    source = manifest.split(data_dir, split)
    clips = take_clips(source.paths, ClipSampling(num_frames=num_frames, size=size, train=False), count, source.rows)
    if clips is not None:
        return clips
    raise ValueError(f"{storage.display(data_dir)}: split {split!r} has no decodable clip to check an export on")


def export_portable(directory: str | Path, model: nn.Module, clips: Tensor) -> dict[str, Any]:
    """Write ``model.onnx`` and ``model.pt2`` into ``directory`` once both reproduce ``model``'s
    eval-mode logits on ``clips`` (batch sizes 1 and ``len(clips)``); returns what the model card
    records. ``model`` is left in the mode it came in."""
    was_training = model.training
    deployable = LogitsOnly(model).eval()
    example = clips if len(clips) > 1 else clips.repeat(2, 1, 1, 1, 1)  # export would fix a batch of 1
    batch = torch.export.Dim("batch", min=1)
    try:
        with torch.no_grad():
            program = torch.export.export(deployable, (example,), dynamic_shapes={"clips": {0: batch}})
            expected = deployable(clips).numpy()
    finally:
        model.train(was_training)
    onnx_bytes, opset = _onnx(program)
    program_bytes = io.BytesIO()
    torch.export.save(program, program_bytes)
    differences = {
        "onnx": _onnx_difference(onnx_bytes, clips, expected),
        "program": _program_difference(program_bytes.getvalue(), clips, expected),
    }
    # 1e-4 for logits of order one; float32 itself rounds larger logits (a diverged student's reach
    # thousands) more coarsely than that, so the bound grows with them.
    allowed = TOLERANCE * max(1.0, float(np.abs(expected).max()))
    for name, difference in differences.items():
        if not difference <= allowed:  # also catches NaN
            raise PortableMismatch(
                f"{storage.display(directory)}: the {name} conversion's logits differ from the model's by "
                f"{difference:.2e} (more than {allowed:.2g}); nothing but the safetensors weights was written"
            )
    storage.write_bytes(storage.join(directory, ONNX_NAME), onnx_bytes)
    storage.write_bytes(storage.join(directory, PROGRAM_NAME), program_bytes.getvalue())
    return {
        "onnx": {"file": ONNX_NAME, "opset": opset, "max_abs_diff": differences["onnx"]},
        "torch_export": {"file": PROGRAM_NAME, "torch": torch.__version__, "max_abs_diff": differences["program"]},
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "checked_on_clips": len(clips),
    }


def _onnx(program: torch.export.ExportedProgram) -> tuple[bytes, int]:
    with warnings.catch_warnings():  # the exporter narrates its passes as warnings
        warnings.simplefilter("ignore")
        converted = torch.onnx.export(
            program, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamo=True, verbose=False
        )
    proto = converted.model_proto
    opset = next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))
    return proto.SerializeToString(), opset


def _onnx_difference(model: bytes, clips: Tensor, expected: np.ndarray) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    return max(
        float(np.abs(session.run(None, {INPUT_NAME: part.numpy()})[0] - want).max())
        for part, want in _batchings(clips, expected)
    )


def _program_difference(program: bytes, clips: Tensor, expected: np.ndarray) -> float:
    module = torch.export.load(io.BytesIO(program)).module()
    with torch.no_grad():
        return max(float(np.abs(module(part).numpy() - want).max()) for part, want in _batchings(clips, expected))


def _batchings(clips: Tensor, expected: np.ndarray) -> list[tuple[Tensor, np.ndarray]]:
    """The whole batch and its first clip alone: the dynamic batch axis must hold at both ends."""
    return [(clips, expected), (clips[:1], expected[:1])]
