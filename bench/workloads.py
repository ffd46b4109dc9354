"""The benchmark workloads of docs/WORKLOADS.md, each written once.

Every workload is a pair of functions of an *engine* ``m``: a module (or namespace) providing
``Var, log, sin, exp, tanh, dot, softplus, sum, softmax``. ``pyad`` and ``pyad.reference``
are engines; so is :data:`FLOATS`, whose ``Var`` is ``float`` and whose functions come from
:mod:`math`, so the very same code also gives the float floor (the cost before anything is
recorded).

``inputs(m, size)`` builds the leaves (called outside the timed region); ``loss(m, leaves,
size)`` computes the loss from them (the timed recording). Functions are bound to local names
once per call, for every engine alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

#: An engine: a module or namespace with ``Var, log, sin, exp, tanh, dot, softplus, sum,
#: softmax``.
Engine = Any


def _float_dot(ws: Sequence[float], xs: Sequence[float]) -> float:
    """``0.0 + w0*x0 + w1*x1 + ...`` left to right, as pyad.reference.dot computes it."""
    y = 0.0
    for w, x in zip(ws, xs):
        y = y + w * x
    return y


def _float_softplus(x: float) -> float:
    """``log(1 + exp(x))`` computed stably, as WORKLOADS.md and pyad.reference do."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def sum_left_to_right(xs: Iterable[Any]) -> Any:
    """``0.0 + x0 + x1 + ...`` left to right, as pyad.sum computes it (``math.fsum`` would
    round differently and ``sum`` starts at the integer 0); any type with ``+`` will do."""
    y: Any = 0.0
    for x in xs:
        y = y + x
    return y


def _float_softmax(xs: Iterable[float]) -> list[float]:
    """``exp(x_i - max) / s`` with ``s`` the left-to-right sum: a list, as pyad.softmax of
    numbers returns."""
    vals = list(xs)
    m = max(vals)
    es = [math.exp(v - m) for v in vals]
    s = 0.0
    for e in es:
        s = s + e
    return [e / s for e in es]


#: The float "engine": no AD at all, the floor any define-by-run Python engine pays.
FLOATS = SimpleNamespace(
    __name__="float",
    Var=float,
    log=math.log,
    sin=math.sin,
    exp=math.exp,
    tanh=math.tanh,
    dot=_float_dot,
    softplus=_float_softplus,
    sum=sum_left_to_right,
    softmax=_float_softmax,
)


def input_vector(n: int) -> list[float]:
    """WORKLOADS.md's deterministic parameters: ``1.0 + 0.5 * ((i * 7919) % 1000) / 1000.0``."""
    return [1.0 + 0.5 * ((i * 7919) % 1000) / 1000.0 for i in range(n)]


def _vector_leaves(m: Engine, n: int) -> list[Any]:
    var = m.Var
    return [var(v) for v in input_vector(n)]


# -- W1 seed-sum -------------------------------------------------------------------------------
def w1_loss(m: Engine, x: list[Any], n: int) -> Any:
    """sum over i of ln(x[i]) + x[i]*x[i+1] - sin(x[i+1]), accumulated left to right."""
    log, sin = m.log, m.sin
    acc: Any = 0
    for a, b in zip(x[:-1], x[1:]):
        acc = acc + (log(a) + a * b - sin(b))
    return acc


# -- W2 rosenbrock -----------------------------------------------------------------------------
def w2_loss(m: Engine, x: list[Any], n: int) -> Any:
    """sum over i of 100*(x[i+1] - x[i]*x[i])**2 + (1 - x[i])**2, squares as t*t."""
    acc: Any = 0
    for a, b in zip(x[:-1], x[1:]):
        t = b - a * a
        u = 1 - a
        acc = acc + (100 * (t * t) + u * u)
    return acc


# -- W1 and W2 as array code, for the engines whose users write them vectorised ------------
def w1_array(xp: Any, x: Any) -> Any:
    """W1 on an array ``x`` with ``xp`` a numpy-like module (autograd.numpy, jax.numpy,
    torch): one elementwise expression and one sum."""
    a, b = x[:-1], x[1:]
    return xp.sum(xp.log(a) + a * b - xp.sin(b))


def w2_array(xp: Any, x: Any) -> Any:
    """W2 on an array ``x``, as :func:`w1_array`."""
    a, b = x[:-1], x[1:]
    t = b - a * a
    u = 1.0 - a
    return xp.sum(100.0 * (t * t) + u * u)


# -- W3 mlp ------------------------------------------------------------------------------------
MLP_SIZES = (2, 16, 16, 1)
MLP_POINTS = 100


def mlp_parameter_values() -> list[float]:
    """Parameter k (layer by layer, neuron by neuron, weights then bias) is 0.5*sin(k+1)."""
    count = sum((nin + 1) * nout for nin, nout in zip(MLP_SIZES[:-1], MLP_SIZES[1:]))
    return [0.5 * math.sin(k + 1) for k in range(count)]


def mlp_data(points: int) -> list[tuple[float, float, float]]:
    """Points j = 0..points-1 of WORKLOADS.md's 100-point data set: (x0, x1, target).

    Point j is always ``a = j / 100 * 2*pi`` (so ``--quick``'s 20 points are the first 20 of
    the 100, not a coarser circle)."""
    data = []
    for j in range(points):
        a = j / MLP_POINTS * 2 * math.pi
        r = 1 + 0.3 * math.sin(3 * a)
        data.append((math.cos(a) * r, math.sin(a) * r, 1.0 if j % 2 == 0 else -1.0))
    return data


def mlp_inputs(m: Engine, points: int) -> list[Any]:
    """The 337 parameters as leaves."""
    var = m.Var
    return [var(v) for v in mlp_parameter_values()]


def _mlp_layers(params: list[Any]) -> list[list[tuple[list[Any], Any]]]:
    """Split the flat parameter list into layers of (weights, bias) neurons."""
    layers = []
    k = 0
    for nin, nout in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        neurons = []
        for _ in range(nout):
            neurons.append((params[k : k + nin], params[k + nin]))
            k += nin + 1
        layers.append(neurons)
    assert k == len(params)
    return layers


def _mlp_loss(m: Engine, params: list[Any], points: int, use_dot: bool) -> Any:
    tanh, dot = m.tanh, m.dot
    layers = _mlp_layers(params)
    last = len(layers) - 1
    loss: Any = 0
    for x0, x1, target in mlp_data(points):
        xs: list[Any] = [x0, x1]
        for li, layer in enumerate(layers):
            outs = []
            for ws, b in layer:
                if use_dot:
                    act = dot(ws, xs) + b
                else:  # micrograd: sum((wi*xi for wi, xi in zip(w, x)), b)
                    act = b
                    for wi, xi in zip(ws, xs):
                        act = act + wi * xi
                outs.append(act if li == last else tanh(act))
            xs = outs
        d = xs[0] - target
        loss = loss + d * d
    return loss


def w3_loss(m: Engine, params: list[Any], points: int) -> Any:
    """Squared error of the 2-16-16-1 tanh network, weighted sums written with operators."""
    return _mlp_loss(m, params, points, use_dot=False)


def w3dot_loss(m: Engine, params: list[Any], points: int) -> Any:
    """The same network, each neuron's weighted sum as ``m.dot(ws, xs) + b``."""
    return _mlp_loss(m, params, points, use_dot=True)


def mlp_unpack(p: Any) -> list[tuple[Any, Any]]:
    """The flat parameter vector as (weights (nout, nin), bias (nout,)) per layer: parameters
    go layer by layer, neuron by neuron, weights then bias."""
    layers = []
    k = 0
    for nin, nout in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        block = p[k : k + nout * (nin + 1)].reshape((nout, nin + 1))
        layers.append((block[:, :nin], block[:, nin]))
        k += nout * (nin + 1)
    return layers


def w3_array(xp: Any, p: Any, points: Any, targets: Any) -> Any:
    """W3 on the parameter vector ``p`` as array code with ``xp`` a numpy-like module: each
    layer is ``h @ w.T + b`` over all the points at once (``points`` of shape (points, 2),
    ``targets`` of shape (points,)), then ``tanh`` except in the output layer. The weighted
    sums are products that add the bias last, so the loss equals W3's up to the order of
    its additions, not bit for bit."""
    layers = mlp_unpack(p)
    h = points
    for i, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if i < len(layers) - 1:
            h = xp.tanh(h)
    d = h[:, 0] - targets
    return xp.sum(d * d)


# -- W4 chain ----------------------------------------------------------------------------------
def w4_inputs(m: Engine, depth: int) -> list[Any]:
    """The single leaf x0 = 0.5."""
    return [m.Var(0.5)]


def w4_loss(m: Engine, x: list[Any], depth: int) -> Any:
    """v = x0; repeat depth times: v = 1 / (1 + exp(-v)) (sigmoid written with operators)."""
    exp = m.exp
    v = x[0]
    for _ in range(depth):
        v = 1 / (1 + exp(-v))
    return v


def w4_log10_true_gradient(depth: int) -> float:
    """log10 of the exact dv/dx0 of W4 (a product of sigmoid' terms), which float64 cannot
    hold: the value the engines' 0.0 stands for."""
    v, total = 0.5, 0.0
    for _ in range(depth):
        v = 1 / (1 + math.exp(-v))
        total += math.log10(v * (1 - v))
    return total


# -- W5 rogozhnikov ---------------------------------------------------------------------------
#: W5's initial nodes (x[i] = float(i)) and its default number of operations.
W5_INPUTS = 100
W5_OPS = 10_000


def w5_inputs(m: Engine, n_ops: int) -> list[Any]:
    """The 100 initial nodes, values 0.0 .. 99.0."""
    var = m.Var
    return [var(float(i)) for i in range(W5_INPUTS)]


def input_values(workload: str, size: int) -> list[float]:
    """The point every engine evaluates a workload at, as floats: the x vector of n = size
    (W1, W2), the network's parameters (W3) or W5's initial nodes 0.0 .. 99.0."""
    if workload in ("W1", "W2"):
        return input_vector(size)
    if workload == "W3":
        return mlp_parameter_values()
    if workload == "W5":
        return [float(i) for i in range(W5_INPUTS)]
    raise ValueError(f"{workload} has no input vector; W1, W2, W3 and W5 have")


def w5_nodes(m: Engine, x: list[Any], n_ops: int) -> list[Any]:
    """Every node of W5 in order, the inputs ``x`` first; op k by k % 4: softplus of
    nodes[-10], sum of nodes[-30:-10:5], nodes[-20] * nodes[-10], softmax of nodes[-4:]
    (its 4 outputs appended). All nodes, not only the last: W5's input gradient is exactly 0 at
    10 000 ops (the softmax saturates), so a meaningful check compares every node's adjoint."""
    softplus, add_all, softmax = m.softplus, m.sum, m.softmax
    nodes = list(x)
    append, extend = nodes.append, nodes.extend
    for k in range(n_ops):
        r = k % 4
        if r == 0:
            append(softplus(nodes[-10]))
        elif r == 1:
            append(add_all(nodes[-30:-10:5]))
        elif r == 2:
            append(nodes[-20] * nodes[-10])
        else:
            extend(softmax(nodes[-4:]))
    return nodes


def w5_loss(m: Engine, x: list[Any], n_ops: int) -> Any:
    """The last node of W5."""
    return w5_nodes(m, x, n_ops)[-1]


# -- the table -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """One benchmark workload: how to build its leaves and its loss for any engine."""

    key: str
    title: str
    size_name: str
    size: int
    quick_size: int
    inputs: Callable[[Engine, int], list[Any]]
    loss: Callable[[Engine, list[Any], int], Any]
    note: str = ""
    #: another formulation of the same loss that pyad also runs, to compare the two
    baseline: Callable[[Engine, list[Any], int], Any] | None = None


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload("W1", "seed-sum", "n", 20_000, 2_000, _vector_leaves, w1_loss),
        Workload("W2", "rosenbrock", "n", 20_000, 2_000, _vector_leaves, w2_loss),
        Workload(
            "W3",
            "mlp 2-16-16-1 tanh, operators",
            "points",
            MLP_POINTS,
            20,
            mlp_inputs,
            w3_loss,
        ),
        Workload(
            "W3-dot",
            "mlp 2-16-16-1 tanh, dot per neuron",
            "points",
            MLP_POINTS,
            20,
            mlp_inputs,
            w3dot_loss,
            baseline=w3_loss,
        ),
        Workload(
            "W4", "chain (sigmoid with operators)", "depth", 100_000, 10_000, w4_inputs, w4_loss
        ),
        Workload(
            "W5",
            "rogozhnikov (softplus, sum, mul, softmax)",
            "n_ops",
            W5_OPS,
            1_000,
            w5_inputs,
            w5_loss,
            note="at 10 000 ops the gradient w.r.t. the 100 inputs is exactly 0 (the softmax "
            "saturates), so grad diffs there compare zeros; tests/test_bench_cpeers.py checks "
            "every node's adjoint, and the replay rows also check W5 at 1 000 ops",
        ),
    )
}
