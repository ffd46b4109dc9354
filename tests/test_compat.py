"""pyad.compat: rad.py's and micrograd's APIs on the tape, checked against independent oracles.

* rad: the numbers of rad.py's example script, and a small path-walking engine written here
  (rad.py's algorithm: every node pushes ``multiplier * gv`` to its inputs, recursively);
* micrograd's engine: its own tests (``test_sanity_check``, ``test_more_ops``), checked
  against PyTorch when it is installed and against ``pyad.reference`` otherwise;
* micrograd's nn: initialisation, parameters, forward values to the last bit (against plain
  float arithmetic in micrograd's order), gradients, zero_grad, an SGD step, the demo.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import random
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import pyad
from pyad import reference
from pyad._native import CHUNK_RECORDS
from pyad.compat import rad
from pyad.compat.micrograd import nn
from pyad.compat.micrograd.engine import Value
from pyad.compat.micrograd.nn import MLP, Layer, Module, Neuron

try:
    import torch
except ImportError:  # the oracle is then pyad.reference
    torch = None

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


# -- rad ---------------------------------------------------------------------------------------


class PathVar:
    """The oracle for rad: values and (multiplier, input) lists in Python, and a gradient
    pushed down every path recursively (rad.py's algorithm, so its exact sums)."""

    def __init__(self, v: float, inputs: tuple[tuple[float, PathVar], ...] = ()) -> None:
        self.v = v
        self.inputs = inputs
        self.gv = 0.0

    @staticmethod
    def of(x: PathVar | float) -> PathVar:
        return x if isinstance(x, PathVar) else PathVar(x)

    def __add__(self, other: PathVar | float) -> PathVar:
        o = PathVar.of(other)
        return PathVar(self.v + o.v, ((1.0, self), (1.0, o)))

    __radd__ = __add__

    def __neg__(self) -> PathVar:
        return PathVar(-self.v, ((-1.0, self),))

    def __sub__(self, other: PathVar | float) -> PathVar:
        return self + (-PathVar.of(other))

    def __mul__(self, other: PathVar | float) -> PathVar:
        o = PathVar.of(other)
        return PathVar(self.v * o.v, ((o.v, self), (self.v, o)))

    __rmul__ = __mul__

    def __truediv__(self, other: PathVar | float) -> PathVar:
        o = PathVar.of(other)
        return PathVar(self.v / o.v, ((1.0 / o.v, self), (-self.v / o.v**2, o)))

    def __rtruediv__(self, other: float) -> PathVar:
        return PathVar.of(other) / self

    def grad(self, gv: float) -> None:
        self.gv += gv
        for multiplier, x in self.inputs:
            x.grad(multiplier * gv)


def _path_fn(f: Callable[[float], float], df: Callable[[float], float]) -> Any:
    return lambda x: PathVar(f(x.v), ((df(x.v), x),))


path_exp = _path_fn(math.exp, math.exp)
path_log = _path_fn(math.log, lambda v: 1.0 / v)
path_sin = _path_fn(math.sin, math.cos)


def test_rad_example_prints_rads_numbers() -> None:
    example = _load_example("rad_example")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        example.main()
    assert out.getvalue().splitlines()[:4] == [
        "xx = 0.5, sigmoid = 0.62",
        "dsigmoid/dxx = 0.24",
        "x1 = 2.0, x2 = 5.0, f = 1.2e+01",
        "df/dx1 = 5.5, df/dx2 = 1.7",
    ]


@pytest.mark.parametrize(
    ("module", "exp", "log", "sin"),
    [(rad, rad.exp, rad.log, rad.sin), (None, path_exp, path_log, path_sin)],
    ids=["pyad", "oracle"],
)
def test_rad_example_to_the_last_digit(module: Any, exp: Any, log: Any, sin: Any) -> None:
    make = rad.Var if module else PathVar
    xx = make(0.5)
    sigmoid = 1 / (1 + exp(-xx))
    sigmoid.grad(1.0)
    x1, x2 = make(2.0), make(5.0)
    f = log(x1) + x1 * x2 - sin(x2)
    f.grad(1.0)
    s = 1 / (1 + math.exp(-0.5))
    assert sigmoid.v == s
    assert xx.gv == pytest.approx(s * (1 - s), rel=1e-15)
    assert f.v == pytest.approx(11.652071455223084, rel=1e-15)
    assert (x1.gv, x2.gv) == pytest.approx((5.5, 1.7163378145367738), rel=1e-15)


def test_rad_grad_matches_the_path_walking_oracle() -> None:
    def program(V: Any, exp: Any, log: Any, sin: Any, div: Any) -> tuple[Any, ...]:
        a, b = V(1.5), V(-0.7)
        c = a * b + div(a, 3.0) - 2 * b
        d = exp(c) * sin(a) + log(a * a) / (c - 4)
        e = d * d + c * d - div(2, d)  # c and d reach e along several paths
        e.grad(0.5)
        e.grad(2.0)  # accumulates again, as in rad.py
        return a, b, c, d, e

    ours = program(rad.Var, rad.exp, rad.log, rad.sin, rad.div)
    theirs = program(PathVar, path_exp, path_log, path_sin, lambda x, y: PathVar.of(x) / y)
    for x, y in zip(ours, theirs):
        assert x.v == pytest.approx(y.v, rel=1e-14)
        assert x.gv == pytest.approx(y.gv, rel=1e-12)
    assert ours[-1].gv == 2.5


def test_rad_api() -> None:
    x = rad.Var(2)
    assert x.v == 2.0 and x.gv == 0.0
    # ensure_var: a Var unchanged, anything else wrapped in a new input
    assert rad.ensure_var(x) is x
    c = rad.ensure_var(3)
    assert isinstance(c, rad.Var) and c.v == 3.0 and c.predecessors == ()
    # functions of numbers give Vars, as in rad.py; ln is an earlier name of log
    for y in (rad.exp(1.0), rad.log(2.0), rad.sin(0.5), rad.div(1, 4), rad.ln(2.0)):
        assert isinstance(y, rad.Var)
    assert rad.ln is rad.log
    # every operator returns this module's Var
    for y in (x + 1, 1 + x, x - 1, 1 - x, x * x, 2 * x, x / 2, 2 / x, -x, x**2, abs(x)):
        assert type(y) is rad.Var
    # predecessors: (multiplier, var) pairs of this module's Var
    f = x * c
    (p, q) = f.predecessors
    assert isinstance(p, rad.Predecessor)
    assert (p.multiplier, q.multiplier) == (3.0, 2.0)
    assert type(p.var) is rad.Var and p.var.v == 2.0
    multiplier, var = p  # unpacks like rad.py's namedtuple version
    assert multiplier == 3.0
    f.grad(1.0)
    assert var.gv == x.gv == 3.0 and c.gv == 2.0
    # gv is assignable, grad accumulates
    x.gv = 0.0
    f.grad(2.0)
    assert x.gv == 6.0
    assert repr(rad.Var(1.5)) == "Var(v=1.5, gv=0.0)"


def test_rad_plain_pyad_vars_join_in() -> None:
    x = rad.Var(0.3)
    y = rad.ensure_var(pyad.cos(x))  # pyad's other functions, given rad's API
    assert type(y) is rad.Var
    z = pyad.cos(x) * x  # a subclass operand wins: the result has rad's API
    assert type(z) is rad.Var
    (y * x).grad(1.0)
    assert x.gv == pytest.approx(math.cos(0.3) - 0.3 * math.sin(0.3), rel=1e-15)


def test_rad_errors_and_depth() -> None:
    with pytest.raises(ValueError):
        rad.log(rad.Var(-1.0))
    with pytest.raises(ZeroDivisionError):
        rad.div(rad.Var(1.0), 0)
    with pytest.raises(TypeError):
        rad.Var("1")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):  # read from the tape: appending would be ignored
        rad.Var(1.0).predecessors.append(rad.Predecessor(1.0, rad.Var(2.0)))  # type: ignore[attr-defined]
    # rad.py's recursive grad() dies past ~1000 levels; one sweep does not recurse
    x = y = rad.Var(1.0)
    for _ in range(20_000):
        y = y * 1.0 + 0.0
    y.grad(1.0)
    assert x.gv == 1.0


# -- micrograd: engine -------------------------------------------------------------------------


def _oracle_leaf(v: float) -> Any:
    if torch is not None:
        t = torch.tensor([v], dtype=torch.float64)
        t.requires_grad = True
        return t
    return reference.Var(v)


def _oracle_relu(x: Any) -> Any:
    return x.relu() if torch is not None else reference.relu(x)


def _oracle_value(x: Any) -> float:
    return float(x.data.item()) if torch is not None else float(x.v)


def _oracle_grad(x: Any) -> float:
    return float(x.grad.item()) if torch is not None else float(x.grad)


def test_sanity_check() -> None:
    x = Value(-4.0)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    xmg, ymg = x, y

    x = _oracle_leaf(-4.0)
    z = 2 * x + 2 + x
    q = _oracle_relu(z) + z * x
    h = _oracle_relu(z * z)
    y = h + q + q * x
    y.backward()
    xpt, ypt = x, y

    # forward pass went well
    assert ymg.data == _oracle_value(ypt)
    # backward pass went well
    assert xmg.grad == _oracle_grad(xpt)


def test_more_ops() -> None:
    a = Value(-4.0)
    b = Value(2.0)
    c = a + b
    d = a * b + b**3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g += 10.0 / f
    g.backward()
    amg, bmg, gmg = a, b, g

    a = _oracle_leaf(-4.0)
    b = _oracle_leaf(2.0)
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + _oracle_relu(b + a)
    d = d + 3 * d + _oracle_relu(b - a)
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.backward()
    apt, bpt, gpt = a, b, g

    tol = 1e-6
    # forward pass went well
    assert abs(gmg.data - _oracle_value(gpt)) < tol
    # backward pass went well
    assert abs(amg.grad - _oracle_grad(apt)) < tol
    assert abs(bmg.grad - _oracle_grad(bpt)) < tol


def test_methods_and_results_are_values() -> None:
    x = Value(0.7)
    ops = {
        "relu": (x.relu(), 0.7, 1.0),
        "tanh": (x.tanh(), math.tanh(0.7), 1 - math.tanh(0.7) ** 2),
        "exp": (x.exp(), math.exp(0.7), math.exp(0.7)),
        "log": (x.log(), math.log(0.7), 1 / 0.7),
        "pow": (x**3, 0.7**3, 3 * 0.7**2),
        "rtruediv": (2 / x, 2 / 0.7, -2 / 0.7**2),
    }
    for name, (y, value, slope) in ops.items():
        assert type(y) is Value, name
        assert y.data == pytest.approx(value, rel=1e-15), name
        x.grad = 0
        y.backward()
        assert x.grad == pytest.approx(slope, rel=1e-14), name
    assert Value(-1.0).relu().data == 0.0 and Value(0.0).relu().data == 0.0
    for y in (x + x, 1 + x, x - 1, 1 - x, x * 2, 2 * x, x / x, -x, abs(x), x + np.float64(1)):
        assert type(y) is Value
    yi = np.int64(-1)  # the demo's labels are numpy integers
    assert type(1 + -yi * x) is Value and (1 + -yi * x).data == 1.7


def test_value_api() -> None:
    v = Value(2, (), "+", label="v")  # micrograd's extra constructor arguments are ignored
    assert (v.data, v.grad) == (2.0, 0.0)
    assert repr(v) == "Value(data=2.0, grad=0.0)"
    v.data -= 0.5  # an input (a parameter): writable
    assert v.data == 1.5
    v.grad = 3
    assert v.grad == 3.0
    with pytest.raises(pyad.errors.NotLeafError):
        (v * 2).data = 1.0
    # number exponents only; a Value exponent is a TypeError, even under python -O
    with pytest.raises(TypeError):
        v ** Value(2.0)  # type: ignore[operator]
    with pytest.raises(TypeError):
        2 ** Value(2.0)  # type: ignore[operator]
    with pytest.raises(TypeError):
        v ** "2"  # type: ignore[operator]
    with pytest.raises(ZeroDivisionError):
        1.0 / Value(0.0)
    with pytest.raises(ZeroDivisionError):
        Value(0.0) ** -1
    with pytest.raises(ValueError):
        Value(-1.0).log()


def test_backward_seeds_one_and_gradients_accumulate() -> None:
    x = Value(3.0)
    y = x * x
    y.grad = 5.0  # micrograd's backward sets self.grad = 1; it does not add to it
    y.backward()
    assert (y.grad, x.grad) == (1.0, 6.0)
    z = x * 4.0  # a new graph: the parameter's gradient accumulates until zeroed
    z.backward()
    assert x.grad == 10.0
    y.backward()  # intermediate nodes too: a second backward() sets y.grad to 1 again
    assert (y.grad, x.grad) == (1.0, 16.0)


def test_values_across_segment_boundaries() -> None:
    with pyad.Tape() as t:
        x = Value(0.5)
        y = x
        ys = []
        for _ in range(2 * CHUNK_RECORDS + 100):
            y = (y * 0.999 + 0.001).tanh()
            ys.append(y)
        assert len(t) > 2000
        assert all(type(v) is Value for v in ys)
        y.backward()
        r = ry = reference.Var(0.5)
        for _ in range(2 * CHUNK_RECORDS + 100):
            ry = reference.tanh(ry * 0.999 + 0.001)
        ry.backward()
        assert y.data == pytest.approx(ry.v, rel=1e-14)
        assert x.grad == pytest.approx(r.grad, rel=1e-12)
        # neurons (one dot record each) across boundaries too
        random.seed(0)
        layer = Layer(3, 1500)
        out = layer([Value(1.0), Value(-2.0), Value(0.5)])
        assert len(out) == 1500 and all(type(o) is Value for o in out)


# -- micrograd: nn -----------------------------------------------------------------------------


def _float_mlp(weights: list[list[list[float]]], biases: list[list[float]], x: list[float]) -> Any:
    """The MLP with plain floats, added up in micrograd's order: b + w0*x0 + w1*x1 + ..."""
    for i, (ws, bs) in enumerate(zip(weights, biases)):
        out = []
        for w, b in zip(ws, bs):
            act = b
            for wi, xi in zip(w, x):
                act = act + wi * xi
            out.append(max(act, 0.0) if i < len(weights) - 1 else act)
        x = out
    return x


def test_initialisation_and_parameters_follow_micrograd() -> None:
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    random.seed(1337)
    draws = [random.uniform(-1, 1) for _ in range(2 * 16 + 16 * 16 + 16)]
    params = model.parameters()
    assert len(params) == 337
    assert all(type(p) is Value for p in params)
    weights = [p.data for n in (n for la in model.layers for n in la.neurons) for p in n.w]
    assert weights == draws
    assert all(n.b.data == 0.0 for la in model.layers for n in la.neurons)
    assert len(MLP(3, [4, 4, 1]).parameters()) == 41
    n = Neuron(3, nonlin=False)
    assert n.parameters() == [*n.w, n.b]
    assert repr(n) == "LinearNeuron(3)"
    assert repr(Layer(2, 2)) == "Layer of [ReLUNeuron(2), ReLUNeuron(2)]"
    assert repr(MLP(1, [1])) == "MLP of [Layer of [LinearNeuron(1)]]"
    assert Module().parameters() == [] and isinstance(nn.Module(), Module)
    if importlib.util.find_spec("micrograd") is not None:  # the real thing, when installed
        from micrograd.nn import MLP as MicrogradMLP

        random.seed(7)
        theirs = MicrogradMLP(3, [4, 4, 1])
        random.seed(7)
        ours = MLP(3, [4, 4, 1])
        assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
        assert repr(ours) == repr(theirs)


def test_forward_is_micrograds_to_the_last_bit_and_gradients_match() -> None:
    random.seed(3)
    model = MLP(3, [8, 8, 1])
    for p in model.parameters()[::5]:
        p.data = random.uniform(-0.5, 0.5)  # nonzero biases
    weights = [[[w.data for w in n.w] for n in la.neurons] for la in model.layers]
    biases = [[n.b.data for n in la.neurons] for la in model.layers]
    x = [0.3, -1.2, 2.5]
    expected = _float_mlp(weights, biases, x)[0]
    for inputs in (
        [Value(v) for v in x],  # Values (the demo)
        x,  # floats
        [np.float64(v) for v in x],  # numpy scalars
        [Value(x[0]), x[1], np.float64(x[2])],  # a mix
        (Value(v) for v in x),  # any iterable
    ):
        out = model(inputs)
        assert type(out) is Value
        assert out.data == expected
    # gradients against the reference engine, written the way micrograd writes a neuron
    out = model([Value(v) for v in x])
    model.zero_grad()
    out.backward()
    rparams = [reference.Var(p.data) for p in model.parameters()]
    it = iter(rparams)
    h: list[Any] = [reference.Var(v) for v in x]
    for i, la in enumerate(model.layers):
        nxt = []
        for n in la.neurons:
            w = [next(it) for _ in n.w]
            act = sum((wi * hi for wi, hi in zip(w, h)), next(it))
            nxt.append(reference.relu(act) if i < len(model.layers) - 1 else act)
        h = nxt
    h[0].backward()
    for p, r in zip(model.parameters(), rparams):
        assert p.grad == pytest.approx(r.grad, rel=1e-12, abs=1e-15)


def test_neuron_zips_like_micrograd() -> None:
    n = Neuron(3, nonlin=False)
    w = [p.data for p in n.w]
    assert n([1.0, 2.0]).data == 0.0 + w[0] * 1.0 + w[1] * 2.0  # zip stops at the shorter
    assert n([Value(1.0), Value(2.0), Value(3.0), Value(4.0)]).data == (
        0.0 + w[0] * 1.0 + w[1] * 2.0 + w[2] * 3.0
    )


def _svm_loss(model: MLP, X: Any, y: Any) -> Any:
    scores = [model(list(map(Value, row))) for row in X]
    losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    return data_loss + 1e-4 * sum(p * p for p in model.parameters())


def test_zero_grad_and_one_sgd_step_decreases_the_loss() -> None:
    random.seed(11)
    rng = np.random.RandomState(11)
    X = rng.normal(size=(20, 2))
    y = np.where(X[:, 0] + X[:, 1] > 0, 1, -1)
    model = MLP(2, [8, 1])
    loss = _svm_loss(model, X, y)
    loss.backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())
    loss.backward()
    for p in model.parameters():
        p.data -= 0.05 * p.grad
    assert _svm_loss(model, X, y).data < loss.data


def test_the_demo_trains_to_full_accuracy() -> None:
    demo = _load_example("micrograd_demo")
    X, y = demo.make_moons(n_samples=100, noise=0.1, seed=1337)
    assert X.shape == (100, 2) and sorted(set(y.tolist())) == [-1, 1]
    with contextlib.redirect_stdout(io.StringIO()):
        run = demo.train("pyad", X, y, steps=100, seed=1337)
    assert run.final_accuracy == 1.0
    assert run.losses[-1] < 0.05 < run.losses[0]
    if importlib.util.find_spec("micrograd") is not None:  # one step, the real thing
        with contextlib.redirect_stdout(io.StringIO()):
            theirs = demo.train("micrograd", X[:12], y[:12], steps=2, seed=1337)
            ours = demo.train("pyad", X[:12], y[:12], steps=2, seed=1337)
        assert ours.losses == pytest.approx(theirs.losses, rel=1e-13)


# -- both: pyad's functions and predecessors keep the class of their operands ------------------


#: Every kind of pyad function, each giving one Var (softmax: a list); ``a`` is always its
#: first Var operand, so the class of its results.
_FUNCTIONS: dict[str, Callable[[Any, Any], Any]] = {
    "unary": lambda a, b: pyad.exp(a),
    "binary": lambda a, b: pyad.atan2(a, b),
    "binary, number first": lambda a, b: pyad.hypot(2.0, a),
    "binary, number second": lambda a, b: pyad.pow(a, 2),
    "sum": lambda a, b: pyad.sum([a, b]),
    "sum, number first": lambda a, b: pyad.sum([1.0, a, b]),
    "sum, start": lambda a, b: pyad.sum([b], start=a),
    "logsumexp": lambda a, b: pyad.logsumexp([a, 3.0, b]),
    "softmax": lambda a, b: pyad.softmax([a, 3.0, b]),
    "dot": lambda a, b: pyad.dot([a, 2.0], [b, b]),
    "primitive": lambda a, b: pyad.primitive(lambda x, y: x * y, lambda x, y: [y, x])(a, b),
}


@pytest.mark.parametrize("cls", [Value, rad.Var], ids=["micrograd", "rad"])
@pytest.mark.parametrize("name", list(_FUNCTIONS))
def test_pyad_functions_return_the_class_of_their_operands(cls: type[pyad.Var], name: str) -> None:
    fn = _FUNCTIONS[name]
    with pyad.Tape() as t:
        a, b = cls(0.5), cls(-1.5)
        plain = fn(pyad.Var(0.5), pyad.Var(-1.5))
        # enough calls to cross a segment boundary: the results made there keep it too
        while len(t) < CHUNK_RECORDS + 20:
            y = fn(a, b)
            assert all(type(v) is cls for v in _listed(y)), name
        assert [v.v for v in _listed(y)] == [v.v for v in _listed(plain)]
        # the first Var operand decides: a plain Var first gives a plain Var, and back
        assert all(type(v) is pyad.Var for v in _listed(fn(pyad.Var(0.5), b)))
        assert all(type(v) is cls for v in _listed(fn(a, pyad.Var(-1.5))))


@pytest.mark.parametrize("cls", [Value, rad.Var], ids=["micrograd", "rad"])
def test_predecessors_have_the_class_of_the_node(cls: type[pyad.Var]) -> None:
    a, b = cls(2.0), cls(3.0)
    preds = pyad.Var.predecessors.fget(a * b)  # type: ignore[attr-defined]
    assert [(m, type(v)) for m, v in preds] == [(3.0, cls), (2.0, cls)]
    assert [v.v for _, v in preds] == [2.0, 3.0]
    # a plain Var's predecessors are plain Vars, whatever class made the operands
    mixed = pyad.sum([pyad.Var(1.0), a, b])
    assert [type(v) for _, v in mixed.predecessors] == [pyad.Var] * 3


def _listed(y: Any) -> list[Any]:
    return y if isinstance(y, list) else [y]
