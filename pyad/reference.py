"""Pure-Python reference engine for pyad: the test oracle and the benchmark baseline.

This is the classic scalar reverse-mode engine that pyad replaces, written so that it can serve
as an exact oracle for the C engine:

* every ``Var`` stores its value ``v``, its accumulated adjoint ``grad`` and its
  ``predecessors``: a list of ``(multiplier, Var)`` pairs holding the local partial derivative
  with respect to each ``Var`` operand (constants never become nodes);
* ``backward()`` collects the reachable nodes with an explicit stack (no recursion, no path
  walking), then sweeps them once in decreasing creation order.  Creation order is a topological
  order, and it is exactly the order of the C tape, so the floating-point accumulation order, and
  therefore every gradient, is bitwise identical to the C engine's sweep;
* the forward values and local partials use exactly the formulas of the C op table (documented
  on each function below); do not "improve" them, or the two engines stop agreeing bitwise.

Conventions at kinks and singular points (shared with the C engine):

* ``abs'(0) = 0`` and ``relu'(0) = 0`` (also for NaN input: the partial is then 0);
* ``sqrt'(0) = 0.5 / 0.0``, ``asin'(+-1)`` and ``acos'(+-1)`` follow IEEE division (``inf`` or
  ``-inf``, never an exception: ``sqrt'(-0.0)`` is ``-inf`` as in C); the same holds for
  ``x ** b`` at ``x == 0`` with ``0 < b < 1`` (``inf``);
* ``atan2`` and ``hypot`` have partials 0 where ``a*a + b*b`` (resp. the result) is 0;
* ``d(a ** b)/db`` is ``0`` where ``a == 0`` and NaN where ``a < 0``;
* ``logsumexp`` with an infinite maximum ``m`` is ``m``; its partials are then 1 for each element
  equal to ``+inf`` (when ``m = +inf``) and 0 for all others (all of them when ``m = -inf``).
  ``softmax`` with a non-finite maximum (``+-inf``, or NaN in first place) raises ValueError.
  Otherwise NaN input propagates.

Errors follow :mod:`math`: a domain error raises ValueError, a division by zero (and ``0`` raised
to a negative power) raises ZeroDivisionError, and a finite input whose ``exp``, ``expm1``,
``sinh``, ``cosh`` or ``pow`` overflows raises OverflowError.  A non-number operand raises
TypeError.  Otherwise NaN and infinities propagate as they do in :mod:`math`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from numbers import Real
from typing import Union

__all__ = [
    "Var",
    "acos",
    "asin",
    "atan",
    "atan2",
    "cos",
    "cosh",
    "dot",
    "exp",
    "expm1",
    "hypot",
    "log",
    "log1p",
    "logsumexp",
    "matvec",
    "pow",
    "primitive",
    "relu",
    "sigmoid",
    "sin",
    "sinh",
    "softmax",
    "softplus",
    "sqrt",
    "sum",
    "tan",
    "tanh",
]

#: What the module functions accept: a ``Var`` or a real number (int, float, numpy scalar, ...).
Scalar = Union["Var", float, int]

_INF = math.inf
_NAN = math.nan
_DBL_MIN = 2.2250738585072014e-308
_DBL_MAX = 1.7976931348623157e308

_m_exp = math.exp
_m_log = math.log
_m_log1p = math.log1p
_m_expm1 = math.expm1
_m_sqrt = math.sqrt
_m_sin = math.sin
_m_cos = math.cos
_m_tan = math.tan
_m_asin = math.asin
_m_acos = math.acos
_m_atan = math.atan
_m_sinh = math.sinh
_m_cosh = math.cosh
_m_tanh = math.tanh
_m_atan2 = math.atan2
_m_hypot = math.hypot
_m_pow = math.pow
_copysign = math.copysign
_isfinite = math.isfinite

# Global creation counter: creation order is a topological order of every graph.
_next_seq = itertools.count().__next__
_new = object.__new__


def _node(v: float, predecessors: list[tuple[float, Var]]) -> Var:
    """Create a computed node (no validation: ``v`` is already a float)."""
    n = _new(Var)
    n.v = v
    n.grad = 0.0
    n.predecessors = predecessors
    n._seq = _next_seq()
    return n


def _const(x: object) -> float | None:
    """Return ``x`` as a float if it is a real number (and not a Var), else None."""
    t = type(x)
    if t is float:
        return x  # type: ignore[return-value]
    if t is int or isinstance(x, Real):
        return float(x)  # type: ignore[arg-type]
    return None


def _scalar(x: object) -> float:
    """Return the number ``x`` as a float; TypeError for anything that is not a real number."""
    c = _const(x)
    if c is None:
        raise TypeError(f"expected a Var or a real number, got {type(x).__name__}")
    return c


def _value(x: object) -> float:
    """Value of a Var or a number (TypeError otherwise)."""
    if isinstance(x, Var):
        return x.v
    return _scalar(x)


def _ieee_div(n: float, d: float) -> float:
    """``n / d`` with C (IEEE 754) semantics: division by zero gives +-inf or NaN, never raises."""
    if d == 0.0:
        if n == 0.0 or math.isnan(n):
            return _NAN
        return _copysign(_INF, n) * _copysign(1.0, d)
    return n / d


def _is_odd_integer(e: float) -> bool:
    return _isfinite(e) and e == math.floor(e) and math.fmod(e, 2.0) != 0.0


def _fpow(a: float, b: float) -> float:
    """Forward ``a ** b`` on floats with the errors of Python/math.

    ``0 ** b`` with a finite negative ``b`` raises ZeroDivisionError as float
    ``**`` does, a negative base with a non-integer exponent raises ValueError and an overflow
    from finite operands raises OverflowError as ``math.pow`` does.
    """
    if a == 0.0 and b < 0.0 and _isfinite(b):
        raise ZeroDivisionError("0.0 cannot be raised to a negative power")
    return _m_pow(a, b)


def _cpow(a: float, e: float) -> float:
    """``a ** e`` with C ``pow`` semantics (used for partials): inf at poles and overflow."""
    try:
        return _m_pow(a, e)
    except OverflowError:
        if a < 0.0 and _is_odd_integer(e):
            return -_INF
        return _INF
    except ValueError:
        if a == 0.0:  # pole: pow(+-0, e < 0)
            return _copysign(_INF, a) if _is_odd_integer(e) else _INF
        return _NAN


def _isnormal(x: float) -> bool:
    return _DBL_MIN <= abs(x) <= _DBL_MAX


def _times_pow(k: float, a: float, c: float) -> float:
    """``k * a**c``, also where ``a**c`` alone leaves the normal range (C: pyad__times_pow)."""
    p = _cpow(a, c)
    if _isnormal(p) or math.isnan(p) or a == 0.0 or not _isfinite(a) or not _isfinite(c):
        return k * p
    h = _cpow(abs(a), 0.5 * c)
    return (-k if a < 0.0 and math.fmod(c, 2.0) != 0.0 else k) * h * h


def _pow_k(k: float, a: float, b: float, y: float, n: float) -> float:
    """``k * a**(b - n)`` for n = 1, 2 from ``y = a**b`` where ``b - n`` rounds (C: pyad__pow_k)."""
    c = b - n
    e = (b - c) - n if abs(b) >= n else b - (c + n)
    if e == 0.0 or a == 0.0 or not _isfinite(a) or not _isfinite(b):
        return _times_pow(k, a, c)
    q = y / a if n == 1.0 else y / a / a
    if _isnormal(q) and _isnormal(y):
        return k * q
    return _times_pow(k, a, c) * _cpow(a, e)


def _pow_da(a: float, b: float, y: float) -> float:
    """Partial of ``y = a ** b`` with respect to ``a``."""
    return 0.0 if b == 0.0 else _pow_k(b, a, b, y, 1.0)


def _pow_db(a: float, b: float, y: float) -> float:
    """Partial of ``y = a ** b`` with respect to ``b``: ``y log a``, from ``a**(b/2)`` where
    ``y`` is below the normal range (C: pyad__pow_ylog)."""
    if a > 0.0:
        lg = _m_log(a)
        if not abs(y) < _DBL_MIN or y == 0.0:
            return y * lg
        h = _cpow(a, 0.5 * b)
        return h * lg * h
    return 0.0 if a == 0.0 else _NAN


def _sigmoid(a: float) -> float:
    """Numerically stable logistic function (the C engine's formula)."""
    if a >= 0.0:
        return 1.0 / (1.0 + _m_exp(-a))
    e = _m_exp(a)
    return e / (1.0 + e)


def _softplus(a: float) -> float:
    return max(0.0, a) + _m_log1p(_m_exp(-abs(a)))


def _safe_cosh(a: float) -> float:
    try:
        return _m_cosh(a)
    except OverflowError:
        return _INF


def _safe_sinh(a: float) -> float:
    try:
        return _m_sinh(a)
    except OverflowError:
        return _copysign(_INF, a)


class Var:
    """A scalar node of the computation graph.

    ``Var(v)`` makes a leaf (an input); arithmetic on Vars and the module functions make
    computed nodes.  ``v`` is the value, ``grad`` the accumulated adjoint (both plain float
    attributes), ``predecessors`` the list of ``(local partial, operand Var)`` pairs.
    Equality and hashing are identity-based, so Vars work in sets and as dict keys.
    """

    __slots__ = ("_seq", "grad", "predecessors", "v")

    def __init__(self, v: float) -> None:
        if type(v) is not float:
            if isinstance(v, Var):
                raise TypeError("Var() value must be a number, not a Var (use the Var itself)")
            if not isinstance(v, Real):
                raise TypeError(f"Var() value must be a real number, not {type(v).__name__}")
            v = float(v)
        self.v = v
        self.grad = 0.0
        self.predecessors: list[tuple[float, Var]] = []
        self._seq = _next_seq()

    # -- reverse sweep ------------------------------------------------------------------------

    def backward(self, upstream_grad: float = 1.0) -> None:
        """Add ``upstream_grad * d(self)/d(node)`` to ``node.grad`` for every node reached.

        The reachable nodes (``self`` included) are collected with an explicit stack, then
        processed once each in decreasing creation order, which is a topological order and the
        order of the C tape's sweep.  Calling it again accumulates again.
        """
        nodes = {self._seq: self}
        stack = [self]
        pop = stack.pop
        push = stack.append
        while stack:
            for _, p in pop().predecessors:
                s = p._seq
                if s not in nodes:
                    nodes[s] = p
                    push(p)
        order = sorted(nodes, reverse=True)
        adj = dict.fromkeys(order, 0.0)
        adj[self._seq] = float(upstream_grad)
        for s in order:
            # Every consumer of this node was created later and has been processed already,
            # so adj[s] is final here: adding it to .grad now is the same as a separate final
            # pass (same values, same additions), and saves a second loop.
            node = nodes[s]
            g = adj[s]
            node.grad += g
            for m, p in node.predecessors:
                adj[p._seq] += m * g

    # -- conversions and comparisons ----------------------------------------------------------

    def __float__(self) -> float:
        raise TypeError(
            "float() of a Var: a Var is not turned into a plain number implicitly, because "
            "the number would carry no derivative; use x.v to read the value on purpose"
        )

    def __bool__(self) -> bool:
        return self.v != 0.0

    def __repr__(self) -> str:
        return f"Var(v={self.v!r}, grad={self.grad!r})"

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Var):
            return self.v < other.v
        b = _const(other)
        if b is None:
            return NotImplemented
        return self.v < b

    def __le__(self, other: object) -> bool:
        if isinstance(other, Var):
            return self.v <= other.v
        b = _const(other)
        if b is None:
            return NotImplemented
        return self.v <= b

    def __gt__(self, other: object) -> bool:
        if isinstance(other, Var):
            return self.v > other.v
        b = _const(other)
        if b is None:
            return NotImplemented
        return self.v > b

    def __ge__(self, other: object) -> bool:
        if isinstance(other, Var):
            return self.v >= other.v
        b = _const(other)
        if b is None:
            return NotImplemented
        return self.v >= b

    # -- arithmetic ---------------------------------------------------------------------------

    def __add__(self, other: Scalar) -> Var:
        if isinstance(other, Var):
            return _node(self.v + other.v, [(1.0, self), (1.0, other)])
        b = _const(other)
        if b is None:
            return NotImplemented
        return _node(self.v + b, [(1.0, self)])

    def __radd__(self, other: Scalar) -> Var:
        a = _const(other)
        if a is None:
            return NotImplemented
        return _node(a + self.v, [(1.0, self)])

    def __sub__(self, other: Scalar) -> Var:
        if isinstance(other, Var):
            return _node(self.v - other.v, [(1.0, self), (-1.0, other)])
        b = _const(other)
        if b is None:
            return NotImplemented
        return _node(self.v - b, [(1.0, self)])

    def __rsub__(self, other: Scalar) -> Var:
        a = _const(other)
        if a is None:
            return NotImplemented
        return _node(a - self.v, [(-1.0, self)])

    def __mul__(self, other: Scalar) -> Var:
        a = self.v
        if isinstance(other, Var):
            b = other.v
            return _node(a * b, [(b, self), (a, other)])
        c = _const(other)
        if c is None:
            return NotImplemented
        return _node(a * c, [(c, self)])

    def __rmul__(self, other: Scalar) -> Var:
        a = _const(other)
        if a is None:
            return NotImplemented
        return _node(a * self.v, [(a, self)])

    def __truediv__(self, other: Scalar) -> Var:
        a = self.v
        if isinstance(other, Var):
            b = other.v
            y = a / b
            return _node(y, [(1.0 / b, self), (-y / b, other)])
        c = _const(other)
        if c is None:
            return NotImplemented
        return _node(a / c, [(1.0 / c, self)])

    def __rtruediv__(self, other: Scalar) -> Var:
        a = _const(other)
        if a is None:
            return NotImplemented
        b = self.v
        y = a / b
        return _node(y, [(-y / b, self)])

    def __pow__(self, other: Scalar, modulo: None = None) -> Var:
        if modulo is not None:
            return NotImplemented
        a = self.v
        if isinstance(other, Var):
            b = other.v
            y = _fpow(a, b)
            return _node(y, [(_pow_da(a, b, y), self), (_pow_db(a, b, y), other)])
        c = _const(other)
        if c is None:
            return NotImplemented
        y = _fpow(a, c)
        return _node(y, [(_pow_da(a, c, y), self)])

    def __rpow__(self, other: Scalar, modulo: None = None) -> Var:
        if modulo is not None:
            return NotImplemented
        a = _const(other)
        if a is None:
            return NotImplemented
        b = self.v
        y = _fpow(a, b)
        return _node(y, [(_pow_db(a, b, y), self)])

    def __neg__(self) -> Var:
        return _node(-self.v, [(-1.0, self)])

    def __pos__(self) -> Var:
        return self

    def __abs__(self) -> Var:
        a = self.v
        da = 1.0 if a > 0.0 else (-1.0 if a < 0.0 else 0.0)
        return _node(abs(a), [(da, self)])


# -- unary functions ------------------------------------------------------------------------------


def exp(x: Scalar) -> Var | float:
    """``exp(x)``; partial ``y``.  OverflowError when a finite ``x`` overflows."""
    if isinstance(x, Var):
        y = _m_exp(x.v)
        return _node(y, [(y, x)])
    return _m_exp(_scalar(x))


def log(x: Scalar) -> Var | float:
    """Natural logarithm; partial ``1/a``.  ValueError for ``x <= 0``."""
    if isinstance(x, Var):
        a = x.v
        return _node(_m_log(a), [(1.0 / a, x)])
    return _m_log(_scalar(x))


def log1p(x: Scalar) -> Var | float:
    """``log(1 + x)`` accurately; partial ``1/(1+a)``.  ValueError for ``x <= -1``."""
    if isinstance(x, Var):
        a = x.v
        return _node(_m_log1p(a), [(1.0 / (1.0 + a), x)])
    return _m_log1p(_scalar(x))


def expm1(x: Scalar) -> Var | float:
    """``exp(x) - 1`` accurately; partial ``y + 1`` for ``a >= -0.5``, else ``exp(a)`` (where
    ``y + 1`` cancels).  OverflowError on overflow."""
    if isinstance(x, Var):
        a = x.v
        y = _m_expm1(a)
        return _node(y, [(y + 1.0 if a >= -0.5 else _m_exp(a), x)])
    return _m_expm1(_scalar(x))


def sqrt(x: Scalar) -> Var | float:
    """Square root; partial ``0.5/y`` (IEEE: ``inf`` at ``+0``).  ValueError for ``x < 0``."""
    if isinstance(x, Var):
        y = _m_sqrt(x.v)
        return _node(y, [(_ieee_div(0.5, y), x)])
    return _m_sqrt(_scalar(x))


def sin(x: Scalar) -> Var | float:
    """Sine; partial ``cos(a)``.  ValueError for infinite ``x`` (as math)."""
    if isinstance(x, Var):
        a = x.v
        return _node(_m_sin(a), [(_m_cos(a), x)])
    return _m_sin(_scalar(x))


def cos(x: Scalar) -> Var | float:
    """Cosine; partial ``-sin(a)``.  ValueError for infinite ``x`` (as math)."""
    if isinstance(x, Var):
        a = x.v
        return _node(_m_cos(a), [(-_m_sin(a), x)])
    return _m_cos(_scalar(x))


def tan(x: Scalar) -> Var | float:
    """Tangent; partial ``1 + y*y``."""
    if isinstance(x, Var):
        y = _m_tan(x.v)
        return _node(y, [(1.0 + y * y, x)])
    return _m_tan(_scalar(x))


def asin(x: Scalar) -> Var | float:
    """Arcsine; partial ``1/sqrt((1-a)*(1+a))`` (``inf`` at ``|a| = 1``).  ValueError for
    ``|x| > 1``."""
    if isinstance(x, Var):
        a = x.v
        y = _m_asin(a)
        return _node(y, [(_ieee_div(1.0, _m_sqrt((1.0 - a) * (1.0 + a))), x)])
    return _m_asin(_scalar(x))


def acos(x: Scalar) -> Var | float:
    """Arccosine; partial ``-1/sqrt((1-a)*(1+a))`` (``-inf`` at ``|a| = 1``).  ValueError if
    ``|x| > 1``."""
    if isinstance(x, Var):
        a = x.v
        y = _m_acos(a)
        return _node(y, [(-_ieee_div(1.0, _m_sqrt((1.0 - a) * (1.0 + a))), x)])
    return _m_acos(_scalar(x))


def atan(x: Scalar) -> Var | float:
    """Arctangent; partial ``1/(1+a*a)``."""
    if isinstance(x, Var):
        a = x.v
        return _node(_m_atan(a), [(1.0 / (1.0 + a * a), x)])
    return _m_atan(_scalar(x))


def sinh(x: Scalar) -> Var | float:
    """Hyperbolic sine; partial ``cosh(a)``.  OverflowError on overflow."""
    if isinstance(x, Var):
        a = x.v
        y = _m_sinh(a)
        return _node(y, [(_safe_cosh(a), x)])
    return _m_sinh(_scalar(x))


def cosh(x: Scalar) -> Var | float:
    """Hyperbolic cosine; partial ``sinh(a)``.  OverflowError on overflow."""
    if isinstance(x, Var):
        a = x.v
        y = _m_cosh(a)
        return _node(y, [(_safe_sinh(a), x)])
    return _m_cosh(_scalar(x))


def tanh(x: Scalar) -> Var | float:
    """Hyperbolic tangent; partial ``1 - y*y`` for ``|y| < 0.5``, else ``4e/(1+e)**2`` with
    ``e = exp(-2|a|)`` (where ``1 - y*y`` cancels)."""
    if isinstance(x, Var):
        a = x.v
        y = _m_tanh(a)
        if abs(y) < 0.5:
            return _node(y, [(1.0 - y * y, x)])
        e = _m_exp(-2.0 * abs(a))
        d = 1.0 + e
        return _node(y, [(4.0 * e / (d * d), x)])
    return _m_tanh(_scalar(x))


def sigmoid(x: Scalar) -> Var | float:
    """Logistic function, stable form; partial ``e/(1+e)**2`` with ``e = exp(-|a|)`` (``y*(1-y)``
    would cancel as ``y`` nears 1)."""
    if isinstance(x, Var):
        a = x.v
        e = _m_exp(-abs(a))
        d = 1.0 + e
        return _node(_sigmoid(a), [(e / (d * d), x)])
    return _sigmoid(_scalar(x))


def relu(x: Scalar) -> Var | float:
    """``x if x > 0 else 0.0``; partial 1 for ``x > 0`` else 0 (``relu'(0) = 0``)."""
    if isinstance(x, Var):
        a = x.v
        if a > 0.0:
            return _node(a, [(1.0, x)])
        return _node(0.0, [(0.0, x)])
    return max(0.0, _scalar(x))


def softplus(x: Scalar) -> Var | float:
    """``log(1 + exp(x))`` as ``max(a, 0) + log1p(exp(-|a|))``; partial ``sigmoid(a)``."""
    if isinstance(x, Var):
        a = x.v
        return _node(_softplus(a), [(_sigmoid(a), x)])
    return _softplus(_scalar(x))


# -- binary functions -----------------------------------------------------------------------------


def atan2(a: Scalar, b: Scalar) -> Var | float:
    """``atan2(a, b)``; partials ``b/r`` and ``-a/r`` with ``r = a*a + b*b``, scaled where ``r``
    leaves the normal range (0 and 0 at the origin, and where ``a`` or ``b`` is infinite)."""
    av = _value(a)
    bv = _value(b)
    y = _m_atan2(av, bv)
    if not (isinstance(a, Var) or isinstance(b, Var)):
        return y
    da = _atan2_ratio(av, bv, True)
    db = _atan2_ratio(av, bv, False)
    preds: list[tuple[float, Var]] = []
    if isinstance(a, Var):
        preds.append((da, a))
    if isinstance(b, Var):
        preds.append((db, b))
    return _node(y, preds)


def _atan2_ratio(a: float, b: float, wrt_a: bool) -> float:
    """``b / (a*a + b*b)`` if ``wrt_a`` else ``-a / (a*a + b*b)`` (C: pyad__atan2_ratio)."""
    r = a * a + b * b
    if 2.0**-969 <= r <= _DBL_MAX:
        return (b if wrt_a else -a) / r
    if a == 0.0 and b == 0.0:
        return 0.0
    if math.isnan(r):
        return r
    if math.isinf(a) or math.isinf(b):
        return 0.0
    e = math.frexp(max(abs(a), abs(b)))[1]
    as_, bs = math.ldexp(a, -e), math.ldexp(b, -e)
    q = (bs if wrt_a else -as_) / (as_ * as_ + bs * bs)
    try:
        return math.ldexp(q, -e)
    except OverflowError:  # C's ldexp gives inf
        return _copysign(_INF, q)


def hypot(a: Scalar, b: Scalar) -> Var | float:
    """``hypot(a, b)``; partials ``a/y`` and ``b/y`` (0 and 0 where ``y == 0``; from the halved
    operands where ``y`` overflowed to inf)."""
    av = _value(a)
    bv = _value(b)
    y = _m_hypot(av, bv)
    if not (isinstance(a, Var) or isinstance(b, Var)):
        return y
    if y == 0.0:
        da = db = 0.0
    elif math.isinf(y) and _isfinite(av) and _isfinite(bv):
        h = _m_hypot(0.5 * av, 0.5 * bv)
        da = 0.5 * av / h
        db = 0.5 * bv / h
    else:
        da = av / y
        db = bv / y
    preds: list[tuple[float, Var]] = []
    if isinstance(a, Var):
        preds.append((da, a))
    if isinstance(b, Var):
        preds.append((db, b))
    return _node(y, preds)


def pow(a: Scalar, b: Scalar) -> Var | float:
    """``a ** b`` (the same op as the ``**`` operator; floats for plain numbers).

    Partials: ``0`` if ``b == 0`` else ``b * a**(b-1)`` for ``a``; ``y*log(a)`` if ``a > 0``,
    ``0`` if ``a == 0``, else NaN for ``b``.  ZeroDivisionError for ``0 ** negative``,
    ValueError for a negative base with a non-integer exponent, OverflowError on overflow.
    """
    if isinstance(a, Var):
        return a.__pow__(b) if isinstance(b, Var) else a.__pow__(_scalar(b))
    if isinstance(b, Var):
        return b.__rpow__(_scalar(a))
    return _fpow(_scalar(a), _scalar(b))


# -- n-ary functions ------------------------------------------------------------------------------


def primitive(
    f: Callable[..., float], df: Callable[..., Sequence[float]]
) -> Callable[..., Var | float]:
    """A user-defined operation: ``f(*values)`` its value, ``df(*values)`` its partials (one
    per argument); one node with the Var arguments as predecessors (pyad.primitive's twin)."""

    def recorded(*args: Scalar) -> Var | float:
        values = [a.v if isinstance(a, Var) else _scalar(a) for a in args]
        value = float(f(*values))
        if not any(isinstance(a, Var) for a in args):
            return value
        partials = [float(p) for p in df(*values)]
        if len(partials) != len(args):
            raise ValueError(
                f"the derivative function gave {len(partials)} partials for {len(args)} arguments"
            )
        return _node(value, [(p, a) for p, a in zip(partials, args) if isinstance(a, Var)])

    recorded.__name__ = getattr(f, "__name__", "primitive")
    return recorded


def sum(xs: Iterable[Scalar], start: Scalar = 0.0) -> Var | float:
    """``start + x0 + x1 + ...`` left to right as one node; partial 1 for each Var operand.

    A Var appearing several times appears that many times in ``predecessors``.  Returns a float
    when neither ``start`` nor any element is a Var.
    """
    preds: list[tuple[float, Var]] = []
    if isinstance(start, Var):
        s = start.v
        preds.append((1.0, start))
    else:
        s = _scalar(start)
    append = preds.append
    for x in xs:
        if isinstance(x, Var):
            s = s + x.v
            append((1.0, x))
        else:
            s = s + _scalar(x)
    if preds:
        return _node(s, preds)
    return s


def dot(ws: Iterable[Scalar], xs: Iterable[Scalar], start: Scalar = 0.0) -> Var | float:
    """``0.0 + start*1.0 + w0*x0 + w1*x1 + ...`` left to right as one node (the start term only
    when ``start`` is a Var or a nonzero number); ValueError on unequal lengths.

    The partial of ``w_i`` is ``x_i`` and that of ``x_i`` is ``w_i``; predecessors are listed as
    ``start``, then ``w_i`` (if a Var) then ``x_i`` (if a Var) for each ``i`` in order.
    """
    ws = list(ws)
    xs = list(xs)
    if len(ws) != len(xs):
        raise ValueError(f"dot() operands have different lengths ({len(ws)} and {len(xs)})")
    if isinstance(start, Var) or _scalar(start) != 0:
        ws.insert(0, start)
        xs.insert(0, 1.0)
    preds: list[tuple[float, Var]] = []
    append = preds.append
    y = 0.0
    for w, x in zip(ws, xs):
        wv = w.v if isinstance(w, Var) else _scalar(w)
        xv = x.v if isinstance(x, Var) else _scalar(x)
        y = y + wv * xv
        if isinstance(w, Var):
            append((xv, w))
        if isinstance(x, Var):
            append((wv, x))
    if preds:
        return _node(y, preds)
    return y


def matvec(matrix: Iterable[Iterable[float]], xs: Iterable[Scalar]) -> list[Var] | list[float]:
    """``[dot(row, xs) for row in matrix]``: pyad records it as one matvec group, whose outputs
    are those dots bit for bit (values, partials and predecessors)."""
    xs = list(xs)
    rows = [list(row) for row in matrix]
    if any(len(row) != len(xs) for row in rows):
        raise ValueError("matvec: a row's length differs from the number of values")
    return [dot(row, xs) for row in rows]  # type: ignore[return-value]


def _max_of(vals: list[float]) -> float:
    """Maximum with Python's ``max`` semantics: the first of the largest, NaN only if first."""
    if not vals:
        raise ValueError("expected a non-empty sequence")
    return max(vals)


def _softmax_terms(vals: list[float], m: float) -> tuple[list[float], float]:
    """``e_i = exp(v_i - m)`` and their left-to-right sum ``s``."""
    es = [_m_exp(v - m) for v in vals]
    s = 0.0
    for e in es:
        s = s + e
    return es, s


def logsumexp(xs: Iterable[Scalar]) -> Var | float:
    """``m + log(s)``, ``m`` the maximum and ``s`` the left-to-right sum of ``exp(x_i - m)``.

    The partial of ``x_i`` is ``exp(x_i - m) / s``.  ValueError for an empty sequence.  With an
    infinite maximum the result is ``m`` with partials 1 for every element equal to ``+inf`` (if
    ``m = +inf``) and 0 for the others (all of them if ``m = -inf``).
    """
    xs = list(xs)
    vals = [_value(x) for x in xs]
    m = _max_of(vals)
    if m == _INF or m == -_INF:
        y = m
        partials = [1.0 if v == _INF else 0.0 for v in vals]
    else:
        es, s = _softmax_terms(vals, m)
        y = m + _m_log(s)
        partials = [e / s for e in es]
    preds = [(p, x) for p, x in zip(partials, xs) if isinstance(x, Var)]
    if preds:
        return _node(y, preds)
    return y


def softmax(xs: Iterable[Scalar]) -> list[Var] | list[float]:
    """``y_i = exp(x_i - m) / s`` (m the maximum, s the left-to-right sum): one node per output.

    Output ``i`` has the predecessors ``(y_i * c_i, x_i)`` and ``(y_i * (0.0 - y_j), x_j)`` for
    every other Var ``x_j``, in order, where ``c_i`` is ``1 - y_i`` kept accurate: for the largest
    output (the first of equals) the left-to-right sum of the others, else ``1.0 - y_i``.
    Returns floats when no element is a Var.  ValueError for an empty sequence and for a
    non-finite maximum (an infinite one, or NaN in first place).
    """
    xs = list(xs)
    vals = [_value(x) for x in xs]
    m = _max_of(vals)
    if not _isfinite(m):
        raise ValueError("math domain error: softmax of a non-finite maximum")
    es, s = _softmax_terms(vals, m)
    ys = [e / s for e in es]
    var_pos = [(j, x) for j, x in enumerate(xs) if isinstance(x, Var)]
    if not var_pos:
        return ys
    top = 0
    for j, yj in enumerate(ys):
        if yj > ys[top]:
            top = j
    rest = 0.0
    for j, yj in enumerate(ys):
        if j != top:
            rest = rest + yj
    out = []
    for i, yi in enumerate(ys):
        ci = rest if i == top else 1.0 - yi
        preds = [(yi * ci if i == j else yi * (0.0 - ys[j]), x) for j, x in var_pos]
        out.append(_node(yi, preds))
    return out
