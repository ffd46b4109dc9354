"""CasADi: an SX expression graph, ``ca.gradient`` of it, and a ``ca.Function`` replayed by
CasADi's own virtual machine.

CasADi is the closest peer to ``pyad.compile``: it records a graph of scalar operations
once and evaluates value and gradient again at new inputs without Python. Written as its
users write models:

* W1 and W2 with vector expressions over an ``SX.sym`` vector (``sum1`` adds left to right,
  as WORKLOADS.md asks); SX is a graph of scalars, so the recorded ops are the same as pyad's.
* W3 as matrix products of the weight blocks with the (2, points) data matrix.
* W5 with scalar SX nodes in a Python loop: softplus in the stable form
  ``fmax(v, 0) + log1p(exp(-fabs(v)))``, Python's ``sum`` of four nodes, ``*``, and a softmax
  written by hand (SX has none), its maximum subtracted so that ``exp`` cannot overflow.

One-shot = building the SX graph, its gradient, the Function, and one evaluation: what a
CasADi user pays for a graph used once. Replay = calling the Function with a NumPy vector
(values and gradient come back as DM and are converted to float and NumPy, as a user would).
CasADi's C code generation and ``jit`` option are not used: they need a C compiler at run time
and their compile takes seconds; the SX virtual machine is what ``Function`` gives by default.
W4 (a deep chain of sigmoids) is left out: CasADi has no recursion limit and nothing
W5 does not already show.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

import numpy as np

from bench import workloads as wl
from bench.peers import unavailable

NAME = "CasADi"
WORKLOADS = ("W1", "W2", "W3", "W5")

Replay = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _casadi() -> ModuleType:
    import casadi

    return casadi


def available() -> tuple[bool, str]:
    """(True, "3.x.y") when CasADi imports, else (False, why)."""
    try:
        ca = _casadi()
    except Exception as exc:  # a broken install is a table row, not a crash
        return unavailable(exc, "pip install casadi")
    return True, str(getattr(ca, "__version__", "unknown version"))


def inputs(workload: str, size: int) -> np.ndarray:
    """WORKLOADS.md's point of the workload (bench.workloads.input_values)."""
    if workload not in WORKLOADS:
        raise ValueError(f"CasADi adapter: no workload {workload!r}; it has {WORKLOADS}")
    return np.array(wl.input_values(workload, size), dtype=np.float64)


def _w5_graph(ca: ModuleType, x: Any, n_ops: int) -> Any:
    """W5's last node as an SX scalar of the 100 symbols ``x``."""

    def softplus(v: Any) -> Any:
        return ca.fmax(v, 0) + ca.log1p(ca.exp(-ca.fabs(v)))

    def softmax(vs: list[Any]) -> list[Any]:
        top = vs[0]
        for v in vs[1:]:
            top = ca.fmax(top, v)
        # The maximum is differentiated (SX has no stop-gradient); that is what makes this
        # softmax's adjoints accurate where one output saturates: through v - max, the largest
        # input's own exponent is constant, and its adjoint comes from the small terms
        # instead of from 1 - y (which rounds to 0). pyad.reference's partials y_i*(d_ij - y_j)
        # lose those adjoints entirely (tests/test_bench_peers_jax_casadi.py).
        es = [ca.exp(v - top) for v in vs]
        s = es[0]
        for e in es[1:]:
            s = s + e
        return [e / s for e in es]

    nodes = [x[i] for i in range(wl.W5_INPUTS)]
    for k in range(n_ops):
        r = k % 4
        if r == 0:
            nodes.append(softplus(nodes[-10]))
        elif r == 1:
            nodes.append(sum(nodes[-30:-10:5]))
        elif r == 2:
            nodes.append(nodes[-20] * nodes[-10])
        else:
            nodes.extend(softmax(nodes[-4:]))
    return nodes[-1]


def _w3_graph(ca: ModuleType, p: Any, points: int) -> Any:
    """W3's loss as an SX scalar of the 337 parameter symbols ``p``."""
    data = np.array(wl.mlp_data(points), dtype=np.float64)
    h: Any = ca.DM(data[:, :2].T)  # (2, points): one column per point
    n_layers = len(wl.MLP_SIZES) - 1
    k = 0
    for i, (nin, nout) in enumerate(zip(wl.MLP_SIZES[:-1], wl.MLP_SIZES[1:])):
        # parameters go neuron by neuron, weights then bias: column j of this (nin + 1, nout)
        # block (CasADi reshapes column-major) is neuron j
        block = ca.reshape(p[k : k + nout * (nin + 1)], nin + 1, nout).T
        k += nout * (nin + 1)
        h = ca.mtimes(block[:, :nin], h) + ca.repmat(block[:, nin], 1, points)
        if i < n_layers - 1:
            h = ca.tanh(h)
    d = h - ca.DM(data[:, 2]).T
    return ca.sumsqr(d)


def function(workload: str, size: int) -> Any:
    """The ``ca.Function`` mapping the input vector to (loss, gradient)."""
    ca = _casadi()
    n = inputs(workload, size).shape[0]
    x = ca.SX.sym("x", n)
    if workload == "W1":
        a, b = x[: n - 1], x[1:]
        f = ca.sum1(ca.log(a) + a * b - ca.sin(b))
    elif workload == "W2":
        a, b = x[: n - 1], x[1:]
        t = b - a * a
        u = 1 - a
        f = ca.sum1(100 * (t * t) + u * u)
    elif workload == "W3":
        f = _w3_graph(ca, x, size)
    elif workload == "W5":
        f = _w5_graph(ca, x, size)
    else:
        raise ValueError(f"CasADi adapter: no workload {workload!r}; it has {WORKLOADS}")
    return ca.Function(workload.lower(), [x], [f, ca.gradient(f, x)])


def _call(fn: Any, x: np.ndarray) -> tuple[float, np.ndarray]:
    value, grad = fn(x)
    return float(value), np.asarray(grad, dtype=np.float64).ravel()


def one_shot(workload: str, size: int) -> tuple[float, list[float]]:
    """Build the graph, its gradient and the Function, then evaluate once."""
    value, grad = _call(function(workload, size), inputs(workload, size))
    return value, grad.tolist()


def compile(workload: str, size: int) -> Replay:
    """Build the Function once; the replay evaluates it through ``Function.buffer()``, CasADi's
    documented path for repeated evaluation: the VM reads and writes caller-owned NumPy arrays
    directly. (Calling ``fn(x)`` instead converts NumPy to DM and back on every call, which
    at n = 20 000 costs more than the evaluation itself.) Like ``pyad.compile``'s gradient
    views, the returned gradient array is overwritten by the next call."""
    fn = function(workload, size)
    buffer, evaluate = fn.buffer()
    value = np.zeros(1, dtype=np.float64)
    grad = np.zeros(fn.nnz_out(1), dtype=np.float64)
    buffer.set_res(0, memoryview(value))
    buffer.set_res(1, memoryview(grad))
    n = fn.nnz_in(0)

    def replay(x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.shape != (n,):
            raise ValueError(f"expected {n} inputs, got an array of shape {x.shape}")
        buffer.set_arg(0, memoryview(x))
        evaluate()
        if buffer.ret() != 0:
            raise RuntimeError(f"CasADi evaluation of {workload} failed (code {buffer.ret()})")
        return float(value[0]), grad

    return replay
