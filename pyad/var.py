"""Var: the drop-in replacement for the pure-Python engine's Var, recording on a C tape.

A Var is three references: its tape, its record's handle and its segment pin. Each operation
is one method call, one cffi call and one new object; the methods are made from the C op
table by the factories below, so no op is written out here. Records with one constant operand
(``x * 3.0``, ``1 - x``) store the constant in the record instead of making a leaf for it.
"""

from __future__ import annotations

import linecache
import numbers
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, NoReturn, TypeVar, Union

import numpy as np

from pyad import errors
from pyad._native import OP_NAMES, OPS, SEGMENT, STATUS, error, eval_op, ffi, lib
from pyad.tape import CHUNK_SHIFT, Tape

if TYPE_CHECKING:
    from pyad.tape import _Segment

Number = Union[int, float]
Operand = Union["Var", int, float]
_V = TypeVar("_V", bound="Var")

# The hot path: the entry points on one Var's record are bound here (each operator's push in
# the factories below) and called directly, not through a function of pyad._native. An
# operation is one cffi call, and a one-line Python wrapper around that call adds about 20 ns
# to an x * y of about 290 ns (7%: timeit, min of 25 repeats, the setup of bench.micro).
# Their results are also handles or statuses that only this module interprets (_slow and
# _failed: a new segment, a Var of another tape).
_push_leaf = lib.pyad_push_leaf
_get_value = lib.pyad_get_value
_set_value = lib.pyad_set_value
_get_grad = lib.pyad_get_grad
_set_grad = lib.pyad_set_grad
_backward = lib.pyad_backward
_get_op = lib.pyad_get_op
_get_operands = lib.pyad_get_operands
_new = object.__new__


class _Elementwise:
    """What pyad's functions apply elementwise: the base of :class:`pyad.array.Array`,
    declared here so that this module needs nothing of that one. ``_apply(name, other,
    reflected)`` records op ``name`` on every element (``other``: a binary op's other
    operand, first when ``reflected``)."""

    __slots__ = ()

    def _apply(self, name: str, other: object = None, reflected: bool = False) -> Any:
        raise NotImplementedError


def _is_number(x: object) -> bool:
    # numbers.Real covers int, float, bool, Fraction and numpy's registered scalar types.
    return isinstance(x, numbers.Real) and not isinstance(x, Var)


def _adopt_in(t: Tape, h: int, segment: _Segment, node: type[Var] | None = None) -> Var:
    """A Var (or ``node``, a Var subclass) for record ``h`` of ``t``, holding ``segment``'s
    pin."""
    r = _new(node or Var)
    r._t = t
    r._h = h
    r._s = segment
    return r


def _slow(
    t: Tape,
    h: int,
    s: _Segment,
    node: type[Var] | None,
    operands: tuple[object, ...],
    push: Callable[..., int],
    *args: object,
) -> Var:
    """The result of a one-record push ``h = push(*args)``, ``s`` being the tape's segment read
    before the push; the slow path of the operators, for a record that does not lie in ``s``:
    a new segment (``-h`` is SEGMENT), a failure (``-h`` is its status), or a record in a
    segment that another thread opened meanwhile.

    A record in a segment that this thread holds no pin on is not used: between the push and
    any pin taken now, the segment could have been released and reused for other records
    (several threads record on the tape). The record is left unused, and the op is pushed
    again after pinning the current segment; if the record then lies in it, it is safe."""
    while h >= 0:
        if h >> CHUNK_SHIFT == s._c:
            return _adopt_in(t, h, s, node)
        s = t._pin_current()
        h = push(*args)
    if -h == SEGMENT:
        return _opened(t, node)
    _failed(t, -h, *operands)


def _opened(t: Tape, node: type[Var] | None) -> Var:
    """The result of a one-record push that opened a new segment (it returned minus SEGMENT:
    not a failure): the segment's first record, which this thread's push pinned."""
    s = t._new_segment()
    return _adopt_in(t, s._h, s, node)


def _failed(t: Tape, status: int, *operands: object) -> NoReturn:
    """Raise the exception for a failed call on ``t`` with the Var ``operands``: a stale Var is
    told from one of another tape, and a non-finite result names the caller's line; the rest
    is pyad._native's."""
    if status == STALE:
        for x in operands:
            if isinstance(x, Var) and x._t is not t:
                raise errors.ForeignVarError(_FOREIGN)
        raise errors.StaleVarError(
            "this Var was recorded before its tape was reset, so its record is gone"
        )
    exc = error(status, t._p)
    if status == NONFINITE:
        exc = errors.NonFiniteError(f"{exc} at {_caller()}")
    raise exc


_FOREIGN = (
    "an operation mixes Vars of two different tapes. pyad.grad, value_and_grad, jacobian, "
    "hvp, hessian and compile record fn on a fresh tape of their own, so a Var made outside "
    "fn (a model's parameter it closes over, say) cannot enter its computation: pass it in "
    "through fn's input vector to get its derivative too, or use its value (p.v) as a "
    "constant. Elsewhere, record one computation on one tape: Vars made inside "
    "`with pyad.Tape():` belong to that tape, others to the default tape of the thread that "
    "made them, so a worker thread making new Vars for a model built in another thread "
    "makes them inside `with p.tape:` (p one of the model's Vars)"
)


def _caller() -> str:
    """``file:line: source`` of the innermost frame outside the pyad package."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "an unknown place"
    filename, line = frame.f_code.co_filename, frame.f_lineno
    source = linecache.getline(filename, line).strip()
    return f"{filename}:{line}" + (f": {source}" if source else "")


# The three factories below repeat the same few lines that make the result Var instead of
# calling _slow: on the hot path that call would cost a fifth of the whole operation.
#
# Each reads the tape's segment object s before the push, and keeps it if the push returned a
# handle and t._s is still s: the record then lies in s's segment (another thread may change
# segments between any two lines here; pyad.tape.Tape._install says why this is enough), and
# s, held by this frame, pins it. Everything else is _slow's (see there); its arguments repeat
# the push so that it can push again, since a lambda here would make the locals closure cells.


def _binary(name: str, node: type[Var] | None = None) -> Callable[[Var, object], Any]:
    """``self <op> other`` for a binary op of the table, made for class ``node`` (Var or a
    subclass: its results are ``node`` instances)."""
    push_vv = getattr(lib, f"pyad_{name}")
    push_vc = getattr(lib, f"pyad_{name}_vc")
    node = node or Var

    def method(self: Var, other: object, modulo: None = None) -> Any:
        if modulo is not None:  # pow(x, y, modulo), the one call that passes it
            raise TypeError("pow() with three arguments (a modulo) is not supported for Vars")
        cls = other.__class__
        t = self._t
        s = t._s
        if cls is node:
            h = push_vv(self._h, other._h)  # type: ignore[attr-defined]
        elif cls is float or cls is int:
            h = push_vc(self._h, other)
        else:
            return _binary_other(self, other, name, False)
        if h < 0 or t._s is not s:
            if cls is node:
                return _slow(t, h, s, node, (self, other), push_vv, self._h, other._h)  # type: ignore[attr-defined]
            return _slow(t, h, s, node, (self, other), push_vc, self._h, other)
        r = _new(node)
        r._t = t
        r._h = h
        r._s = s
        return r

    return method


def _reflected(name: str, node: type[Var] | None = None) -> Callable[[Var, object], Any]:
    """``other <op> self`` where other is not a Var (Python tried other's method first)."""
    push_cv = getattr(lib, f"pyad_{name}_cv")
    node = node or Var

    def method(self: Var, other: object) -> Any:
        cls = other.__class__
        t = self._t
        s = t._s
        if cls is float or cls is int:
            h = push_cv(other, self._h)
        else:
            return _binary_other(self, other, name, True)
        if h < 0 or t._s is not s:
            return _slow(t, h, s, node, (self, other), push_cv, other, self._h)
        r = _new(node)
        r._t = t
        r._h = h
        r._s = s
        return r

    return method


def _binary_other(self: Var, other: object, name: str, reflected: bool) -> Any:
    """Operands that are not exactly Var, float or int: Vars of other classes and other
    numbers. The result has self's class."""
    t = self._t
    node = self.__class__
    args: tuple[object, ...]
    if isinstance(other, Var):
        a, b = (other, self) if reflected else (self, other)
        push, args = getattr(lib, f"pyad_{name}"), (a._h, b._h)
    elif _is_number(other):
        c = float(other)  # type: ignore[arg-type]
        if reflected:
            push, args = getattr(lib, f"pyad_{name}_cv"), (c, self._h)
        else:
            push, args = getattr(lib, f"pyad_{name}_vc"), (self._h, c)
    else:
        return NotImplemented
    s = t._s
    return _slow(t, push(*args), s, node, (self, other), push, *args)


def _unary(name: str, node: type[Var] | None = None) -> Callable[[Any], Any]:
    """The function ``name(x)`` of a unary op of the table: a Var in records one record and
    gives a Var of x's class (``node`` on the fast path), a number in gives a float. Also
    serves as the method (``__neg__``, ...)."""
    op = OPS[name][0]
    push = getattr(lib, f"pyad_{name}")
    node = node or Var

    def function(x: Any) -> Any:
        if x.__class__ is node:
            t = x._t
            s = t._s
            h = push(x._h)
            if h < 0 or t._s is not s:
                return _slow(t, h, s, node, (x,), push, x._h)
            r = _new(node)
            r._t = t
            r._h = h
            r._s = s
            return r
        if isinstance(x, Var):
            s = x._t._s
            return _slow(x._t, push(x._h), s, x.__class__, (x,), push, x._h)
        if isinstance(x, _Elementwise):
            return x._apply(name)
        return eval_op(op, _checked_float(x))

    function.__name__ = function.__qualname__ = name
    function.__doc__ = (
        f"{name}(x): of a Var, a new Var recorded on its tape; of a number, a float.\n\n"
        "Raises what Python's math module raises for arguments outside the domain "
        "(ValueError, OverflowError)."
    )
    return function


def _value_of(x: object) -> float | None:
    """The value a comparison uses, or None for what cannot be compared with a Var."""
    if isinstance(x, Var):
        return x._read(_get_value)
    if _is_number(x):
        return float(x)  # type: ignore[arg-type]
    return None


# Comparison codes shared with the C guards (csrc/program.h enum pyad_cmp).
_LT, _LE, _GT, _GE = 0, 1, 2, 3


def _compare(a: Var, other: object, cmp: int) -> bool:
    """``a <cmp> other`` on values; while pyad.compile traces a's tape, also kept as a guard."""
    b = _value_of(other)
    if b is None:
        return NotImplemented  # type: ignore[no-any-return]
    v = a._read(_get_value)
    held = (v < b, v <= b, v > b, v >= b)[cmp]
    trace = a._t._trace
    if isinstance(other, Var) and other._t is not a._t:
        trace = trace or other._t._trace
        if trace is not None:
            raise trace.foreign(_caller())
    if trace is not None:
        trace.guard(cmp, a, other, held, _caller())
    return held


class Var:
    """A scalar recorded on a tape: an input when made with ``Var(v)``, or the result of an
    operation on Vars.

    ``.v`` is the value (assignable on inputs only), ``.grad`` the accumulated adjoint
    (assignable, e.g. ``x.grad = 0.0``); ``backward()`` sweeps the tape once in C.
    ``==`` and ``hash`` are identity-based, so Vars work as dict keys and set members;
    ``< <= > >=`` compare values.
    """

    __slots__ = ("_h", "_s", "_t")

    if TYPE_CHECKING:
        _t: Tape
        _h: int
        _s: _Segment

    def __init__(self, v: Number) -> None:
        if isinstance(v, Var):
            raise TypeError("Var(v) takes a number; a Var is already a node of the tape")
        value = _real_or_none(v)
        if value is None:
            raise TypeError(f"Var(v) takes a real number, got {type(v).__name__}")
        t = Tape.current()
        s = t._s
        h = _push_leaf(t._p, value)
        if h >> CHUNK_SHIFT != s._c:  # see _binary
            r = _slow(t, h, s, None, (), _push_leaf, t._p, value)
            h, s = r._h, r._s
        self._t = t
        self._h = h
        self._s = s

    # -- value and adjoint ---------------------------------------------------------------
    def _read(self, getter: Any) -> float:
        t = self._t
        # A buffer of this call's own: another thread may read into a shared one between the
        # call and out[0]. Taken from a pool (list.pop and append are atomic) rather than
        # made: ffi.new costs several times as much.
        try:
            out = _buffers.pop()
        except IndexError:
            out = ffi.new("double[1]")
        status = getter(t._p, self._h, out)
        value = out[0]
        _buffers.append(out)
        if status:
            _failed(t, status, self)
        return float(value)

    def _write(self, setter: Any, value: Number) -> None:
        t = self._t
        status = setter(t._p, self._h, _checked_float(value))
        if status:
            _failed(t, status, self)

    @property
    def v(self) -> float:
        """The value (a float). Assignable on inputs: ``p.v -= lr * p.grad``.

        Inside a function being traced by :func:`pyad.compile` it raises
        :class:`pyad.errors.TraceError`: a replay reruns the recorded operations, not the
        Python code that would use the value."""
        if self._t._trace is not None:
            raise self._t._trace.value_read(_caller())
        return self._read(_get_value)

    @v.setter
    def v(self, value: Number) -> None:
        if self._t._trace is not None:
            raise self._t._trace.value_read(_caller())
        self._write(_set_value, value)

    @property
    def grad(self) -> float:
        """The accumulated adjoint d(output)/d(self) over all backward() calls so far
        (assignable: ``x.grad = 0.0``)."""
        if self._t._trace is not None:
            raise self._t._trace.value_read(_caller())
        return self._read(_get_grad)

    @grad.setter
    def grad(self, value: Number) -> None:
        if self._t._trace is not None:
            raise self._t._trace.value_read(_caller())
        self._write(_set_grad, value)

    def backward(self, upstream_grad: Number = 1.0) -> None:
        """Add ``upstream_grad * d(self)/d(node)`` to ``.grad`` of every node self depends
        on, itself included. One sweep over the tape in C; calling it again accumulates
        again."""
        t = self._t
        if t._trace is not None:
            raise t._trace.value_read(_caller())
        status = _backward(t._p, self._h, _checked_float(upstream_grad))
        if status:
            _failed(t, status, self)

    @property
    def predecessors(self) -> list[tuple[float, Var]]:
        """``[(multiplier, Var), ...]``: this node's Var operands and the partial
        derivatives recorded for them (constant operands are not nodes)."""
        t = self._t
        if t._trace is not None:
            raise t._trace.value_read(_caller())
        count = ffi.new("int64_t *")
        status = _get_operands(t._p, self._h, 0, ffi.NULL, ffi.NULL, count)
        if status:
            _failed(t, status, self)
        n = int(count[0])
        handles = ffi.new("int64_t[]", max(n, 1))
        partials = ffi.new("double[]", max(n, 1))
        status = _get_operands(t._p, self._h, n, handles, partials, count)
        if status:
            _failed(t, status, self)
        pins: dict[int, _Segment] = {}
        result = []
        for i in range(n):
            h = int(handles[i])
            seg = pins.get(h >> CHUNK_SHIFT)
            if seg is None:
                seg = pins[h >> CHUNK_SHIFT] = t._pin(h)
            node = _new(self.__class__)
            node._t = t
            node._h = h
            node._s = seg
            result.append((float(partials[i]), node))
        return result

    @property
    def op(self) -> str:
        """The name of the op that made this node ("leaf" for inputs)."""
        t = self._t
        out = ffi.new("int *")
        status = _get_op(t._p, self._h, out)
        if status:
            _failed(t, status, self)
        return OP_NAMES[int(out[0])]

    @property
    def tape(self) -> Tape:
        """The tape this Var is recorded on."""
        return self._t

    # -- a Var never quietly becomes a number ---------------------------------------------
    def __float__(self) -> float:
        raise TypeError(_NOT_A_NUMBER.format("float()"))

    def __int__(self) -> int:
        raise TypeError(_NOT_A_NUMBER.format("int()"))

    def __complex__(self) -> complex:
        raise TypeError(_NOT_A_NUMBER.format("complex()"))

    def __round__(self, ndigits: int | None = None) -> float:
        raise TypeError(_NOT_A_NUMBER.format("round()"))

    def __bool__(self) -> bool:
        """``x != 0``, as for a float (``if x:``, ``x or y``). While :func:`pyad.compile`
        traces, the outcome is kept as guards (``x >= 0`` and ``x <= 0``: together they tell
        negative, zero, positive and NaN apart), so a call on the other side traces again."""
        v = self._read(_get_value)
        trace = self._t._trace
        if trace is not None:
            where = _caller()
            trace.guard(_GE, self, 0.0, v >= 0.0, where)
            trace.guard(_LE, self, 0.0, v <= 0.0, where)
        return v != 0.0

    # -- copies and pickles: inputs only, as new inputs ------------------------------------
    def __copy__(self: _V) -> _V:
        """A new input on the same tape with this input's value and grad."""
        value, grad = _leaf_copy(self, "copy.copy")
        r = _new(self.__class__)
        with self._t:
            Var.__init__(r, value)
        r._write(_set_grad, grad)
        return r

    def __deepcopy__(self: _V, memo: dict[int, Any]) -> _V:
        """As :meth:`__copy__`: ``copy.deepcopy(model)`` gives a model of new inputs."""
        return self.__copy__()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its value and grad; unpickled as a new input of the active tape."""
        value, grad = _leaf_copy(self, "pickle")
        return (_unpickle_leaf, (self.__class__, value, grad))

    def __repr__(self) -> str:
        try:
            return f"Var(v={self._read(_get_value)!r}, grad={self.grad!r})"
        except errors.PyadError as exc:
            return f"<Var: {type(exc).__name__}>"

    # -- comparisons compare values ------------------------------------------------------
    def __lt__(self, other: Operand) -> bool:
        return _compare(self, other, _LT)

    def __le__(self, other: Operand) -> bool:
        return _compare(self, other, _LE)

    def __gt__(self, other: Operand) -> bool:
        return _compare(self, other, _GT)

    def __ge__(self, other: Operand) -> bool:
        return _compare(self, other, _GE)

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __pos__(self) -> Var:
        return self

    # Operators, made from the op table (see install_operators); a subclass given them by
    # install_operators gets results of its own class, as these annotations say.
    if TYPE_CHECKING:

        def __add__(self: _V, other: Operand) -> _V: ...
        def __radd__(self: _V, other: Number) -> _V: ...
        def __sub__(self: _V, other: Operand) -> _V: ...
        def __rsub__(self: _V, other: Number) -> _V: ...
        def __mul__(self: _V, other: Operand) -> _V: ...
        def __rmul__(self: _V, other: Number) -> _V: ...
        def __truediv__(self: _V, other: Operand) -> _V: ...
        def __rtruediv__(self: _V, other: Number) -> _V: ...
        def __pow__(self: _V, other: Operand, modulo: None = None) -> _V: ...
        def __rpow__(self: _V, other: Number) -> _V: ...
        def __neg__(self: _V) -> _V: ...
        def __abs__(self: _V) -> _V: ...


STALE = STATUS["STALE"]
NONFINITE = STATUS["NONFINITE"]
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_buffers: list[Any] = []  # Var._read's out-buffers, one per read in progress at most


def _real_or_none(x: object) -> float | None:
    """``float(x)`` for a real number that is not a Var, including a numpy array holding one
    real number in zero dimensions (``float()`` accepts those too); None otherwise."""
    if _is_number(x):
        return float(x)  # type: ignore[arg-type]
    if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "biuf":
        return float(x)
    return None


def _checked_float(x: object) -> float:
    value = _real_or_none(x)
    if value is None:
        raise TypeError(f"expected a real number, got {type(x).__name__}")
    return value


def _leaf_copy(x: Var, what: str) -> tuple[float, float]:
    """The value and adjoint of input ``x`` for ``what`` (a copy or a pickle), which makes a
    new input with them; a computed node or a traced Var refuses."""
    t = x._t
    if t._trace is not None:
        raise t._trace.value_read(_caller())
    if x.op != "leaf":
        raise errors.CopyError(
            f"{what} of a computed Var: only inputs (made with Var(v)) can be copied or "
            "pickled, as a new input with the same value and grad; a computed node is part "
            "of its tape's graph. Copy its value instead (x.v)"
        )
    return x._read(_get_value), x._read(_get_grad)


def _unpickle_leaf(cls: type[Var], value: float, grad: float) -> Var:
    """A pickled input, back as a new input of the active tape."""
    r = _new(cls)
    Var.__init__(r, value)
    r._write(_set_grad, grad)
    return r


_NOT_A_NUMBER = (
    "{} of a Var: a Var is not turned into a plain number implicitly, because the number "
    "would carry no derivative. Use pyad's functions on Vars (pyad.exp(x) where math.exp(x) "
    "was written), or x.v to read the value as a constant on purpose"
)


def install_operators(cls: type[Var]) -> None:
    """Give ``cls`` (Var, or a subclass such as a compatibility class) the operators of the
    op table, with results of class ``cls``: ``+ - * / **``, their reflections, ``-x`` and
    ``abs(x)``."""
    binary = {"add": "add", "sub": "sub", "mul": "mul", "truediv": "div", "pow": "pow"}
    for dunder, name in binary.items():
        setattr(cls, f"__{dunder}__", _binary(name, cls))
        setattr(cls, f"__r{dunder}__", _reflected(name, cls))
    setattr(cls, "__neg__", _unary("neg", cls))  # noqa: B010
    setattr(cls, "__abs__", _unary("abs", cls))  # noqa: B010


def unary_method(name: str, cls: type[Var]) -> Callable[[Var], Var]:
    """The unary op ``name`` of the table as a method whose results are of class ``cls``
    (``Value.relu``, ...)."""
    return _unary(name, cls)


install_operators(Var)
