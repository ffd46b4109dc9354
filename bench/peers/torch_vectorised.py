"""PyTorch with the workloads written as tensor operations over whole vectors.

What a PyTorch user writes when the loss is an elementwise expression: W1 and W2 over the
input vector (shifted slices), W3 as matrix products over the 100 points. W4 and W5 are
sequential recurrences with no vector form, so they are left to the 0-d adapter.
"""

from __future__ import annotations

from bench import workloads as wl
from bench.peers import torch_peer
from bench.peers.autograd_peer import mlp_arrays

NAME = "torch (vectorised)"
WORKLOADS = ("W1", "W2", "W3")


def available() -> tuple[bool, str]:
    return torch_peer.available()


def one_shot(workload: str, size: int) -> tuple[float, list[float]]:
    import torch

    if workload == "W3":
        xs_np, targets_np = mlp_arrays()
        xs = torch.from_numpy(xs_np[:size])
        targets = torch.from_numpy(targets_np[:size])
        p = torch.tensor(wl.mlp_parameter_values(), dtype=torch.float64, requires_grad=True)
        loss = wl.w3_array(torch, p, xs, targets)
    else:
        p = torch.tensor(wl.input_vector(size), dtype=torch.float64, requires_grad=True)
        if workload not in ("W1", "W2"):
            raise ValueError(f"torch (vectorised): no workload {workload!r}")
        loss = (wl.w1_array if workload == "W1" else wl.w2_array)(torch, p)
    loss.backward()
    assert p.grad is not None
    return float(loss.item()), p.grad.tolist()
