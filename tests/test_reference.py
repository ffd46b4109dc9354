"""Tests of pyad.reference, the pure-Python oracle engine.

Gradients are checked against central finite differences at ordinary points; values, local
partials and conventions are checked exactly, since the C engine must match them bitwise.
"""

from __future__ import annotations

import math
import operator
import random
from collections.abc import Callable

import numpy as np
import pytest

import pyad.reference as R
from pyad.reference import Var

H = 1e-6
INF = math.inf
NAN = math.nan


def check_fd(f: Callable[..., Var], *point: float, rtol: float = 1e-6, atol: float = 1e-8) -> None:
    """Compare the gradient from backward() with central finite differences of f at point."""
    xs = [Var(p) for p in point]
    out = f(*xs)
    assert isinstance(out, Var)
    out.backward()
    for i in range(len(point)):
        up = list(point)
        dn = list(point)
        up[i] += H
        dn[i] -= H
        fd = (f(*map(Var, up)).v - f(*map(Var, dn)).v) / (2 * H)
        assert xs[i].grad == pytest.approx(fd, rel=rtol, abs=atol), (i, point)


# -- every op vs finite differences ------------------------------------------------------------

UNARY = [
    ("exp", R.exp, [-1.3, 0.7, 2.0]),
    ("log", R.log, [0.3, 1.7, 20.0]),
    ("log1p", R.log1p, [-0.5, 0.4, 3.0]),
    ("expm1", R.expm1, [-1.2, 1e-3, 0.9]),
    ("sqrt", R.sqrt, [0.2, 2.1, 9.0]),
    ("sin", R.sin, [-2.0, 0.3, 1.4]),
    ("cos", R.cos, [-2.0, 0.3, 1.4]),
    ("tan", R.tan, [-1.0, 0.4, 1.2]),
    ("asin", R.asin, [-0.7, 0.1, 0.8]),
    ("acos", R.acos, [-0.7, 0.1, 0.8]),
    ("atan", R.atan, [-3.0, 0.2, 1.7]),
    ("sinh", R.sinh, [-1.5, 0.3, 2.0]),
    ("cosh", R.cosh, [-1.5, 0.3, 2.0]),
    ("tanh", R.tanh, [-1.5, 0.3, 2.0]),
    ("sigmoid", R.sigmoid, [-4.0, -0.5, 0.5, 3.0]),
    ("relu", R.relu, [-0.8, 0.8]),
    ("softplus", R.softplus, [-3.0, -0.2, 0.6, 25.0]),
    ("abs", abs, [-0.6, 0.6]),
    ("neg", lambda x: -x, [-0.6, 1.1]),
    ("pos", lambda x: +x, [1.1]),
]


@pytest.mark.parametrize(
    ("f", "a"),
    [(f, a) for _, f, pts in UNARY for a in pts],
    ids=[f"{name}({a})" for name, _, pts in UNARY for a in pts],
)
def test_unary_vs_finite_differences(f: Callable[[Var], Var], a: float) -> None:
    check_fd(f, a)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
    "atan2": R.atan2,
    "hypot": R.hypot,
    "pow_fn": R.pow,
}
BINARY_POINTS = [(1.3, 0.7), (2.5, -1.4), (0.4, 3.0)]


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("point", BINARY_POINTS)
def test_binary_vs_finite_differences(name: str, point: tuple[float, float]) -> None:
    op = BINARY[name]
    a, b = point
    check_fd(op, a, b)  # Var op Var
    for const in (b, round(b) or 2, np.float64(b)):
        check_fd(lambda x, c=const: op(x, c), a)  # Var op constant
    for const in (a, round(a) or 2, np.float64(a)):
        check_fd(lambda x, c=const: op(c, x), b)  # constant op Var


def test_binary_other_sign_points() -> None:
    for op in (BINARY["add"], BINARY["sub"], BINARY["mul"], BINARY["div"], R.atan2, R.hypot):
        check_fd(op, -2.1, 1.9)
        check_fd(op, 0.8, -1.3)
    check_fd(lambda x: x**3, -1.7)
    check_fd(lambda x: x**-2, -0.9)
    check_fd(lambda x, y: x * x - y / x + x * y * y, 1.2, -0.7)


def test_nary_vs_finite_differences() -> None:
    check_fd(lambda x, y, z: R.sum([x, y, x, 2.0], start=z), 0.3, -1.2, 2.5)
    check_fd(lambda x, y, z: R.sum([x * y, z]), 0.3, -1.2, 2.5)
    check_fd(lambda x, y, z: R.dot([x, 2.0, y], [y, z, 3]), 0.3, -1.2, 2.5)
    check_fd(lambda x, y, z: R.dot([x, y], [x, z * x]), 0.3, -1.2, 2.5)
    check_fd(lambda x, y, z: R.logsumexp([x, y, z, 0.5]), 0.3, -1.2, 2.5)
    check_fd(lambda x, y, z: R.logsumexp([x * 100, y, z]), 0.3, -1.2, 2.5)
    for i in range(4):
        check_fd(lambda x, y, z, i=i: R.softmax([x, y, 0.1, z])[i], 0.3, -1.2, 2.5)


# -- exact values, partials and structure ---------------------------------------------------------


def test_seed_example() -> None:
    x, y = Var(2.0), Var(5.0)
    f = R.log(x) + x * y - R.sin(y)
    assert f.v == 11.652071455223084
    f.backward()
    assert x.grad == 5.5
    assert y.grad == 2 - math.cos(5)
    assert f.grad == 1.0


def test_sigmoid_exact() -> None:
    x = Var(0.5)
    s = R.sigmoid(x)
    y = 1 / (1 + math.exp(-0.5))
    assert s.v == y
    s.backward()
    assert x.grad == y * (1 - y)
    e = math.exp(-0.5)
    assert R.sigmoid(Var(-0.5)).v == e / (1 + e)
    assert R.sigmoid(-0.5) == e / (1 + e)
    assert R.sigmoid(-800.0) == 0.0
    assert R.sigmoid(800.0) == 1.0


def test_values_match_math() -> None:
    for name in ("exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "asin", "acos"):
        for a in (0.3, 0.9):
            assert getattr(R, name)(Var(a)).v == getattr(math, name)(a)
            assert getattr(R, name)(a) == getattr(math, name)(a)
    for name in ("atan", "sinh", "cosh", "tanh"):
        assert getattr(R, name)(Var(-1.7)).v == getattr(math, name)(-1.7)
    assert R.atan2(Var(0.3), -2.0).v == math.atan2(0.3, -2.0)
    assert R.hypot(3.0, Var(4.0)).v == 5.0
    assert (Var(2.0) ** 0.5).v == math.pow(2.0, 0.5)
    assert R.softplus(Var(-1.5)).v == math.log1p(math.exp(-1.5))
    assert R.softplus(2.0) == 2.0 + math.log1p(math.exp(-2.0))


def test_plain_numbers_give_floats() -> None:
    cases = [
        R.exp(1),
        R.log(np.float64(2.0)),
        R.sqrt(np.int64(4)),
        R.relu(-1),
        R.relu(np.float32(2.5)),
        R.atan2(1, 2),
        R.hypot(3, 4),
        R.pow(2, 3),
        R.sum([1, 2, np.float64(3)]),
        R.dot([1, 2], [3, 4]),
        R.logsumexp([1, 2]),
        *R.softmax([1, 2]),
    ]
    for c in cases:
        assert type(c) is float
    assert R.pow(2, 3) == 8.0
    assert R.sum([1, 2, 3], start=4) == 10.0
    assert R.dot([1, 2], [3, 4]) == 11.0
    assert R.relu(-1) == 0.0


def test_constants_never_become_nodes() -> None:
    x = Var(2.0)
    assert (x * 3).predecessors == [(3.0, x)]
    assert (3 * x).predecessors == [(3.0, x)]
    assert (x + 1).predecessors == [(1.0, x)]
    assert (1 - x).predecessors == [(-1.0, x)]
    assert (x - 1).predecessors == [(1.0, x)]
    assert (x / 4).predecessors == [(0.25, x)]
    assert (2 / x).predecessors == [(-1.0 / 2.0, x)]
    sq = x**2
    assert sq.predecessors == [(4.0, x)]
    assert type(sq.predecessors[0][0]) is float
    assert (2**x).predecessors == [(4.0 * math.log(2.0), x)]
    assert R.atan2(x, 1.0).predecessors == [(1.0 / 5.0, x)]
    assert Var(2.0).predecessors == []


def test_binary_partials_exact() -> None:
    a, b = 1.7, -0.3
    x, y = Var(a), Var(b)
    assert (x + y).predecessors == [(1.0, x), (1.0, y)]
    assert (x - y).predecessors == [(1.0, x), (-1.0, y)]
    assert (x * y).predecessors == [(b, x), (a, y)]
    q = a / b
    assert (x / y).predecessors == [(1 / b, x), (-q / b, y)]
    x2, z = Var(1.7), Var(0.6)
    p = x2**z
    assert p.v == math.pow(1.7, 0.6)
    assert p.predecessors == [(0.6 * math.pow(1.7, 0.6 - 1.0), x2), (p.v * math.log(1.7), z)]
    n = -x
    assert n.v == -a
    assert n.predecessors == [(-1.0, x)]
    at = R.atan2(x, y)
    r = a * a + b * b
    assert at.predecessors == [(b / r, x), (-a / r, y)]
    hy = R.hypot(x, y)
    assert hy.predecessors == [(a / hy.v, x), (b / hy.v, y)]


def test_unary_partials_exact() -> None:
    a = 0.37
    x = Var(a)

    def partial(node: Var) -> float:
        assert len(node.predecessors) == 1
        assert node.predecessors[0][1] is x
        return node.predecessors[0][0]

    assert partial(R.exp(x)) == math.exp(a)
    assert partial(R.log(x)) == 1 / a
    assert partial(R.log1p(x)) == 1 / (1 + a)
    assert partial(R.expm1(x)) == math.expm1(a) + 1
    assert partial(R.sqrt(x)) == 0.5 / math.sqrt(a)
    assert partial(R.sin(x)) == math.cos(a)
    assert partial(R.cos(x)) == -math.sin(a)
    assert partial(R.tan(x)) == 1 + math.tan(a) ** 2
    assert partial(R.asin(x)) == 1 / math.sqrt((1 - a) * (1 + a))
    assert partial(R.acos(x)) == -1 / math.sqrt((1 - a) * (1 + a))
    assert partial(R.atan(x)) == 1 / (1 + a * a)
    assert partial(R.sinh(x)) == math.cosh(a)
    assert partial(R.cosh(x)) == math.sinh(a)
    assert partial(R.tanh(x)) == 1 - math.tanh(a) ** 2
    s = 1 / (1 + math.exp(-a))
    e = math.exp(-a)
    assert partial(R.sigmoid(x)) == e / ((1 + e) * (1 + e))  # s * (1 - s) without cancellation
    assert partial(R.softplus(x)) == s
    assert partial(R.relu(x)) == 1.0
    assert partial(abs(x)) == 1.0


def test_sum_left_to_right_and_duplicates() -> None:
    assert R.sum([1e16, 1.0, -1e16]) == 0.0  # left to right, not fsum
    assert R.sum([1.0, -1e16], start=1e16) == 0.0
    x, b = Var(1.5), Var(0.25)
    s = R.sum((v for v in [x, 2.0, x]), start=b)  # generators accepted; Var start
    assert s.v == 0.25 + 1.5 + 2.0 + 1.5
    assert s.predecessors == [(1.0, b), (1.0, x), (1.0, x)]
    s.backward()
    assert (x.grad, b.grad) == (2.0, 1.0)
    assert R.sum([]) == 0.0


def test_dot_order_and_partials() -> None:
    w0, x0, x1 = Var(0.5), Var(-2.0), Var(3.0)
    d = R.dot([w0, 2.0], [x0, x1])
    assert d.v == 0.0 + 0.5 * -2.0 + 2.0 * 3.0
    assert d.predecessors == [(-2.0, w0), (0.5, x0), (2.0, x1)]
    x = Var(3.0)
    sq = R.dot(iter([x]), iter([x]))
    sq.backward()
    assert x.grad == 6.0


def test_logsumexp_and_softmax_exact() -> None:
    vals = [0.3, -1.2, 2.5, 0.5]
    xs = [Var(v) for v in vals]
    m = max(vals)
    es = [math.exp(v - m) for v in vals]
    s = 0.0
    for e in es:
        s += e
    lse = R.logsumexp(xs)
    assert lse.v == m + math.log(s)
    assert lse.predecessors == [(e / s, x) for e, x in zip(es, xs)]
    assert R.logsumexp(vals) == lse.v
    sm = R.softmax(xs)
    ys = [e / s for e in es]
    assert [o.v for o in sm] == ys
    # 1 - y_i as the sum of the other outputs for the largest one (index 2), else 1.0 - y_i
    cs = [1.0 - y for y in ys]
    cs[2] = ys[0] + ys[1] + ys[3]
    for i, o in enumerate(sm):
        assert o.predecessors == [
            (ys[i] * cs[i] if i == j else ys[i] * (0.0 - ys[j]), xs[j]) for j in range(len(xs))
        ]
    # gradient of logsumexp is the softmax
    lse.backward()
    assert [x.grad for x in xs] == ys
    # constants among the inputs are not predecessors
    mixed = R.softmax([xs[0], 1.0, xs[1]])
    assert [p for _, p in mixed[1].predecessors] == [xs[0], xs[1]]
    assert R.softmax([1.0, 2.0]) == [math.exp(-1) / (math.exp(-1) + 1), 1 / (math.exp(-1) + 1)]


def test_logsumexp_softmax_at_infinities() -> None:
    a, b, c = Var(INF), Var(1.0), Var(INF)
    y = R.logsumexp([a, b, c])
    assert y.v == INF
    assert [m for m, _ in y.predecessors] == [1.0, 0.0, 1.0]
    n = [Var(-INF) for _ in range(3)]
    y = R.logsumexp([*n, -INF])
    assert y.v == -INF
    assert [m for m, _ in y.predecessors] == [0.0] * 3
    assert R.logsumexp([INF, -INF]) == INF
    assert R.logsumexp([-INF, 0.0]) == 0.0
    assert R.logsumexp([Var(-INF), Var(0.0)]).predecessors[0][0] == 0.0
    assert math.isnan(R.logsumexp([NAN, 1.0]))
    assert math.isnan(R.logsumexp([1.0, NAN]))
    assert math.isnan(R.logsumexp([Var(1.0), Var(NAN)]).v)
    assert R.softmax([-INF, 0.0]) == [0.0, 1.0]
    assert all(math.isnan(v) for v in R.softmax([1.0, NAN]))
    for bad in ([Var(INF), 1.0], [Var(-INF), -INF], [NAN, 1.0]):
        with pytest.raises(ValueError, match="non-finite"):
            R.softmax(bad)


# -- backward -------------------------------------------------------------------------------------


def test_repeated_backward_accumulates() -> None:
    x, y = Var(2.0), Var(5.0)
    f = R.log(x) + x * y - R.sin(y)
    f.backward()
    f.backward()
    assert x.grad == 11.0
    assert y.grad == 2 * (2 - math.cos(5))
    f.backward(0.5)
    assert x.grad == 11.0 + 2.75
    x.grad = 0.0
    f.backward(upstream_grad=-2)
    assert x.grad == -11.0


def test_backward_on_intermediate_and_leaf() -> None:
    x, y = Var(2.0), Var(5.0)
    g = x * y
    f = R.log(g) + g
    g.backward()
    assert (x.grad, y.grad, g.grad, f.grad) == (5.0, 2.0, 1.0, 0.0)
    x.backward()
    assert x.grad == 6.0
    f.backward()
    assert g.grad == 1.0 + 1.0 / 10.0 + 1.0
    assert f.grad == 1.0


def test_deep_chain_no_recursion() -> None:
    x, w = Var(0.5), Var(1.0)
    v = x
    for _ in range(50_000):  # two nodes per step: a chain 100_000 deep
        v = v * w + 1.0
    assert v.v == 0.5 + 50_000
    v.backward()
    assert x.grad == 1.0
    assert w.grad == sum(0.5 + k for k in range(50_000))
    del v  # deallocating the long chain must not overflow the C stack either


def test_fan_out_dag_is_linear() -> None:
    x = Var(1.5)
    v = x
    for _ in range(60):
        v = v + v
    v.backward()  # path walking would visit 2**60 paths
    assert v.v == 1.5 * 2.0**60
    assert x.grad == 2.0**60


def _tape_sweep(out: Var, tape: list[Var]) -> dict[int, float]:
    """Independent model of the C sweep: one pass over the whole tape in reverse."""
    reach = {id(out)}
    for node in reversed(tape):
        if id(node) in reach:
            reach.update(id(p) for _, p in node.predecessors)
    adj = {id(n): 0.0 for n in tape}
    adj[id(out)] = 1.0
    for node in reversed(tape):
        if id(node) in reach:
            g = adj[id(node)]
            for m, p in node.predecessors:
                adj[id(p)] += m * g
    return adj


def test_sweep_order_matches_tape_bitwise() -> None:
    rng = random.Random(1234)
    ops = [  # every op keeps values bounded, so nothing overflows
        lambda a, b: (a + b) * 0.5,
        lambda a, b: R.tanh(a * b),
        lambda a, b: R.sin(a - b),
        lambda a, b: a / (R.exp(b) + 1.0),
        lambda a, b: R.sin(a * 1.3 + b),
        lambda a, b: R.sum([a, b, a], start=0.1) * 0.25,
        lambda a, b: R.tanh(R.dot([a, b], [b, 0.7])),
        lambda a, b: R.logsumexp([a, b, 0.2]) - 1.5,
        lambda a, b: R.softmax([a, b])[0],
        lambda a, b: R.atan2(a, b) * 0.5 if b > 0 else R.sqrt(a * a + 0.1) / (b * b + 2.0),
    ]
    for _ in range(5):
        tape = [Var(rng.uniform(-1, 1)) for _ in range(6)]
        known = set(tape)
        for _ in range(300):
            a = tape[rng.randrange(len(tape))]
            b = tape[len(tape) - 1 - min(rng.randrange(8), len(tape) - 1)]
            y = rng.choice(ops)(a, b)
            # append every node the op created to the tape, in creation order
            new = []
            stack = [y]
            while stack:
                n = stack.pop()
                if n not in known:
                    known.add(n)
                    new.append(n)
                    stack.extend(p for _, p in n.predecessors)
            assert new
            tape.extend(sorted(new, key=lambda n: n._seq))
        out = tape[-1]
        expected = _tape_sweep(out, tape)
        out.backward()
        for n in tape:
            assert n.grad == expected[id(n)]


# -- errors ---------------------------------------------------------------------------------------

ERRORS: list[tuple[type[Exception], Callable[[], object]]] = [
    (ValueError, lambda: R.log(Var(0.0))),
    (ValueError, lambda: R.log(Var(-1.0))),
    (ValueError, lambda: R.log(0)),
    (ValueError, lambda: R.sqrt(Var(-1.0))),
    (ValueError, lambda: R.sqrt(-1)),
    (ValueError, lambda: R.asin(Var(2.0))),
    (ValueError, lambda: R.acos(Var(-1.5))),
    (ValueError, lambda: R.log1p(Var(-1.0))),
    (ValueError, lambda: R.log1p(-2.0)),
    (ValueError, lambda: R.sin(Var(INF))),
    (ValueError, lambda: Var(-8.0) ** (1 / 3)),
    (ValueError, lambda: (-8.0) ** Var(0.5)),
    (ValueError, lambda: R.pow(-8.0, 0.5)),
    (ValueError, lambda: R.logsumexp([])),
    (ValueError, lambda: R.softmax([])),
    (ValueError, lambda: R.softmax([Var(INF), 0.0])),
    (ValueError, lambda: R.dot([Var(1.0)], [1.0, 2.0])),
    (ZeroDivisionError, lambda: Var(1.0) / 0),
    (ZeroDivisionError, lambda: Var(1.0) / Var(0.0)),
    (ZeroDivisionError, lambda: 1 / Var(0.0)),
    (ZeroDivisionError, lambda: Var(0.0) / Var(-0.0)),
    (ZeroDivisionError, lambda: Var(0.0) ** -1),
    (ZeroDivisionError, lambda: Var(-0.0) ** -1.5),
    (ZeroDivisionError, lambda: 0 ** Var(-2.0)),
    (ZeroDivisionError, lambda: Var(0.0) ** Var(-0.5)),
    (ZeroDivisionError, lambda: R.pow(0.0, -1)),
    (OverflowError, lambda: R.exp(Var(1000.0))),
    (OverflowError, lambda: R.exp(1000)),
    (OverflowError, lambda: R.expm1(Var(1000.0))),
    (OverflowError, lambda: R.sinh(Var(-1000.0))),
    (OverflowError, lambda: R.cosh(Var(-1000.0))),
    (OverflowError, lambda: Var(10.0) ** 400),
    (OverflowError, lambda: 10 ** Var(400.0)),
    (OverflowError, lambda: R.pow(Var(1e200), Var(2.0))),
    (OverflowError, lambda: R.pow(1e200, 2)),
    (TypeError, lambda: Var("1")),
    (TypeError, lambda: Var(None)),
    (TypeError, lambda: Var(Var(1.0))),
    (TypeError, lambda: Var(1 + 2j)),
    (TypeError, lambda: Var(1.0) + "a"),
    (TypeError, lambda: "a" + Var(1.0)),
    (TypeError, lambda: Var(1.0) * None),
    (TypeError, lambda: Var(1.0) ** "2"),
    (TypeError, lambda: pow(Var(2.0), 2, 3)),
    (TypeError, lambda: Var(1.0) < "a"),
    (TypeError, lambda: Var(1.0) - 1j),
    (TypeError, lambda: R.exp("1")),
    (TypeError, lambda: R.atan2(Var(1.0), "a")),
    (TypeError, lambda: R.pow(Var(1.0), None)),
    (TypeError, lambda: R.sum([Var(1.0), "a"])),
    (TypeError, lambda: R.dot([Var(1.0)], [None])),
    (TypeError, lambda: R.softmax([Var(1.0), "a"])),
]


@pytest.mark.parametrize(("exc", "thunk"), ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors(exc: type[Exception], thunk: Callable[[], object]) -> None:
    with pytest.raises(exc):
        thunk()


def test_nan_and_inf_propagate() -> None:
    assert math.isnan(R.log(Var(NAN)).v)
    assert math.isnan(R.log(NAN))
    assert R.exp(Var(INF)).v == INF
    assert R.exp(Var(-INF)).v == 0.0
    assert R.sqrt(Var(INF)).v == INF
    assert R.log(Var(INF)).v == INF
    assert (Var(1e308) * 10).v == INF  # float arithmetic does not raise
    assert math.isnan(R.sigmoid(Var(NAN)).v)
    assert R.tanh(Var(INF)).v == 1.0
    assert (Var(INF) ** 2).v == INF
    x = Var(NAN)
    y = x * 2.0 + 1.0
    y.backward()
    assert x.grad == 2.0
    assert math.isnan(y.v)


# -- kinks and singular points --------------------------------------------------------------------


def grad_of(f: Callable[..., Var], *point: float) -> list[float]:
    xs = [Var(p) for p in point]
    f(*xs).backward()
    return [x.grad for x in xs]


def test_kink_conventions() -> None:
    assert R.relu(Var(0.0)).v == 0.0
    assert grad_of(R.relu, 0.0) == [0.0]
    assert grad_of(R.relu, -3.0) == [0.0]
    assert grad_of(abs, 0.0) == [0.0]
    assert grad_of(abs, -0.0) == [0.0]
    assert grad_of(abs, -2.0) == [-1.0]
    assert grad_of(R.sqrt, 0.0) == [INF]
    assert grad_of(R.asin, 1.0) == [INF]
    assert grad_of(R.asin, -1.0) == [INF]
    assert grad_of(R.acos, 1.0) == [-INF]
    assert grad_of(R.acos, -1.0) == [-INF]
    assert grad_of(R.atan2, 0.0, 0.0) == [0.0, 0.0]
    assert R.atan2(Var(0.0), Var(0.0)).v == 0.0
    assert grad_of(R.hypot, 0.0, 0.0) == [0.0, 0.0]
    assert grad_of(lambda a: R.hypot(a, 0.0), 0.0) == [0.0]


def test_pow_special_points() -> None:
    assert grad_of(lambda x: x**2, 0.0) == [0.0]
    assert grad_of(lambda x: x**0.5, 0.0) == [INF]
    assert grad_of(lambda x: x**0, 2.0) == [0.0]
    assert grad_of(lambda x: x**2, -3.0) == [-6.0]
    assert grad_of(lambda x: 0.0**x, 2.0) == [0.0]
    da, db = grad_of(lambda a, b: a**b, -2.0, 2.0)
    assert da == -4.0
    assert math.isnan(db)
    assert grad_of(lambda a, b: a**b, 0.0, 0.0) == [0.0, 0.0]
    assert (Var(0.0) ** Var(0.0)).v == 1.0
    # the value is finite, its partial overflows: inf with the right sign, no exception
    assert (Var(1e-300) ** -0.5).predecessors[0][0] == -INF
    assert (Var(-1e-154) ** -2).predecessors[0][0] == INF


# -- operators, comparisons, identity, numpy scalars ----------------------------------------------


def test_comparisons_compare_values() -> None:
    x, y = Var(2.0), Var(3.0)
    three_gt_x = operator.gt(3, x)  # reflected: int > Var
    results = (x < y, x <= 2, x > 1, x >= np.float64(2.0), three_gt_x, y >= x, x > y)
    for r in results:
        assert type(r) is bool
    assert results == (True, True, True, True, True, True, False)
    assert bool(operator.gt(np.float64(3.0), x))


def test_identity_equality_and_hash() -> None:
    x = Var(2.0)
    twin = Var(2.0)
    same = x
    assert x == same
    assert x != twin
    assert len({x, twin, x}) == 2
    d = {x: "x", twin: "twin"}
    assert d[x] == "x"
    assert "__eq__" not in Var.__dict__
    assert "__hash__" not in Var.__dict__


def test_var_basics() -> None:
    x = Var(3)
    assert type(x.v) is float
    assert x.v == 3.0
    assert x.grad == 0.0
    assert type(Var(np.float64(2.5)).v) is float
    with pytest.raises(TypeError, match=r"x\.v"):
        float(Var(2.5))  # would drop the derivative: .v is the explicit way
    assert not Var(0.0) and Var(-1.0)
    assert repr(Var(2.0)) == "Var(v=2.0, grad=0.0)"
    assert +x is x
    x.v -= 1.0  # plain attributes
    x.grad = 4.0
    assert (x.v, x.grad) == (2.0, 4.0)
    assert set(Var.__slots__) == {"v", "grad", "predecessors", "_seq"}
    assert Var(1.0)._seq < Var(1.0)._seq
    assert not hasattr(x, "__dict__")


def test_numpy_scalars_on_either_side() -> None:
    x = Var(2.0)
    results = [
        np.float64(3.0) * x,
        x * np.float32(1.5),
        np.int64(3) - x,
        x / np.float64(4.0),
        np.float64(2.0) ** x,
        x ** np.int32(2),
        np.float64(1.0) + x,
        np.int64(8) / x,
    ]
    for r in results:
        assert isinstance(r, Var)
        assert type(r.v) is float
    assert [r.v for r in results] == [6.0, 3.0, 1.0, 0.5, 4.0, 4.0, 3.0, 4.0]
    R.sum(results).backward()
    assert x.grad == pytest.approx(3.0 + 1.5 - 1.0 + 0.25 + 4.0 * math.log(2.0) + 4.0 + 1.0 - 2.0)


def test_zero_to_minus_infinity_is_infinite_as_for_floats() -> None:
    assert (0.0 ** Var(-INF)).v == 0.0**-INF == INF
