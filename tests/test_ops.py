"""Every op of the C op table, tested one by one.

The tests are generated from ``pyad._native.OPS`` (read from csrc/ops.def at import), not from
a hand-written list: a new row in ops.def gets parametrised here automatically and fails until
it has a domain entry below (``test_every_op_is_covered`` says which one is missing).

For each op, at ordinary points inside its domain:
(a) the value equals the math module's (or the plain formula's) to 1e-15 relative;
(b) the gradient equals central finite differences;
(c) value, gradient and recorded partials equal pyad.reference's (the pure-Python oracle);
(d) the constant-operand forms (``x * 3.0``, ``3.0 * x``, ``2 ** x``, ...), with int, float and
    numpy scalar constants, agree with the Var-Var form and with the reference;
(e) a plain number in gives a float out, equal to math's.
Then the edges: kinks, infinite derivatives, large arguments and domain limits, and the n-ary ops
(sum, dot, logsumexp, softmax) with mixtures of Vars, constants and repeated Vars.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import pyad
import pyad.reference as R
from pyad._native import OPS

# -- the op table, split by arity -------------------------------------------------------------

LEAF_OPS = [name for name, (_, arity) in OPS.items() if arity == 0]
UNARY_OPS = [name for name, (_, arity) in OPS.items() if arity == 1]
BINARY_OPS = [name for name, (_, arity) in OPS.items() if arity == 2]
NARY_OPS = [name for name, (_, arity) in OPS.items() if arity == -1]

#: unary ops spelled as Python operators rather than functions
UNARY_OPERATORS: dict[str, Callable[[Any], Any]] = {"neg": operator.neg, "abs": abs}
#: binary ops spelled as Python operators
BINARY_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
}
#: binary ops that are (also) module functions
BINARY_FUNCTIONS = {"pow", "atan2", "hypot"}


def unary_form(module: ModuleType, name: str) -> Callable[[Any], Any]:
    """The way a user spells unary op ``name`` with ``module`` (pyad or pyad.reference)."""
    if name in UNARY_OPERATORS:
        return UNARY_OPERATORS[name]
    return getattr(module, name)  # type: ignore[no-any-return]


def binary_form_names(name: str) -> list[str]:
    forms = []
    if name in BINARY_OPERATORS:
        forms.append("operator")
    if name in BINARY_FUNCTIONS or name not in BINARY_OPERATORS:
        forms.append("function")
    return forms


def binary_form(module: ModuleType, name: str, form: str) -> Callable[[Any, Any], Any]:
    if form == "operator":
        return BINARY_OPERATORS[name]
    return getattr(module, name)  # type: ignore[no-any-return]


# -- what each op should compute, and where ----------------------------------------------------

#: the plain-Python value of each unary op; ops not listed are the math function of that name
MATH_UNARY: dict[str, Callable[[float], float]] = {
    "neg": operator.neg,
    "abs": math.fabs,
    "sigmoid": lambda a: 1.0 / (1.0 + math.exp(-a)),
    "relu": lambda a: a if a > 0.0 else 0.0,
    "softplus": lambda a: math.log1p(math.exp(a)),
}
MATH_BINARY: dict[str, Callable[[float, float], float]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": math.pow,
    "atan2": math.atan2,
    "hypot": math.hypot,
}


def math_unary(name: str) -> Callable[[float], float]:
    return MATH_UNARY.get(name) or getattr(math, name)


#: ordinary points inside each unary op's domain (log/sqrt x > 0, asin/acos |x| < 1,
#: log1p x > -1, tan away from its poles, ...); no point sits on a kink
UNARY_DOMAIN: dict[str, list[float]] = {
    "neg": [-1.7, 0.3, 2.5],
    "abs": [-1.7, 0.3, 2.5],
    "exp": [-2.3, 0.7, 3.1],
    "log": [0.05, 1.7, 30.0],
    "log1p": [-0.9, 1e-3, 0.4, 5.0],
    "expm1": [-1.2, 1e-4, 0.9],
    "sqrt": [0.04, 2.1, 100.0],
    "sin": [-2.0, 0.3, 1.4, 10.0],
    "cos": [-2.0, 0.3, 1.4, 10.0],
    "tan": [-1.2, 0.4, 1.2],
    "asin": [-0.9, 0.1, 0.8],
    "acos": [-0.9, 0.1, 0.8],
    "atan": [-3.0, 0.2, 1.7],
    "sinh": [-1.5, 0.3, 2.0],
    "cosh": [-1.5, 0.3, 2.0],
    "tanh": [-1.5, 0.3, 2.0],
    "sigmoid": [-4.0, -0.5, 0.5, 3.0],
    "relu": [-0.8, 0.8, 3.0],
    "softplus": [-3.0, -0.2, 0.6, 25.0],
}

_MIXED_SIGNS = [(1.3, 0.7), (-2.5, 1.4), (0.4, -3.0)]
#: ordinary points (a, b) of each binary op; pow has a positive base so that a constant
#: base (``c ** x``) and a non-integer exponent stay in the domain
BINARY_DOMAIN: dict[str, list[tuple[float, float]]] = {
    "add": _MIXED_SIGNS,
    "sub": _MIXED_SIGNS,
    "mul": _MIXED_SIGNS,
    "div": _MIXED_SIGNS,
    "pow": [(1.3, 0.7), (2.5, -1.4), (0.4, 3.0), (1.7, 2.0)],
    "atan2": [*_MIXED_SIGNS, (-0.6, -0.2)],
    "hypot": _MIXED_SIGNS,
}

#: the op of the table each n-ary test case exercises
NARY_COVERED = {"sum", "dot", "logsumexp", "softmax", "primitive", "matvec"}


# -- helpers ----------------------------------------------------------------------------------


def same(got: float, want: float, rel: float = 1e-15) -> bool:
    """``got == want`` up to ``rel`` relative error; NaN matches NaN, infinities match exactly."""
    if math.isnan(want):
        return math.isnan(got)
    return got == want or math.isclose(got, want, rel_tol=rel, abs_tol=0.0)


def assert_same(got: float, want: float, what: str | Callable[[], str], rel: float = 1e-15) -> None:
    """``same(got, want)`` and a float; ``what`` (or its result) names the check on failure."""
    if type(got) is float and same(got, want, rel):
        return
    label = what if isinstance(what, str) else what()
    assert type(got) is float, f"{label}: {got!r} is a {type(got).__name__}, not a float"
    raise AssertionError(f"{label}: got {got!r}, expected {want!r}")


def value_at(f: Callable[..., Any], point: Sequence[float]) -> float:
    out = f(pyad, *[pyad.Var(p) for p in point])
    return float(out.v)


def finite_difference(f: Callable[..., Any], point: Sequence[float], i: int) -> float:
    """Central difference of ``f(pyad, *Vars)`` in argument i, with a step scaled to it."""
    h = 1e-6 * max(1.0, abs(point[i]))
    up, dn = list(point), list(point)
    up[i] += h
    dn[i] -= h
    return (value_at(f, up) - value_at(f, dn)) / (up[i] - dn[i])


def assert_fd(f: Callable[..., Any], point: Sequence[float], rtol: float = 1e-6) -> None:
    """backward() on ``f(pyad, *Vars)`` against central finite differences."""
    xs = [pyad.Var(p) for p in point]
    out = f(pyad, *xs)
    assert isinstance(out, pyad.Var)
    out.backward()
    scale = max(1.0, abs(out.v))
    for i, x in enumerate(xs):
        fd = finite_difference(f, point, i)
        assert math.isclose(x.grad, fd, rel_tol=rtol, abs_tol=1e-9 * scale), (
            f"d/dx{i} at {point}: backward gives {x.grad!r}, finite differences {fd!r}"
        )


def run(module: ModuleType, f: Callable[..., Any], point: Sequence[Any], upstream: float = 1.0):
    """Evaluate ``f(module, *Vars)`` and sweep back: (output, value, grads, partials)."""
    xs = [module.Var(p) for p in point]
    out = f(module, *xs)
    assert isinstance(out, module.Var)
    partials = [m for m, _ in out.predecessors]
    out.backward(upstream)
    return out, out.v, [*(x.grad for x in xs), out.grad], partials


def assert_matches_reference(
    f: Callable[..., Any], point: Sequence[Any], rel: float = 1e-15, upstream: float = 1.0
) -> None:
    """Value, gradient and the output's recorded partials equal pyad.reference's."""
    _, v, grads, partials = run(pyad, f, point, upstream)
    _, rv, rgrads, rpartials = run(R, f, point, upstream)
    where = _short(point)
    assert_same(v, rv, lambda: f"value at {where}", rel)
    for i, (g, rg) in enumerate(zip(grads, rgrads)):
        what = f"d/dx{i}" if i < len(point) else "the output's own grad"
        assert_same(g, rg, lambda what=what: f"{what} at {where}", rel)
    assert len(partials) == len(rpartials), (partials, rpartials)
    for k, (p, rp) in enumerate(zip(partials, rpartials)):
        assert_same(p, rp, lambda k=k: f"recorded partial {k} at {where}", rel)


def _short(point: Sequence[Any]) -> str:
    text = repr(tuple(point))
    return text if len(text) < 200 else f"{text[:200]}... ({len(point)} values)"


def int_of(v: float) -> int:
    """A nonzero integer near v (a valid divisor and a positive base for positive v)."""
    return round(v) or 2


def constants(v: float) -> list[Any]:
    """v as a float, numpy float64 and float32, and a nearby int and numpy int64."""
    k = int_of(v)
    return [float(v), np.float64(v), np.float32(v), k, np.int64(k)]


# -- coverage: every op of the table is tested -------------------------------------------------


def test_every_op_is_covered() -> None:
    """A new op in csrc/ops.def must come with its tests (a domain entry here)."""
    arities = {arity for _, arity in OPS.values()}
    assert arities <= {0, 1, 2, -1}, f"unknown arity in the op table: {arities}"
    assert LEAF_OPS == ["leaf"]
    missing_unary = set(UNARY_OPS) - set(UNARY_DOMAIN)
    missing_binary = set(BINARY_OPS) - set(BINARY_DOMAIN)
    missing_nary = set(NARY_OPS) - NARY_COVERED
    assert not missing_unary, f"unary ops without tests: {sorted(missing_unary)}"
    assert not missing_binary, f"binary ops without tests: {sorted(missing_binary)}"
    assert not missing_nary, f"n-ary ops without tests: {sorted(missing_nary)}"
    covered = set(LEAF_OPS) | set(UNARY_DOMAIN) | set(BINARY_DOMAIN) | NARY_COVERED
    assert covered == set(OPS), f"tests for ops not in the table: {sorted(covered - set(OPS))}"
    for name in BINARY_OPS:
        for form in binary_form_names(name):
            assert callable(binary_form(pyad, name, form))
    for name in UNARY_OPS:
        assert callable(unary_form(pyad, name))
        assert callable(unary_form(R, name))


def test_public_functions_exist() -> None:
    for name in [*UNARY_OPS, *BINARY_FUNCTIONS, *NARY_OPS]:
        if name in UNARY_OPERATORS:
            continue
        assert name in pyad.__all__, name
        assert callable(getattr(pyad, name)), name
        assert callable(getattr(R, name)), name


# -- leaf ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "v", [2, 2.5, -0.0, np.float64(2.5), np.float32(0.1), np.int64(-3)], ids=repr
)
def test_leaf(tape: pyad.Tape, v: Any) -> None:
    n = len(tape)
    x = pyad.Var(v)
    assert len(tape) == n + 1
    assert type(x.v) is float
    assert x.v == float(v)
    assert math.copysign(1.0, x.v) == math.copysign(1.0, float(v))
    assert x.grad == 0.0
    assert x.op == "leaf"
    assert x.predecessors == []
    x.backward()
    assert x.grad == 1.0
    x.backward(2.5)
    assert x.grad == 3.5
    x.grad = 0.0
    assert x.grad == 0.0
    x.v = 7
    assert x.v == 7.0
    assert type(x.v) is float


# -- unary ops ---------------------------------------------------------------------------------

UNARY_CASES = [(name, a) for name in UNARY_OPS for a in UNARY_DOMAIN.get(name, [math.nan])]
UNARY_IDS = [f"{name}({a})" for name, a in UNARY_CASES]
#: the unary ops that are module functions (neg and abs on numbers are Python's own)
UNARY_FUNCTION_CASES = [(name, a) for name, a in UNARY_CASES if name not in UNARY_OPERATORS]


def _unary_f(name: str) -> Callable[..., Any]:
    return lambda M, x: unary_form(M, name)(x)


@pytest.mark.parametrize(("name", "a"), UNARY_CASES, ids=UNARY_IDS)
def test_unary_value_matches_math(tape: pyad.Tape, name: str, a: float) -> None:
    assert name in UNARY_DOMAIN, f"no domain entry for unary op {name!r}"
    out = unary_form(pyad, name)(pyad.Var(a))
    assert isinstance(out, pyad.Var)
    assert out.op == name
    assert_same(out.v, math_unary(name)(a), f"{name}({a})")


@pytest.mark.parametrize(("name", "a"), UNARY_CASES, ids=UNARY_IDS)
def test_unary_gradient_vs_finite_differences(tape: pyad.Tape, name: str, a: float) -> None:
    assert name in UNARY_DOMAIN, f"no domain entry for unary op {name!r}"
    assert_fd(_unary_f(name), [a])


@pytest.mark.parametrize(("name", "a"), UNARY_CASES, ids=UNARY_IDS)
def test_unary_vs_reference(tape: pyad.Tape, name: str, a: float) -> None:
    assert name in UNARY_DOMAIN, f"no domain entry for unary op {name!r}"
    assert_matches_reference(_unary_f(name), [a])
    assert_matches_reference(_unary_f(name), [a], upstream=-0.37)


@pytest.mark.parametrize(
    ("name", "a"), UNARY_FUNCTION_CASES, ids=[f"{n}({a})" for n, a in UNARY_FUNCTION_CASES]
)
def test_unary_of_numbers_gives_float(tape: pyad.Tape, name: str, a: float) -> None:
    assert name in UNARY_DOMAIN, f"no domain entry for unary op {name!r}"
    f = getattr(pyad, name)
    n = len(tape)
    for arg in (a, np.float64(a), np.float32(a)):
        want = math_unary(name)(float(arg))
        assert_same(f(arg), want, f"pyad.{name}({arg!r})")
    assert len(tape) == n, "a plain-number call must not record"


@pytest.mark.parametrize("name", [n for n in UNARY_OPS if n not in UNARY_OPERATORS])
def test_unary_of_ints_gives_float(name: str) -> None:
    f = getattr(pyad, name)
    k = 1 if name != "acos" else 0  # in every domain: log(1), asin(1), acos(0), ...
    for arg in (k, np.int64(k)):
        assert_same(f(arg), math_unary(name)(float(k)), f"pyad.{name}({arg!r})")


# -- binary ops --------------------------------------------------------------------------------

BINARY_CASES = [
    (name, form, point)
    for name in BINARY_OPS
    for form in binary_form_names(name)
    for point in BINARY_DOMAIN.get(name, [(math.nan, math.nan)])
]
BINARY_IDS = [f"{name}-{form}{point}" for name, form, point in BINARY_CASES]


def _binary_f(name: str, form: str) -> Callable[..., Any]:
    return lambda M, x, y: binary_form(M, name, form)(x, y)


@pytest.mark.parametrize(("name", "form", "point"), BINARY_CASES, ids=BINARY_IDS)
def test_binary_value_matches_math(tape: pyad.Tape, name: str, form: str, point: Any) -> None:
    assert name in BINARY_DOMAIN, f"no domain entry for binary op {name!r}"
    a, b = point
    out = binary_form(pyad, name, form)(pyad.Var(a), pyad.Var(b))
    assert isinstance(out, pyad.Var)
    assert out.op == name
    assert_same(out.v, MATH_BINARY[name](a, b), f"{name}{point}")


@pytest.mark.parametrize(("name", "form", "point"), BINARY_CASES, ids=BINARY_IDS)
def test_binary_gradient_vs_finite_differences(
    tape: pyad.Tape, name: str, form: str, point: Any
) -> None:
    assert name in BINARY_DOMAIN, f"no domain entry for binary op {name!r}"
    assert_fd(_binary_f(name, form), point)


@pytest.mark.parametrize(("name", "form", "point"), BINARY_CASES, ids=BINARY_IDS)
def test_binary_vs_reference(tape: pyad.Tape, name: str, form: str, point: Any) -> None:
    assert name in BINARY_DOMAIN, f"no domain entry for binary op {name!r}"
    f = _binary_f(name, form)
    assert_matches_reference(f, point)
    assert_matches_reference(f, point, upstream=2.25)
    # the same Var on both sides
    assert_matches_reference(lambda M, x: binary_form(M, name, form)(x, x), [point[0]])


@pytest.mark.parametrize(("name", "form", "point"), BINARY_CASES, ids=BINARY_IDS)
def test_binary_constant_forms(tape: pyad.Tape, name: str, form: str, point: Any) -> None:
    """``x op c`` and ``c op x`` with int, float and numpy constants: as Var op Var(c), and as
    the reference's constant forms."""
    assert name in BINARY_DOMAIN, f"no domain entry for binary op {name!r}"
    op_p = binary_form(pyad, name, form)
    op_r = binary_form(R, name, form)
    a, b = point
    cases: list[tuple[str, float, Any, Callable[..., Any]]] = []
    for c in constants(b):  # Var op constant
        cases.append(("x op c", a, c, lambda op, x, c: op(x, c)))
    for c in constants(a):  # constant op Var
        cases.append(("c op x", b, c, lambda op, x, c: op(c, x)))
    for label, xv, c, apply in cases:
        what = f"{label} with x = {xv!r}, c = {c!r} ({type(c).__name__})"
        x = pyad.Var(xv)
        n = len(tape)
        out = apply(op_p, x, c)
        assert isinstance(out, pyad.Var), what
        assert len(tape) == n + 1, f"{what}: a constant operand must not make a record"
        out.backward()
        # the Var-Var form, with the constant as a Var
        x2, cv = pyad.Var(xv), pyad.Var(float(c))
        out2 = apply(op_p, x2, cv)
        out2.backward()
        assert_same(out.v, out2.v, f"{what}: value vs Var-Var form")
        assert_same(x.grad, x2.grad, f"{what}: grad vs Var-Var form")
        # the reference's constant form
        xr = R.Var(xv)
        outr = apply(op_r, xr, c)
        outr.backward()
        assert_same(out.v, outr.v, f"{what}: value vs reference")
        assert_same(x.grad, xr.grad, f"{what}: grad vs reference")
        assert [m for m, _ in out.predecessors] == [m for m, _ in outr.predecessors], what


@pytest.mark.parametrize(
    "name", [n for n in BINARY_OPS if "function" in binary_form_names(n)] or ["none"]
)
def test_binary_of_numbers_gives_float(tape: pyad.Tape, name: str) -> None:
    f = getattr(pyad, name)
    n = len(tape)
    for a, b in BINARY_DOMAIN[name]:
        for args in [(a, b), (np.float64(a), b), (a, np.float32(b)), (int_of(a), np.int64(2))]:
            want = MATH_BINARY[name](float(args[0]), float(args[1]))
            assert_same(f(*args), want, f"pyad.{name}{args}")
    assert len(tape) == n, "a plain-number call must not record"


def test_named_constant_forms(tape: pyad.Tape) -> None:
    """The spellings users write, pyad against the reference and the Var-Var form."""
    forms: list[Callable[..., Any]] = [
        lambda M, x: x * 3.0,
        lambda M, x: 3.0 * x,
        lambda M, x: x * 3,
        lambda M, x: 3 * x,
        lambda M, x: x + np.float64(3.0),
        lambda M, x: np.float64(3.0) - x,
        lambda M, x: np.float32(0.1) / x,
        lambda M, x: x / np.int64(7),
        lambda M, x: x**2,
        lambda M, x: x**2.0,
        lambda M, x: x ** np.int64(3),
        lambda M, x: x**-0.5,
        lambda M, x: 2**x,
        lambda M, x: 2.0**x,
        lambda M, x: np.float64(2.0) ** x,
        lambda M, x: np.float32(2.0) ** x,
        lambda M, x: M.pow(x, 3),
        lambda M, x: M.pow(3, x),
        lambda M, x: M.atan2(x, 1.5),
        lambda M, x: M.atan2(1.5, x),
        lambda M, x: M.atan2(x, np.int64(-2)),
        lambda M, x: M.atan2(np.float32(-2.0), x),
        lambda M, x: M.hypot(x, 1.5),
        lambda M, x: M.hypot(np.int64(3), x),
    ]
    for f in forms:
        for a in (0.7, 1.9):
            assert_matches_reference(f, [a])
            assert_fd(f, [a])
    x = pyad.Var(1.9)
    for y in (x**2, x * x, pyad.pow(x, 2), pyad.pow(x, pyad.Var(2))):
        assert y.v == 1.9 * 1.9
    x2 = pyad.Var(1.9)
    (x2**2).backward()
    assert x2.grad == 2 * 1.9
    x3 = pyad.Var(1.9)
    (2**x3).backward()
    assert x3.grad == math.pow(2, 1.9) * math.log(2)


# -- seed examples -----------------------------------------------------------------------------


def test_seed_sigmoid(tape: pyad.Tape) -> None:
    x = pyad.Var(0.5)
    s = pyad.sigmoid(x)
    y = 1 / (1 + math.exp(-0.5))
    assert s.v == y
    s.backward()
    assert x.grad == y * (1 - y)
    assert pyad.sigmoid(0.5) == y


def test_seed_design_example(tape: pyad.Tape) -> None:
    x1, x2 = pyad.Var(2.0), pyad.Var(5.0)
    f = pyad.log(x1) + x1 * x2 - pyad.sin(x2)
    assert f.v == 11.652071455223084
    f.backward()
    assert x1.grad == 5.5
    assert x2.grad == 2 - math.cos(5)
    assert x2.grad == 1.7163378145367738
    assert f.grad == 1.0


# -- edges: kinks, infinite derivatives, large arguments, domain limits ------------------------


def grad_of(f: Callable[..., Any], *point: float) -> tuple[float, list[float]]:
    xs = [pyad.Var(p) for p in point]
    out = f(*xs)
    out.backward()
    return out.v, [x.grad for x in xs]


def test_kinks(tape: pyad.Tape) -> None:
    for z in (0.0, -0.0):
        assert grad_of(abs, z) == (0.0, [0.0])
        assert grad_of(pyad.relu, z) == (0.0, [0.0])
    assert grad_of(pyad.relu, 1e-300) == (1e-300, [1.0])
    assert grad_of(pyad.relu, -1e-300) == (0.0, [0.0])
    assert grad_of(abs, -1e-300) == (1e-300, [-1.0])
    # atan2 and hypot at the origin: partials (0, 0), in every form
    for f in (pyad.atan2, pyad.hypot):
        assert grad_of(f, 0.0, 0.0) == (0.0, [0.0, 0.0])
        assert grad_of(lambda x, f=f: f(x, 0.0), 0.0) == (0.0, [0.0])
        assert grad_of(lambda x, f=f: f(0, x), 0.0) == (0.0, [0.0])
        assert grad_of(lambda x, f=f: f(x, x), 0.0) == (0.0, [0.0])
    for f in (
        lambda M, x: abs(x),
        lambda M, x: M.relu(x),
        lambda M, x: M.atan2(x, 0.0),
        lambda M, x: M.atan2(0, x),
        lambda M, x: M.atan2(x, x),
        lambda M, x: M.hypot(0.0, x),
        lambda M, x: M.hypot(x, 0),
        lambda M, x: M.hypot(x, x),
    ):
        for z in (0.0, -0.0):
            assert_matches_reference(f, [z])
    for point in [(0.0, 0.0), (-0.0, 0.0), (0.0, -0.0), (-0.0, -0.0)]:
        assert_matches_reference(lambda M, x, y: M.atan2(x, y), point)
        assert_matches_reference(lambda M, x, y: M.hypot(x, y), point)


def test_infinite_derivatives(tape: pyad.Tape) -> None:
    assert grad_of(pyad.sqrt, 0.0) == (0.0, [math.inf])
    assert grad_of(pyad.asin, 1.0) == (math.asin(1.0), [math.inf])
    assert grad_of(pyad.asin, -1.0) == (math.asin(-1.0), [math.inf])
    assert grad_of(pyad.acos, 1.0) == (0.0, [-math.inf])
    assert grad_of(pyad.acos, -1.0) == (math.pi, [-math.inf])
    assert grad_of(lambda x: x**0.5, 0.0) == (0.0, [math.inf])
    for f, points in [
        (lambda M, x: M.sqrt(x), [0.0, -0.0]),
        (lambda M, x: x**0.5, [0.0]),
        (lambda M, x: M.asin(x), [1.0, -1.0]),
        (lambda M, x: M.acos(x), [1.0, -1.0]),
    ]:
        for a in points:
            assert_matches_reference(f, [a])


def test_pow_conventions(tape: pyad.Tape) -> None:
    """0 ** b, a ** 0, negative bases with integer exponents: as the reference says."""
    for point in [
        (0.0, 2.0),
        (0.0, 3.0),
        (0.0, 0.5),
        (0.0, 0.0),
        (2.0, 0.0),
        (-2.0, 3.0),
        (-2.0, 2.0),
        (-2.0, -1.0),
        (-0.5, 0.0),
        (1.0, 1e6),
    ]:
        assert_matches_reference(lambda M, x, y: x**y, point)
        assert_matches_reference(lambda M, x, y: M.pow(x, y), point)
        assert_matches_reference(lambda M, x, a=point[1]: x**a, [point[0]])
        assert_matches_reference(lambda M, y, a=point[0]: a**y, [point[1]])
    v, (da, db) = grad_of(lambda x, y: x**y, 0.0, 2.0)
    assert (v, da, db) == (0.0, 0.0, 0.0)
    v, (da, db) = grad_of(lambda x, y: x**y, -2.0, 3.0)
    assert (v, da) == (-8.0, 12.0)
    assert math.isnan(db)
    v, (da, db) = grad_of(lambda x, y: x**y, 2.0, 0.0)
    assert (v, da, db) == (1.0, 0.0, math.log(2.0))


def test_large_arguments(tape: pyad.Tape) -> None:
    assert grad_of(pyad.sigmoid, -1000.0) == (0.0, [0.0])
    assert grad_of(pyad.sigmoid, 1000.0) == (1.0, [0.0])
    assert grad_of(pyad.sigmoid, -745.2)[0] == 0.0
    assert grad_of(pyad.softplus, 1000.0) == (1000.0, [1.0])
    assert grad_of(pyad.softplus, -1000.0) == (0.0, [0.0])
    assert grad_of(pyad.tanh, 1000.0) == (1.0, [0.0])
    assert grad_of(pyad.tanh, -1000.0) == (-1.0, [0.0])
    assert grad_of(pyad.exp, -1000.0) == (0.0, [0.0])
    assert grad_of(pyad.exp, 709.0) == (math.exp(709.0), [math.exp(709.0)])
    assert grad_of(pyad.expm1, -1000.0) == (-1.0, [0.0])
    assert grad_of(pyad.atan, 1e300) == (math.atan(1e300), [0.0])
    assert pyad.sigmoid(-1000.0) == 0.0
    assert pyad.sigmoid(1000) == 1.0
    assert pyad.softplus(1000.0) == 1000.0
    assert pyad.softplus(-1000.0) == 0.0
    for name in ("sigmoid", "softplus", "tanh", "exp", "expm1", "atan", "relu"):
        for a in (-1000.0, -40.0, 40.0, 700.0):
            assert_matches_reference(lambda M, x, name=name: getattr(M, name)(x), [a])
    # logsumexp and softmax do not overflow
    v, g = grad_of(lambda x, y: pyad.logsumexp([x, y]), 1000.0, 1000.0)
    assert v == 1000.0 + math.log(2.0)
    assert g == [0.5, 0.5]
    v, g = grad_of(lambda x, y: pyad.logsumexp([x, y]), -1000.0, -1000.0)
    assert v == -1000.0 + math.log(2.0)
    assert g == [0.5, 0.5]
    v, g = grad_of(lambda x, y: pyad.logsumexp([x, y, 0.0]), 1000.0, -1000.0)
    assert (v, g) == (1000.0, [1.0, 0.0])
    assert pyad.logsumexp([1000, 1000]) == 1000.0 + math.log(2.0)
    assert pyad.softmax([1000.0, 1000.0, 0.0]) == [0.5, 0.5, 0.0]
    ys = pyad.softmax([pyad.Var(1000.0), pyad.Var(1000.0), pyad.Var(-1000.0)])
    assert [y.v for y in ys] == [0.5, 0.5, 0.0]
    for i in range(3):
        for point in [(1000.0, 1000.0, -1000.0), (800.0, -5.0, 1.0)]:
            assert_matches_reference(lambda M, x, y, z, i=i: M.softmax([x, y, z])[i], point)
    for point in [(1000.0, 1000.0), (-1000.0, -999.0), (1e300, 0.0)]:
        assert_matches_reference(lambda M, x, y: M.logsumexp([x, y]), point)


def test_logsumexp_infinite_maximum(tape: pyad.Tape) -> None:
    v, g = grad_of(lambda x, y: pyad.logsumexp([x, y]), math.inf, 1.0)
    assert (v, g) == (math.inf, [1.0, 0.0])
    v, g = grad_of(lambda x, y: pyad.logsumexp([x, y]), -math.inf, -math.inf)
    assert (v, g) == (-math.inf, [0.0, 0.0])
    for point in [(math.inf, 1.0), (math.inf, math.inf), (-math.inf, -math.inf), (-math.inf, 2.0)]:
        assert_matches_reference(lambda M, x, y: M.logsumexp([x, y, -3.0]), point)


def test_domain_limits(tape: pyad.Tape) -> None:
    for a in (-1.0 + 1e-12, -1.0 + 2.0**-52, -0.999999):
        v, (g,) = grad_of(pyad.log1p, a)
        assert_same(v, math.log1p(a), f"log1p({a})")
        assert_same(g, 1.0 / (1.0 + a), f"log1p'({a})")
        assert_matches_reference(lambda M, x: M.log1p(x), [a])
    for a in (1.0 - 1e-12, -1.0 + 1e-12, 1.0 - 2.0**-53, -1.0 + 2.0**-53):
        for name in ("asin", "acos"):
            v, (g,) = grad_of(getattr(pyad, name), a)
            assert_same(v, getattr(math, name)(a), f"{name}({a})")
            assert math.isfinite(g), (name, a, g)
            assert_matches_reference(lambda M, x, name=name: getattr(M, name)(x), [a])
    for a in (5e-324, 1e-300, 1e300):
        for name in ("log", "sqrt"):
            v, (g,) = grad_of(getattr(pyad, name), a)
            assert_same(v, getattr(math, name)(a), f"{name}({a})")
            assert_matches_reference(lambda M, x, name=name: getattr(M, name)(x), [a])
    assert grad_of(pyad.exp, 709.78)[0] == math.exp(709.78)
    assert grad_of(pyad.cosh, 710.0)[0] == math.cosh(710.0)
    assert grad_of(pyad.sinh, -710.0)[0] == math.sinh(-710.0)
    assert grad_of(lambda x: x**1023, 2.0)[0] == 2.0**1023


# -- n-ary ops ----------------------------------------------------------------------------------

NARY_FUNCTIONS: list[tuple[str, Callable[..., Any]]] = [
    ("sum", lambda M, x, y, z: M.sum([x, y, z])),
    ("sum", lambda M, x, y, z: M.sum([x, 2.0, y, np.float64(0.5), 3, np.float32(0.25)], start=z)),
    ("sum", lambda M, x, y, z: M.sum([x, x, y])),
    ("sum", lambda M, x, y, z: M.sum([x * y, z, 1.5])),
    ("sum", lambda M, x, y, z: M.sum([x], start=2.0)),
    ("sum", lambda M, x, y, z: M.sum([1.0, 2.0], start=x)),
    ("sum", lambda M, x, y, z: M.sum(v for v in (z, y, x, y))),
    ("dot", lambda M, x, y, z: M.dot([x, y, z], [z, x, y])),
    ("dot", lambda M, x, y, z: M.dot([x, 2.0, y], [y, z, 3])),
    ("dot", lambda M, x, y, z: M.dot([x, y], [x, x])),
    ("dot", lambda M, x, y, z: M.dot([np.float32(0.5), x, np.int64(-2)], [y, np.int64(2), z])),
    ("dot", lambda M, x, y, z: M.dot([x], [x])),
    ("logsumexp", lambda M, x, y, z: M.logsumexp([x, y, z])),
    ("logsumexp", lambda M, x, y, z: M.logsumexp([x, y, z, 0.5, np.float32(-1.0)])),
    ("logsumexp", lambda M, x, y, z: M.logsumexp([x * 100, y, z])),
    ("logsumexp", lambda M, x, y, z: M.logsumexp([x, x, y])),
    ("logsumexp", lambda M, x, y, z: M.logsumexp([z])),
    ("logsumexp", lambda M, x, y, z: M.logsumexp([2, y])),
    *[("softmax", lambda M, x, y, z, i=i: M.softmax([x, y, 0.1, z])[i]) for i in range(4)],
    *[("softmax", lambda M, x, y, z, i=i: M.softmax([x, x, y])[i]) for i in range(3)],
    ("softmax", lambda M, x, y, z: M.softmax([x])[0]),
    ("softmax", lambda M, x, y, z: M.dot(M.softmax([x, y, z]), [1.0, -2.0, 3.5])),
    ("softmax", lambda M, x, y, z: M.sum(M.softmax([x, y, z]))),
    ("dot", lambda M, x, y, z: M.dot([x, y], [z, 2.0], start=x)),
    ("dot", lambda M, x, y, z: M.dot([x, y], [z, y], start=1.5)),
    ("dot", lambda M, x, y, z: M.dot([2.0, 3.0], [z, y], start=y)),
    *[("matvec", lambda M, x, y, z, i=i: M.matvec(_MATRIX, [x, y, z])[i]) for i in range(2)],
    ("matvec", lambda M, x, y, z: M.dot(M.matvec(_MATRIX, [z, x, z]), [1.5, -0.5])),
    ("matvec", lambda M, x, y, z: M.matvec([[2.0, -1.0]], [x * y, x])[0]),
    ("primitive", lambda M, x, y, z: _PRIMITIVE(M)(x, y, z)),
    ("primitive", lambda M, x, y, z: _PRIMITIVE(M)(x, 2.0, z) * y),
]
NARY_POINTS = [(0.3, -1.2, 2.5), (1.1, 0.4, -0.7)]
#: matvec's constant matrix (one row per output)
_MATRIX = [[1.5, -2.0, 0.25], [0.0, 3.0, -1.0]]


def _PRIMITIVE(M: ModuleType) -> Callable[..., Any]:
    """a*b + sin(c) as a user-defined primitive of engine M."""
    return M.primitive(  # type: ignore[no-any-return]
        lambda a, b, c: a * b + math.sin(c), lambda a, b, c: [b, a, math.cos(c)]
    )


NARY_CASES = [(name, f, p) for name, f in NARY_FUNCTIONS for p in NARY_POINTS]
NARY_IDS = [f"{name}-{i // len(NARY_POINTS)}-{p}" for i, (name, _, p) in enumerate(NARY_CASES)]


def test_nary_cases_cover_every_nary_op() -> None:
    assert {name for name, _ in NARY_FUNCTIONS} == set(NARY_OPS) == NARY_COVERED


@pytest.mark.parametrize(("name", "f", "point"), NARY_CASES, ids=NARY_IDS)
def test_nary_vs_reference(tape: pyad.Tape, name: str, f: Callable[..., Any], point: Any) -> None:
    assert_matches_reference(f, point)
    assert_matches_reference(f, point, upstream=-1.75)


@pytest.mark.parametrize(("name", "f", "point"), NARY_CASES, ids=NARY_IDS)
def test_nary_vs_finite_differences(
    tape: pyad.Tape, name: str, f: Callable[..., Any], point: Any
) -> None:
    assert_fd(f, point)


def test_nary_values(tape: pyad.Tape) -> None:
    x, y, z = pyad.Var(0.3), pyad.Var(-1.2), pyad.Var(2.5)
    s = pyad.sum([x, x, y])
    assert s.op == "sum"
    assert s.v == 0.0 + 0.3 + 0.3 + -1.2
    s.backward()
    assert (x.grad, y.grad, z.grad) == (2.0, 1.0, 0.0)
    d = pyad.dot([x, 2.0, y], [y, z, 3])
    assert d.op == "dot"
    assert d.v == 0.0 + 0.3 * -1.2 + 2.0 * 2.5 + -1.2 * 3.0
    for v in (x, y, z):
        v.grad = 0.0
    d.backward()
    assert (x.grad, y.grad, z.grad) == (-1.2, 0.3 + 3.0, 2.0)
    lse = pyad.logsumexp([x, y, z])
    assert lse.op == "logsumexp"
    assert same(lse.v, math.log(math.exp(0.3) + math.exp(-1.2) + math.exp(2.5)), 1e-15)
    ys = pyad.softmax([x, y, 1.0, z])
    assert len(ys) == 4
    assert all(isinstance(v, pyad.Var) and v.op == "softmax" for v in ys)
    total = math.exp(0.3) + math.exp(-1.2) + math.exp(1.0) + math.exp(2.5)
    for v, a in zip(ys, (0.3, -1.2, 1.0, 2.5)):
        assert same(v.v, math.exp(a) / total, 1e-15)


def test_nary_repeated_vars(tape: pyad.Tape) -> None:
    x, y = pyad.Var(1.5), pyad.Var(-0.5)
    pyad.sum([x, x, y]).backward()
    assert (x.grad, y.grad) == (2.0, 1.0)
    x.grad = y.grad = 0.0
    pyad.sum([x, x, x, x], start=y).backward()
    assert (x.grad, y.grad) == (4.0, 1.0)
    x.grad = 0.0
    pyad.dot([x, x], [x, 2.0]).backward()
    assert x.grad == 2 * 1.5 + 2.0
    x.grad = 0.0
    pyad.logsumexp([x, x]).backward()
    assert x.grad == 1.0
    assert pyad.logsumexp([x, x]).v == 1.5 + math.log(2.0)


def test_nary_of_numbers_gives_floats(tape: pyad.Tape) -> None:
    n = len(tape)
    cases = {
        "sum": (pyad.sum([1, 2, np.float64(3), np.float32(0.5)]), 6.5),
        "sum start": (pyad.sum([1, 2, 3], start=4), 10.0),
        "sum empty": (pyad.sum([]), 0.0),
        "dot": (pyad.dot([1, 2], [3, np.int64(4)]), 11.0),
        "dot empty": (pyad.dot([], []), 0.0),
        "logsumexp": (pyad.logsumexp([1, 2.0]), R.logsumexp([1, 2.0])),
        "logsumexp big": (pyad.logsumexp([1000, 1000]), 1000.0 + math.log(2.0)),
    }
    for what, (got, want) in cases.items():
        assert_same(got, want, what)
    sm = pyad.softmax([1, 2.0, np.float64(-0.5)])
    assert isinstance(sm, list)
    want_sm = R.softmax([1, 2.0, np.float64(-0.5)])
    assert len(sm) == 3
    for got, want in zip(sm, want_sm):
        assert_same(got, want, "softmax of numbers")
    assert len(tape) == n, "plain-number calls must not record"


def test_nary_mixed_constants_record_once(tape: pyad.Tape) -> None:
    x, y = pyad.Var(0.5), pyad.Var(2.0)
    n = len(tape)
    for f in (
        lambda: pyad.sum([x, 1.0, y, 2]),
        lambda: pyad.dot([x, 3.0], [1.5, y]),
        lambda: pyad.logsumexp([x, 0.0, y]),
    ):
        out = f()
        assert isinstance(out, pyad.Var)
        assert len(tape) == n + 1
        n += 1
    ys = pyad.softmax([x, 0.0, y])
    assert len(tape) == n + 3
    assert len(ys) == 3


def test_nary_many_operands(tape: pyad.Tape) -> None:
    """Operand lists longer than a tape segment (1024 records)."""
    for n in (1023, 1024, 1025, 5000):
        point = [math.sin(i) for i in range(n)]
        consts = [0.5 * math.cos(i) for i in range(n)]
        assert_matches_reference(lambda M, *xs: M.sum(xs), point)
        assert_matches_reference(lambda M, *xs, consts=consts: M.dot(xs, consts), point)
        assert_matches_reference(
            lambda M, *xs, n=n: M.dot(xs[: n // 2], xs[n // 2 : 2 * (n // 2)]), point
        )
        assert_matches_reference(lambda M, *xs: M.logsumexp(xs), point)


@pytest.mark.parametrize("n", [1024, 1025, 1100])
def test_softmax_many_operands(tape: pyad.Tape, n: int) -> None:
    """softmax is one record per output: still the reference's values and gradients when it
    has more outputs than a tape segment holds."""
    point = [math.sin(i) for i in range(n)]
    picks = [0, n // 2, n - 1]
    weights = [1.0, -2.0, 0.5]

    def f(M: ModuleType, *xs: Any) -> Any:
        ys = M.softmax(xs)
        assert len(ys) == n
        return M.dot([ys[i] for i in picks], weights)

    assert_matches_reference(f, point)


# -- special values: nan, infinities, zeros of both signs, extremes -----------------------------
# pyad.reference documents the C engine's conventions for every input; here the two engines
# must agree on every special input: both raise the same builtin exception, or both give the
# same value, gradients and partials (NaN matching NaN).

SPECIALS = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, 1.0, -1.0, 0.5]
_BUILTINS = (ZeroDivisionError, OverflowError, ValueError, TypeError)


def outcome(module: ModuleType, f: Callable[..., Any], point: Sequence[float]) -> tuple[Any, ...]:
    try:
        _, v, grads, partials = run(module, f, point, upstream=1.0)
    except _BUILTINS as exc:
        return ("raises", next(b for b in _BUILTINS if isinstance(exc, b)).__name__)
    return ("gives", v, *grads, *partials)


def outcome_of_numbers(call: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        got = call()
    except _BUILTINS as exc:
        return ("raises", next(b for b in _BUILTINS if isinstance(exc, b)).__name__)
    return ("gives", *(got if isinstance(got, list) else [got]))


def outcomes_agree(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if a[0] != b[0] or len(a) != len(b):
        return False
    if a[0] == "raises":
        return a == b
    return all(type(x) is float and same(x, y) for x, y in zip(a[1:], b[1:]))


def assert_agree_on(f: Callable[..., Any], points: Sequence[Sequence[float]]) -> None:
    bad = []
    for point in points:
        got, want = outcome(pyad, f, point), outcome(R, f, point)
        if not outcomes_agree(got, want):
            bad.append(f"at {tuple(point)}: pyad {got}, reference {want}")
    assert not bad, f"{len(bad)} disagreements:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("name", UNARY_OPS)
def test_unary_special_values_vs_reference(tape: pyad.Tape, name: str) -> None:
    assert_agree_on(_unary_f(name), [[a] for a in SPECIALS])
    if name not in UNARY_OPERATORS:
        bad = []
        for a in SPECIALS:
            got = outcome_of_numbers(lambda a=a: getattr(pyad, name)(a))
            want = outcome_of_numbers(lambda a=a: getattr(R, name)(a))
            if not outcomes_agree(got, want):
                bad.append(f"pyad.{name}({a}): {got}, reference {want}")
        assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("name", "form"), [(n, f) for n in BINARY_OPS for f in binary_form_names(n)]
)
def test_binary_special_values_vs_reference(tape: pyad.Tape, name: str, form: str) -> None:
    pairs = [[a, b] for a in SPECIALS for b in SPECIALS]
    assert_agree_on(_binary_f(name, form), pairs)  # Var op Var
    assert_agree_on(
        lambda M, x, b: binary_form(M, name, form)(x, b.v if M is R else float(b.v)), []
    )
    bad = []
    for a, b in pairs:
        for label, f, point in [
            ("x op c", lambda M, x, b=b: binary_form(M, name, form)(x, b), [a]),
            ("c op x", lambda M, x, a=a: binary_form(M, name, form)(a, x), [b]),
        ]:
            got, want = outcome(pyad, f, point), outcome(R, f, point)
            if not outcomes_agree(got, want):
                bad.append(f"{label} at ({a}, {b}): pyad {got}, reference {want}")
        if form == "function":
            got = outcome_of_numbers(lambda a=a, b=b: getattr(pyad, name)(a, b))
            want = outcome_of_numbers(lambda a=a, b=b: getattr(R, name)(a, b))
            if not outcomes_agree(got, want):
                bad.append(f"pyad.{name}({a}, {b}): {got}, reference {want}")
    assert not bad, f"{len(bad)} disagreements:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("name", NARY_OPS)
def test_nary_special_values_vs_reference(tape: pyad.Tape, name: str) -> None:
    def f(M: ModuleType, x: Any, y: Any) -> Any:
        items = [x, 0.25, y]
        if name == "dot":
            return M.dot(items, [y, x, 2.0])
        if name == "softmax":
            return M.sum(M.softmax(items))
        if name == "matvec":
            return M.sum(M.matvec([[1.0, -2.0, 0.5], [0.25, 3.0, -1.0]], [x, y, x]))
        return getattr(M, name)(items)

    pairs = [[a, b] for a in SPECIALS for b in SPECIALS]
    assert_agree_on(f, pairs)
    bad = []
    for a, b in pairs:
        args: list[Any] = [[a, b, 0.25]] if name != "dot" else [[a, b], [b, 2.0]]
        if name == "matvec":
            args = [[[1.0, -2.0, 0.5]], [a, b, 0.25]]
        got = outcome_of_numbers(lambda args=args: getattr(pyad, name)(*args))
        want = outcome_of_numbers(lambda args=args: getattr(R, name)(*args))
        if not outcomes_agree(got, want):
            bad.append(f"pyad.{name}{tuple(args)}: {got}, reference {want}")
    assert not bad, f"{len(bad)} disagreements:\n" + "\n".join(bad[:20])


def test_leaf_special_values(tape: pyad.Tape) -> None:
    for a in SPECIALS:
        x = pyad.Var(a)
        assert same(x.v, a)
        x.backward()
        assert x.grad == 1.0
