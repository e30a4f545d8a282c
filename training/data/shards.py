"""Parquet clip shards and the ``dataset.json`` manifest beside them.

One row per clip holding the encoded file as stored, so a shard is as compact as the source and
any worker can decode any clip. Rows are buffered into small row groups and files roll over at a
target size, so writing holds at most one row group in memory whatever the dataset size, and no
Arrow ``binary`` array comes near its 2 GiB offset limit.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from training import storage
from training.data.splits import DEFAULT_TUNE_FRACTION, TEST, TRAIN, TUNE, carve, check_fraction, selection_split_hint

# 2: a split may be carved out of another's shards (``include``/``exclude``), and datasets carry
# train/tune/test. Version 1 manifests (train/val) are still read.
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
MANIFEST_NAME = "dataset.json"
SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("label", pa.int32(), nullable=False),
        pa.field("label_name", pa.string(), nullable=False),
        pa.field("video", pa.binary(), nullable=False),
        pa.field("container", pa.string(), nullable=False),
        pa.field("num_frames", pa.int32(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)
DEFAULT_SHARD_BYTES = 128 * 2**20
DEFAULT_ROW_GROUP_BYTES = 16 * 2**20


@dataclass(frozen=True)
class ClipRecord:
    """One row of a shard; ``source`` says where the clip came from (a path, or ``synth:<seed>``)."""

    clip_id: str
    label: int
    label_name: str
    video: bytes
    container: str
    num_frames: int
    source: str


class ShardWriter:
    """Writes one split's rows to ``<split>-00000.parquet``, ``<split>-00001.parquet``, … in
    ``directory`` (a local path or a storage URI)."""

    def __init__(
        self,
        directory: str | Path,
        split: str,
        *,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    ) -> None:
        if shard_bytes <= 0 or row_group_bytes <= 0:
            raise ValueError(f"shard_bytes and row_group_bytes must be > 0, got {shard_bytes}, {row_group_bytes}")
        self.directory, self.split = str(directory), split
        self.shard_bytes, self.row_group_bytes = shard_bytes, min(row_group_bytes, shard_bytes)
        self.files: list[str] = []
        self.clips = 0
        self.bytes = 0
        self._rows: list[ClipRecord] = []
        self._pending_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._file_bytes = 0

    def write(self, record: ClipRecord) -> None:
        self._rows.append(record)
        self._pending_bytes += len(record.video)
        self.clips += 1
        self.bytes += len(record.video)
        if self._pending_bytes >= self.row_group_bytes:
            self._flush_row_group()

    def _flush_row_group(self) -> None:
        if not self._rows:
            return
        if self._writer is None:
            name = f"{self.split}-{len(self.files):05d}.parquet"
            fs, path = storage.filesystem(storage.join(self.directory, name))
            self._writer = pq.ParquetWriter(path, SCHEMA, filesystem=fs, compression="none")
            self.files.append(name)
            self._file_bytes = 0
        columns = {name: [getattr(r, name) for r in self._rows] for name in SCHEMA.names}
        self._writer.write_table(pa.table(columns, schema=SCHEMA))
        self._file_bytes += self._pending_bytes
        self._rows, self._pending_bytes = [], 0
        if self._file_bytes >= self.shard_bytes:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        self._flush_row_group()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def discard(self) -> None:
        """Delete every shard written so far (after a failure: a full disk, an interrupted run)."""
        if self._writer is not None:
            with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
                self._writer.close()
            self._writer = None
        for name in self.files:
            storage.remove(storage.join(self.directory, name))
        self.files, self._rows = [], []


@dataclass
class SplitInfo:
    """One split's shards and counts. A split carved out of another's shards without rewriting
    them (``specdistill carve``) keeps only the rows whose ``clip_id`` is in ``include``, or all
    but those in ``exclude``; ``clips``, ``bytes`` and ``class_counts`` count those rows."""

    clips: int
    bytes: int
    shards: list[str]
    class_counts: list[int]
    include: list[str] | None = None
    exclude: list[str] | None = None

    def rows(self) -> RowFilter | None:
        if self.include is None and not self.exclude:
            return None
        include = None if self.include is None else frozenset(self.include)
        return RowFilter(include=include, exclude=frozenset(self.exclude or ()))


@dataclass(frozen=True)
class RowFilter:
    """Which rows of a split's shards belong to it, by ``clip_id``."""

    include: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()

    def keep(self, clip_ids: np.ndarray) -> np.ndarray:
        """A boolean mask over ``clip_ids``."""
        ids = np.asarray(clip_ids, dtype=object)
        mask = np.ones(len(ids), dtype=bool)
        if self.include is not None:
            mask &= np.fromiter((i in self.include for i in ids), dtype=bool, count=len(ids))
        if self.exclude:
            mask &= np.fromiter((i not in self.exclude for i in ids), dtype=bool, count=len(ids))
        return mask


@dataclass(frozen=True)
class SplitSource:
    """Where a split's clips are: its shard locations, and which of their rows it keeps."""

    paths: list[str]
    rows: RowFilter | None = None


@dataclass
class Manifest:
    """``dataset.json``: what a directory of shards holds. Paths in ``shards`` are relative to it."""

    classes: list[str]
    splits: dict[str, SplitInfo]
    source: str
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def split(self, root: str | Path, name: str) -> SplitSource:
        """The split's shard locations under ``root`` (where ``dataset.json`` is) and row filter."""
        if name not in self.splits:
            where = storage.display(storage.join(root, MANIFEST_NAME))
            hint = f": {selection_split_hint(str(root))}" if name == TUNE else ""
            raise ValueError(f"{where} has no split {name!r}; it has {sorted(self.splits)}{hint}")
        info = self.splits[name]
        if storage.is_uri(root):
            paths = [storage.join(root, shard) for shard in info.shards]
        else:
            paths = [str((Path(root) / shard).resolve()) for shard in info.shards]
        return SplitSource(paths, info.rows())

    def shard_paths(self, root: str | Path, split: str) -> list[str]:
        """The split's shard locations, for a split that keeps every row of its shards (what
        ``synth`` and ``ingest`` write); a carved split needs :meth:`split`."""
        source = self.split(root, split)
        if source.rows is not None:
            raise ValueError(f"split {split!r} keeps only some rows of its shards: read it through Manifest.split")
        return source.paths


class DatasetWriter:
    """Routes records to per-split ``ShardWriter``s and writes ``dataset.json`` on close.

    Use as a context manager; the manifest is only written when the block exits cleanly, so a
    half-written directory is never mistaken for a dataset.
    """

    def __init__(
        self, directory: str | Path, classes: list[str], source: str, *, shard_bytes: int = DEFAULT_SHARD_BYTES
    ):
        if not classes:
            raise ValueError("a dataset needs at least one class")
        self.directory, self.classes, self.source, self.shard_bytes = str(directory), classes, source, shard_bytes
        manifest = storage.join(self.directory, MANIFEST_NAME)
        if storage.exists(manifest):
            raise FileExistsError(f"{storage.display(manifest)} exists: refusing to overwrite a dataset")
        storage.make_dirs(self.directory)
        self._writers: dict[str, ShardWriter] = {}
        self._counts: dict[str, list[int]] = {}

    def write(self, split: str, record: ClipRecord) -> None:
        if not 0 <= record.label < len(self.classes) or self.classes[record.label] != record.label_name:
            raise ValueError(f"clip {record.clip_id}: label {record.label} ({record.label_name!r}) is not in classes")
        if split not in self._writers:
            self._writers[split] = ShardWriter(self.directory, split, shard_bytes=self.shard_bytes)
            self._counts[split] = [0] * len(self.classes)
        self._writers[split].write(record)
        self._counts[split][record.label] += 1

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        if error_type is not None:
            self._discard()
            return
        try:
            for writer in self._writers.values():
                writer.close()
            splits = {
                name: SplitInfo(clips=w.clips, bytes=w.bytes, shards=w.files, class_counts=self._counts[name])
                for name, w in self._writers.items()
            }
            write_manifest(self.directory, Manifest(classes=self.classes, splits=splits, source=self.source))
        except BaseException:  # the last shard or the manifest did not fit
            self._discard()
            raise

    def _discard(self) -> None:
        """Delete the shards of a dataset that will not be whole, so a later run finds nothing to clean."""
        for writer in self._writers.values():
            writer.discard()


def write_manifest(directory: str | Path, manifest: Manifest) -> None:
    splits = {name: {k: v for k, v in vars(info).items() if v is not None} for name, info in manifest.splits.items()}
    payload = {
        "schema_version": manifest.schema_version,
        "source": manifest.source,
        "classes": manifest.classes,
        "splits": splits,
        **manifest.extra,
    }
    storage.write_text(storage.join(directory, MANIFEST_NAME), json.dumps(payload, indent=2) + "\n")


def load_manifest(directory: str | Path) -> Manifest:
    """Read and check ``dataset.json`` (local or at a storage URI); every problem names the file and the field."""
    path = storage.display(storage.join(directory, MANIFEST_NAME))
    try:
        text = storage.read_text(storage.join(directory, MANIFEST_NAME))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} not found: is {storage.display(directory)} a directory made by `specdistill synth/ingest`?"
        ) from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    version = payload.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{path}: schema_version is {version!r}, this build reads {READABLE_VERSIONS}")
    classes = payload.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"{path}: field 'classes' must be a non-empty list of names")
    present = set(storage.children(directory))  # one listing, not a request per shard
    splits: dict[str, SplitInfo] = {}
    for name, info in (payload.get("splits") or {}).items():
        try:
            splits[name] = SplitInfo(**info)
        except TypeError as error:
            raise ValueError(f"{path}: field 'splits.{name}' is malformed ({error})") from error
        for shard in splits[name].shards:
            if shard not in present and not storage.exists(storage.join(directory, shard)):
                raise FileNotFoundError(f"{path}: split {name!r} lists {shard}, which is missing")
    if not splits:
        raise ValueError(f"{path}: field 'splits' is empty")
    known = {"schema_version", "source", "classes", "splits"}
    extra = {k: v for k, v in payload.items() if k not in known}
    return Manifest(
        classes=classes, splits=splits, source=str(payload.get("source", "")), schema_version=version, extra=extra
    )


def carve_selection_split(directory: str | Path, *, fraction: float = DEFAULT_TUNE_FRACTION, seed: int = 0) -> Manifest:
    """Give a dataset written before the selection split existed (``train`` and the official
    ``val``) its three splits without rewriting a shard: ``tune`` is ``fraction`` of each class's
    training clips (named in the manifest by ``clip_id``), ``train`` keeps the rest, and ``val``
    becomes ``test``. Only ``dataset.json`` is rewritten (whole, never half)."""
    check_fraction("fraction", fraction)
    manifest = load_manifest(directory)
    where = storage.display(storage.join(directory, MANIFEST_NAME))
    if TUNE in manifest.splits:
        raise ValueError(f"{where} already has a selection split ({TUNE!r})")
    if TRAIN not in manifest.splits or manifest.splits[TRAIN].rows() is not None:
        raise ValueError(f"{where}: no whole {TRAIN!r} split to carve from; it has {sorted(manifest.splits)}")
    train = manifest.splits[TRAIN]
    source = manifest.split(directory, TRAIN)
    # Two small columns: the video bytes stay where they are (a split's ``bytes`` is then shared
    # out in proportion to its clips, which is what it is for: telling a split's size).
    table = pa.concat_tables(pq.read_table(path, columns=["clip_id", "label"]) for path in source.paths)
    ids = table.column("clip_id").to_pylist()
    labels = table.column("label").to_pylist()
    assigned = carve(
        ((i, manifest.classes[label], TRAIN) for i, label in zip(ids, labels, strict=True)),
        source=TRAIN,
        target=TUNE,
        fraction=fraction,
        seed=seed,
    )
    picked = sorted(i for i, split in assigned.items() if split == TUNE)

    def counted(keep: Callable[[str], bool], **rows: list[str]) -> SplitInfo:
        counts = [0] * len(manifest.classes)
        for clip_id, label in zip(ids, labels, strict=True):
            if keep(clip_id):
                counts[label] += 1
        share = round(train.bytes * sum(counts) / max(1, len(ids)))
        return SplitInfo(clips=sum(counts), bytes=share, shards=list(train.shards), class_counts=counts, **rows)

    chosen = set(picked)
    splits = dict(manifest.splits)
    splits[TRAIN] = counted(lambda i: i not in chosen, exclude=picked)
    splits[TUNE] = counted(lambda i: i in chosen, include=picked)
    if "val" in splits and TEST not in splits:  # the official validation split: the test split now
        splits[TEST] = splits.pop("val")
    carved = Manifest(
        classes=manifest.classes,
        splits=splits,
        source=manifest.source,
        extra=manifest.extra | {"tune_split": {"fraction": fraction, "seed": seed, "carved_from": TRAIN}},
    )
    write_manifest(directory, carved)
    return carved
