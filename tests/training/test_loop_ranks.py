"""Ranks agree on skipping a step whose batch lost every clip, over a real gloo process group:
a rank skipping alone would hang the others in DDP's gradient all-reduce."""

from __future__ import annotations

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from training.loop import _empty_on_any_rank


class _GlooRanks:
    """The two members of ``Session`` that the decision uses, over a real process group."""

    device = torch.device("cpu")

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(values)
        return values


def _rank(rank: int, port: int, clips_per_rank: list[list[int]], decisions: dict) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        session = _GlooRanks(world_size=2)
        decisions[rank] = [_empty_on_any_rank(clips[rank], session) for clips in clips_per_rank]
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_all_ranks_skip_when_one_rank_has_an_empty_batch() -> None:
    steps = [[16, 16], [0, 16], [16, 0], [0, 0], [3, 1]]  # clips decoded on (rank 0, rank 1) per step
    with mp.Manager() as manager:
        decisions = manager.dict()
        mp.spawn(_rank, args=(_free_port(), steps, decisions), nprocs=2, join=True)
        assert decisions[0] == decisions[1] == [False, True, True, True, False]


def test_a_single_worker_skips_only_its_own_empty_batch() -> None:
    single = _GlooRanks(world_size=1)
    assert _empty_on_any_rank(0, single) and not _empty_on_any_rank(5, single)
