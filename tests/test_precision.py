"""Every op's value, partials and second partials against a 50-digit reference (mpmath).

The guarantee this checks (stated in csrc/ops.def): wherever the true result is a normal
float, an op's value and first partials are within FIRST_ULPS of it and its second partials
within SECOND_ULPS, at points spread log-uniformly over the whole range of normal floats and
gathered near every kink, pole and saturation (where a partial computed from the rounded
value would lose every digit: tanh' for |a| > 19, sigmoid' for a > 37, expm1' for a < -37,
asin' near +-1). The worst seen when this was written: 1.9 ulps for values and first partials,
3.7 for second partials.

How each quantity is obtained, so that what is checked is what a user gets:
* value and first partials from a one-record tape: ``Var`` op ``Var`` (and ``Var`` op number,
  number op ``Var`` for binary ops), then ``backward()``; a single record's gradient is its
  partial exactly;
* second partials from ``pyad.compile(...).hvp`` (the forward-over-reverse replay);
* the compiled replay's value and gradient must equal the recording's bit for bit.

Left out, on purpose:
* points where the op raises OverflowError (its true value overflows; where it returns inf
  instead, as float arithmetic and math.hypot do, its partials are still checked);
* kinks and poles (relu and abs at 0, atan2 and hypot at the origin, asin and acos at +-1):
  first order only, checked against the documented conventions (relu'(0) = abs'(0) = 0,
  partials (0, 0) at the origin, asin'(+-1) = inf, acos'(+-1) = -inf);
* pow's d2/da db = a^(b-1) (1 + b log a) near the curve b log a = -1, where its two terms
  cancel: it is checked in ulps of the larger term, a^(b-1) (relative accuracy there would
  need log a to more than double precision);
* pow's partials in b and its second partials for a < 0, which are NaN by convention;
* sum and dot: their values are plain left-to-right float sums (no ulp bound holds under
  cancellation), so only their partials and second partials are checked, exactly;
* logsumexp and softmax: computed in narymath.h, whose partials are being reworked (softmax
  loses its digits where it saturates; logsumexp's exp(v - m) carries the rounding of v - m);
* primitive: the caller supplies its value and partials, so nothing of pyad's is to check.

Inputs are normal floats (and, next to kinks, zeros and the smallest subnormals), drawn by
seeded generators: every run checks the same points.
"""

from __future__ import annotations

import math
import operator
import zlib
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import pytest

import pyad
from pyad import errors
from pyad._native import OPS

FIRST_ULPS = 3.0
SECOND_ULPS = 5.0
DBL_MIN = 2.2250738585072014e-308
DBL_MAX = 1.7976931348623157e308

#: a private 50-digit context, so that mpmath's global precision is left alone
M = mpmath.MPContext()
M.dps = 50
Mpf = Any  # mpmath has no type information

#: ops the test leaves out, and why (see the module docstring)
EXCLUDED = {
    "leaf": "an input, not an operation",
    "logsumexp": "narymath.h: partials being reworked with softmax's",
    "softmax": "narymath.h: partials lose their digits where softmax saturates (known)",
    "primitive": "the caller supplies value and partials",
    "matvec": "dot's sums, row by row: bit for bit pyad_push_dots (tests/test_matvec.py)",
}
NARY_CHECKED = {"sum", "dot"}

# -- the 50-digit reference ---------------------------------------------------------------


def _sig(a: Mpf) -> Mpf:
    return 1 / (1 + M.exp(-a))


#: name -> a -> (y, dy/da, d2y/da2); None where the true result does not exist
UNARY_REF: dict[str, Callable[[Mpf], tuple[Mpf | None, ...]]] = {
    "neg": lambda a: (-a, M.mpf(-1), M.mpf(0)),
    "abs": lambda a: (abs(a), M.mpf(M.sign(a)), M.mpf(0)),
    "exp": lambda a: (M.exp(a), M.exp(a), M.exp(a)),
    "log": lambda a: (M.log(a), 1 / a, -1 / a**2),
    "log1p": lambda a: (M.log1p(a), 1 / (1 + a), -1 / (1 + a) ** 2),
    "expm1": lambda a: (M.expm1(a), M.exp(a), M.exp(a)),
    "sqrt": lambda a: (M.sqrt(a), 1 / (2 * M.sqrt(a)), -1 / (4 * a * M.sqrt(a))),
    "sin": lambda a: (M.sin(a), M.cos(a), -M.sin(a)),
    "cos": lambda a: (M.cos(a), -M.sin(a), -M.cos(a)),
    "tan": lambda a: (M.tan(a), M.sec(a) ** 2, 2 * M.tan(a) * M.sec(a) ** 2),
    "asin": lambda a: (M.asin(a), 1 / M.sqrt(1 - a * a), a / (1 - a * a) ** M.mpf(1.5)),
    "acos": lambda a: (M.acos(a), -1 / M.sqrt(1 - a * a), -a / (1 - a * a) ** M.mpf(1.5)),
    "atan": lambda a: (M.atan(a), 1 / (1 + a * a), -2 * a / (1 + a * a) ** 2),
    "sinh": lambda a: (M.sinh(a), M.cosh(a), M.sinh(a)),
    "cosh": lambda a: (M.cosh(a), M.sinh(a), M.cosh(a)),
    "tanh": lambda a: (M.tanh(a), M.sech(a) ** 2, -2 * M.tanh(a) * M.sech(a) ** 2),
    # s'' = s (1 - s)(1 - 2s), with 1 - 2s = -tanh(a/2): no cancellation near a = 0
    "sigmoid": lambda a: (_sig(a), _sig(a) * _sig(-a), -_sig(a) * _sig(-a) * M.tanh(a / 2)),
    "relu": lambda a: (max(a, M.mpf(0)), M.mpf(1 if a > 0 else 0), M.mpf(0)),
    "softplus": lambda a: (M.log1p(M.exp(a)), _sig(a), _sig(a) * _sig(-a)),
}


def _pow_ref(a: Mpf, b: Mpf) -> tuple[Mpf | None, ...]:
    y = M.power(a, b)
    da, daa = b * M.power(a, b - 1), b * (b - 1) * M.power(a, b - 2)
    if a < 0:  # an integer b: the partials in b are NaN by convention
        return (y, da, None, daa, None, None)
    lg = M.log(a)
    return (y, da, y * lg, daa, M.power(a, b - 1) * (1 + b * lg), y * lg * lg)


def _atan2_ref(a: Mpf, b: Mpf) -> tuple[Mpf | None, ...]:
    r = a * a + b * b
    return (M.atan2(a, b), b / r, -a / r, -2 * a * b / r**2, (a * a - b * b) / r**2,
            2 * a * b / r**2)  # fmt: skip


def _hypot_ref(a: Mpf, b: Mpf) -> tuple[Mpf | None, ...]:
    h = M.sqrt(a * a + b * b)
    return (h, a / h, b / h, b * b / h**3, -a * b / h**3, a * a / h**3)


#: name -> (a, b) -> (y, da, db, daa, dab, dbb)
BINARY_REF: dict[str, Callable[[Mpf, Mpf], tuple[Mpf | None, ...]]] = {
    "add": lambda a, b: (a + b, M.mpf(1), M.mpf(1), M.mpf(0), M.mpf(0), M.mpf(0)),
    "sub": lambda a, b: (a - b, M.mpf(1), M.mpf(-1), M.mpf(0), M.mpf(0), M.mpf(0)),
    "mul": lambda a, b: (a * b, b, a, M.mpf(0), M.mpf(1), M.mpf(0)),
    "div": lambda a, b: (a / b, 1 / b, -a / b**2, M.mpf(0), -1 / b**2, 2 * a / b**3),
    "pow": _pow_ref,
    "atan2": _atan2_ref,
    "hypot": _hypot_ref,
}


def unary_reference(name: str, a: Mpf) -> tuple[Mpf | None, ...]:
    try:
        return UNARY_REF[name](a)
    except ZeroDivisionError:  # a pole of the partials (asin, acos at +-1): the value alone
        return (getattr(M, name)(a), None, None)


#: the documented conventions at kinks and poles (first partials; no second partials there)
UNARY_KINKS: dict[str, dict[float, float]] = {
    "abs": {0.0: 0.0},
    "relu": {0.0: 0.0},
    "asin": {1.0: math.inf, -1.0: math.inf},
    "acos": {1.0: -math.inf, -1.0: -math.inf},
}
ORIGIN_CONVENTION = {"atan2", "hypot"}  # partials (0, 0) at (0, 0)

UNARY_FN: dict[str, Callable[[Any], Any]] = {"neg": operator.neg, "abs": abs}
BINARY_FN: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
}


def unary_fn(name: str) -> Callable[[Any], Any]:
    return UNARY_FN.get(name) or getattr(pyad, name)


def binary_fn(name: str) -> Callable[[Any, Any], Any]:
    return BINARY_FN.get(name) or getattr(pyad, name)


def ulps(got: float, want: Mpf | None, scale: Mpf | None = None) -> float | None:
    """|got - want| in ulps of want (of the larger of |want| and |scale| if scale is given);
    None where want does not exist or is not a normal float. An exact 0 must be met exactly."""
    if want is None:
        return None
    if want == 0:
        return 0.0 if got == 0.0 else math.inf
    w = float(want)
    if not DBL_MIN <= abs(w) <= DBL_MAX:
        return None
    if not math.isfinite(got):
        return math.inf
    size = abs(want) if scale is None else max(abs(want), abs(scale))
    exponent = M.frexp(size)[1]  # size = m 2^exponent with m in [0.5, 1)
    return float(abs(M.mpf(got) - want) / M.ldexp(1, exponent - 53))


# -- the points ------------------------------------------------------------------------------


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _log_uniform(
    rng: np.random.Generator, n: int, lo: float = -1022.0, hi: float = 1023.99, signed: bool = True
) -> list[float]:
    """n floats with log2|x| uniform in [lo, hi) (the whole normal range by default)."""
    m = np.exp2(rng.uniform(lo, hi, n))
    if signed:
        m *= rng.choice([-1.0, 1.0], n)
    return [float(x) for x in m]


def _uniform(rng: np.random.Generator, n: int, lo: float, hi: float) -> list[float]:
    return [float(x) for x in rng.uniform(lo, hi, n)]


def _around(x: float, k: int = 3) -> list[float]:
    """x and its k nearest floats on each side."""
    out, up, down = [x], x, x
    for _ in range(k):
        up, down = math.nextafter(up, math.inf), math.nextafter(down, -math.inf)
        out += [up, down]
    return out


OVERFLOW_EXP = math.log(DBL_MAX)  # 709.78: exp overflows above
NEAR_ONE = [s * (1 - 2.0**-k) for k in range(1, 54) for s in (1.0, -1.0)] + [1.0, -1.0]

#: per unary op: (lo, hi) of the interval where its value is not trivially saturated, and
#: its special points (kinks, poles, the saturation thresholds and beyond)
UNARY_POINTS: dict[str, tuple[tuple[float, float], list[float]]] = {
    "neg": ((-10, 10), []),
    "abs": ((-10, 10), [0.0, 5e-324, -5e-324]),
    "relu": ((-10, 10), [0.0, 5e-324, -5e-324]),
    "exp": ((-746, 710), _around(OVERFLOW_EXP) + _around(-708.4) + _around(-745.1)),
    "log": ((0, 10), _around(1.0)),
    "log1p": ((-1, 10), [-1 + 2.0**-k for k in range(1, 53)] + _around(0.0)[1:]),
    "expm1": ((-746, 710), [-0.5, -0.50001, -36.04, -37.5, -44.5, -100, -708.4, -745.0]),
    "sqrt": ((0, 10), []),
    "sin": ((-10, 10), [math.pi, 2 * math.pi, 1e22]),
    "cos": ((-10, 10), [math.pi / 2, 3 * math.pi / 2, 1e22]),
    "tan": ((-10, 10), [math.pi / 2, -math.pi / 2, 1e22]),
    "asin": ((-1, 1), NEAR_ONE),
    "acos": ((-1, 1), NEAR_ONE),
    "atan": ((-10, 10), [1e154, 6e153, -1e200]),
    "sinh": ((-711, 711), _around(710.4758600739439)),
    "cosh": ((-711, 711), _around(710.4758600739439)),
    "tanh": ((-360, 360), [0.549, 0.5494, 19.06, -19.06, 20.0, -22.0, 50.0, -300.0, 354.0]),
    "sigmoid": ((-750, 750), [1e-10, -1e-10, 36.7, 37.5, 40.0, -40.0, 100.0, 700.0, -744.0]),
    "softplus": ((-750, 750), [1e-10, -1e-10, 36.7, 37.5, 40.0, -40.0, 100.0, 700.0, -744.0]),
}
POSITIVE_ONLY = {"log", "sqrt"}


def _in_domain(name: str, a: float) -> bool:
    if name in POSITIVE_ONLY:
        return a > 0.0
    if name == "log1p":
        return a > -1.0
    if name in ("asin", "acos"):
        return abs(a) <= 1.0
    return True


def unary_points(name: str) -> list[float]:
    """The interesting interval (150 points), the whole range (300) and the special points."""
    rng = _rng(name)
    (lo, hi), special = UNARY_POINTS[name]
    pts = special + _uniform(rng, 150, lo, hi)
    pts += _log_uniform(rng, 300, signed=name not in POSITIVE_ONLY)
    if name in ("asin", "acos", "log1p"):  # the whole range of their small arguments
        pts += _log_uniform(rng, 150, -1022.0, 0.0)
    return [a for a in pts if _in_domain(name, a)]


def _pow_points(rng: np.random.Generator) -> list[tuple[float, float]]:
    pts = []
    # bases over the whole range, exponents putting a^b over the whole range (a^b = e^t)
    for a, t in zip(_log_uniform(rng, 300, signed=False), _uniform(rng, 300, -744.0, 709.0)):
        if a != 1.0:
            pts.append((a, t / math.log(a)))
    # small exponents, and exponents whose b - 1 does not round (b * 2^53 an integer)
    pts += list(zip(_log_uniform(rng, 50, -5, 5, False), _log_uniform(rng, 50, -60, 3)))
    pts += [(a, k / 64) for a, k in zip(_log_uniform(rng, 20, -900, 900, False), range(-40, 40, 4))]
    # bases near 1 with exponents past 2^53 (there b - 1 rounds by 1 or 2)
    for k, b in zip(rng.integers(1, 50, 30), _log_uniform(rng, 30, 53, 60, False)):
        pts.append((1 + float(k) * 2.0**-52, b))
    # where a^(b-1) is below the normal range but b a^(b-1) is not, and where a^b is
    # subnormal but a^b log a is not (the partials' rescaled branches)
    for b, u in zip(_log_uniform(rng, 30, 3, 50, False), rng.uniform(0, 1, 30)):
        pts.append((math.exp((-708.4 - u * math.log(b)) / b), b))
    for a, u in zip(_log_uniform(rng, 30, -1000, -20, False), rng.uniform(0, 1, 30)):
        pts.append((a, (-708.4 - u * math.log(-math.log(a))) / math.log(a)))
    for b, t in zip(_log_uniform(rng, 20, 53, 58, False), rng.uniform(-744, -709, 20)):
        pts.append((math.exp(t / b), b))  # a^b subnormal with b - 1 rounded: both fallbacks
    # negative bases with integer exponents
    pts += [(-a, float(b)) for a, b in zip(_log_uniform(rng, 40, -3, 3, False), range(-60, 60, 3))]
    return pts


def binary_points(name: str) -> list[tuple[float, float]]:
    rng = _rng(name)
    if name == "pow":
        return _pow_points(rng)
    pts = list(zip(_log_uniform(rng, 300), _log_uniform(rng, 300)))
    pts += list(zip(_uniform(rng, 100, -10, 10), _uniform(rng, 100, -10, 10)))
    if name in ("atan2", "hypot"):  # |a| near |b|, where a^2 - b^2 cancels
        for a, d in zip(_log_uniform(rng, 60), _log_uniform(rng, 60, -52, -1)):
            pts += [(a, a * (1 + d)), (a, -a * (1 + d))]
        pts.append((0.0, 0.0))
    # values that overflow (hypot's to inf, as math.hypot's: its partials do not)
    pts += [(1.5e308, 1.5e308), (-1.7e308, 1e308), (1e308, -1.7e308), (1e200, 1e200)]
    return pts


# -- checking --------------------------------------------------------------------------------


class Report:
    """The comparisons made for one op, and those out of bounds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.checked = 0
        self.bad: list[str] = []

    def check(
        self, what: str, point: object, got: float, want: Mpf | None, scale: Mpf | None = None
    ) -> None:
        err = ulps(got, want, scale)
        if err is None:
            return
        self.checked += 1
        bound = SECOND_ULPS if what.startswith("d2") else FIRST_ULPS
        if not err <= bound:
            self.bad.append(
                f"{self.name} {what} at {point!r}: {got!r}, true {want}, {err:.3g} ulps"
            )

    def assert_ok(self, at_least: int) -> None:
        assert not self.bad, f"{len(self.bad)} out of bounds:\n" + "\n".join(self.bad[:20])
        assert self.checked >= at_least, f"{self.name}: only {self.checked} comparisons"


def _same_bits(x: np.ndarray, y: np.ndarray) -> bool:
    return bool(
        np.asarray(x, dtype=np.float64).tobytes() == np.asarray(y, dtype=np.float64).tobytes()
    )


def records_of(record: Callable[[], object]) -> dict[str, int]:
    """The records per op that ``record()`` leaves on a new tape: what is tested is the op."""
    with pyad.Tape() as tape:
        kept = record()
        counts = tape.summary().records_per_op
        del kept
    return counts


UNARY_OPS = [name for name, (_, arity) in OPS.items() if arity == 1]
BINARY_OPS = [name for name, (_, arity) in OPS.items() if arity == 2]


def test_every_op_is_checked_or_excluded_with_a_reason() -> None:
    checked = set(UNARY_REF) | set(BINARY_REF) | NARY_CHECKED
    assert set(OPS) == checked | set(EXCLUDED), set(OPS) ^ (checked | set(EXCLUDED))
    assert not checked & set(EXCLUDED)


@pytest.mark.parametrize("name", UNARY_OPS)
def test_unary_op_against_50_digits(name: str) -> None:
    f, kinks = unary_fn(name), UNARY_KINKS.get(name, {})
    report = Report(name)
    kept: list[float] = []
    values: list[float] = []
    grads: list[float] = []
    assert records_of(lambda: f(pyad.Var(0.5))) == {"leaf": 1, name: 1}
    with pyad.Tape():
        for a in unary_points(name):
            want = unary_reference(name, M.mpf(a))
            x = pyad.Var(a)
            try:
                y = f(x)
            except errors.RangeError:
                assert abs(want[0]) > DBL_MAX, f"{name}({a!r}) raised, but its value is finite"
                continue
            y.backward()
            report.check("value", a, y.v, want[0])
            if a in kinks:
                assert x.grad == kinks[a], f"{name}'({a!r}) is {x.grad!r}, not {kinks[a]!r}"
                continue
            report.check("d/da", a, x.grad, want[1])
            kept.append(a)
            values.append(y.v)
            grads.append(x.grad)
    # second partials by the compiled replay, whose value and gradient are the recording's
    compiled = pyad.compile(lambda v: f(v[0]), [kept[0]])
    pts = np.array(kept)[:, None]
    value, grad = compiled.value_and_grad(pts)
    assert _same_bits(value, values) and _same_bits(grad[:, 0], grads)
    second = compiled.hvp(pts, np.ones_like(pts))[:, 0]
    for a, daa in zip(kept, second.tolist()):
        report.check("d2/da2", a, daa, unary_reference(name, M.mpf(a))[2])
    report.assert_ok(at_least=300)


@pytest.mark.parametrize("name", BINARY_OPS)
def test_binary_op_against_50_digits(name: str) -> None:
    f, ref = binary_fn(name), BINARY_REF[name]
    report = Report(name)
    kept: list[tuple[float, float]] = []
    values: list[float] = []
    grads: list[tuple[float, float]] = []
    assert records_of(lambda: f(pyad.Var(0.5), pyad.Var(2.0))) == {"leaf": 2, name: 1}
    assert records_of(lambda: f(pyad.Var(0.5), 2.0)) == {"leaf": 1, name: 1}
    assert records_of(lambda: f(0.5, pyad.Var(2.0))) == {"leaf": 1, name: 1}
    with pyad.Tape():
        for a, b in binary_points(name):
            want = ref(M.mpf(a), M.mpf(b)) if (a, b) != (0.0, 0.0) else (None,) * 6
            x, y = pyad.Var(a), pyad.Var(b)
            try:
                out = f(x, y)
            except errors.RangeError:
                assert abs(want[0]) > DBL_MAX, f"{name}({a!r}, {b!r}) raised, but is finite"
                continue
            out.backward()
            report.check("value", (a, b), out.v, want[0])
            if (a, b) == (0.0, 0.0):
                assert name in ORIGIN_CONVENTION and (x.grad, y.grad) == (0.0, 0.0)
                continue
            report.check("d/da", (a, b), x.grad, want[1])
            report.check("d/db", (a, b), y.grad, want[2])
            # the constant-operand forms, x op c and c op x (records of their own)
            xc, cy = pyad.Var(a), pyad.Var(b)
            vc, cv = f(xc, b), f(a, cy)
            vc.backward()
            cv.backward()
            report.check("value (x op c)", (a, b), vc.v, want[0])
            report.check("value (c op x)", (a, b), cv.v, want[0])
            report.check("d/da (x op c)", (a, b), xc.grad, want[1])
            report.check("d/db (c op x)", (a, b), cy.grad, want[2])
            kept.append((a, b))
            values.append(out.v)
            grads.append((x.grad, y.grad))
    compiled = pyad.compile(lambda v: f(v[0], v[1]), list(kept[0]))
    pts = np.array(kept)
    value, grad = compiled.value_and_grad(pts)
    assert _same_bits(value, values) and _same_bits(grad, grads)
    h_a = compiled.hvp(pts, np.tile([1.0, 0.0], (len(kept), 1)))
    h_b = compiled.hvp(pts, np.tile([0.0, 1.0], (len(kept), 1)))
    for (a, b), (daa, dab), (dba, dbb) in zip(kept, h_a.tolist(), h_b.tolist()):
        want = ref(M.mpf(a), M.mpf(b))
        scale = M.power(M.mpf(a), M.mpf(b) - 1) if name == "pow" else None
        report.check("d2/da2", (a, b), daa, want[3])
        report.check("d2/da db", (a, b), dab, want[4], scale)
        report.check("d2/db da", (a, b), dba, want[4], scale)
        report.check("d2/db2", (a, b), dbb, want[5])
    report.assert_ok(at_least=300)


def test_sum_and_dot_partials_are_exact() -> None:
    """sum's partials are 1 and dot's the other factor of each product, exactly; their second
    partials 0, and 1 between the two factors of a product (their values are left-to-right
    float sums, with no ulp bound under cancellation)."""
    assert records_of(lambda: pyad.sum([pyad.Var(1.0), 2.0])) == {"leaf": 1, "sum": 1}
    assert records_of(lambda: pyad.dot([pyad.Var(1.0)], [2.0])) == {"leaf": 1, "dot": 1}
    rng = _rng("sum and dot")
    n = 3
    summed = pyad.compile(lambda v: pyad.sum(v), [1.0] * 2 * n)
    dotted = pyad.compile(lambda v: pyad.dot(v[:n], v[n:]), [1.0] * 2 * n)

    def grads(fn: Callable[[list[pyad.Var]], Any], vals: list[float]) -> list[float]:
        xs = [pyad.Var(v) for v in vals]
        fn(xs).backward()
        return [x.grad for x in xs]

    for _ in range(40):
        vals = _log_uniform(rng, 2 * n, -500.0, 500.0)
        assert grads(pyad.sum, vals) == [1.0] * 2 * n
        assert grads(lambda xs: pyad.dot(xs[:n], xs[n:]), vals) == vals[n:] + vals[:n]
        # constants among the operands: the partial of x3 is the constant it multiplies
        w1, x2 = vals[1], vals[2]
        g = grads(lambda xs: pyad.dot([xs[0], w1], [x2, xs[3]]), vals)  # noqa: B023 (called here)
        assert (g[0], g[3]) == (x2, w1)
        assert not summed.hessian(vals).any()
        pairs = np.block([[np.zeros((n, n)), np.eye(n)], [np.eye(n), np.zeros((n, n))]])
        assert (dotted.hessian(vals) == pairs).all()
