"""``specdistill ingest``: an existing video dataset on disk → Parquet shards plus ``rejects.jsonl``.

``training.data.layouts`` turns the source layout into candidate clips; here every candidate is
probed (or, for Jester, its frames decoded and encoded) in a process pool, and the good ones are
written as shards. A file that cannot be read, is empty, truncated or not a video becomes one line
of ``rejects.jsonl`` with the reason, and never costs any other clip its place.

The splits a source does not bring — a folder tree's test split, every source's selection split
(``training.data.splits``) — are drawn after probing, among the clips that passed, so a broken
file cannot take a class's only held-out slot. That needs every probe result first; they are
small because workers never ship a video file's bytes back: the writer reads the file itself,
which costs no more than unpickling it from a worker would.

Candidates are processed in an order fixed by ``seed`` and each ``clip_id`` (a hash, not the
listing order) and results consumed in that order, so the shards are the same whatever the number
of workers, and they are not sorted by class: streaming readers then get mixed batches from a small
shuffle buffer. At most ``4 × workers`` clips are in flight, each at most ``max_clip_mb``, so
memory is bounded by a few clips per worker, not by the dataset.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from training import storage
from training.data.codec import DecodeError, encode_clip, probe_clip, reencode_clip
from training.data.layouts import Candidate, Reject, read_layout
from training.data.probe_pool import ProbeFailed, ProbeLimits, ProbePool
from training.data.shards import DEFAULT_SHARD_BYTES, MANIFEST_NAME, ClipRecord, DatasetWriter
from training.data.splits import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_TUNE_FRACTION,
    TEST,
    TRAIN,
    TUNE,
    carve,
    check_fraction,
)

REJECTS_NAME = "rejects.jsonl"


@dataclass(frozen=True)
class IngestSummary:
    """What one ingest run did; ``per_split`` counts the clips written to each split."""

    ingested: int
    rejected: int
    per_split: dict[str, int]
    rejects_path: str

    @property
    def message(self) -> str:
        return f"ingested {self.ingested}, rejected {self.rejected}: see {storage.display(self.rejects_path)}"


@dataclass(frozen=True)
class Checked:
    """A candidate that decoded: its frame count, container name, and where the clip ingest encoded
    lies (frame folders and re-encoded videos: a file in the run's spill folder, so that the clips
    waiting for their split hold no video in memory); ``encoded`` is ``None`` for a video file
    stored as it is."""

    num_frames: int
    container: str
    encoded: Path | None = None


@dataclass(frozen=True)
class Reencode:
    """How ingest re-encodes video files for training (``codec.reencode_clip``): scaled down to a
    short side of ``short_side`` with a keyframe every ``gop`` frames. Decoding 8 frames of 224²
    from such a clip costs a fraction of decoding them from a 10 s source with long GOPs (2.2–4.3×
    the clips per CPU core, bench/RESULTS.md "Decoding Kinetics-shaped videos"), for about the
    source's bytes on disk; ingest pays one decode and encode per video, once."""

    short_side: int = 256
    gop: int = 8

    def __post_init__(self) -> None:
        if self.short_side < 16 or self.gop < 1:
            raise ValueError(f"re-encoding needs short_side >= 16 and gop >= 1, got {self}")


def ingest(
    source: Path,
    out: str | Path,
    fmt: str,
    *,
    workers: int = os.cpu_count() or 1,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    tune_fraction: float = DEFAULT_TUNE_FRACTION,
    seed: int = 0,
    progress: bool = True,
    limits: ProbeLimits = ProbeLimits(),
    reencode: Reencode | None = Reencode(),
) -> IngestSummary:
    """Ingest the dataset at ``source`` in layout ``fmt`` (see ``training.data.layouts``) into ``out``
    (a local directory or a storage URI).

    ``test_fraction`` draws a ``folder`` tree's test split (the other layouts bring their own:
    their validation split), ``tune_fraction`` every source's selection split out of its training
    clips, both stratified by class and seeded by ``seed`` (``assign_splits``). Every file is
    decoded in a worker process under ``limits`` (``training.data.probe_pool``), even with
    ``workers=1``, so a file that crashes or exhausts its worker costs one reject line; a video
    file over ``limits.max_clip_mb`` is rejected before it is read, an encoded frame folder once
    encoded. Video files are re-encoded as ``reencode`` says (``None`` stores them as they are);
    frame folders are encoded once either way. Encoded clips wait for their split in a temporary
    folder, not in memory.
    Raises ``ValueError`` when no clip survives, after ``rejects.jsonl`` is written, so the user
    can see why.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    check_fraction("test_fraction", test_fraction)
    check_fraction("tune_fraction", tune_fraction)
    source, out = Path(source), str(out)
    layout = read_layout(source, fmt)
    rejects_path = storage.join(out, REJECTS_NAME)
    if not layout.candidates:
        # No class to give DatasetWriter, but the user still needs the rejects to see what went wrong.
        if storage.exists(storage.join(out, MANIFEST_NAME)):
            raise FileExistsError(
                f"{storage.display(storage.join(out, MANIFEST_NAME))} exists: refusing to overwrite a dataset"
            )
        storage.write_text(rejects_path, "".join(map(_jsonl, layout.rejects)))
        raise _nothing_valid(source, fmt, len(layout.rejects), rejects_path)
    candidates = sorted(layout.candidates, key=lambda c: (zlib.crc32(f"{seed}:{c.clip_id}".encode()), c.clip_id))
    per_split: dict[str, int] = {}
    rejected = len(layout.rejects)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="specdistill-ingest-") as spill,
            DatasetWriter(out, layout.classes, source=f"{fmt}:{source.resolve()}", shard_bytes=shard_bytes) as writer,
            storage.open_output(rejects_path) as rejects,
        ):
            rejects.write("".join(map(_jsonl, layout.rejects)).encode())
            checked: Iterable[tuple[Candidate, Checked | Reject]] = tqdm(
                zip(candidates, _check_all(candidates, workers, limits, Path(spill), reencode), strict=True),
                total=len(candidates),
                desc="ingest",
                unit="clip",
                disable=None if progress else True,  # None: only on a terminal
            )
            checked = assign_splits(list(checked), test_fraction=test_fraction, tune_fraction=tune_fraction, seed=seed)
            for candidate, outcome in checked:
                result = outcome if isinstance(outcome, Reject) else _record(candidate, outcome)
                if isinstance(result, Reject):
                    rejects.write(_jsonl(result).encode())
                    rejected += 1
                else:
                    assert candidate.split is not None  # assign_splits gave every passing clip one
                    writer.write(candidate.split, result)
                    per_split[candidate.split] = per_split.get(candidate.split, 0) + 1
            if not per_split:
                raise _nothing_valid(source, fmt, rejected, rejects_path)
    except FileExistsError:  # a dataset is already there: refused before anything was written
        raise
    except OSError as error:  # reading a source file is a reject inside the loop: this is a write failing
        storage.remove(rejects_path)
        raise _write_failed(out, error) from error
    return IngestSummary(sum(per_split.values()), rejected, dict(sorted(per_split.items())), rejects_path)


def assign_splits(
    checked: list[tuple[Candidate, Checked | Reject]], *, test_fraction: float, tune_fraction: float, seed: int
) -> list[tuple[Candidate, Checked | Reject]]:
    """Every clip that passed gets its split: a folder tree's clips first a stratified ``test``
    split (``test_fraction`` of each class), then every source's training clips their ``tune``
    split (``tune_fraction`` of each class's). Drawn among the clips that passed, so a broken
    file never takes a class's only held-out slot."""
    passed = {c.clip_id: c for c, outcome in checked if isinstance(outcome, Checked)}
    unsplit = "unsplit"
    drawn = carve(
        ((i, c.label_name, c.split or unsplit) for i, c in passed.items()),
        source=unsplit,
        target=TEST,
        fraction=test_fraction,
        seed=seed,
    )
    drawn = carve(
        ((i, passed[i].label_name, TRAIN if split == unsplit else split) for i, split in drawn.items()),
        source=TRAIN,
        target=TUNE,
        fraction=tune_fraction,
        seed=seed,
    )
    return [(replace(c, split=drawn[c.clip_id]) if c.clip_id in drawn else c, o) for c, o in checked]


def _record(candidate: Candidate, checked: Checked) -> ClipRecord | Reject:
    try:
        video = (checked.encoded or candidate.path).read_bytes()
        if checked.encoded is not None:
            checked.encoded.unlink()
    except OSError as error:  # gone or unreadable since it was probed
        return Reject(candidate.source, candidate.clip_id, str(error))
    return ClipRecord(
        clip_id=candidate.clip_id,
        label=candidate.label,
        label_name=candidate.label_name,
        video=video,
        container=checked.container,
        num_frames=checked.num_frames,
        source=candidate.source,
    )


def _jsonl(entry: Reject) -> str:
    return json.dumps(asdict(entry)) + "\n"


def _write_failed(out: str, error: OSError) -> OSError:
    free = storage.free_bytes(out)
    room = "" if free is None else f"; {free / 2**20:.1f} MiB free there"
    return OSError(
        error.errno,
        f"{storage.display(out)}: writing failed ({error}){room}. Ingest stopped and removed the shards and "
        "rejects it had written: free some space (or choose another OUT) and run it again",
    )


def _nothing_valid(source: Path, fmt: str, rejected: int, rejects_path: str) -> ValueError:
    where = storage.display(rejects_path)
    return ValueError(f"{source}: no valid clip to ingest as {fmt!r} ({rejected} rejected): see {where}")


def _check_all(
    candidates: Sequence[Candidate], workers: int, limits: ProbeLimits, spill: Path, reencode: Reencode | None
) -> Iterator[Checked | Reject]:
    """``check_clip`` over ``candidates`` in limited worker processes (``ProbePool``), in input order."""
    check = functools.partial(check_clip, spill=spill, max_clip_mb=limits.max_clip_mb, reencode=reencode)
    pool = ProbePool(check, min(workers, len(candidates)), limits)
    for candidate, outcome in zip(candidates, pool.map(candidates), strict=True):
        yield Reject(candidate.source, candidate.clip_id, str(outcome)) if isinstance(outcome, ProbeFailed) else outcome


def check_clip(
    candidate: Candidate,
    spill: Path,
    max_clip_mb: int = ProbeLimits.max_clip_mb,
    reencode: Reencode | None = None,
) -> Checked | Reject:
    """Decode one candidate fully: a video file is probed (``container`` is its extension) or, with
    ``reencode``, re-encoded into a file in ``spill``; a frame folder is read and encoded to H.264
    MP4 into ``spill``. Anything unreadable, or a clip over ``max_clip_mb`` (a video file before it
    is read, an encoded one once encoded), becomes a ``Reject`` with the reason."""
    try:
        if candidate.frames:
            frames = read_frames(candidate.path)
            return _spilled(candidate, encode_clip(frames), len(frames), spill, max_clip_mb)
        _check_size(candidate.path.stat().st_size, max_clip_mb, "")
        if reencode is not None:
            encoded, count = reencode_clip(
                candidate.path.read_bytes(), short_side=reencode.short_side, gop=reencode.gop
            )
            return _spilled(candidate, encoded, count, spill, max_clip_mb)
        info = probe_clip(candidate.path.read_bytes())
    except (OSError, ValueError) as error:  # DecodeError is a ValueError; PIL and file errors are OSErrors
        return Reject(candidate.source, candidate.clip_id, str(error))
    return Checked(num_frames=info.num_frames, container=candidate.path.suffix.lower().lstrip("."))


def _spilled(candidate: Candidate, encoded: bytes, num_frames: int, spill: Path, max_clip_mb: int) -> Checked:
    """A clip ingest encoded, written to the spill folder to wait for its split."""
    _check_size(len(encoded), max_clip_mb, "encoded")
    path = spill / f"{hashlib.sha256(candidate.clip_id.encode()).hexdigest()}.mp4"  # ids are unique
    path.write_bytes(encoded)
    return Checked(num_frames=num_frames, container="mp4", encoded=path)


def _check_size(size: int, max_clip_mb: int, what: str) -> None:
    if size > max_clip_mb * 2**20:
        raise DecodeError(
            f"{what + ' ' if what else ''}clip is {size / 2**20:.0f} MB, over --max-clip-mb {max_clip_mb}"
        )


def read_frames(folder: Path) -> np.ndarray:
    """A folder of ``00001.jpg, 00002.jpg, …`` → ``T×H×W×3`` uint8 RGB, in file-name order.

    Jester is recorded at 12 fps, ``encode_clip``'s default, so the encoded clip keeps its timing.
    """
    paths = sorted(folder.glob("*.jpg"))
    if not paths:
        raise DecodeError(f"no .jpg frames in {folder.name}/")
    frames: list[np.ndarray] = []
    for path in paths:
        try:
            with Image.open(path) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except (OSError, Image.DecompressionBombError) as error:  # a bomb's error is not an OSError
            raise DecodeError(f"frame {path.name}: {error}") from error
        if frames[-1].shape != frames[0].shape:
            raise DecodeError(f"frame {path.name} is {frames[-1].shape[:2]}, {paths[0].name} is {frames[0].shape[:2]}")
    return np.stack(frames)
