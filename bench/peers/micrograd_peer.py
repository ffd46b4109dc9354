"""micrograd (A. Karpathy): ``micrograd.engine.Value``, one Python object and closure per op.

The published package (0.1.0) has ``+ - * / **``, ``relu`` and nothing else, so the ops the
workloads need are added the way micrograd's users add them: a function that builds the output
``Value(data, (inputs,), op)`` and sets its ``_backward`` closure. W3 is the shared workload
code, which writes each neuron as micrograd's ``Neuron.__call__`` does (``b + w0*x0 + ...``).
``backward()`` sorts the graph with a recursive ``build_topo``, so graphs deeper than the
recursion limit fail: W4 does, and W1/W2 run at a reduced n. W5 (softplus, softmax) is left out.
"""

from __future__ import annotations

import math
import sys
from types import SimpleNamespace
from typing import Any

from bench.peers import scalar_one_shot, unavailable

NAME = "micrograd"
WORKLOADS = ("W1", "W2", "W3", "W4")
#: frames kept free below the recursion limit (W1/W2's accumulator: one frame per term)
HEADROOM = 200


def available() -> tuple[bool, str]:
    try:
        from importlib.metadata import version

        import micrograd.engine  # noqa: F401
    except Exception as exc:
        return unavailable(exc, "pip install micrograd")
    try:
        return True, version("micrograd")
    except Exception:
        return True, "unknown version"


def _unary(x: Any, data: float, local: float, op: str) -> Any:
    """A new op in micrograd's style: output node plus the closure of its local derivative."""
    from micrograd.engine import Value

    out = Value(data, (x,), op)

    def _backward() -> None:
        x.grad += local * out.grad

    out._backward = _backward
    return out


def _engine() -> SimpleNamespace:
    from micrograd.engine import Value

    def log(x: Any) -> Any:
        return _unary(x, math.log(x.data), 1.0 / x.data, "log")

    def sin(x: Any) -> Any:
        return _unary(x, math.sin(x.data), math.cos(x.data), "sin")

    def exp(x: Any) -> Any:
        y = math.exp(x.data)
        return _unary(x, y, y, "exp")

    def tanh(x: Any) -> Any:
        t = math.tanh(x.data)
        return _unary(x, t, 1.0 - t * t, "tanh")

    # dot is unused: W3 writes each neuron with operators, as micrograd's Neuron does
    return SimpleNamespace(Var=Value, log=log, sin=sin, exp=exp, tanh=tanh, dot=None)


def max_size(workload: str, size: int) -> int:
    """W1/W2's accumulator is a chain as deep as n: keep it under the recursion limit."""
    if workload in ("W1", "W2"):
        return min(size, max(50, sys.getrecursionlimit() - HEADROOM))
    return size


def one_shot(workload: str, size: int) -> tuple[float, list[float]]:
    return scalar_one_shot(
        _engine(), workload, size, lambda loss: float(loss.data), lambda x: float(x.grad)
    )
