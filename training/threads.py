"""Torch's intra-op thread count, narrowed for one block of work and restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """One intra-op thread inside the block. For work too small for a thread pool to pay off
    (per-clip resizes are ~10× slower with one), and for figures meant per thread (batch-1 latency),
    which other processes on the machine then disturb far less."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
