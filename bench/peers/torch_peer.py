"""PyTorch eager autograd on 0-d tensors, as micrograd-style scalar code is written for it.

Every leaf is ``torch.tensor(v, dtype=torch.float64, requires_grad=True)`` and the shared
workload code runs on them unchanged (``torch.log``, ``torch.sin``, ... on 0-d tensors), so
each scalar op is one tensor op and one autograd node: the per-op cost pyad competes with.
The vectorised formulation, where one exists, is the separate peer ``torch_vectorised``.
Threads are left at PyTorch's default; every op here is a single element.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench import workloads as wl
from bench.peers import scalar_one_shot, unavailable

NAME = "torch (0-d tensors)"
WORKLOADS = ("W1", "W2", "W3", "W4", "W5")


def available() -> tuple[bool, str]:
    try:
        import torch
    except Exception as exc:  # a broken install too (missing CUDA libraries, ...)
        return unavailable(
            exc, "CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu"
        )
    return True, str(torch.__version__)


def _engine() -> SimpleNamespace:
    import torch

    def var(v: float) -> Any:
        return torch.tensor(v, dtype=torch.float64, requires_grad=True)

    def softplus(x: Any) -> Any:
        return torch.clamp(x, min=0.0) + torch.log1p(torch.exp(-torch.abs(x)))

    def softmax(xs: list[Any]) -> list[Any]:
        return list(torch.softmax(torch.stack(xs), dim=0).unbind())

    return SimpleNamespace(
        Var=var,
        log=torch.log,
        sin=torch.sin,
        exp=torch.exp,
        tanh=torch.tanh,
        dot=None,  # W3 writes each neuron with operators
        softplus=softplus,
        sum=wl.sum_left_to_right,
        softmax=softmax,
    )


def one_shot(workload: str, size: int) -> tuple[float, list[float]]:
    return scalar_one_shot(
        _engine(),
        workload,
        size,
        lambda loss: float(loss.item()),
        lambda x: float(x.grad.item()) if x.grad is not None else 0.0,
    )
