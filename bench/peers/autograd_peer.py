"""HIPS autograd: ``autograd.value_and_grad`` of a function written with ``autograd.numpy``.

Its users write array code, so W1, W2 (over the input vector) and W3 (the network as matrix
products over the 100 points) are vectorised; W4 and W5 are sequences of scalar operations
on boxed numbers, which is how the same users write a recurrence. The backward pass is an
iterative topological sweep, so W4 does not hit the recursion limit.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from bench import workloads as wl
from bench.peers import unavailable

NAME = "autograd (HIPS)"
WORKLOADS = ("W1", "W2", "W3", "W4", "W5")


def available() -> tuple[bool, str]:
    try:
        from importlib.metadata import version

        import autograd  # noqa: F401
    except Exception as exc:
        return unavailable(exc, "pip install autograd")
    try:
        return True, version("autograd")
    except Exception:
        return True, "unknown version"


def mlp_arrays() -> tuple[np.ndarray, np.ndarray]:
    """W3's data as arrays: inputs (points, 2) and targets (points,)."""
    data = np.array(wl.mlp_data(wl.MLP_POINTS), dtype=np.float64)
    return data[:, :2], data[:, 2]


def _function(workload: str, size: int) -> tuple[Callable[[Any], Any], np.ndarray]:
    import autograd.numpy as anp
    from autograd.tracer import getval

    if workload in ("W1", "W2"):
        loss = wl.w1_array if workload == "W1" else wl.w2_array
        return (lambda x: loss(anp, x)), np.array(wl.input_vector(size))
    if workload == "W3":
        xs, targets = mlp_arrays()
        xs, targets = xs[:size], targets[:size]

        return (lambda p: wl.w3_array(anp, p, xs, targets)), np.array(wl.mlp_parameter_values())
    if workload == "W4":

        def f(x: Any) -> Any:
            v = x[0]
            for _ in range(size):
                v = 1.0 / (1.0 + anp.exp(-v))
            return v

        return f, np.array([0.5])
    if workload == "W5":

        def softplus(v: Any) -> Any:
            return anp.maximum(v, 0.0) + anp.log1p(anp.exp(-anp.abs(v)))

        def softmax(vs: list[Any]) -> list[Any]:
            top = max(getval(v) for v in vs)  # a constant shift: not differentiated
            es = [anp.exp(v - top) for v in vs]
            s = wl.sum_left_to_right(es)
            return [e / s for e in es]

        m = type("AutogradW5", (), {})()
        m.softplus, m.sum, m.softmax = softplus, wl.sum_left_to_right, softmax

        def f(x: Any) -> Any:
            return wl.w5_nodes(m, [x[i] for i in range(wl.W5_INPUTS)], size)[-1]

        return f, np.arange(wl.W5_INPUTS, dtype=np.float64)
    raise ValueError(f"autograd adapter: no workload {workload!r}")


def one_shot(workload: str, size: int) -> tuple[float, list[float]]:
    from autograd import value_and_grad

    f, x = _function(workload, size)
    value, grad = value_and_grad(f)(x)
    return float(value), [float(g) for g in grad]
