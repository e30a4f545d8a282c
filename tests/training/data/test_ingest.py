import csv
import io
import json
from functools import cache
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from training.data.codec import decode_clip, encode_clip, probe_clip
from training.data.embedded import render_clip
from training.data.ingest import Reencode, ingest
from training.data.shards import load_manifest

NUM_FRAMES, SIZE = 4, 32
# extension → (PyAV muxer, codec) beside encode_clip's MP4: real files of each kind, as a user's tree holds
MUXERS = {"avi": ("avi", "mpeg4"), "webm": ("webm", "libvpx"), "mkv": ("matroska", "libx264")}


@cache
def frames_of(label: int) -> np.ndarray:
    return render_clip(label % 10, np.random.default_rng(label), num_frames=NUM_FRAMES, size=SIZE)


@cache
def video(label: int, extension: str = "mp4") -> bytes:
    if extension == "mp4":
        return encode_clip(frames_of(label))
    muxer, codec = MUXERS[extension]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=muxer) as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        for frame in frames_of(label):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


BROKEN = {
    "truncated": lambda: video(0)[: len(video(0)) // 2],
    "empty": lambda: b"",
    "text": lambda: b"shot list: take 3 was the good one\n",
    "random bytes": lambda: np.random.default_rng(0).bytes(4096),
}


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_split(out: Path, split: str) -> pa.Table:
    manifest = load_manifest(out)
    return pa.concat_tables(pq.read_table(path) for path in manifest.shard_paths(out, split))


def read_rows(out: Path) -> dict[str, dict]:
    """Every stored clip by id, with its split, checking on the way that its bytes decode to ``num_frames``."""
    rows = {}
    for split in load_manifest(out).splits:
        for row in read_split(out, split).to_pylist():
            assert probe_clip(row["video"]).num_frames == row["num_frames"]
            rows[row["clip_id"]] = {**row, "split": split}
    return rows


def read_rejects(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]


def folder_tree(root: Path, clips_per_class: dict[str, int]) -> Path:
    for label, (name, count) in enumerate(clips_per_class.items()):
        for k in range(count):
            write(root / name / f"{name}_{k:02d}.mp4", video(label))
    return root


def run(source: Path, out: Path, fmt: str, **options):
    return ingest(source, out, fmt, workers=1, progress=False, **options)


def test_video_files_are_reencoded_for_training_by_default(tmp_path):
    source = tmp_path / "src"
    for label, name in enumerate(["jump", "run"]):
        for extension in ["mp4", "avi", "webm"]:
            write(source / name / f"{name}_{extension}.{extension}", video(label, extension))
    summary = run(source, tmp_path / "out", "folder", reencode=Reencode(short_side=16, gop=4))
    assert summary.rejected == 0
    for row in read_rows(tmp_path / "out").values():
        info = probe_clip(row["video"])
        assert row["container"] == "mp4" and row["num_frames"] == info.num_frames == NUM_FRAMES
        assert min(info.height, info.width) == 16
    with pytest.raises(ValueError, match="short_side >= 16"):
        Reencode(short_side=8)


def test_folder_tree_is_ingested_with_every_container_kept_as_is(tmp_path):
    source = tmp_path / "src"
    files = {}
    for label, name in enumerate(["jump", "run", "wave"]):
        for extension in ["mp4", "avi", "webm", "mkv"]:
            files[f"{name}/{name}_{extension}"] = write(
                source / name / f"{name}_{extension}.{extension}", video(label, extension)
            )
    files["wave/nested/loud_MP4"] = write(source / "wave" / "nested" / "loud_MP4.MP4", video(2))

    summary = run(source, tmp_path / "out", "folder", reencode=None)

    rows = read_rows(tmp_path / "out")
    assert load_manifest(tmp_path / "out").classes == ["jump", "run", "wave"]
    assert sorted(rows) == sorted(files)
    for clip_id, path in files.items():
        row = rows[clip_id]
        assert row["label_name"] == clip_id.split("/")[0]
        assert row["label"] == ["jump", "run", "wave"].index(row["label_name"])
        assert row["video"] == path.read_bytes()
        assert row["container"] == path.suffix.lower()[1:]
        assert row["num_frames"] == NUM_FRAMES
        assert row["source"] == path.relative_to(source).as_posix()
    assert summary.rejected == 0 and read_rejects(tmp_path / "out") == []


def per_class(out: Path, split: str) -> dict[str, int]:
    counts = dict.fromkeys(load_manifest(out).classes, 0)
    for row in read_rows(out).values():
        counts[row["label_name"]] += row["split"] == split
    return counts


def test_folder_splits_take_their_fraction_of_every_class(tmp_path):
    source = folder_tree(tmp_path / "src", {"a": 10, "b": 5, "c": 2, "d": 1})

    run(source, tmp_path / "out", "folder", test_fraction=0.2, tune_fraction=0.1)

    assert per_class(tmp_path / "out", "test") == {"a": 2, "b": 1, "c": 1, "d": 0}
    # The selection split comes out of what is left for training: 8, 4, 1 and 1 clips.
    assert per_class(tmp_path / "out", "tune") == {"a": 1, "b": 1, "c": 0, "d": 0}
    assert per_class(tmp_path / "out", "train") == {"a": 7, "b": 3, "c": 1, "d": 1}


def test_folder_splits_of_a_class_do_not_depend_on_the_other_classes(tmp_path):
    run(folder_tree(tmp_path / "two", {"a": 10, "b": 10}), tmp_path / "out_two", "folder")
    run(folder_tree(tmp_path / "three", {"a": 10, "aa": 7, "b": 10}), tmp_path / "out_three", "folder")

    def held_out(out: Path) -> set[tuple[str, str]]:
        rows = read_rows(out).items()
        return {(k, row["split"]) for k, row in rows if row["split"] != "train" and row["label_name"] != "aa"}

    assert held_out(tmp_path / "out_two") == held_out(tmp_path / "out_three")


def test_folder_splits_are_drawn_among_the_clips_that_pass_so_broken_files_take_no_held_out_slot(tmp_path):
    source = folder_tree(tmp_path / "src", {"a": 5})
    for kind, make in BROKEN.items():
        write(source / "a" / f"{kind}.mp4", make())

    run(source, tmp_path / "out", "folder", test_fraction=0.2)

    assert per_class(tmp_path / "out", "test") == {"a": 1} and per_class(tmp_path / "out", "tune") == {"a": 1}
    assert load_manifest(tmp_path / "out").splits["train"].clips == 3


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_video_is_rejected_while_every_good_clip_is_ingested(tmp_path, kind):
    source = folder_tree(tmp_path / "src", {"a": 3, "b": 3})
    write(source / "a" / "broken.mp4", BROKEN[kind]())

    summary = run(source, tmp_path / "out", "folder")

    assert sorted(read_rows(tmp_path / "out")) == [f"{c}/{c}_{k:02d}" for c in "ab" for k in range(3)]
    [reject] = read_rejects(tmp_path / "out")
    assert reject["path"] == "a/broken.mp4" and reject["clip_id"] == "a/broken" and reject["reason"]
    assert (summary.ingested, summary.rejected) == (6, 1)


def test_files_that_are_not_videos_by_extension_are_listed_in_rejects(tmp_path):
    source = folder_tree(tmp_path / "src", {"a": 2})
    write(source / "a" / "notes.txt", b"hello")
    write(source / "README.md", b"# clips")
    write(source / "a" / ".DS_Store", b"\0")

    run(source, tmp_path / "out", "folder")

    rejects = {r["path"]: r["reason"] for r in read_rejects(tmp_path / "out")}
    assert set(rejects) == {"a/notes.txt", "README.md"}
    assert "unsupported extension '.txt'" in rejects["a/notes.txt"]
    assert "not inside a class folder" in rejects["README.md"]


def test_summary_counts_clips_per_split_and_points_at_the_rejects(tmp_path):
    source = folder_tree(tmp_path / "src", {"a": 5, "b": 5})
    write(source / "b" / "notes.txt", b"")

    summary = run(source, tmp_path / "out", "folder")

    assert summary.per_split == {"test": 2, "train": 6, "tune": 2}
    assert summary.ingested == 10 and summary.rejected == 1
    assert summary.message == f"ingested 10, rejected 1: see {tmp_path / 'out' / 'rejects.jsonl'}"


def test_parallel_ingest_writes_the_same_shards_as_a_single_process(tmp_path):
    source = folder_tree(tmp_path / "src", {"a": 6, "b": 6, "c": 6})
    write(source / "c" / "bad.mp4", b"not a video")

    one = run(source, tmp_path / "one", "folder")
    two = ingest(source, tmp_path / "two", "folder", workers=2, progress=False)

    assert (one.ingested, one.rejected, one.per_split) == (two.ingested, two.rejected, two.per_split)
    for split in ["train", "tune", "test"]:
        assert read_split(tmp_path / "one", split).equals(read_split(tmp_path / "two", split))
    assert read_rejects(tmp_path / "one") == read_rejects(tmp_path / "two")


def test_folder_shards_are_not_sorted_by_class(tmp_path):
    source = tmp_path / "src"
    for name in "abcd":
        for index in range(5):
            write(source / name / f"{index}.mp4", video(index))
    run(source, tmp_path / "out", "folder")
    labels = read_split(tmp_path / "out", "train").column("label").to_pylist()
    assert sorted(labels) != labels


def test_ingest_with_no_valid_clip_raises_after_writing_the_rejects(tmp_path):
    source = tmp_path / "src"
    write(source / "a" / "x.mp4", b"")
    write(source / "a" / "y.mp4", b"garbage")

    with pytest.raises(ValueError, match=r"no valid clip.*rejects\.jsonl"):
        run(source, tmp_path / "out", "folder")

    assert sorted(r["path"] for r in read_rejects(tmp_path / "out")) == ["a/x.mp4", "a/y.mp4"]
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_missing_source_directory_raises_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        run(tmp_path / "nowhere", tmp_path / "out", "folder")


def test_unknown_format_raises_listing_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="folder, kinetics, ssv2, jester"):
        run(tmp_path, tmp_path / "out", "ucf")


def write_kinetics_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
        writer.writerows(rows)


def test_every_source_gets_a_selection_split_out_of_its_training_clips(tmp_path):
    source = tmp_path / "src"
    rows = []
    for k in range(10):
        clip_id = f"train{k}_000000_000010"
        rows.append(["abseiling", f"train{k}", "0", "10", "train"])
        write(source / "clips" / f"{clip_id}.mp4", video(0))
    rows.append(["abseiling", "checked", "0", "10", "validate"])
    write(source / "clips" / "checked_000000_000010.mp4", video(0))
    write_kinetics_csv(source / "kinetics.csv", rows)

    summary = run(source, tmp_path / "out", "kinetics", tune_fraction=0.2)

    assert summary.per_split == {"test": 1, "train": 8, "tune": 2}
    assert read_rows(tmp_path / "out")["checked_000000_000010"]["split"] == "test"


def test_kinetics_csv_layout_is_ingested_with_its_splits(tmp_path):
    source = tmp_path / "src"
    labels = ["abseiling", "petting animal (not cat)", "rock, paper, scissors"]
    expected = {}
    for split, csv_split, directory in [
        ("train", "train", "train"),
        ("test", "validate", "val"),
        ("holdout", "test", "videos"),
    ]:
        rows = []
        for label_index, label in enumerate(labels):
            youtube_id = f"-{split}{label_index}_x"
            rows.append([label, youtube_id, "7", "17", csv_split])
            clip_id = f"{youtube_id}_000007_000017"
            nested = f"{directory}/{label}" if directory != "videos" else directory
            write(source / nested / f"{clip_id}.mp4", video(label_index))
            expected[clip_id] = (split, label)
        write_kinetics_csv(source / f"{csv_split}.csv", rows)

    summary = run(source, tmp_path / "out", "kinetics")

    rows = read_rows(tmp_path / "out")
    assert load_manifest(tmp_path / "out").classes == sorted(labels)
    assert {clip_id: (row["split"], row["label_name"]) for clip_id, row in rows.items()} == expected
    assert all(row["num_frames"] == NUM_FRAMES for row in rows.values())
    # One training clip per class: none to spare for the selection split.
    assert summary.per_split == {"holdout": 3, "test": 3, "train": 3} and summary.rejected == 0


def test_kinetics_annotation_problems_are_rejected_and_the_rest_ingested(tmp_path):
    source = tmp_path / "src"
    for youtube_id in ["good1", "good2"]:
        write(source / "clips" / f"{youtube_id}_000000_000010.mp4", video(0))
    write(source / "clips" / "newclass_000000_000010.mp4", video(1))
    write_kinetics_csv(
        source / "kinetics.csv",
        [
            ["abseiling", "good1", "0", "10", "train"],
            ["abseiling", "good2", "0", "10", "validate"],
            ["abseiling", "gone", "0", "10", "train"],
            ["juggling", "newclass", "0", "10", "validate"],
            ["abseiling", "badtime", "zero", "10", "train"],
            ["abseiling", "short"],
            ["abseiling", "good1", "0", "10", "test"],
            ["abseiling", "oddsplit", "0", "10", "holdout"],
        ],
    )

    summary = run(source, tmp_path / "out", "kinetics")

    assert {clip_id: row["split"] for clip_id, row in read_rows(tmp_path / "out").items()} == {
        "good1_000000_000010": "train",
        "good2_000000_000010": "test",
    }
    reasons = {r["path"]: r["reason"] for r in read_rejects(tmp_path / "out")}
    assert "missing file" in reasons["kinetics.csv:4"] and "gone_000000_000010" in reasons["kinetics.csv:4"]
    assert "unknown label 'juggling'" in reasons["kinetics.csv:5"]
    assert "whole seconds" in reasons["kinetics.csv:6"]
    assert "expected 5 fields" in reasons["kinetics.csv:7"]
    assert "already annotated at kinetics.csv:2" in reasons["kinetics.csv:8"]
    assert "unknown split 'holdout'" in reasons["kinetics.csv:9"]
    assert summary.rejected == 6


def test_kinetics_without_an_annotation_csv_raises_naming_the_source(tmp_path):
    write(tmp_path / "a_000000_000010.mp4", video(0))
    with pytest.raises(FileNotFoundError, match="no Kinetics annotation CSV"):
        run(tmp_path, tmp_path / "out", "kinetics")


SSV2_CLASSES = ["Pushing something from left to right", "Holding something next to something"]


def write_ssv2(source: Path, train: list[dict], validation: list[dict]) -> None:
    write(source / "labels.json", json.dumps({name: str(i) for i, name in enumerate(SSV2_CLASSES)}).encode())
    write(source / "train.json", json.dumps(train).encode())
    write(source / "validation.json", json.dumps(validation).encode())


def ssv2_entry(clip_id: str, template: str) -> dict:
    return {
        "id": clip_id,
        "label": template.replace("[something]", "a cup"),
        "template": template,
        "placeholders": ["a cup"],
    }


def test_ssv2_layout_is_ingested_with_classes_from_the_templates(tmp_path):
    source = tmp_path / "src"
    push, hold = "Pushing [something] from left to right", "Holding [something] next to [something]"
    write_ssv2(source, [ssv2_entry("101", push), ssv2_entry("102", hold)], [ssv2_entry("201", hold)])
    for clip_id, label in [("101", 0), ("102", 1), ("201", 1)]:
        write(source / "20bn-something-something-v2" / f"{clip_id}.webm", video(label, "webm"))

    summary = run(source, tmp_path / "out", "ssv2")

    rows = read_rows(tmp_path / "out")
    assert load_manifest(tmp_path / "out").classes == SSV2_CLASSES
    assert {k: (r["split"], r["label"], r["label_name"], r["container"]) for k, r in rows.items()} == {
        "101": ("train", 0, SSV2_CLASSES[0], "mp4"),  # re-encoded for training (the default)
        "102": ("train", 1, SSV2_CLASSES[1], "mp4"),
        "201": ("test", 1, SSV2_CLASSES[1], "mp4"),
    }
    assert summary.rejected == 0


def test_ssv2_unknown_template_missing_video_and_malformed_entry_are_rejected(tmp_path):
    source = tmp_path / "src"
    train = [
        ssv2_entry("1", "Pushing [something] from left to right"),
        ssv2_entry("2", "Juggling [something]"),
        ssv2_entry("3", "Pushing [something] from left to right"),
        {"label": "no id"},
    ]
    write_ssv2(source, train, [])
    write(source / "1.webm", video(0, "webm"))
    write(source / "2.webm", video(0, "webm"))

    run(source, tmp_path / "out", "ssv2")

    assert list(read_rows(tmp_path / "out")) == ["1"]
    reasons = {r["path"]: r["reason"] for r in read_rejects(tmp_path / "out")}
    assert set(reasons) == {"train.json[1]", "train.json[2]", "train.json[3]"}
    assert "unknown label 'Juggling something': not in labels.json" in reasons["train.json[1]"]
    assert "missing file" in reasons["train.json[2]"]
    assert "'id'" in reasons["train.json[3]"]


def test_ssv2_missing_annotation_file_raises_naming_it(tmp_path):
    write_ssv2(tmp_path, [], [])
    (tmp_path / "validation.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"validation\.json"):
        run(tmp_path, tmp_path / "out", "ssv2")


def test_ssv2_unparseable_json_raises_naming_file_and_line(tmp_path):
    write_ssv2(tmp_path, [], [])
    (tmp_path / "train.json").write_text('[\n{"id": "1",\n')
    with pytest.raises(ValueError, match=r"train.json:\d+: not valid JSON"):
        run(tmp_path, tmp_path / "out", "ssv2")


def write_frames(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(folder / f"{index:05d}.jpg", quality=95)


def test_jester_frame_folders_are_encoded_into_one_clip_each(tmp_path):
    source = tmp_path / "src"
    write(source / "labels.csv", b"Swiping Left\nSwiping Right\nNo gesture\n")
    write(source / "train.csv", b"10;Swiping Right\n11;Swiping Left\n")
    write(source / "validation.csv", b"20;Swiping Right\n")
    write_frames(source / "20bn-jester-v1" / "10", frames_of(1))
    write_frames(source / "20bn-jester-v1" / "11", frames_of(0))
    write_frames(source / "20", frames_of(1))

    summary = run(source, tmp_path / "out", "jester")

    rows = read_rows(tmp_path / "out")
    assert load_manifest(tmp_path / "out").classes == ["Swiping Left", "Swiping Right", "No gesture"]
    assert {k: (r["split"], r["label"], r["source"], r["container"]) for k, r in rows.items()} == {
        "10": ("train", 1, "20bn-jester-v1/10", "mp4"),
        "11": ("train", 0, "20bn-jester-v1/11", "mp4"),
        "20": ("test", 1, "20", "mp4"),
    }
    decoded = decode_clip(rows["11"]["video"], range(NUM_FRAMES))
    assert np.abs(decoded.astype(int) - frames_of(0)).mean() < 12  # JPEG then H.264: close, not exact
    assert summary.per_split == {"test": 1, "train": 2}


def test_jester_broken_frames_missing_folders_and_bad_lines_are_rejected(tmp_path):
    source = tmp_path / "src"
    write(source / "labels.csv", b"Swiping Left\nSwiping Right\n")
    write(source / "train.csv", b"1;Swiping Left\n2;Swiping Left\n3;Swiping Left\n4;Swiping Left\n5;Waving\n6\n")
    write(source / "validation.csv", b"")
    write_frames(source / "1", frames_of(0))
    write_frames(source / "2", frames_of(0))
    (source / "2" / "00003.jpg").write_text("not a jpeg")
    (source / "3").mkdir()

    run(source, tmp_path / "out", "jester")

    assert list(read_rows(tmp_path / "out")) == ["1"]
    reasons = {r["path"]: r["reason"] for r in read_rejects(tmp_path / "out")}
    assert "frame 00003.jpg" in reasons["2"]
    assert "no .jpg frames" in reasons["3"]
    assert "missing file" in reasons["train.csv:4"]
    assert "unknown label 'Waving': not in labels.csv" in reasons["train.csv:5"]
    assert "expected 'id;label'" in reasons["train.csv:6"]


def test_jester_missing_annotation_file_raises_naming_it(tmp_path):
    write(tmp_path / "validation.csv", b"1;Swiping Left\n")
    with pytest.raises(FileNotFoundError, match=r"train\.csv"):
        run(tmp_path, tmp_path / "out", "jester")
