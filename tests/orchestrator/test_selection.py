"""``specdistill best`` without Ray: ranking a sweep's trials and exporting their checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from orchestrator.cli import main
from orchestrator.selection import export_best, rank_trials
from training.checkpoint import load_exported, save_training_state
from training.config import DataConfig, OptimConfig, TrainConfig
from training.distiller import Distiller
from training.models import create_model

CLASSES = ["a", "b", "c"]
TRAIN = TrainConfig(
    stage="teacher",
    data=DataConfig(path="absent", num_frames=4, size=32),
    model="tsm_mobilenet_v2",
    model_kwargs={"width_mult": 0.5},
    optim=OptimConfig(epochs=2),
)


def _checkpoint_every_epoch(directory: Path, seed: int) -> None:
    """Real training checkpoints in each of the trial's checkpoint directories (one student per trial)."""
    torch.manual_seed(seed)
    student = create_model("tsm_mobilenet_v2", num_classes=len(CLASSES), num_frames=4, width_mult=0.5)
    state = Distiller(student).state_dict() | {"classes": CLASSES}
    for checkpoint in directory.glob("checkpoint_*"):
        save_training_state(checkpoint, state, TRAIN.model_dump(mode="json"))


def test_trials_rank_by_their_best_checkpointed_result_and_the_best_exports(tmp_path: Path, sweep_files) -> None:
    params = sweep_files.params(TRAIN)
    for index, (trial_id, curve) in enumerate({"t1": [0.3, 0.5], "t2": [0.6, 0.4], "t3": [0.2]}.items()):
        _checkpoint_every_epoch(sweep_files.write_trial(tmp_path, index, params, curve, trial_id), seed=index)
    ranked = rank_trials(tmp_path)
    assert [(t.record.trial_id, t.result["val_top1"]) for t in ranked] == [("t2", 0.6), ("t1", 0.5), ("t3", 0.2)]
    assert [t.record.trial_id for t in rank_trials(tmp_path, "val_loss", "min")] == ["t2", "t1", "t3"]

    (exported,) = export_best(tmp_path, tmp_path / "best", portable=False)  # (the data is "absent")
    model, card = load_exported(exported)
    assert (card.model, card.classes, card.num_frames, card.size) == ("tsm_mobilenet_v2", CLASSES, 4, 32)
    assert card.metrics["val_top1"] == 0.6 and card.provenance["trial_id"] == "t2"
    torch.manual_seed(1)  # t2's student
    expected = create_model("tsm_mobilenet_v2", num_classes=len(CLASSES), num_frames=4, width_mult=0.5)
    for key, value in expected.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_a_sweep_whose_checkpoints_are_all_gone_is_refused_naming_the_metric(tmp_path: Path, sweep_files) -> None:
    sweep_files.write_trial(tmp_path, 0, sweep_files.params(TRAIN), [0.5], "t1")  # no state.pt: removed
    with pytest.raises(ValueError, match="no trial reported 'val_top1' together with a checkpoint"):
        rank_trials(tmp_path)
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        export_best(tmp_path, tmp_path / "x", top_k=0)


def test_a_damaged_best_checkpoint_is_left_out_naming_it_and_the_next_trial_exports(
    tmp_path: Path, sweep_files, capsys
) -> None:
    params = sweep_files.params(TRAIN)
    for index, (trial_id, curve) in enumerate({"t1": [0.3, 0.5], "t2": [0.6, 0.4]}.items()):
        _checkpoint_every_epoch(sweep_files.write_trial(tmp_path / "sweep", index, params, curve, trial_id), index)
    (t2,) = (tmp_path / "sweep").glob("*_t2_*")
    state = t2 / "checkpoint_000000" / "state.pt"
    state.write_bytes(state.read_bytes()[:1000])  # truncated: a disk filled while it was written
    (t2 / "result.json").write_text((t2 / "result.json").read_text() + '{"epoch": 3, "val_to')

    assert main(["best", str(tmp_path / "sweep"), "--export", str(tmp_path / "best"), "--no-portable"]) == 0
    out, err = capsys.readouterr()
    assert f"specdistill best: warning: {t2 / 'result.json'}: line 3 is not a result, left out" in err
    assert f"specdistill best: warning: trial t2 left out: {state}: not a readable training state" in err
    assert load_exported(tmp_path / "best")[1].provenance["trial_id"] == "t1"
    assert f"exported {tmp_path / 'best'}" in out


def test_conversions_need_the_trials_data_and_say_so(tmp_path: Path, sweep_files, capsys) -> None:
    _checkpoint_every_epoch(sweep_files.write_trial(tmp_path, 0, sweep_files.params(TRAIN), [0.5], "t1"), seed=0)
    assert main(["best", str(tmp_path), "--export", str(tmp_path / "best")]) == 2
    err = capsys.readouterr().err
    assert "trial t1: its data cannot be read to check the ONNX and torch.export conversions on" in err, err
    assert "absent" in err and "--no-portable exports the weights alone" in err
    assert not (tmp_path / "best").exists()
