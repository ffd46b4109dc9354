"""Arrays of Vars: numpy-style code recorded with one C call per array operation.

An :class:`Array` is an ndarray of record handles on one tape. Everything numpy does to the
layout of an array (indexing, slicing, broadcasting, ``reshape``, ``.T``, ``concatenate``,
``stack``) is done by numpy to those handles and records nothing; every arithmetic operation
records one scalar record per element in a single C call (``pyad_push_map``), and every
reduction or product one n-ary record per output (``pyad_push_reduce``, ``pyad_push_dots``; a
constant matrix times a vector of records, ``pyad_push_matvec_borrowed``, reads the matrix in
place).
The records are the very ones the scalar operators make, so the sweep, ``pyad.compile``,
saved programs and every other part of pyad take them as they are, and an element of an
Array computed from arrays is bit for bit the Var the scalar code would compute.

    >>> import numpy as np, pyad
    >>> w = pyad.array(np.array([1.0, 2.0, 3.0]))
    >>> loss = pyad.sum(w * w)
    >>> loss.backward()
    >>> w.grad
    array([2., 4., 6.])

Memory: an Array pins the tape segments its records lie in, as a Var pins its own (see
:mod:`pyad.tape`); views and results made from an Array share its pins, so a training loop
that drops its arrays keeps the tape's memory bounded.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any, Callable, NoReturn, Union

import numpy as np
import numpy.typing as npt

from pyad import errors
from pyad._native import OPS, SEGMENT, STATUS, error, ffi, lib
from pyad.tape import CHUNK_SHIFT, Tape, _Segment
from pyad.var import _FOREIGN, Var, _adopt_in, _caller, _Elementwise, _failed

FloatArray = npt.NDArray[np.float64]
HandleArray = npt.NDArray[np.int64]
ArrayOperand = Union["Array", Var, float, int, npt.ArrayLike]

_push_leaves = lib.pyad_push_leaves
_push_map = lib.pyad_push_map
_push_reduce = lib.pyad_push_reduce
_push_dots = lib.pyad_push_dots
_push_matvec_borrowed = lib.pyad_push_matvec_borrowed
_push_softmax = lib.pyad_push_softmax
_get_values = lib.pyad_get_values
_get_grads = lib.pyad_get_grads
_set_grads = lib.pyad_set_grads
_set_value = lib.pyad_set_value

_DOMAIN_LIKE = {STATUS["DOMAIN"], STATUS["OVERFLOW"], STATUS["ZERODIV"]}
_STALE, _NONFINITE = STATUS["STALE"], STATUS["NONFINITE"]

# numpy's ufuncs that are ops of the table, by the op's name.
_UFUNC_OPS: dict[Any, str] = {
    np.add: "add",
    np.subtract: "sub",
    np.multiply: "mul",
    np.true_divide: "div",
    np.power: "pow",
    np.arctan2: "atan2",
    np.hypot: "hypot",
    np.negative: "neg",
    np.absolute: "abs",
    np.exp: "exp",
    np.log: "log",
    np.log1p: "log1p",
    np.expm1: "expm1",
    np.sqrt: "sqrt",
    np.sin: "sin",
    np.cos: "cos",
    np.tan: "tan",
    np.arcsin: "asin",
    np.arccos: "acos",
    np.arctan: "atan",
    np.sinh: "sinh",
    np.cosh: "cosh",
    np.tanh: "tanh",
}


def _int64_ptr(a: HandleArray | None) -> Any:
    return ffi.NULL if a is None else ffi.from_buffer("int64_t[]", a)


def _double_ptr(a: FloatArray | None) -> Any:
    return ffi.NULL if a is None else ffi.from_buffer("double[]", a)


class Array(_Elementwise):
    """An n-dimensional array of Vars, used the numpy way (make one with :func:`array`).

    ``A[i]`` is a Var (of a 1-D array), slices and index arrays give Arrays; ``A.v`` and
    ``A.grad`` are float64 ndarrays of A's shape; arithmetic broadcasts against Arrays, Vars,
    numbers and ndarrays of constants as numpy does, and numpy's own functions
    (``np.exp(A)``, ``np.sum(A, axis=0)``, ``X @ A``) record on A's tape. Nothing is ever
    computed per element in Python.
    """

    __slots__ = ("_h", "_pins", "_t", "_vars")
    # ndarray OP Array defers to Array's reflected operators.
    __array_priority__ = 1000.0

    _t: Tape
    _h: HandleArray
    _pins: dict[int, _Segment]
    _vars: dict[int, Var]

    def __init__(self, obj: object) -> None:
        made = array(obj)
        self._t, self._h, self._pins, self._vars = made._t, made._h, made._pins, made._vars

    # -- layout ------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._h.shape)

    @property
    def ndim(self) -> int:
        return int(self._h.ndim)

    @property
    def size(self) -> int:
        return int(self._h.size)

    @property
    def tape(self) -> Tape:
        """The tape the elements are recorded on."""
        return self._t

    def __len__(self) -> int:
        if self._h.ndim == 0:
            raise TypeError("len() of a 0-d pyad.Array")
        return int(self._h.shape[0])

    def __iter__(self) -> Iterator[Any]:
        if self._h.ndim == 0:
            raise TypeError("iteration over a 0-d pyad.Array")
        for i in range(self._h.shape[0]):
            yield self[i]

    def __getitem__(self, index: Any) -> Any:
        h = self._h[index]
        if np.ndim(h) == 0:
            return self._var(int(h))
        return _wrap(self._t, h, self._pins, self._vars)

    def __setitem__(self, index: Any, value: ArrayOperand) -> None:
        """``A[i] = x``: the element now names x's record (x a Var or Array of A's tape; a
        number is recorded as a new input). Views of A see the change, as in numpy."""
        other = value if isinstance(value, Array) else array(value, tape=self._t)
        _same_tape(self._t, other)
        self._h[index] = other._h
        self._pins.update(other._pins)
        self._vars.update(other._vars)

    def reshape(self, *shape: Any) -> Array:
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return _wrap(self._t, self._h.reshape(shape), self._pins, self._vars)

    def transpose(self, *axes: Any) -> Array:
        return _wrap(self._t, self._h.transpose(*axes), self._pins, self._vars)

    @property
    def T(self) -> Array:
        return self.transpose()

    def ravel(self) -> Array:
        return _wrap(self._t, self._h.ravel(), self._pins, self._vars)

    flatten = ravel

    def _var(self, h: int) -> Var:
        """The Var of record h: one object per record, shared by A and its views, so that
        ``A[0] is A[0]`` as for the list of Vars fn used to get (Vars compare by identity)."""
        v = self._vars.get(h)
        if v is None:
            v = self._vars[h] = _adopt_in(self._t, h, self._pins[h >> CHUNK_SHIFT])
        return v

    # -- values and adjoints ---------------------------------------------------------------
    @property
    def v(self) -> FloatArray:
        """The values, a new float64 array of A's shape. Assigning sets the values of inputs
        (``w.v = w.v - lr * w.grad``); a computed element refuses (NotLeafError)."""
        self._no_trace("the values (.v)")
        flat = np.ascontiguousarray(self._h).reshape(-1)
        out = np.empty(flat.size)
        status = _get_values(self._t._p, flat.size, _int64_ptr(flat), _double_ptr(out))
        if status:
            self._fail(status)
        return out.reshape(self._h.shape)

    @v.setter
    def v(self, values: npt.ArrayLike) -> None:
        self._no_trace("the values (.v)")
        new = np.broadcast_to(_real_array(values, "values"), self._h.shape)
        p = self._t._p
        for h, value in zip(self._h.reshape(-1).tolist(), new.reshape(-1).tolist()):
            status = _set_value(p, h, value)
            if status:
                self._fail(status)

    @property
    def grad(self) -> FloatArray:
        """The adjoints, a new float64 array of A's shape; ``A.grad = 0.0`` clears them."""
        self._no_trace("the gradients (.grad)")
        flat = np.ascontiguousarray(self._h).reshape(-1)
        out = np.empty(flat.size)
        status = _get_grads(self._t._p, flat.size, _int64_ptr(flat), _double_ptr(out))
        if status:
            self._fail(status)
        return out.reshape(self._h.shape)

    @grad.setter
    def grad(self, value: float) -> None:
        self._no_trace("the gradients (.grad)")
        g = _real_scalar(value, "grad")
        flat = np.ascontiguousarray(self._h).reshape(-1)
        status = _set_grads(self._t._p, flat.size, _int64_ptr(flat), g)
        if status:
            self._fail(status)

    def backward(self, upstream_grad: float = 1.0) -> None:
        """The reverse sweep from a one-element Array (a loss kept as an array)."""
        if self._h.size != 1:
            raise ValueError(
                f"backward() needs a one-element Array (a scalar loss), got shape {self.shape}: "
                "reduce it first, e.g. pyad.sum(A).backward()"
            )
        self._var(int(self._h.reshape(-1)[0])).backward(upstream_grad)

    def _no_trace(self, what: str) -> None:
        trace = self._t._trace
        if trace is not None:
            raise trace.value_read(_caller())

    def _fail(self, status: int) -> NoReturn:
        _failed(self._t, status, *self._any_var())

    def _any_var(self) -> list[Var]:
        return [self._var(int(self._h.reshape(-1)[0]))] if self._h.size else []

    # -- a pyad.Array never quietly becomes numbers ----------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> NoReturn:
        raise TypeError(
            "a pyad.Array is not turned into a numpy array implicitly, because the numbers "
            "would carry no derivative: use numpy's functions on it (np.exp(A), np.sum(A), "
            "X @ A record on its tape), or A.v to read the values as constants on purpose"
        )

    def __bool__(self) -> bool:
        if self._h.size != 1:
            raise ValueError(
                "the truth value of a pyad.Array with more than one element is ambiguous"
            )
        return bool(self._var(int(self._h.reshape(-1)[0])))

    def __float__(self) -> float:
        raise TypeError(
            "float() of a pyad.Array: its numbers would carry no derivative; use A.v to read "
            "the values as constants on purpose"
        )

    def __repr__(self) -> str:
        try:
            values = np.array2string(self.v, separator=", ", threshold=20)
        except errors.PyadError as exc:
            return f"<pyad.Array: {type(exc).__name__}>"
        return f"pyad.Array({values})"

    # -- arithmetic: one C call per operation ----------------------------------------------
    def _apply(self, name: str, other: object = None, reflected: bool = False) -> Any:
        if OPS[name][1] == 1:
            return _map(name, self)
        return _map(name, other, self) if reflected else _map(name, self, other)

    def __add__(self, other: ArrayOperand) -> Array:
        return _map("add", self, other)

    def __radd__(self, other: ArrayOperand) -> Array:
        return _map("add", other, self)

    def __sub__(self, other: ArrayOperand) -> Array:
        return _map("sub", self, other)

    def __rsub__(self, other: ArrayOperand) -> Array:
        return _map("sub", other, self)

    def __mul__(self, other: ArrayOperand) -> Array:
        return _map("mul", self, other)

    def __rmul__(self, other: ArrayOperand) -> Array:
        return _map("mul", other, self)

    def __truediv__(self, other: ArrayOperand) -> Array:
        return _map("div", self, other)

    def __rtruediv__(self, other: ArrayOperand) -> Array:
        return _map("div", other, self)

    def __pow__(self, other: ArrayOperand) -> Array:
        return _map("pow", self, other)

    def __rpow__(self, other: ArrayOperand) -> Array:
        return _map("pow", other, self)

    def __neg__(self) -> Array:
        return _map("neg", self)

    def __pos__(self) -> Array:
        return self

    def __abs__(self) -> Array:
        return _map("abs", self)

    def __matmul__(self, other: ArrayOperand) -> Any:
        return matmul(self, other)

    def __rmatmul__(self, other: ArrayOperand) -> Any:
        return matmul(other, self)

    # -- reductions ------------------------------------------------------------------------
    def sum(self, axis: Any = None) -> Any:
        """The sum of the elements (along ``axis``): one ``sum`` record per output."""
        return _reduce("sum", self, axis)

    def mean(self, axis: Any = None) -> Any:
        """The sum along ``axis`` divided by the number of elements summed."""
        count = math.prod(self._h.shape[d] for d in _axes(axis, self.ndim))
        return _reduce("sum", self, axis) / float(count)

    def dot(self, other: ArrayOperand) -> Any:
        return dot(self, other)

    # -- numpy's protocols -----------------------------------------------------------------
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if kwargs.get("out") is not None:
            raise TypeError("out= is not supported for pyad.Array: results are new Arrays")
        if method == "__call__" and not kwargs:
            if ufunc is np.matmul:
                return matmul(*inputs)
            if ufunc is np.square:
                return _map("mul", inputs[0], inputs[0])
            if ufunc is np.positive:
                return inputs[0]
            name = _UFUNC_OPS.get(ufunc)
            if name is not None:
                return _map(name, *inputs)
        if method == "reduce" and ufunc is np.add and set(kwargs) <= {"axis"}:
            return _reduce("sum", inputs[0], kwargs.get("axis", 0))
        raise TypeError(
            f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} is not "
            "supported on a pyad.Array (see pyad.array's docs for what is)"
        )

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        handler = _FUNCTIONS.get(func)
        if handler is None:
            raise TypeError(
                f"numpy.{func.__name__} is not supported on a pyad.Array (see pyad.array's "
                "docs for what is)"
            )
        return handler(*args, **kwargs)


# -- making arrays ------------------------------------------------------------------------


def _wrap(
    t: Tape, handles: HandleArray, pins: dict[int, _Segment], cells: dict[int, Var] | None = None
) -> Array:
    """An Array of ``handles``; views pass their base's ``pins`` and ``cells`` (its Vars)."""
    r = object.__new__(Array)
    r._t = t
    r._h = handles
    r._pins = pins
    r._vars = {} if cells is None else cells
    return r


def array(obj: object, *, tape: Tape | None = None) -> Array:
    """A :class:`Array` from ``obj``:

    - numbers (a list, nested lists, an ndarray of a real dtype): new inputs, one per
      element, recorded in one call on ``tape`` (the active tape by default):
      ``w = pyad.array(np.zeros(1000))`` makes 1,000 inputs;
    - Vars, or (nested) sequences mixing Vars and Arrays: wraps their records, recording
      nothing (numbers among them become new inputs);
    - an Array: itself.

    Non-real dtypes raise TypeError."""
    if isinstance(obj, Array):
        if tape is not None:
            _same_tape(tape, obj)
        return obj
    if isinstance(obj, Var):
        _same_tape(tape or obj._t, obj)
        return _wrap(obj._t, np.array(obj._h, dtype=np.int64), {obj._s._c: obj._s}, {obj._h: obj})
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        return _leaves(_real_array(obj, "pyad.array's argument"), tape or Tape.current())
    if isinstance(obj, (list, tuple)) and not _holds_nodes(obj):
        return _leaves(_real_array(obj, "pyad.array's argument"), tape or Tape.current())
    return _from_nodes(obj, tape)


def _holds_nodes(obj: object) -> bool:
    if isinstance(obj, (Var, Array)):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_holds_nodes(x) for x in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        return any(_holds_nodes(x) for x in obj.reshape(-1).tolist())
    return False


def _from_nodes(obj: object, tape: Tape | None) -> Array:
    """Vars and Arrays (and numbers, as new inputs) nested in sequences, wrapped."""
    if isinstance(obj, (list, tuple)) and any(isinstance(x, Array) for x in obj):
        return stack([array(x, tape=tape) for x in obj])
    nested = np.asarray(obj, dtype=object)
    shape = nested.shape
    flat = nested.reshape(-1).tolist()
    t = tape or next((x._t for x in flat if isinstance(x, Var)), None) or Tape.current()
    handles = np.empty(len(flat), dtype=np.int64)
    pins: dict[int, _Segment] = {}
    cells: dict[int, Var] = {}
    for i, x in enumerate(flat):
        if not isinstance(x, Var):
            value = _real_scalar(x, "an element of pyad.array's argument")
            leaf = _leaves(np.array([value]), t)
            x = leaf._var(int(leaf._h[0]))
        _same_tape(t, x)
        handles[i] = x._h
        pins[x._s._c] = x._s
        cells[x._h] = x
    return _wrap(t, handles.reshape(shape), pins, cells)


def _leaves(values: FloatArray, t: Tape) -> Array:
    """New inputs with ``values``, one C call."""
    flat = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    out = np.empty(flat.size, dtype=np.int64)
    s = t._s
    while True:
        status = _push_leaves(t._p, flat.size, _double_ptr(flat), _int64_ptr(out))
        if status and status != SEGMENT:
            raise error(status, t._p)
        pins = t._run_segments(out, s, status == SEGMENT)
        if pins is not None:
            return _wrap(t, out.reshape(np.shape(values)), pins)
        s = t._pin_current()


def _real_array(x: object, what: str) -> FloatArray:
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold real numbers, got dtype {a.dtype}")
    return a.astype(np.float64, copy=False)


def _real_scalar(x: object, what: str) -> float:
    if isinstance(x, numbers.Real) and not isinstance(x, Var):
        return float(x)
    if isinstance(x, np.ndarray) and x.ndim == 0 and x.dtype.kind in "biuf":
        return float(x)
    raise TypeError(f"{what} must be a real number, got {type(x).__name__}")


def _same_tape(t: Tape, x: Array | Var) -> None:
    if x._t is not t:
        raise errors.ForeignVarError(_FOREIGN)


# -- operands -----------------------------------------------------------------------------


class _Operand:
    """One operand of an array operation: handles (Array or Var) or constants (numbers)."""

    __slots__ = ("consts", "handles", "node", "shape")

    def __init__(self, x: object) -> None:
        self.node: Array | Var | None = None
        self.handles: HandleArray | None = None
        self.consts: FloatArray | None = None
        if isinstance(x, Array):
            self.node, self.handles = x, x._h
        elif isinstance(x, Var):
            self.node, self.handles = x, np.array(x._h, dtype=np.int64)
        else:
            if (isinstance(x, np.ndarray) and x.dtype == object) or _holds_nodes(x):
                x = array(x)
                self.node, self.handles = x, x._h
            else:
                self.consts = _real_array(x, "an operand of a pyad.Array operation")
        self.shape = (self.handles if self.handles is not None else self.consts).shape  # type: ignore[union-attr]

    def flat(self, shape: tuple[int, ...]) -> tuple[HandleArray | None, FloatArray | None]:
        def spread(a: Any) -> Any:
            return None if a is None else np.ascontiguousarray(np.broadcast_to(a, shape)).ravel()

        return spread(self.handles), spread(self.consts)


def _tape_of(*operands: _Operand) -> Tape:
    nodes = [o.node for o in operands if o.node is not None]
    t = nodes[0]._t
    if any(x._t is not t for x in nodes[1:]):
        raise errors.ForeignVarError(_FOREIGN)
    return t


def _math_failure(t: Tape, status: int, where: int, shape: tuple[int, ...]) -> NoReturn:
    """The exception of a failed bulk push: a math error names the element (by its index in
    the result's shape), as the scalar push names the operands."""
    exc = error(status, t._p)
    if status == _NONFINITE:
        exc = errors.NonFiniteError(f"{exc} at {_caller()}")
    if where >= 0 and len(shape) > 1:
        index = tuple(int(i) for i in np.unravel_index(where, shape))
        exc = type(exc)(f"{exc} (index {index})")
    raise exc


def _push_records(t: Tape, shape: tuple[int, ...], push: Callable[[Any, Any], int]) -> Array:
    """Run a bulk push ``push(out, where)`` of ``prod(shape)`` records and return their
    handles shaped ``shape``, with the pins of their segments; push again under a pin of the
    current segment when another thread moved segments meanwhile (see pyad.var._slow)."""
    n = math.prod(shape)
    out = np.empty(n, dtype=np.int64)
    where = ffi.new("int64_t *", -1)
    s = t._s
    while True:
        status = push(_int64_ptr(out), where)
        if status and status != SEGMENT:
            if status == _STALE:
                raise errors.StaleVarError(
                    "this Array was recorded before its tape was reset, so its records are gone"
                )
            _math_failure(t, status, int(where[0]), shape)
        pins = t._run_segments(out, s, status == SEGMENT)
        if pins is not None:
            return _wrap(t, out.reshape(shape), pins)
        s = t._pin_current()


def _map(name: str, a: object, b: object = None) -> Array:
    """Op ``name`` elementwise, numpy's broadcasting, one record per element."""
    op, arity = OPS[name]
    oa = _Operand(a)
    ob = _Operand(b) if arity == 2 else None
    operands = [oa] if ob is None else [oa, ob]
    if all(o.node is None for o in operands):
        raise TypeError(f"{name}: no pyad operand")
    t = _tape_of(*operands)
    shape = np.broadcast_shapes(*(o.shape for o in operands))
    ha, ca = oa.flat(shape)
    hb, cb = ob.flat(shape) if ob is not None else (None, None)
    n = math.prod(shape)
    return _push_records(
        t,
        shape,
        lambda out, where: _push_map(
            t._p,
            op,
            n,
            _int64_ptr(ha),
            _double_ptr(ca),
            _int64_ptr(hb),
            _double_ptr(cb),
            out,
            where,
        ),
    )


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or ints, negative from the end) as distinct axes in range."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= int(a) < ndim:
            raise np.exceptions.AxisError(int(a), ndim)
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError("duplicate value in 'axis'")
    return tuple(out)


def _reduce(name: str, x: object, axis: Any = None) -> Any:
    """One n-ary record (sum, logsumexp) per output, over ``axis`` (all axes by default): a
    Var for a full reduction, else an Array of the remaining axes."""
    a = x if isinstance(x, Array) else array(x)
    axes = _axes(axis, a.ndim)
    keep = [d for d in range(a.ndim) if d not in axes]
    h = np.ascontiguousarray(a._h.transpose(keep + list(axes)))
    out_shape = tuple(a._h.shape[d] for d in keep)
    count = math.prod(a._h.shape[d] for d in axes)
    nout = math.prod(out_shape)
    if name == "logsumexp" and count == 0:
        raise ValueError("logsumexp() of an empty sequence")
    flat = h.reshape(-1)
    t = a._t
    op = OPS[name][0]
    result = _push_records(
        t,
        out_shape,
        lambda out, where: _push_reduce(t._p, op, nout, count, _int64_ptr(flat), ffi.NULL, out),
    )
    return result if out_shape else result._var(int(result._h))


# -- products -----------------------------------------------------------------------------


def _dots(w: _Operand, x: _Operand, nout: int, count: int, shape: tuple[int, ...]) -> Any:
    """``nout`` dot records of ``count`` pairs each: w and x already laid out as (nout,
    count), broadcast."""
    t = _tape_of(w, x)
    hw, cw = w.flat((nout, count))
    hx, cx = x.flat((nout, count))
    result = _push_records(
        t,
        shape,
        lambda out, where: _push_dots(
            t._p,
            nout,
            count,
            _int64_ptr(hw),
            _double_ptr(cw),
            _int64_ptr(hx),
            _double_ptr(cx),
            out,
        ),
    )
    return result if shape else result._var(int(result._h))


def _laid_out(o: _Operand, arr: Any) -> _Operand:
    """``o`` with its handles or constants replaced by ``arr`` (a rearrangement of them)."""
    r = object.__new__(_Operand)
    r.node = o.node
    r.handles, r.consts = (arr, None) if o.handles is not None else (None, arr)
    r.shape = arr.shape
    return r


def _matvec(matrix: FloatArray, x: _Operand) -> Any:
    """``matrix @ x`` for a constant 2-D matrix and a 1-D operand of records: one ``matvec``
    group (``pyad_push_matvec_borrowed``), its values and gradients bit for bit those of the
    dots. The tape reads the matrix in place, not a copy (a one-shot gradient of a large
    product would spend half its time writing the copy and reading it back), and keeps it
    alive while any of the group's records is kept; a row changed in place before a gradient
    needs it raises :class:`pyad.errors.MatrixChangedError`."""
    t = _tape_of(x)
    c = np.ascontiguousarray(matrix, dtype=np.float64)
    hx = np.ascontiguousarray(x.handles, dtype=np.int64)
    nout, count = c.shape

    def push(out: Any, where: Any) -> int:
        token = t._borrow(c)
        status = int(
            _push_matvec_borrowed(t._p, nout, count, _double_ptr(c), _int64_ptr(hx), token, out)
        )
        if status and status != SEGMENT:
            t._unborrow(token)
        return status

    return _push_records(t, (nout,), push)


def matmul(a: ArrayOperand, b: ArrayOperand) -> Any:
    """``a @ b`` with numpy's rules for 1-D and 2-D operands (Arrays, or one of them an
    ndarray of constants). A constant matrix times a vector of records, ``X @ w`` or
    ``w @ X``, is one ``matvec`` group, which reads the matrix in place rather than copying
    it: the tape keeps X alive while any of the group's records is kept, and a gradient,
    ``pyad.compile`` or ``.predecessors`` that needs a row of X changed in place since the
    product raises :class:`pyad.errors.MatrixChangedError` (change X only after the
    gradients that use it, or multiply ``X.copy()``). ``w @ X`` and a matrix numpy must
    convert to contiguous float64 read that conversion, which nothing else can change.
    Every other product is one ``dot`` record per output (a constant matrix times a 2-D
    Array too: as matvecs over its columns it would read the matrix once per column)."""
    oa, ob = _Operand(a), _Operand(b)
    if oa.node is None and ob.node is None:
        raise TypeError("matmul: no pyad operand")
    A: Any = oa.handles if oa.handles is not None else oa.consts
    B: Any = ob.handles if ob.handles is not None else ob.consts
    if A.ndim == 0 or B.ndim == 0:
        raise ValueError("matmul: input operand does not have enough dimensions (use *)")
    if A.ndim > 2 or B.ndim > 2:
        raise ValueError("matmul of pyad.Arrays takes 1-D and 2-D operands")
    A2 = A if A.ndim == 2 else A[None, :]
    B2 = B if B.ndim == 2 else B[:, None]
    m, k = A2.shape
    k2, n = B2.shape
    if k != k2:
        raise ValueError(
            f"matmul: shapes {A.shape} and {B.shape} not aligned: {k} (dim {A.ndim - 1}) != "
            f"{k2} (dim 0)"
        )
    if m * k * n > 0:
        if oa.node is None and A.ndim == 2 and ob.handles is not None and B.ndim == 1:
            return _matvec(A, ob)  # X @ w
        if ob.node is None and B.ndim == 2 and oa.handles is not None and A.ndim == 1:
            return _matvec(B.T, oa)  # w @ X: X.T @ w, the same products
    # output (i, j) pairs row i of A with column j of B
    wa = np.broadcast_to(A2[:, None, :], (m, n, k)).reshape(m * n, k)
    xb = np.broadcast_to(B2.T[None, :, :], (m, n, k)).reshape(m * n, k)
    shape: tuple[int, ...] = (m, n)
    if A.ndim == 1:
        shape = (n,)
    if B.ndim == 1:
        shape = shape[:-1]
    return _dots(_laid_out(oa, wa), _laid_out(ob, xb), m * n, k, shape)


def dot(a: ArrayOperand, b: ArrayOperand) -> Any:
    """numpy's ``dot`` for 1-D and 2-D operands (a matrix product there)."""
    return matmul(a, b)


# -- arrays from arrays -------------------------------------------------------------------


def _merged(parts: Sequence[Array]) -> tuple[Tape, dict[int, _Segment], dict[int, Var]]:
    """The tape, pins and Vars of arrays joined into one."""
    if not parts:
        raise ValueError("need at least one array")
    t = parts[0]._t
    pins: dict[int, _Segment] = {}
    cells: dict[int, Var] = {}
    for p in parts:
        _same_tape(t, p)
        pins.update(p._pins)
        cells.update(p._vars)
    return t, pins, cells


def concatenate(arrays: Sequence[ArrayOperand], axis: int = 0) -> Array:
    """Arrays joined along an existing axis, as numpy.concatenate (records nothing)."""
    parts = [array(a) for a in arrays]
    t, pins, cells = _merged(parts)
    return _wrap(t, np.concatenate([p._h for p in parts], axis=axis), pins, cells)


def stack(arrays: Sequence[ArrayOperand], axis: int = 0) -> Array:
    """Arrays joined along a new axis, as numpy.stack (records nothing)."""
    parts = [array(a) for a in arrays]
    t, pins, cells = _merged(parts)
    return _wrap(t, np.stack([p._h for p in parts], axis=axis), pins, cells)


def _sum(a: Any, axis: Any = None, **kwargs: Any) -> Any:
    _no_kwargs("sum", kwargs)
    return _reduce("sum", a, axis)


def _mean(a: Any, axis: Any = None, **kwargs: Any) -> Any:
    _no_kwargs("mean", kwargs)
    return array(a).mean(axis)


def _no_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"numpy.{name} on a pyad.Array takes no {', '.join(kwargs)}")


_FUNCTIONS: dict[Any, Callable[..., Any]] = {
    np.sum: _sum,
    np.mean: _mean,
    np.dot: dot,
    np.matmul: matmul,
    np.concatenate: concatenate,
    np.stack: stack,
    np.reshape: lambda a, shape: array(a).reshape(shape),
    np.transpose: lambda a, axes=None: array(a).transpose(*(() if axes is None else axes)),
    np.ravel: lambda a: array(a).ravel(),
    np.shape: lambda a: array(a).shape,
    np.ndim: lambda a: array(a).ndim,
    np.size: lambda a: array(a).size,
}


def logsumexp(x: ArrayOperand, axis: Any = None) -> Any:
    """``log(sum(exp(x)))`` along ``axis`` (all axes by default), without overflow."""
    return _reduce("logsumexp", x, axis)


def softmax(x: ArrayOperand, axis: int = -1) -> Array:
    """``exp(x) / sum(exp(x))`` along ``axis`` (the last by default), without overflow: one
    softmax per slice along that axis (a C call each), its outputs in place of its inputs."""
    a = array(x)
    (ax,) = _axes(axis, a.ndim)
    moved = np.ascontiguousarray(np.moveaxis(a._h, ax, -1))
    if moved.shape[-1] == 0:
        raise ValueError("softmax() of an empty sequence")
    rows = moved.reshape(-1, moved.shape[-1])
    t, count = a._t, rows.shape[1]

    def one(row: HandleArray) -> Array:
        def push(out: Any, where: Any) -> int:
            return int(_push_softmax(t._p, count, _int64_ptr(row), ffi.NULL, out))

        return _push_records(t, (count,), push)

    parts = [one(row) for row in rows]
    t, pins, cells = _merged(parts)
    out = np.stack([p._h for p in parts]).reshape(moved.shape)
    return _wrap(t, np.moveaxis(out, -1, ax), pins, cells)


__all__ = ["Array", "array", "concatenate", "dot", "logsumexp", "matmul", "softmax", "stack"]
