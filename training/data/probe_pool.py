"""Untrusted decoding in worker processes that may crash, run away or be killed, one clip each.

Ingest decodes files nobody has vetted; FFmpeg can crash on them, loop on them, or allocate without
bound. Each worker here takes one clip at a time under limits (an address-space cap, a CPU-time
allowance per clip, and a wall-clock deadline the parent enforces), so whatever happens to a
worker is pinned on the one clip it held: that clip becomes a reject with the reason, a fresh
worker takes its place, and the other clips go on. A ``concurrent.futures`` pool cannot do this: a
dead worker breaks every pending future, and a stuck one cannot be killed.

Results come back in input order, with at most ``IN_FLIGHT_PER_WORKER × workers`` clips between the
next one due and the last one started, so memory stays bounded by a few clips per worker.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

IN_FLIGHT_PER_WORKER = 4
MAX_CLIP_MB = 2047
# What a wait for results sleeps at most before it checks the deadlines again.
POLL_S = 0.5

Task = TypeVar("Task")
Result = TypeVar("Result")


@dataclass(frozen=True)
class ProbeLimits:
    """Per clip: ``memory_mb`` more address space than the worker had when it started, ``cpu_s``
    seconds of CPU time, and ``3 × cpu_s`` seconds on the wall clock (a probe blocked on I/O uses
    no CPU time, so only the wall clock ends it). ``max_clip_mb`` is the largest file the work
    function should take in at all (ingest rejects larger ones before reading them): a shard holds
    a clip as one Arrow binary value, at most 2 GiB, and the cap bounds every process's memory."""

    memory_mb: int = 4096
    cpu_s: int = 120
    max_clip_mb: int = 1024

    def __post_init__(self) -> None:
        if self.memory_mb < 1 or self.cpu_s < 1:
            raise ValueError(f"probe limits must be >= 1, got memory_mb={self.memory_mb}, cpu_s={self.cpu_s}")
        if not 1 <= self.max_clip_mb <= MAX_CLIP_MB:
            raise ValueError(f"max_clip_mb must be in 1…{MAX_CLIP_MB} (one Arrow value), got {self.max_clip_mb}")

    @property
    def wall_s(self) -> float:
        return 3.0 * self.cpu_s


class ProbeFailed(Exception):
    """The clip's worker died or was stopped; the message says how, for the clip's reject line."""


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _within(limit: int, hard: int) -> int:
    """``limit``, or the hard limit the worker inherited when that is lower (a soft limit above it
    would be refused, and every worker would die on starting)."""
    return limit if hard == resource.RLIM_INFINITY else min(limit, hard)


def _serve(work: Callable[[Any], Any], conn: Connection, limits: ProbeLimits) -> None:
    """A worker's life: take a task, run it under the CPU allowance, send back ``(ok, value)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash on a hostile file leaves no core file
    faulthandler.disable()  # nor a Python stack dump, which would tell nothing about the file
    _, hard_memory = resource.getrlimit(resource.RLIMIT_AS)
    cap = _within(_address_space_bytes() + limits.memory_mb * 2**20, hard_memory)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard_memory))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent is gone or done
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        allowance = _within(int(usage.ru_utime + usage.ru_stime) + limits.cpu_s, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (allowance, hard))
        try:
            conn.send((True, work(task)))
        except MemoryError:
            conn.send((False, f"ran out of memory ({limits.memory_mb} MB over what its worker started with)"))
        except Exception as error:  # a bug or an error type the work function does not expect
            conn.send((False, f"{type(error).__name__}: {error}"))


class _Worker:
    """One worker process and the task it holds, if any."""

    def __init__(self, context: Any, work: Callable[[Any], Any], limits: ProbeLimits) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(work, child, limits), daemon=True)
        self.process.start()
        child.close()
        self.index: int | None = None
        self.started = 0.0

    def give(self, index: int, task: Any) -> None:
        self.index, self.started = index, time.monotonic()
        self.conn.send(task)

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        # A process in uninterruptible I/O (a hung network mount) dies only when the I/O returns:
        # leave it to exit on its own rather than hang the whole ingest on it.
        self.process.join(timeout=5)
        self.conn.close()


def _death(exitcode: int | None, limits: ProbeLimits) -> str:
    if exitcode is not None and exitcode < 0:
        signum = -exitcode
        if signum == signal.SIGXCPU:
            return f"probe worker died: CPU time limit of {limits.cpu_s} s a clip exceeded"
        return f"probe worker died: killed by {signal.Signals(signum).name}"
    return f"probe worker died: exit status {exitcode}"


class ProbePool(Generic[Task, Result]):
    """``work`` over tasks in ``workers`` limited processes (see the module docstring)."""

    def __init__(self, work: Callable[[Task], Result], workers: int, limits: ProbeLimits) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.work, self.workers, self.limits = work, workers, limits
        self.context = multiprocessing.get_context("fork")  # workers start in milliseconds, modules loaded

    def map(self, tasks: Iterable[Task]) -> Iterator[Result | ProbeFailed]:
        """Each task's result, or a :class:`ProbeFailed` saying why its worker did not give one, in order."""
        pending = enumerate(tasks)
        done: dict[int, Result | ProbeFailed] = {}
        window = IN_FLIGHT_PER_WORKER * self.workers
        workers = [self._start() for _ in range(self.workers)]
        exhausted, started, due = False, 0, 0
        try:
            while True:
                for slot, worker in enumerate(workers):
                    if worker.index is not None or exhausted or started >= due + window:
                        continue
                    item = next(pending, None)
                    if item is None:
                        exhausted = True
                        continue
                    if not worker.process.is_alive():  # killed from outside while idle
                        worker.stop()
                        workers[slot] = worker = self._start()
                    worker.give(*item)
                    started += 1
                while due in done:
                    yield done.pop(due)
                    due += 1
                busy = [w for w in workers if w.index is not None]
                if busy:
                    self._collect(workers, busy, done)
                elif exhausted:
                    return
        finally:
            for worker in workers:
                worker.stop()

    def _start(self) -> _Worker:
        return _Worker(self.context, self.work, self.limits)

    def _collect(self, workers: list[_Worker], busy: list[_Worker], done: dict[int, Any]) -> None:
        """Wait for a result, a death or a deadline, and file what happened under the task's index."""
        ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=POLL_S)
        now = time.monotonic()
        for worker in busy:
            assert worker.index is not None
            if worker.conn in ready:
                try:
                    ok, value = worker.conn.recv()
                except EOFError:  # the worker died: its end of the pipe closed with it
                    pass
                else:
                    done[worker.index] = value if ok else ProbeFailed(value)
                    worker.index = None
                    continue
            elif worker.process.sentinel not in ready and now - worker.started <= self.limits.wall_s:
                continue
            worker.process.join(timeout=1.0)  # a dying worker's exit status, if it is dying
            if worker.process.is_alive():
                reason = f"probe timed out after {self.limits.wall_s:.0f} s and was killed"
            else:
                reason = _death(worker.process.exitcode, self.limits)
            done[worker.index] = ProbeFailed(reason)
            worker.stop()
            workers[workers.index(worker)] = self._start()
