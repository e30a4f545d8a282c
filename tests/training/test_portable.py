"""An export runs without specdistill: its ONNX file (through onnxruntime alone) and its
``torch.export`` program reproduce the PyTorch model at any batch size, and its card says how to
feed it and what it costs."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pyarrow.parquet as pq
import pytest
import torch

from orchestrator.cli import main
from training import portable
from training.checkpoint import META_NAME, WEIGHTS_NAME, ModelCard, export_model, load_card, load_exported
from training.data.shards import load_manifest
from training.models import create_model, describe

CLASSES = [f"c{i}" for i in range(5)]


def _distinct_model(name: str, frames: int, size: int = 32) -> torch.nn.Module:
    """A model whose logits differ from clip to clip: with fresh BatchNorm statistics an untrained
    network can answer every input alike, and then any converter would look exact. Statistics
    averaged over a few batches (precise BN) make each layer's output vary again."""
    model = create_model(name, num_classes=len(CLASSES), num_frames=frames)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches below
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, frames, size, size))
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tsm_mobilenet_v2", "tsm_resnet18", "r2plus1d_18"])
def test_onnx_and_program_reproduce_the_model_at_any_batch(name: str, tmp_path: Path) -> None:
    frames, size = 4, 32
    model = _distinct_model(name, frames)
    card = ModelCard(model=name, model_kwargs={}, classes=CLASSES, num_frames=frames, size=size)
    export_model(tmp_path, model, card, check_clips=torch.randn(3, 3, frames, size, size))

    clips = torch.randn(5, 3, frames, size, size)
    with torch.no_grad():
        expected = model(clips).logits.numpy()
    assert expected.std(axis=0).mean() > 1e-2  # the clips really are told apart
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    program = torch.export.load(tmp_path / "model.pt2").module()
    for batch in (1, 2, 5):
        (onnx_logits,) = session.run(["logits"], {"clips": clips[:batch].numpy()})
        np.testing.assert_allclose(onnx_logits, expected[:batch], atol=1e-4, rtol=0)
        with torch.no_grad():
            np.testing.assert_allclose(program(clips[:batch]).numpy(), expected[:batch], atol=1e-4, rtol=0)
    files = load_card(tmp_path).files
    assert files["onnx"]["file"] == "model.onnx" and files["onnx"]["max_abs_diff"] <= 1e-4
    assert files["torch_export"]["file"] == "model.pt2" and files["checked_on_clips"] == 3


def test_the_card_says_how_to_feed_the_model_and_what_it_costs(tmp_path: Path) -> None:
    model = create_model("tsm_resnet18", num_classes=len(CLASSES), num_frames=4)
    card = ModelCard(
        model="tsm_resnet18", model_kwargs={}, classes=CLASSES, num_frames=4, size=32, teachers=["t"], dataset="d"
    )
    export_model(tmp_path, model, card)
    written = json.loads((tmp_path / META_NAME).read_text())
    assert written["format"] == 2 and written["classes"] == CLASSES and written["num_frames"] == 4
    assert written["sampling"]["frames"].startswith("split the video into num_frames equal segments")
    assert written["mean"] == [0.45] * 3 and written["teachers"] == ["t"] and written["dataset"] == "d"
    assert written["package_version"]
    assert written["cost"]["params"] == describe(model, height=32, width=32).params
    assert written["cost"]["gflops_per_clip"] > 0 and written["cost"]["latency_ms_batch1"] > 0
    assert written["files"] == {}  # no clips to check on, so no conversion
    assert not (tmp_path / "model.onnx").exists()


def test_a_card_written_before_cost_and_sampling_still_loads(tmp_path: Path) -> None:
    model = create_model("tsm_resnet18", num_classes=len(CLASSES), num_frames=4)
    export_model(
        tmp_path, model, ModelCard(model="tsm_resnet18", model_kwargs={}, classes=CLASSES, num_frames=4, size=32)
    )
    written = json.loads((tmp_path / META_NAME).read_text())
    old = {k: written[k] for k in ("model", "model_kwargs", "classes", "num_frames", "size", "mean", "std")}
    (tmp_path / META_NAME).write_text(json.dumps(old | {"metrics": {}, "config": {}, "provenance": {}, "format": 1}))
    loaded, card = load_exported(tmp_path)
    assert card.cost == {} and card.sampling["crop"] == "the centre size×size square"
    export_model(tmp_path, loaded, card)  # written again, it says it is the new format
    assert json.loads((tmp_path / META_NAME).read_text())["format"] == 2


def test_a_conversion_that_changes_the_numbers_keeps_only_the_weights(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(portable, "TOLERANCE", -1.0)  # any difference, even none, is now too much
    # The smallest graph of the three families: the conversion still runs in full before it is refused.
    model = _distinct_model("r2plus1d_18", 4)
    card = ModelCard(model="r2plus1d_18", model_kwargs={}, classes=CLASSES, num_frames=4, size=32)
    (tmp_path / "model.onnx").write_bytes(b"an earlier export's conversion")  # must not outlive its weights
    with pytest.raises(portable.PortableMismatch, match="the onnx conversion's logits differ"):
        export_model(tmp_path, model, card, check_clips=torch.randn(2, 3, 4, 32, 32))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([WEIGHTS_NAME, META_NAME])
    assert load_card(tmp_path).files == {}
    assert not model.training  # left as it came


def _readme_snippet() -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Shipping a student") :]
    return section[section.index("```python\n") + len("```python\n") : section.index("\n```\n")]


@pytest.mark.slow
def test_export_command_converts_an_exported_model_and_the_readme_runs_it(
    motion_shards, exported_teacher, tmp_path, capsys
):
    data, manifest = motion_shards
    target = Path(shutil.copytree(exported_teacher, tmp_path / "students" / "best"))
    assert main(["export", str(target)]) == 2  # its card names no dataset
    assert "--data" in capsys.readouterr().err
    assert main(["export", str(target), "--data", str(data)]) == 0
    assert "model.onnx: ONNX, max |Δ logits|" in capsys.readouterr().out
    assert (target / "model.onnx").is_file() and (target / "model.pt2").is_file()
    assert load_card(target).files["checked_on_clips"] == 4

    # The README's deployment snippet, in a fresh interpreter that imports nothing of specdistill.
    video = pq.read_table(load_manifest(data).split(data, "test").paths[0], columns=["video"])["video"][0]
    (tmp_path / "clip.mp4").write_bytes(video.as_py())
    done = subprocess.run([sys.executable, "-I", "-c", _readme_snippet()], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    printed = ast.literal_eval(done.stdout.strip())
    assert len(printed) == 5 and set(printed) <= set(manifest.classes)
