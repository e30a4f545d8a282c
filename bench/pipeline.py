"""Data pipeline throughput and memory: one Python process decoding shards against the Ray Data
pipeline that feeds Train workers (read, decode and sample in Ray Data tasks beside the trainer), on
the same shards in the same run.

Every row times a "run": ``--passes`` passes over the training split (epochs), consumed as the
training loop consumes them. Measured, in clips per second:

* (a0) a bare loop that only decodes each clip's sampled frames with ``decode_clip`` (reference:
  the floor set by PyAV itself);
* (a) ``iterate_clips`` with training sampling in this process, one stream over all passes (the
  ``in_process`` loader): decode, TSN sampling, random resized crop and normalisation, i.e. the
  same work as the pipeline, in one process;
* (b) ``clip_dataset(passes=...)`` consumed through ``training.session.ray_data_batches`` (what a
  trial or Train worker runs), with ``ray.init(num_cpus=2)``: one execution for the whole run;
* (b1) the same with a one-pass dataset, so a new execution starts every pass (reference: how
  epochs were fed before one execution covered the run);
* (b0) (b) planned with Ray Data's own ``DataContext`` defaults instead of ``pipeline_context()``
  (reference: what the tuning buys).

Each is run once to warm up (imports, Ray worker start-up), then ``--repeats`` times; the medians
are reported. "Steady" counts only the clips delivered between 20 % and 80 % of a run, so the
start-up (planning, the first decode) and the final drain are left out; "whole run" keeps them.
Peak memory is the pipeline's proportional set size (PSS) summed over this process
and all its descendants (GCS, raylet, Ray workers), sampled every 0.2 s during one pass over the
dataset and over a copy four times as large: PSS splits shared pages (libraries, the object
store's shared memory) between the processes that map them, so the sum counts each page once.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import ray
import ray.data
import torch
from ray.data._internal.execution.backpressure_policy import ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY

from training.config import DataConfig
from training.data.codec import decode_clip
from training.data.embedded import SynthSpec, write_embedded_dataset
from training.data.sampling import tsn_indices
from training.data.shards import ClipRecord, DatasetWriter, load_manifest
from training.data.stream import ClipSampling, clip_dataset, iterate_clips, pipeline_context
from training.session import ray_data_batches

MiB = 2**20
STEADY_WINDOW = (0.2, 0.8)


@dataclass(frozen=True)
class Run:
    """One timed run: clips delivered and when, from the start of iteration."""

    clips: int
    seconds: float
    first_batch_s: float
    steady_clips_per_s: float
    cores: float

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds


def timed_run(batches: Iterable[int]) -> Run:
    """Drain ``batches`` (each item: the number of clips in one batch) and time it."""
    cpu_before = tree_cpu_seconds()
    start = time.perf_counter()
    stamps: list[tuple[float, int]] = []
    delivered = 0
    for size in batches:
        delivered += size
        stamps.append((time.perf_counter() - start, delivered))
    low, high = (fraction * delivered for fraction in STEADY_WINDOW)
    first = next(stamp for stamp in stamps if stamp[1] >= low)
    last = next(stamp for stamp in stamps if stamp[1] >= high)
    # A run that arrives in a burst (everything buffered before the first batch) has no steady state.
    bursty = last[0] - first[0] < 0.1 * stamps[-1][0]
    steady = float("nan") if bursty else (last[1] - first[1]) / (last[0] - first[0])
    cores = (tree_cpu_seconds() - cpu_before) / stamps[-1][0]
    return Run(
        clips=delivered, seconds=stamps[-1][0], first_batch_s=stamps[0][0], steady_clips_per_s=steady, cores=cores
    )


@dataclass(frozen=True)
class Measurement:
    """Timed runs of one pipeline; figures are medians over the runs, which resist a stray slow one."""

    name: str
    runs: list[Run]

    @property
    def clips_per_s(self) -> float:
        return statistics.median(r.clips_per_s for r in self.runs)

    @property
    def steady_clips_per_s(self) -> float:
        return statistics.median(r.steady_clips_per_s for r in self.runs)

    @property
    def first_batch_s(self) -> float:
        return statistics.median(r.first_batch_s for r in self.runs)

    @property
    def cores(self) -> float:
        return statistics.median(r.cores for r in self.runs)


def measure(name: str, run: Callable[[], Iterable[int]], args: argparse.Namespace) -> Measurement:
    """One discarded warm-up run, then ``args.repeats`` timed ones."""
    timed_run(run())
    measurement = Measurement(name, [timed_run(run()) for _ in range(args.repeats)])
    print(
        f"  {name}: {measurement.steady_clips_per_s:.0f} clips/s steady, {measurement.clips_per_s:.0f} whole run, "
        f"{measurement.cores:.2f} cores busy"
    )
    return measurement


def bare_decode(paths: Sequence[str], num_frames: int, batch_size: int, passes: int) -> Iterator[int]:
    """Only PyAV: decode each clip's TSN-sampled frames at the stored size, nothing else."""
    rng = np.random.default_rng(0)
    for path in paths * passes:
        for record_batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=["video", "num_frames"]):
            videos, available = record_batch.column("video"), record_batch.column("num_frames")
            for video, count in zip(videos, available, strict=True):
                decode_clip(video.as_py(), tsn_indices(count.as_py(), num_frames, rng).tolist())
            yield len(record_batch)


def in_process_batches(paths: Sequence[str], sampling: ClipSampling, batch_size: int, passes: int) -> Iterator[int]:
    """The baseline: the pipeline's decode and collate, in this process, shuffled as training does."""
    shuffle = np.random.default_rng(0)
    for batch in iterate_clips(paths, sampling, batch_size=batch_size, shuffle=shuffle, passes=passes):
        yield len(batch.labels)


def ray_batches(dataset: ray.data.Dataset, batch_size: int, batches: int) -> Iterator[int]:
    """Take ``batches`` batches from the stream a trial builds over ``dataset``, then close it."""
    stream = ray_data_batches(dataset.iterator(), torch.device("cpu"))(batch_size)
    for batch in itertools.islice(stream, batches):
        yield len(batch.labels)
    stream.close()


def _process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, from ``/proc`` (Ray's workers are children of its raylet,
    itself a child of the process that called ``ray.init``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited since the listing
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces
        children.setdefault(parent, []).append(int(entry.name))
    tree, frontier = [root], [root]
    while frontier:
        frontier = [child for pid in frontier for child in children.get(pid, [])]
        tree += frontier
    return tree


def tree_cpu_seconds() -> float:
    """User + system CPU seconds of this process and its live descendants: busy cores = Δ / wall."""
    ticks = 0
    for pid in _process_tree(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return ticks / os.sysconf("SC_CLK_TCK")


def _memory_kib(pid: int) -> tuple[int, int]:
    """``(Pss, Rss)`` of one process in KiB; ``(0, 0)`` once it has exited."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0, 0
    fields = {line.split(":")[0]: int(line.split()[1]) for line in lines[1:] if line.endswith("kB")}
    return fields.get("Pss", 0), fields.get("Rss", 0)


class MemorySampler:
    """Context manager sampling the summed PSS and RSS of this process tree in a thread, keeping peaks."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak_pss = self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def sample(self) -> tuple[int, int]:
        """Current ``(PSS, RSS)`` sums in bytes."""
        totals = [_memory_kib(pid) for pid in _process_tree(os.getpid())]
        return sum(t[0] for t in totals) * 1024, sum(t[1] for t in totals) * 1024

    def _sample_until_stopped(self) -> None:
        while not self._stop.is_set():
            pss, rss = self.sample()
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class PipelineMemory:
    """One pass of the Ray pipeline: clips delivered, the tree's PSS before it, and the peaks (bytes)."""

    clips: int
    idle_pss: int
    peak_pss: int
    peak_rss: int


def pipeline_memory(paths: Sequence[str], sampling: ClipSampling, args: argparse.Namespace) -> PipelineMemory:
    """Peak memory of the process tree over one pass of the Ray pipeline over ``paths``."""
    dataset = clip_dataset(
        paths, sampling, decode_batch_size=args.decode_batch_size, data_context=pipeline_settings(args)
    )
    with MemorySampler() as memory:
        idle_pss = memory.sample()[0]
        result = timed_run(ray_batches(dataset, args.batch_size, stored_rows(paths) // args.batch_size))
    return PipelineMemory(clips=result.clips, idle_pss=idle_pss, peak_pss=memory.peak_pss, peak_rss=memory.peak_rss)


def stored_rows(paths: Sequence[str]) -> int:
    return sum(pq.ParquetFile(path).metadata.num_rows for path in paths)


def repeat_dataset(source: Path, out: Path, times: int, shard_bytes: int) -> list[str]:
    """``times`` copies of ``source``'s training clips, written through the same shard writer, so a
    larger dataset has the same layout rules without rendering it (which would dominate the run)."""
    manifest = load_manifest(source)
    table = pq.read_table(manifest.shard_paths(source, "train"))
    with DatasetWriter(out, manifest.classes, source=f"{manifest.source}×{times}", shard_bytes=shard_bytes) as writer:
        for copy in range(times):
            for row in table.to_pylist():
                writer.write("train", ClipRecord(**{**row, "clip_id": f"{row['clip_id']}-{copy}"}))
    return load_manifest(out).shard_paths(out, "train")


def start_ray(args: argparse.Namespace) -> None:
    """``ray.init`` and the process-wide Ray Data settings that ``clip_dataset`` leaves to its caller."""
    ray.init(
        address="local",
        num_cpus=args.num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=args.object_store_mib * MiB,
        logging_level="WARNING",
    )
    # Per-pass INFO lines ("Starting execution of Dataset …") would drown the report; the session's
    # ray-data.log keeps them.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    if args.data_memory_mib is not None:
        context.execution_options.resource_limits = ray.data.ExecutionResources(
            object_store_memory=args.data_memory_mib * MiB
        )


def pipeline_settings(args: argparse.Namespace) -> ray.data.DataContext:
    """``clip_dataset``'s ``pipeline_context()`` with the options given on the command line."""
    context = pipeline_context()
    if args.target_block_mib is not None:
        context.target_max_block_size = round(args.target_block_mib * MiB)
    if args.parquet_reader is not None:
        context.use_datasource_v2 = args.parquet_reader == "v2"
    if args.op_reservation is not None:
        context.op_resource_reservation_enabled = args.op_reservation
    if args.gen_buffer_blocks is not None:
        context._max_num_blocks_in_streaming_gen_buffer = args.gen_buffer_blocks
    if args.concurrency_cap:
        context.remove_config(ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY)
    return context


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    data = parser.add_argument_group("dataset (the embedded motion dataset, rendered into a temporary directory)")
    data.add_argument("--clips-per-class", type=int, default=100, help="1× size; 80%% of it is the train split")
    data.add_argument("--frames", type=int, default=16, help="frames per stored clip")
    data.add_argument("--size", type=int, default=64, help="stored frame side and training crop side, pixels")
    data.add_argument(
        "--shard-mib",
        type=float,
        default=4,
        help="shard size: small, so that more data means more shards, as with real clips in 128 MiB shards",
    )
    data.add_argument("--scale", type=int, default=4, help="the larger dataset for the memory check is this × 1×")
    sampling = parser.add_argument_group("sampling and batching")
    sampling.add_argument("--num-frames", type=int, default=8, help="frames sampled per clip (TSN)")
    sampling.add_argument("--batch-size", type=int, default=16)
    sampling.add_argument("--passes", type=int, default=3, help="passes over the training split per run (epochs)")
    sampling.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (after one warm-up)")
    pipeline = parser.add_argument_group("Ray Data knobs")
    pipeline.add_argument("--num-cpus", type=int, default=2, help="ray.init(num_cpus=...)")
    pipeline.add_argument(
        "--decode-batch-size",
        type=int,
        default=DataConfig.model_fields["decode_batch_size"].default,
        help="clip_dataset(decode_batch_size=...) (default: train.data.decode_batch_size's)",
    )
    pipeline.add_argument(
        "--target-block-mib",
        type=float,
        help="DataContext.target_max_block_size (specdistill: 2, Ray: 128)",
    )
    pipeline.add_argument(
        "--parquet-reader", choices=["v1", "v2"], help="DataContext.use_datasource_v2 (specdistill: v1, Ray: v2)"
    )
    pipeline.add_argument(
        "--op-reservation",
        action=argparse.BooleanOptionalAction,
        help="DataContext.op_resource_reservation_enabled (specdistill: off, Ray: on)",
    )
    pipeline.add_argument(
        "--gen-buffer-blocks",
        type=int,
        help="DataContext._max_num_blocks_in_streaming_gen_buffer (specdistill: 8, Ray: 2)",
    )
    pipeline.add_argument(
        "--concurrency-cap",
        action="store_true",
        help="keep Ray Data's concurrency-cap backpressure policy (specdistill: off, Ray: on)",
    )
    pipeline.add_argument("--object-store-mib", type=int, default=1024, help="ray.init(object_store_memory=...)")
    pipeline.add_argument(
        "--data-memory-mib",
        type=int,
        help="execution_options.resource_limits.object_store_memory (default: Ray's share of the object store)",
    )
    args = parser.parse_args()
    if args.scale < 2:
        parser.error(f"--scale must be at least 2 (the memory check compares 1× with --scale×), got {args.scale}")
    if args.passes < 1:
        parser.error(f"--passes must be at least 1, got {args.passes}")
    return args


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def report(
    args: argparse.Namespace, throughput: list[Measurement], memory: list[PipelineMemory], loads: tuple[str, str]
) -> None:
    """The Markdown tables for ``RESULTS.md`` and the ratio line the goal is stated in."""
    settings = ", ".join(f"{name}={value}" for name, value in vars(args).items())
    print(f"\nsettings: {settings}\nload average (1, 5, 15 min): {loads[0]} before, {loads[1]} after\n")
    print("| measurement | clips/s, steady | clips/s, whole run | first batch, s | cores busy |")
    print("|---|---:|---:|---:|---:|")
    for m in throughput:
        print(
            f"| {m.name} | {m.steady_clips_per_s:.0f} | {m.clips_per_s:.0f} | {m.first_batch_s:.2f} | {m.cores:.2f} |"
        )
    print("\n| Ray pipeline pass over | clips | PSS before, MiB | peak PSS, MiB | peak RSS sum, MiB |")
    print("|---|---:|---:|---:|---:|")
    for label, peak in zip(("1× data", f"{args.scale}× data"), memory, strict=True):
        mib = [round(value / MiB) for value in (peak.idle_pss, peak.peak_pss, peak.peak_rss)]
        print(f"| {label} | {peak.clips} | {mib[0]} | {mib[1]} | {mib[2]} |")
    single, pipeline, restarting, ray_defaults = throughput[1:5]
    print(
        f"\nratio (b)/(a): {pipeline.steady_clips_per_s / single.steady_clips_per_s:.2f} steady, "
        f"{pipeline.clips_per_s / single.clips_per_s:.2f} whole run; a new execution every pass (b1)/(a) "
        f"{restarting.clips_per_s / single.clips_per_s:.2f} whole run; Ray's defaults (b0)/(a) "
        f"{ray_defaults.clips_per_s / single.clips_per_s:.2f} whole run"
    )


def main() -> None:
    args = parse_args()
    sampling = ClipSampling(num_frames=args.num_frames, size=args.size, train=True)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        root = Path(tmp) / "1x"
        spec = SynthSpec(clips_per_class=args.clips_per_class, num_frames=args.frames, size=args.size, seed=0)
        shard_bytes = round(args.shard_mib * MiB)
        write_embedded_dataset(root, spec, workers=os.cpu_count() or 1, shard_bytes=shard_bytes)
        manifest = load_manifest(root)
        paths = manifest.shard_paths(root, "train")
        scaled_paths = repeat_dataset(root, Path(tmp) / f"{args.scale}x", args.scale, shard_bytes)
        load_before = _load()
        clips = manifest.splits["train"].clips
        print(f"{clips} training clips of {args.frames}×{args.size}² in {len(paths)} shard(s); load {load_before}")

        passes, batches = args.passes, args.passes * clips // args.batch_size
        throughput = [
            measure(
                "(a0) bare decode_clip loop", lambda: bare_decode(paths, args.num_frames, args.batch_size, passes), args
            ),
            measure(
                "(a) iterate_clips, 1 process",
                lambda: in_process_batches(paths, sampling, args.batch_size, passes),
                args,
            ),
        ]
        start_ray(args)
        for name, settings, dataset_passes in (
            (f"(b) Ray Data, num_cpus={args.num_cpus}, one execution", pipeline_settings(args), passes),
            ("(b1) the same, a new execution every pass", pipeline_settings(args), 1),
            ("(b0) (b) with Ray's DataContext defaults", ray.data.DataContext.get_current().copy(), passes),
        ):
            dataset = clip_dataset(
                paths, sampling, passes=dataset_passes, decode_batch_size=args.decode_batch_size, data_context=settings
            )
            throughput.append(
                measure(name, lambda dataset=dataset: ray_batches(dataset, args.batch_size, batches), args)
            )
        memory = [pipeline_memory(paths, sampling, args), pipeline_memory(scaled_paths, sampling, args)]
        report(args, throughput, memory, (load_before, _load()))


if __name__ == "__main__":
    main()
