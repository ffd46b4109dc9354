"""Second partials of the op table: the SECOND field of each row of csrc/ops.def.

``pyad_eval_second(op, a, b, out)`` gives ``y, da, db, daa, dab, dbb`` of one unary or binary
op on plain numbers. The tests are generated from ``pyad._native.OPS``, so a new row in
ops.def is tested here and fails until it has a domain below (``test_every_op_has_a_domain``).
For each op:

(a) its ``y, da, db`` are ``pyad_eval``'s, bit for bit;
(b) at random points inside its domain, the second partials equal central differences of the
    first partials (``pyad_eval``): d(da)/da, d(da)/db = d(db)/da and d(db)/db;
(c) at the documented kinks and edges the documented values: relu and abs at 0, pow with a
    base <= 0, hypot and atan2 at the origin (all 0);
(d) ``pyad.hessian`` of ``op(x)``, ``op(x, y)``, ``op(x, c)`` and ``op(c, x)`` is the table's
    second partials (forward-over-reverse replay of the recorded op, in every form).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import pyad
from pyad._native import OPS, ffi, lib

UNARY_OPS = [name for name, (_, arity) in OPS.items() if arity == 1]
BINARY_OPS = [name for name, (_, arity) in OPS.items() if arity == 2]

Sampler = Callable[[np.random.Generator], tuple[float, float]]


def _uniform(lo: float, hi: float) -> Sampler:
    return lambda rng: (float(rng.uniform(lo, hi)), 0.0)


def _away_from_zero(lo: float, hi: float) -> Sampler:
    """|a| in [lo, hi), either sign: keeps clear of a kink at 0."""
    return lambda rng: (float(rng.choice([-1.0, 1.0]) * rng.uniform(lo, hi)), 0.0)


def _pair(sa: Sampler, sb: Sampler) -> Sampler:
    return lambda rng: (sa(rng)[0], sb(rng)[0])


def _off_origin(rng: np.random.Generator) -> tuple[float, float]:
    """A point of the plane at distance 0.3 to 3 from the origin (atan2, hypot)."""
    r, t = rng.uniform(0.3, 3.0), rng.uniform(-math.pi, math.pi)
    return (float(r * math.cos(t)), float(r * math.sin(t)))


#: where each op is smooth: random points are drawn from here (no kinks, no poles)
UNARY_DOMAIN: dict[str, Sampler] = {
    "neg": _uniform(-3.0, 3.0),
    "abs": _away_from_zero(0.1, 3.0),
    "exp": _uniform(-3.0, 3.0),
    "log": _uniform(0.1, 5.0),
    "log1p": _uniform(-0.9, 5.0),
    "expm1": _uniform(-3.0, 3.0),
    "sqrt": _uniform(0.1, 5.0),
    "sin": _uniform(-5.0, 5.0),
    "cos": _uniform(-5.0, 5.0),
    "tan": _uniform(-1.3, 1.3),
    "asin": _uniform(-0.95, 0.95),
    "acos": _uniform(-0.95, 0.95),
    "atan": _uniform(-5.0, 5.0),
    "sinh": _uniform(-3.0, 3.0),
    "cosh": _uniform(-3.0, 3.0),
    "tanh": _uniform(-3.0, 3.0),
    "sigmoid": _uniform(-6.0, 6.0),
    "relu": _away_from_zero(0.1, 3.0),
    "softplus": _uniform(-6.0, 6.0),
}
BINARY_DOMAIN: dict[str, Sampler] = {
    "add": _pair(_uniform(-3.0, 3.0), _uniform(-3.0, 3.0)),
    "sub": _pair(_uniform(-3.0, 3.0), _uniform(-3.0, 3.0)),
    "mul": _pair(_uniform(-3.0, 3.0), _uniform(-3.0, 3.0)),
    "div": _pair(_uniform(-3.0, 3.0), _away_from_zero(0.3, 3.0)),
    "pow": _pair(_uniform(0.2, 3.0), _uniform(-2.0, 3.0)),
    "atan2": _off_origin,
    "hypot": _off_origin,
}

POINTS = 8


def points(name: str) -> list[tuple[float, float]]:
    """POINTS random points of op ``name``'s domain, the same on every run."""
    sampler = UNARY_DOMAIN.get(name) or BINARY_DOMAIN[name]
    rng = np.random.default_rng(list(OPS).index(name))
    return [sampler(rng) for _ in range(POINTS)]


def second(name: str, a: float, b: float = 0.0) -> tuple[float, ...]:
    """y, da, db, daa, dab, dbb from the op table."""
    out = ffi.new("double[6]")
    assert lib.pyad_eval_second(OPS[name][0], a, b, out) == 0
    return tuple(out)


def first(name: str, a: float, b: float = 0.0) -> tuple[float, float, float]:
    """y, da, db from pyad_eval (the recording's kernel)."""
    y, da, db = ffi.new("double *"), ffi.new("double *"), ffi.new("double *")
    assert lib.pyad_eval(OPS[name][0], a, b, y, da, db) == 0
    return y[0], da[0], db[0]


def same(x: float, y: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y and math.copysign(1.0, x) == math.copysign(1.0, y)


def close(got: float, want: float, rtol: float = 1e-6, atol: float = 1e-7) -> bool:
    return abs(got - want) <= atol + rtol * abs(want)


def test_every_op_has_a_domain() -> None:
    assert set(UNARY_OPS) == set(UNARY_DOMAIN)
    assert set(BINARY_OPS) == set(BINARY_DOMAIN)


def test_misuse() -> None:
    out = ffi.new("double[6]")
    misuse = 8  # PYAD_MISUSE
    assert lib.pyad_eval_second(OPS["leaf"][0], 1.0, 1.0, out) == misuse
    assert lib.pyad_eval_second(OPS["sum"][0], 1.0, 1.0, out) == misuse
    assert lib.pyad_eval_second(len(OPS), 1.0, 1.0, out) == misuse
    assert lib.pyad_eval_second(-1, 1.0, 1.0, out) == misuse
    assert lib.pyad_eval_second(OPS["exp"][0], 1.0, 1.0, ffi.NULL) == misuse


# -- (a) and (b): the table against pyad_eval and central differences -------------------------


@pytest.mark.parametrize("name", UNARY_OPS)
def test_unary_second_partial(name: str) -> None:
    for a, _ in points(name):
        y, da, db, daa, dab, dbb = second(name, a)
        assert all(map(same, (y, da, db), first(name, a))), (name, a)
        assert dab == 0.0 and dbb == 0.0 and db == 0.0
        h = 1e-5 * max(1.0, abs(a))
        fd = (first(name, a + h)[1] - first(name, a - h)[1]) / (2.0 * h)
        assert close(daa, fd), (name, a, daa, fd)


@pytest.mark.parametrize("name", BINARY_OPS)
def test_binary_second_partials(name: str) -> None:
    for a, b in points(name):
        y, da, db, daa, dab, dbb = second(name, a, b)
        assert all(map(same, (y, da, db), first(name, a, b))), (name, a, b)
        ha, hb = 1e-5 * max(1.0, abs(a)), 1e-5 * max(1.0, abs(b))
        pa, ma = first(name, a + ha, b), first(name, a - ha, b)
        pb, mb = first(name, a, b + hb), first(name, a, b - hb)
        fd_aa = (pa[1] - ma[1]) / (2.0 * ha)
        fd_ab = (pb[1] - mb[1]) / (2.0 * hb)  # d(da)/db
        fd_ba = (pa[2] - ma[2]) / (2.0 * ha)  # d(db)/da
        fd_bb = (pb[2] - mb[2]) / (2.0 * hb)
        where = (name, a, b)
        assert close(daa, fd_aa), (*where, "daa", daa, fd_aa)
        assert close(dab, fd_ab), (*where, "dab", dab, fd_ab)
        assert close(dab, fd_ba), (*where, "dab", dab, fd_ba)
        assert close(dbb, fd_bb), (*where, "dbb", dbb, fd_bb)


# -- (c) kinks and edges ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", "abs"])
@pytest.mark.parametrize("a", [0.0, -0.0, -1.5, 2.0])
def test_kinks_have_zero_second_partials(name: str, a: float) -> None:
    assert second(name, a)[3:] == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("name", ["hypot", "atan2"])
@pytest.mark.parametrize(("a", "b"), [(0.0, 0.0), (-0.0, 0.0), (0.0, -0.0), (-0.0, -0.0)])
def test_origin_has_zero_partials(name: str, a: float, b: float) -> None:
    assert second(name, a, b)[1:] == (0.0, 0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("b", "daa"),
    [(0.0, 0.0), (1.0, 0.0), (2.0, 2.0), (3.0, 0.0), (2.5, 0.0), (0.5, -math.inf)],
)
def test_pow_at_zero_base(b: float, daa: float) -> None:
    """0 ** b: d/db terms are taken as 0 (as db is), daa is b (b - 1) 0 ** (b - 2)."""
    _, _, db, got_daa, dab, dbb = second("pow", 0.0, b)
    assert db == 0.0 and dab == 0.0 and dbb == 0.0
    assert got_daa == daa


@pytest.mark.parametrize("b", [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0])
@pytest.mark.parametrize("a", [-0.7, -1.5, -3.0])
def test_pow_at_negative_base(a: float, b: float) -> None:
    """A negative base to an integer power: daa is finite and right, while the partials in b
    are NaN, as db is (a ** b has no real values near b)."""
    _, _, db, daa, dab, dbb = second("pow", a, b)
    assert math.isnan(db) and math.isnan(dab) and math.isnan(dbb)
    assert daa == (0.0 if b in (0.0, 1.0) else b * (b - 1.0) * a ** (b - 2.0))
    h = 1e-5
    fd = (first("pow", a + h, b)[1] - first("pow", a - h, b)[1]) / (2.0 * h)
    assert close(daa, fd), (a, b, daa, fd)


# -- (d) pyad.hessian of one op replays the table's second partials ----------------------------

#: how a user spells an op that is not a pyad function of the same name
SPELLING: dict[str, Callable[..., Any]] = {
    "neg": operator.neg,
    "abs": abs,
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
}


def spell(name: str) -> Callable[..., Any]:
    return SPELLING.get(name) or getattr(pyad, name)


def assert_hessian(got: np.ndarray, want: list[list[float]], what: object) -> None:
    np.testing.assert_allclose(got, np.array(want), rtol=1e-14, atol=0.0, err_msg=str(what))


@pytest.mark.parametrize("name", UNARY_OPS)
def test_hessian_of_unary_op(name: str) -> None:
    f = spell(name)
    for a, _ in points(name)[:3]:
        daa = second(name, a)[3]
        assert_hessian(pyad.hessian(lambda v: f(v[0]))([a]), [[daa]], (name, a))


@pytest.mark.parametrize("name", BINARY_OPS)
def test_hessian_of_binary_op(name: str) -> None:
    f = spell(name)
    for a, b in points(name)[:3]:
        _, _, _, daa, dab, dbb = second(name, a, b)
        where = (name, a, b)
        got = pyad.hessian(lambda v: f(v[0], v[1]))([a, b])
        assert_hessian(got, [[daa, dab], [dab, dbb]], where)
        # the constant-operand forms: x op c and c op x
        assert_hessian(pyad.hessian(lambda v, b=b: f(v[0], b))([a]), [[daa]], where)
        assert_hessian(pyad.hessian(lambda v, a=a: f(a, v[0]))([b]), [[dbb]], where)
        # both operands the same Var: d2/dx2 op(x, x) = daa + 2 dab + dbb
        _, _, _, saa, sab, sbb = second(name, a, a)
        got = pyad.hessian(lambda v: f(v[0], v[0]))([a])
        want = saa + 2.0 * sab + sbb  # summed in another order than the replay's: not exact
        np.testing.assert_allclose(got, [[want]], rtol=1e-13, atol=1e-15, err_msg=str(where))
