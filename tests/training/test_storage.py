"""Locations: one code path for local paths and storage URIs, tried on disk and on a real S3 endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import storage


def test_files_round_trip_and_directories_list_their_entries(storage_root: str) -> None:
    storage.write_text(storage.join(storage_root, "a", "x.json"), "{}")
    storage.write_bytes(storage.join(storage_root, "a", "y.bin"), b"\0\1")
    assert storage.read_text(storage.join(storage_root, "a", "x.json")) == "{}"
    assert storage.read_bytes(storage.join(storage_root, "a", "y.bin")) == b"\0\1"
    assert storage.children(storage.join(storage_root, "a")) == ["x.json", "y.bin"]
    assert storage.is_dir(storage.join(storage_root, "a")) and storage.is_file(
        storage.join(storage_root, "a", "x.json")
    )
    assert (
        not storage.exists(storage.join(storage_root, "a", "z"))
        and storage.children(storage.join(storage_root, "none")) == []
    )


def test_a_missing_file_is_a_file_not_found_naming_it(storage_root: str) -> None:
    with pytest.raises(FileNotFoundError, match=r"/a/missing\.json not found"):
        storage.read_text(storage.join(storage_root, "a", "missing.json"))


def test_a_directory_uploads_and_comes_back_as_a_local_copy(storage_root: str, tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "f.txt").write_text("hello")
    target = storage.join(storage_root, "copied")
    storage.upload(source, target)
    with storage.local_copy(target) as local:
        assert (local / "sub" / "f.txt").read_text() == "hello"


def test_a_rewritten_local_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    storage.write_text(path, "old")
    storage.write_text(path, "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_locations_join_resolve_and_name_like_paths() -> None:
    assert storage.join("s3://b/runs", "sweep", "t1") == "s3://b/runs/sweep/t1"
    assert storage.join("s3://b/runs?region=eu-west-1", "sweep") == "s3://b/runs/sweep?region=eu-west-1"
    assert storage.join("/tmp/runs", "sweep") == "/tmp/runs/sweep"
    assert storage.resolve("s3://b/data", Path("/configs")) == "s3://b/data"
    assert storage.resolve("../data", Path("/work/configs")) == "/work/data"
    assert storage.name("s3://b/runs/sweep/") == "sweep" and storage.name("/tmp/a/b") == "b"


def test_ray_paths_without_a_scheme_take_the_sweeps() -> None:
    assert storage.with_scheme_of("b/runs/s/train_runs/ck", "s3://b/runs/s") == "s3://b/runs/s/train_runs/ck"
    assert storage.with_scheme_of("/tmp/runs/s/ck", "/tmp/runs/s") == "/tmp/runs/s/ck"
    assert storage.with_scheme_of("file:///tmp/x", "/tmp") == "/tmp/x"


def test_displayed_locations_carry_no_credentials_but_keep_what_a_command_needs() -> None:
    shown = storage.display(
        "s3://AKIAKEY:SECRET@bucket/runs?access_key=AKIAKEY&secret_key=SECRET&session_token=T&region=eu-west-1"
    )
    assert shown == "s3://bucket/runs?region=eu-west-1"
    assert storage.display("gs://bucket/x") == "gs://bucket/x" and storage.display("/tmp/x") == "/tmp/x"
