"""Reading the four source layouts `specdistill ingest` accepts into a list of candidate clips.

Nothing here opens a video: a layout only says which clips should exist, their class and split,
and where their data lies. Problems found in the annotations themselves (a malformed line, a label
the layout does not define, a file that is not there, a clip annotated twice) become ``Reject``\\ s,
so one bad line never stops the rest; only a missing source or annotation file raises.

Every layout follows symbolic links to folders (once per real folder), keeps a file name that is
not valid UTF-8 with its odd bytes written ``\\xNN``, and, where videos are found by name, takes
the first of two files sharing a name (in sorted order) and rejects the other, naming the first.

A source's official validation split becomes the ``test`` split (what is reported, never decided
on); ingest carves the selection split ``tune`` out of the training clips (``training.data.splits``).

Where files live (``SRC`` is the source directory):

- ``folder``: ``SRC/<class>/<file>.{mp4,avi,webm,mkv}`` (any case, any depth below the class
  folder). Classes are the sorted names of class folders holding at least one such file. Files
  with another extension, and files directly in ``SRC``, are rejected so the user sees them;
  hidden files and folders (``.DS_Store``, ``.git``) are skipped. The tree has no splits: its
  candidates carry ``split=None`` and ingest draws a stratified ``test`` split among the clips
  that probe fine. Clip id ``<class>/<path below it, without extension>``.
- ``kinetics``: every ``SRC/*.csv`` with header ``label,youtube_id,time_start,time_end,split``
  (extra columns ignored), e.g. ``train.csv``, ``validate.csv``, ``test.csv``. Split values
  ``train``, ``validate``/``val``, ``test`` map to ``train``, ``test``, ``holdout``. Videos are found by
  name anywhere below ``SRC`` (``SRC/train/<label>/…``, ``SRC/videos/…``): clip id and file stem are
  ``<youtube_id>_<start:06d>_<end:06d>``. Classes are the sorted labels of the ``train`` rows (all
  rows when there are none), so a val/test label the model could never learn is rejected.
- ``ssv2``: ``SRC/labels.json`` (class name → index), ``SRC/train.json`` and
  ``SRC/validation.json`` (lists of ``{id, label, template, placeholders}``), videos ``<id>.webm``
  found by name anywhere below ``SRC``. An entry's class is its ``template`` without brackets
  (``"Pushing [something] from left to right"`` → ``"Pushing something from left to right"``),
  because ``label`` holds the filled-in objects. Class indices are those of ``labels.json``.
- ``jester``: ``SRC/train.csv`` and ``SRC/validation.csv`` (or the distribution's
  ``jester-v1-train.csv``/``jester-v1-validation.csv``), lines ``id;label`` without header; frames
  ``<id>/00001.jpg…`` in ``SRC/`` or ``SRC/20bn-jester-v1/``. Classes come from ``labels.csv`` (or
  ``jester-v1-labels.csv``), one per line, in file order so indices match the published ones;
  without it, the sorted labels of the annotations.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from training.data.splits import TEST, TRAIN

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".webm", ".mkv"})
KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
# Kinetics' validation rows are our test split; its own test rows go to `holdout`, which nothing
# reads unless asked (`evaluate --split holdout`).
KINETICS_SPLITS = {"train": TRAIN, "validate": TEST, "val": TEST, "test": "holdout"}
JESTER_FRAME_ROOTS = (".", "20bn-jester-v1")
NOT_A_FILE = "not a regular file (a FIFO, socket, device or dangling link)"


@dataclass(frozen=True)
class Candidate:
    """A clip the layout promises; ``path`` is a video file, or with ``frames`` a folder of JPEG frames.

    ``source`` is ``path`` relative to ``SRC``, as stored in the shard's ``source`` column. ``split``
    is ``None`` when the layout has none of its own (a folder tree).
    """

    clip_id: str
    label: int
    label_name: str
    split: str | None
    path: Path
    source: str
    frames: bool = False


@dataclass(frozen=True)
class Reject:
    """One line of ``rejects.jsonl``: a file relative to ``SRC`` (or ``train.csv:12``, ``train.json[3]``) and why."""

    path: str
    clip_id: str | None
    reason: str


@dataclass
class Layout:
    """A parsed source: class names in label order, the clips to check, and the annotation rejects."""

    classes: list[str]
    candidates: list[Candidate]
    rejects: list[Reject]


@dataclass(frozen=True)
class _Annotation:
    where: str  # "train.csv:12" or "train.json[3]": what a reject should point the user at
    clip_id: str
    label_name: str
    split: str


LayoutReader = Callable[[Path], Layout]
# Format name → reader, filled by ``@layout`` beside each reader: the one list of formats, from
# which the CLI's choices and ``read_layout``'s dispatch both come.
LAYOUTS: dict[str, LayoutReader] = {}


def layout(name: str) -> Callable[[LayoutReader], LayoutReader]:
    """Register a reader as ingest format ``name``."""

    def register(reader: LayoutReader) -> LayoutReader:
        if name in LAYOUTS:
            raise ValueError(f"ingest format {name!r} is registered twice")
        LAYOUTS[name] = reader
        return reader

    return register


def formats() -> list[str]:
    """The ingest formats, in registration order."""
    return list(LAYOUTS)


def read_layout(source: Path, fmt: str) -> Layout:
    """Parse ``source`` as layout ``fmt``; raises when ``source`` or an annotation file is missing."""
    if fmt not in LAYOUTS:
        raise ValueError(f"unknown ingest format {fmt!r}; expected one of {', '.join(LAYOUTS)}")
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: source directory not found")
    return _printable_layout(LAYOUTS[fmt](source))


def printable(text: str) -> str:
    """A name as valid UTF-8: bytes of a file name that are not (Python holds them as lone
    surrogates) become ``\\xNN``. Shards, ``dataset.json`` and ``rejects.jsonl`` need valid
    UTF-8, and a name that is not is no reason to lose its clip."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _printable_layout(parsed: Layout) -> Layout:
    """Every name in ``parsed`` as :func:`printable`; a clip whose printable id another clip
    already has (a literal ``\\xff`` in one name, the byte in another) is rejected."""
    candidates, rejects, taken = [], [], {}
    for c in parsed.candidates:
        c = replace(c, clip_id=printable(c.clip_id), label_name=printable(c.label_name), source=printable(c.source))
        if c.clip_id in taken:
            rejects.append(Reject(c.source, c.clip_id, f"clip id {c.clip_id!r} already used by {taken[c.clip_id]}"))
            continue
        taken[c.clip_id] = c.source
        candidates.append(c)
    rejects += [
        Reject(printable(r.path), None if r.clip_id is None else printable(r.clip_id), r.reason) for r in parsed.rejects
    ]
    return Layout([printable(name) for name in parsed.classes], candidates, rejects)


def walk_files(root: Path) -> list[Path]:
    """Every entry below ``root`` that is not a folder, sorted, following symbolic links to folders
    (datasets are often assembled from links to other disks) and entering each real folder once, so
    a link that points back up the tree cannot loop. Not only regular files: a FIFO, a socket or a
    dangling link is listed too, for the caller to reject (opening a FIFO would block for ever)."""
    found: list[Path] = []
    seen: set[str] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders.sort()
        found += [Path(folder) / name for name in files]
    return sorted(found)


@layout("folder")
def read_folder(source: Path) -> Layout:
    """``SRC/<class>/<file>`` → candidates without a split (``split=None``)."""
    rejects: list[Reject] = []
    videos: dict[str, list[Path]] = {}
    first_path: dict[str, str] = {}  # real path → the first path below SRC that reached it
    for entry in sorted(source.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            rejects.append(Reject(entry.name, None, "not inside a class folder"))
            continue
        for path in walk_files(entry):
            relative = path.relative_to(source)
            if any(part.startswith(".") for part in relative.parts):
                continue
            if not path.is_file():
                rejects.append(Reject(relative.as_posix(), None, NOT_A_FILE))
                continue
            real = os.path.realpath(path)
            if real in first_path:  # a link reaches a file again, maybe from another class's folder
                reason = f"the same file as {first_path[real]} (reached again through a link)"
                rejects.append(Reject(relative.as_posix(), None, reason))
                continue
            first_path[real] = relative.as_posix()
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                videos.setdefault(entry.name, []).append(path)
            else:
                expected = ", ".join(sorted(VIDEO_EXTENSIONS))
                reason = f"unsupported extension {path.suffix!r} (expected one of {expected})"
                rejects.append(Reject(relative.as_posix(), None, reason))
    classes = sorted(videos)
    candidates: list[Candidate] = []
    taken: dict[str, str] = {}
    for label, name in enumerate(classes):
        for path in videos[name]:
            relative = path.relative_to(source).as_posix()
            clip_id = path.relative_to(source).with_suffix("").as_posix()
            if clip_id in taken:  # clip.mp4 beside clip.avi: ids must stay unique within the dataset
                rejects.append(Reject(relative, clip_id, f"clip id {clip_id!r} already used by {taken[clip_id]}"))
                continue
            taken[clip_id] = relative
            candidates.append(Candidate(clip_id, label, name, None, path, relative))
    return Layout(classes, candidates, rejects)


@layout("kinetics")
def read_kinetics(source: Path) -> Layout:
    """Kinetics CSVs in ``SRC`` → candidates for the videos found by name below ``SRC``."""
    tables = sorted(source.glob("*.csv"))
    if not tables:
        raise FileNotFoundError(f"{source}: no Kinetics annotation CSV (*.csv with {','.join(KINETICS_COLUMNS)})")
    annotations: list[_Annotation] = []
    rejects: list[Reject] = []
    for table in tables:
        with table.open(newline="") as stream:
            reader = csv.DictReader(stream)
            missing = [c for c in KINETICS_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{table}: header lacks {missing}; expected columns {','.join(KINETICS_COLUMNS)}")
            for row in reader:
                where = f"{table.name}:{reader.line_num}"
                annotation = _kinetics_annotation(row, where)
                if isinstance(annotation, Reject):
                    rejects.append(annotation)
                else:
                    annotations.append(annotation)
    train_labels = {a.label_name for a in annotations if a.split == TRAIN}
    classes = sorted(train_labels or {a.label_name for a in annotations})
    known_from = "the train split's labels" if train_labels else "the annotations"
    index, duplicates = _index_videos(source)
    candidates, more_rejects = _resolve(
        source, annotations, classes, known_from, locate=index.get, expected="a video file {clip_id}.<ext> below SRC"
    )
    return Layout(classes, candidates, rejects + more_rejects + duplicates)


def _kinetics_annotation(row: dict[str | Any, Any], where: str) -> _Annotation | Reject:
    values = [row.get(column) for column in KINETICS_COLUMNS]
    if any(value is None for value in values):
        return Reject(where, None, f"expected {len(KINETICS_COLUMNS)} fields ({','.join(KINETICS_COLUMNS)})")
    label, youtube_id, start, end, split = (value.strip() for value in values)
    try:
        clip_id = f"{youtube_id}_{int(start):06d}_{int(end):06d}"
    except ValueError:
        return Reject(where, None, f"time_start/time_end must be whole seconds, got {start!r}, {end!r}")
    if not youtube_id or not label:
        return Reject(where, clip_id, "empty youtube_id or label")
    if split not in KINETICS_SPLITS:
        return Reject(where, clip_id, f"unknown split {split!r}; expected one of {', '.join(KINETICS_SPLITS)}")
    return _Annotation(where, clip_id, label, KINETICS_SPLITS[split])


@layout("ssv2")
def read_ssv2(source: Path) -> Layout:
    """Something-Something V2 JSON annotations → candidates for ``<id>.webm`` found below ``SRC``."""
    labels_path = source / "labels.json"
    labels = _read_json(labels_path)
    try:
        indices = {name: int(index) for name, index in labels.items()}
    except (AttributeError, TypeError, ValueError) as error:
        raise ValueError(f"{labels_path}: expected an object of class name → index ({error})") from error
    if sorted(indices.values()) != list(range(len(indices))):
        raise ValueError(f"{labels_path}: class indices must be 0…{len(indices) - 1}, each once")
    classes = sorted(indices, key=indices.__getitem__)
    annotations: list[_Annotation] = []
    rejects: list[Reject] = []
    for name, split in (("train.json", TRAIN), ("validation.json", TEST)):
        entries = _read_json(source / name)
        if not isinstance(entries, list):
            raise ValueError(f"{source / name}: expected a list of {{id, label, template, placeholders}}")
        for position, entry in enumerate(entries):
            where = f"{name}[{position}]"
            if not (isinstance(entry, dict) and isinstance(entry.get("id"), str | int)):
                rejects.append(Reject(where, None, "expected an object with an 'id'"))
            elif not isinstance(entry.get("template"), str):
                rejects.append(Reject(where, str(entry["id"]), "no 'template' string to take the class from"))
            else:
                class_name = entry["template"].replace("[", "").replace("]", "")
                annotations.append(_Annotation(where, str(entry["id"]), class_name, split))
    index, duplicates = _index_videos(source)
    candidates, more_rejects = _resolve(
        source, annotations, classes, "labels.json", locate=index.get, expected="a video file {clip_id}.<ext> below SRC"
    )
    return Layout(classes, candidates, rejects + more_rejects + duplicates)


@layout("jester")
def read_jester(source: Path) -> Layout:
    """Jester ``id;label`` CSVs → candidates for the frame folders, encoded into one clip each at ingest."""
    annotations: list[_Annotation] = []
    rejects: list[Reject] = []
    splits = ((("train.csv", "jester-v1-train.csv"), TRAIN), (("validation.csv", "jester-v1-validation.csv"), TEST))
    for names, split in splits:
        table = _first_existing(source, names)
        for number, line in enumerate(table.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{table.name}:{number}"
            clip_id, separator, label = (part.strip() for part in line.partition(";"))
            if not separator or not clip_id or not label:
                rejects.append(Reject(where, None, f"expected 'id;label', got {line!r}"))
            elif Path(clip_id).name != clip_id or clip_id in {".", ".."}:
                rejects.append(Reject(where, None, f"id {clip_id!r} is not a folder name"))
            else:
                annotations.append(_Annotation(where, clip_id, label, split))
    labels_path = next((source / n for n in ("labels.csv", "jester-v1-labels.csv") if (source / n).is_file()), None)
    if labels_path is None:
        classes, known_from = sorted({a.label_name for a in annotations}), "the annotations"
    else:
        classes = [line.strip() for line in labels_path.read_text().splitlines() if line.strip()]
        if len(set(classes)) != len(classes):
            raise ValueError(f"{labels_path}: a class is listed twice")
        known_from = labels_path.name

    def locate(clip_id: str) -> Path | None:
        return next((p for r in JESTER_FRAME_ROOTS if (p := source / r / clip_id).is_dir()), None)

    expected = f"a frame folder {{clip_id}}/ in SRC or SRC/{JESTER_FRAME_ROOTS[1]}"
    candidates, more_rejects = _resolve(
        source, annotations, classes, known_from, locate=locate, expected=expected, frames=True
    )
    return Layout(classes, candidates, rejects + more_rejects)


def _first_existing(source: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (source / name).is_file():
            return source / name
    raise FileNotFoundError(f"{source}: annotation file {' or '.join(names)} not found")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from error


def _index_videos(source: Path) -> tuple[dict[str, Path], list[Reject]]:
    """Video files below ``source`` by stem, listed once so each annotation is a dictionary look-up.
    When two files share a stem the first in sorted order is the clip, so the choice is
    reproducible, and each other one is a reject naming it."""
    index: dict[str, Path] = {}
    rejects: list[Reject] = []
    for path in walk_files(source):
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            continue
        if not path.is_file():
            rejects.append(Reject(path.relative_to(source).as_posix(), path.stem, NOT_A_FILE))
        elif path.stem in index:
            first = index[path.stem].relative_to(source).as_posix()
            reason = f"same name as {first}, which is the file ingested as clip {path.stem!r}"
            rejects.append(Reject(path.relative_to(source).as_posix(), path.stem, reason))
        else:
            index[path.stem] = path
    return index, rejects


def _resolve(
    source: Path,
    annotations: Iterable[_Annotation],
    classes: list[str],
    known_from: str,
    *,
    locate: Callable[[str], Path | None],
    expected: str,
    frames: bool = False,
) -> tuple[list[Candidate], list[Reject]]:
    """Annotations → candidates, rejecting repeated ids, labels outside ``classes`` and missing data."""
    label_of = {name: i for i, name in enumerate(classes)}
    first_seen: dict[str, str] = {}
    candidates: list[Candidate] = []
    rejects: list[Reject] = []
    for a in annotations:
        if a.clip_id in first_seen:
            rejects.append(Reject(a.where, a.clip_id, f"clip already annotated at {first_seen[a.clip_id]}"))
            continue
        first_seen[a.clip_id] = a.where
        if a.label_name not in label_of:
            rejects.append(Reject(a.where, a.clip_id, f"unknown label {a.label_name!r}: not in {known_from}"))
            continue
        path = locate(a.clip_id)
        if path is None:
            rejects.append(Reject(a.where, a.clip_id, "missing file: no " + expected.format(clip_id=a.clip_id)))
            continue
        relative = path.relative_to(source).as_posix()
        candidates.append(Candidate(a.clip_id, label_of[a.label_name], a.label_name, a.split, path, relative, frames))
    return candidates, rejects
