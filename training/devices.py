"""Which device a run trains on, and a clear failure when CUDA is asked for and cannot be used.

"cuda if available" is wrong twice on a cluster: a trial that reserved a GPU on a node whose
driver is older than the CUDA build of the pinned torch (CUDA 13.0, driver 580 or newer on Linux)
silently trains on its CPUs at a fraction of the speed, and a trial asking for ``cuda`` without a
reserved GPU sees none (Ray hides unreserved GPUs). So ``train.device`` is obeyed, and a run that
asks for CUDA, or reserved a GPU, where CUDA is unusable fails at once with torch's own reason
(and is retried like a crash: another node may have a working driver).
"""

from __future__ import annotations

import os
from typing import Literal

import torch

Requested = Literal["auto", "cpu", "cuda"]


class DeviceUnusable(RuntimeError):
    """CUDA was asked for and cannot be used here. Not recorded as a failure for good: it belongs to
    the node, and Tune's retry may place the trial on another one."""


def cuda_problem() -> str | None:
    """Why CUDA cannot be used in this process, or None when it can."""
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU-only build"
    if torch.cuda.is_available():
        return None
    try:
        torch.cuda.init()  # raises with the reason: no driver, a driver too old for this build, …
    except (RuntimeError, AssertionError) as error:
        return f"{str(error).splitlines()[0]} (torch {torch.__version__} is built for CUDA {torch.version.cuda})"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"no CUDA device is visible (CUDA_VISIBLE_DEVICES={visible!r})"


def resolve_device(requested: Requested, *, gpu_reserved: bool = False) -> torch.device:
    """``cpu``, ``cuda`` (raising :class:`DeviceUnusable` when it cannot be used) or, for
    ``auto``, CUDA when usable and the CPU otherwise, except that a run holding a reserved GPU
    needs CUDA whatever it asked for."""
    if requested == "cpu":
        return torch.device("cpu")
    problem = cuda_problem()
    if problem is None:
        return torch.device("cuda")
    if requested == "cuda" or gpu_reserved:
        why = "train.device is cuda" if requested == "cuda" else "the trial reserved a GPU"
        raise DeviceUnusable(f"{why}, but CUDA is unusable here: {problem}")
    return torch.device("cpu")
