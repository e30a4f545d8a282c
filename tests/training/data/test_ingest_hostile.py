"""Ingest against a hostile corpus the test makes: every file ends as an ingested clip or as a
reject line with its reason, every good clip is ingested, and the exit status says whether
anything was rejected (0 none, 3 some, with the summary on stderr)."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import av
import numpy as np
from PIL import Image

from orchestrator.cli import main
from training.data.codec import encode_clip
from training.data.shards import load_manifest

from .test_ingest import BROKEN, frames_of, read_rejects, read_rows, video, write, write_frames


def zero_frame_avi() -> bytes:
    """A container with a video stream and not one frame in it."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()  # the header, which PyAV writes only on the first frame otherwise
    return buffer.getvalue()


def bomb_jpeg() -> bytes:
    """A 32×32 JPEG whose header claims 60000×60000 pixels: PIL refuses it as a decompression bomb
    (with an error that is not an ``OSError``) before it allocates anything."""
    buffer = io.BytesIO()
    Image.fromarray(frames_of(0)[0]).save(buffer, format="JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")  # start of frame: marker, length (2), precision (1), height (2), width (2)
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") * 2
    return bytes(data)


def run_cli(source: Path, out: Path, fmt: str, *options: str) -> int:
    return main(["ingest", "--format", fmt, "--workers", "2", *options, str(source), str(out)])


def test_a_hostile_folder_tree_costs_only_its_bad_files(tmp_path: Path, capsys) -> None:
    source = tmp_path / "src"
    good = {f"{c}/{c}_{k}" for c in "ab" for k in range(3)}
    for clip_id in good:
        write(source / f"{clip_id}.mp4", video(ord(clip_id[0])))
    for kind, make in BROKEN.items():  # truncated, empty, text, random bytes
        write(source / "a" / f"{kind.replace(' ', '_')}.mp4", make())
    write(source / "a" / "no_frames.avi", zero_frame_avi())
    write(source / "b" / "huge.mp4", video(1) + bytes(2 * 2**20))  # over --max-clip-mb 1
    write(source / "b" / "twice.mp4", video(1))
    write(source / "b" / "twice.avi", video(1, "avi"))  # same clip id as twice.mp4
    odd_name = os.fsdecode(b"\xffclip\xfe.mp4")  # not valid UTF-8
    write(source / "a" / odd_name, video(0))
    linked = write(tmp_path / "elsewhere" / "more" / "b_linked.mp4", video(1)).parent
    (source / "b" / "linked").symlink_to(linked, target_is_directory=True)
    (source / "b" / "loop").symlink_to(source / "b", target_is_directory=True)  # must not recurse for ever
    (source / "a" / "b_again").symlink_to(source / "b" / "linked", target_is_directory=True)  # b's clip, in a
    os.mkfifo(source / "a" / "pipe.mp4")  # opening it would block: never probed
    good |= {"a/\\xffclip\\xfe", "a/b_again/b_linked", "b/twice"}  # a/ sorts first: its link is the clip

    assert run_cli(source, tmp_path / "out", "folder", "--max-clip-mb", "1") == 3
    assert "ingested 9, rejected 9" in capsys.readouterr().err

    rows = read_rows(tmp_path / "out")
    assert set(rows) == good
    assert rows["a/\\xffclip\\xfe"]["source"] == "a/\\xffclip\\xfe.mp4"
    reasons = {r["path"]: r["reason"] for r in read_rejects(tmp_path / "out")}
    assert set(reasons) == {
        *(f"a/{kind.replace(' ', '_')}.mp4" for kind in BROKEN),
        "a/no_frames.avi",
        "a/pipe.mp4",
        "b/huge.mp4",
        "b/linked/b_linked.mp4",
        "b/twice.mp4",  # the .avi sorts first and is the clip
    }
    assert "no decodable frames" in reasons["a/no_frames.avi"]
    assert reasons["a/pipe.mp4"].startswith("not a regular file")
    assert "over --max-clip-mb 1" in reasons["b/huge.mp4"]
    assert "already used by b/twice.avi" in reasons["b/twice.mp4"]
    assert reasons["b/linked/b_linked.mp4"] == "the same file as a/b_again/b_linked.mp4 (reached again through a link)"
    assert all(reasons.values())


def test_a_hostile_jester_tree_rejects_a_bomb_and_a_probe_that_never_returns(tmp_path: Path, capsys) -> None:
    """A frame that is a FIFO blocks its reader for ever, like a file on a stalled network disk:
    the probe is killed at its wall-clock deadline (three times ``--probe-cpu-s``)."""
    source = tmp_path / "src"
    write(source / "labels.csv", b"Swiping Left\nSwiping Right\n")
    write(source / "train.csv", b"1;Swiping Left\n2;Swiping Right\n3;Swiping Left\n4;Swiping Right\n")
    write(source / "validation.csv", b"5;Swiping Left\n")
    for clip_id in ("1", "2", "5"):
        write_frames(source / clip_id, frames_of(int(clip_id) % 2))
    shutil.copytree(source / "1", source / "3")
    (source / "3" / "00002.jpg").write_bytes(bomb_jpeg())
    shutil.copytree(source / "2", source / "4")
    (source / "4" / "00002.jpg").unlink()
    os.mkfifo(source / "4" / "00002.jpg")

    assert run_cli(source, tmp_path / "out", "jester", "--probe-cpu-s", "1") == 3
    assert "ingested 3, rejected 2" in capsys.readouterr().err
    assert set(read_rows(tmp_path / "out")) == {"1", "2", "5"}
    reasons = {r["path"]: r["reason"] for r in read_rejects(tmp_path / "out")}
    assert "frame 00002.jpg" in reasons["3"] and "decompression bomb" in reasons["3"]
    assert reasons["4"] == "probe timed out after 3 s and was killed"


def test_a_clean_ingest_exits_0_with_the_summary_on_stdout(tmp_path: Path, capsys) -> None:
    for k in range(3):
        write(tmp_path / "src" / "a" / f"{k}.mp4", video(0))
    assert run_cli(tmp_path / "src", tmp_path / "out", "folder") == 0
    assert "ingested 3, rejected 0" in capsys.readouterr().out
    assert load_manifest(tmp_path / "out").classes == ["a"]


def test_a_probe_limit_is_checked_before_anything_runs(tmp_path: Path, capsys) -> None:
    write(tmp_path / "src" / "a" / "0.mp4", video(0))
    assert run_cli(tmp_path / "src", tmp_path / "out", "folder", "--max-clip-mb", "4096") == 2
    assert "max_clip_mb must be in 1…2047" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_disk_that_fills_up_stops_ingest_with_one_line_and_leaves_nothing_half_written(
    tmp_path: Path, capsys, small_filesystems
) -> None:
    rng = np.random.default_rng(0)
    source = tmp_path / "src"
    for k in range(12):  # noise does not compress: about 12 × 30 KiB of shards
        write(source / "ab"[k % 2] / f"{k}.mp4", encode_clip(rng.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)))
    disk = small_filesystems.mount(2)
    filler = small_filesystems.fill(disk, leave_bytes=64 * 1024)
    out = disk / "out"

    assert run_cli(source, out, "folder") == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"specdistill ingest: {out}: writing failed (") and "No space left on device" in line
    assert "MiB free there. Ingest stopped and removed the shards and rejects it had written" in line
    assert sorted(p.name for p in out.iterdir()) == []  # no shard, manifest, rejects or temporary file

    filler.unlink()
    assert run_cli(source, out, "folder") == 0
    assert len(read_rows(out)) == 12
