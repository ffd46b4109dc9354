"""The math-like functions of pyad. Each takes Vars or plain numbers: with a Var among its
arguments it records on that Var's tape and returns a Var of the first Var argument's class
(a subclass such as micrograd's ``Value`` stays itself); with numbers only it returns a
float (softmax: a list). Values, partials and errors come from the C op table, so a number
gets exactly the result a Var would.

Conventions where the derivative does not exist: relu'(0) = 0, abs'(0) = 0; atan2 and hypot
have partials (0, 0) at the origin; sqrt'(0), asin'(+-1) and acos'(+-1) are infinite; the
partial of a ** b with respect to b is 0 at a == 0 and NaN for a < 0.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, Union, overload

from pyad import arrays as _arrays
from pyad._native import OPS, SEGMENT, eval_nary, eval_op, ffi, lib
from pyad.var import (
    Number,
    Operand,
    Var,
    _adopt_in,
    _binary,
    _binary_other,
    _checked_float,
    _Elementwise,
    _failed,
    _reflected,
    _slow,
    _unary,
)


class UnaryFunction(Protocol):
    """A unary function of pyad: a Var in gives a Var, a number in gives a float."""

    @overload
    def __call__(self, x: Var, /) -> Var: ...
    @overload
    def __call__(self, x: Number, /) -> float: ...


class BinaryFunction(Protocol):
    """A binary function of pyad: a Var on either side gives a Var, numbers give a float."""

    @overload
    def __call__(self, a: Var, b: Operand, /) -> Var: ...
    @overload
    def __call__(self, a: Number, b: Var, /) -> Var: ...
    @overload
    def __call__(self, a: Number, b: Number, /) -> float: ...


def _binary_function(name: str) -> BinaryFunction:
    op = OPS[name][0]
    forward, reflected = _binary(name), _reflected(name)

    def function(a: Operand, b: Operand) -> Union[Var, float]:
        # The factories' methods make results of class Var; an operand of another class (a
        # first Var operand of a subclass) goes to _binary_other, which keeps it.
        if a.__class__ is Var:
            result, other = forward(a, b), b
        elif isinstance(a, Var):
            result, other = _binary_other(a, b, name, False), b
        elif b.__class__ is Var:
            result, other = reflected(b, a), a
        elif isinstance(b, Var):
            result, other = _binary_other(b, a, name, True), a
        elif isinstance(a, _Elementwise):  # an Array: off the Vars' path, which is the hot one
            return a._apply(name, b)  # type: ignore[no-any-return]
        elif isinstance(b, _Elementwise):
            return b._apply(name, a, reflected=True)  # type: ignore[no-any-return]
        else:
            return eval_op(op, _checked_float(a), _checked_float(b))
        if result is NotImplemented and isinstance(other, _Elementwise):  # a Var and an Array
            return other._apply(name, a if other is b else b, other is b)  # type: ignore[no-any-return]
        if result is NotImplemented:
            raise TypeError(f"{name}() takes Vars or real numbers, got {type(other).__name__}")
        return result  # type: ignore[no-any-return]

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (
        f"{name}(a, b): of Vars (either or both), a new Var recorded on their tape; of "
        "numbers, a float. Raises what Python's math module raises outside the domain."
    )
    return function  # type: ignore[return-value]


exp: UnaryFunction = _unary("exp")
log: UnaryFunction = _unary("log")
log1p: UnaryFunction = _unary("log1p")
expm1: UnaryFunction = _unary("expm1")
sqrt: UnaryFunction = _unary("sqrt")
sin: UnaryFunction = _unary("sin")
cos: UnaryFunction = _unary("cos")
tan: UnaryFunction = _unary("tan")
asin: UnaryFunction = _unary("asin")
acos: UnaryFunction = _unary("acos")
atan: UnaryFunction = _unary("atan")
sinh: UnaryFunction = _unary("sinh")
cosh: UnaryFunction = _unary("cosh")
tanh: UnaryFunction = _unary("tanh")
sigmoid: UnaryFunction = _unary("sigmoid")
relu: UnaryFunction = _unary("relu")
softplus: UnaryFunction = _unary("softplus")
atan2: BinaryFunction = _binary_function("atan2")
hypot: BinaryFunction = _binary_function("hypot")
pow: BinaryFunction = _binary_function("pow")


# The n-ary pushes, bound here and called directly like pyad.var's (see there): a neuron's
# weighted sum is one dot, a loss one sum or logsumexp.
_push_nary = lib.pyad_push_nary
_push_dot = lib.pyad_push_dot
_push_softmax = lib.pyad_push_softmax

_NUMBER_TYPES = frozenset({float, int})
_handle_of = operator.attrgetter("_h")


def _operands(items: list[Any]) -> tuple[Any, Any, Any, type[Var]]:
    """An operand list for the C n-ary entry points: (tape or None, handles, constants,
    the class of the results: the first Var's).

    A list of only Vars passes handles and no constants, a list of only floats and ints
    passes itself as the constants; only a mixed list pays for building both.
    """
    if not items:
        return None, ffi.NULL, items, Var
    first = items[0]
    if isinstance(first, Var):
        try:
            return first._t, list(map(_handle_of, items)), ffi.NULL, first.__class__
        except AttributeError:  # a number among the Vars
            pass
    elif set(map(type, items)) <= _NUMBER_TYPES:
        return None, ffi.NULL, items, Var
    tape = None
    node: type[Var] = Var
    handles: list[int] = []
    consts: list[float] = []
    for x in items:
        if isinstance(x, Var):
            if tape is None:
                tape, node = x._t, x.__class__
            handles.append(x._h)
            consts.append(0.0)
        else:
            handles.append(0)
            consts.append(_checked_float(x))
    return tape, handles, consts, node


def _numbers(items: list[Any]) -> list[float]:
    return [_checked_float(x) for x in items]


def _nary(name: str, items: list[Any]) -> Union[Var, float]:
    op = OPS[name][0]
    t, handles, consts, node = _operands(items)
    if t is None:
        return eval_nary(op, _numbers(items), 1)[0]
    s, args = t._s, (t._p, op, len(items), handles, consts)
    return _slow(t, _push_nary(*args), s, node, tuple(items), _push_nary, *args)


def sum(xs: Iterable[Operand], start: Operand = 0.0) -> Union[Var, float]:
    """``start + x0 + x1 + ...`` as one record (n partials) instead of n additions; of a
    :class:`pyad.Array`, the sum of all its elements (``start`` added after)."""
    if isinstance(xs, _Elementwise):
        total: Any = _arrays.Array.sum(xs)  # type: ignore[arg-type]
        return total if _is_zero_number(start) else total + start  # type: ignore[no-any-return]
    items = list(xs)
    if isinstance(start, Var) or start != 0:
        items.insert(0, start)
    return _nary("sum", items)


_DOT = OPS["dot"][0]
_NULL = ffi.NULL


def dot(ws: Sequence[Operand], xs: Sequence[Operand], start: Operand = 0.0) -> Union[Var, float]:
    """``start + w0*x0 + w1*x1 + ...`` (added left to right) as one record: a neuron's
    weighted sum and bias in one call. The result has the class of the first Var among
    ``start`` and ``ws`` (a Var subclass stays itself). With a :class:`pyad.Array` among ws
    and xs, numpy's ``dot`` of the two (then ``start`` added)."""
    if isinstance(ws, _Elementwise) or isinstance(xs, _Elementwise):
        product = _arrays.dot(ws, xs)  # type: ignore[arg-type]
        return product if _is_zero_number(start) else product + start  # type: ignore[no-any-return]
    if type(ws) is not list:
        ws = list(ws)
    if type(xs) is not list:
        xs = list(xs)
    n = len(ws)
    if n != len(xs):
        raise ValueError(f"dot() operands have different lengths ({n} and {len(xs)})")
    biased = isinstance(start, Var)
    # A neuron's case, inline: Var weights (and bias), inputs all Vars or all numbers. The
    # bias is one more product, start * 1.0.
    if n and isinstance(ws[0], Var) and (biased or _is_zero_number(start)):
        try:
            hw = list(map(_handle_of, ws))
            x0 = xs[0]
            if isinstance(x0, Var):
                hx, cx = list(map(_handle_of, xs)), _NULL
                if biased:
                    hx.insert(0, 0)
                    cx = _bias_constants(n + 1)
            elif set(map(type, xs)) <= _NUMBER_TYPES:
                hx, cx = _NULL, [1.0, *xs] if biased else xs
            else:
                hx = None
        except AttributeError:  # a number among the weights
            hx = None
        if hx is not None:
            first = start if isinstance(start, Var) else ws[0]
            if isinstance(start, Var):
                hw.insert(0, start._h)
            t = first._t
            s, args = t._s, (t._p, n + biased, hw, _NULL, hx, cx)
            h = _push_dot(*args)
            return _slow(t, h, s, first.__class__, (start, *ws, *xs), _push_dot, *args)
    if not _is_zero_number(start):
        ws, xs = [start, *ws], [1.0, *xs]
    tw, hw, cw, node = _operands(ws)
    tx, hx, cx, x_node = _operands(xs)
    if tw is None:
        t, node = tx, x_node
    else:
        t = tw
    if t is None:
        pairs = [v for pair in zip(ws, xs) for v in pair]
        return eval_nary(_DOT, _numbers(pairs), 1)[0]
    s, args = t._s, (t._p, len(ws), hw, cw, hx, cx)
    h = _push_dot(*args)
    return _slow(t, h, s, node, (*ws, *xs), _push_dot, *args)


def _is_zero_number(x: object) -> bool:
    """Is x the number 0 (then ``dot``'s start adds no product)?"""
    return x.__class__ in _NUMBER_TYPES and x == 0


_bias_cache: dict[int, Any] = {}


def _bias_constants(n: int) -> Any:
    """Constants [1.0, 0, 0, ...] for the input side of a biased dot of n products (the
    zeros are unused: those operands are Vars)."""
    consts = _bias_cache.get(n)
    if consts is None:
        consts = _bias_cache[n] = ffi.new("double[]", [1.0] + [0.0] * (n - 1))
    return consts


def logsumexp(xs: Iterable[Operand]) -> Union[Var, float]:
    """``log(sum(exp(x)))`` computed without overflow (of a :class:`pyad.Array`, over all
    its elements); ValueError for no values."""
    if isinstance(xs, _Elementwise):
        return _arrays.logsumexp(xs)  # type: ignore[arg-type,no-any-return]
    items = list(xs)
    if not items:
        raise ValueError("logsumexp() of an empty sequence")
    return _nary("logsumexp", items)


def softmax(xs: Iterable[Operand]) -> Union[list[Var], list[float]]:
    """``exp(x_i) / sum(exp(x))`` for each i, computed without overflow: one record per
    output (of a 1-D :class:`pyad.Array`, an Array). ValueError for no values or a
    non-finite maximum."""
    if isinstance(xs, _Elementwise):
        return _arrays.softmax(xs)  # type: ignore[arg-type,return-value]
    items = list(xs)
    n = len(items)
    if n == 0:
        raise ValueError("softmax() of an empty sequence")
    t, handles, consts, node = _operands(items)
    if t is None:
        return eval_nary(OPS["softmax"][0], _numbers(items), n)
    out = ffi.new("int64_t[]", n)
    s = t._s
    while True:
        status = _push_softmax(t._p, n, handles, consts, out)
        if status and status != SEGMENT:
            _failed(t, status, *items)
        results = [int(h) for h in out]
        segments = t._segments(results, s, status == SEGMENT)
        if segments is not None:
            return [_adopt_in(t, h, seg, node) for h, seg in zip(results, segments)]
        # Some output lies in a segment that another thread opened meanwhile and that this
        # thread holds no pin on: push again under a pin of the current one (see var._slow).
        s = t._pin_current()


def matvec(matrix: Any, xs: Iterable[Operand]) -> Any:
    """``matrix @ xs`` for a constant 2-D matrix (rows of ``len(xs)`` numbers): output j is
    ``dot(matrix[j], xs)``, bit for bit. When every element of xs is a Var (of one tape), or xs
    is a 1-D :class:`pyad.Array`, the outputs are one ``matvec`` group, which reads the matrix
    in place instead of an operand list per row (see :func:`pyad.arrays.matmul` for what
    that asks of the matrix): a list of Vars (an Array for an Array). Otherwise one dot per
    row (floats when xs holds no Var)."""
    if isinstance(xs, _Elementwise):
        return _arrays.matmul(matrix, xs)  # type: ignore[arg-type]
    items = list(xs)
    c = _arrays._real_array(matrix, "matvec's matrix")
    if c.ndim != 2 or c.shape[1] != len(items):
        raise ValueError(f"matvec: a matrix of shape {c.shape} times {len(items)} values")
    if c.size > 0 and all(isinstance(x, Var) for x in items):
        return list(_arrays.matmul(c, _arrays.array(items)))
    return [dot(row, items) for row in c.tolist()]


__all__ = [
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
