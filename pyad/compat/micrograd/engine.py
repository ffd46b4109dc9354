"""micrograd's ``Value``, recorded on pyad's tape.

Code written for Andrej Karpathy's micrograd runs with only the import changed::

    from pyad.compat.micrograd.engine import Value   # was: from micrograd.engine import Value

    a, b = Value(-4.0), Value(2.0)
    c = (a * b + b**3).relu()
    c.backward()
    a.grad, b.grad                                    # (2.0, 8.0)

What is the same: ``Value(data)`` (the ``_children``, ``_op`` and ``label`` arguments are
accepted and ignored: the tape knows the graph); ``.data`` and ``.grad`` are readable and
writable (``p.data -= lr * p.grad``, ``p.grad = 0``); ``+ - * /`` and unary ``-`` with
numbers on either side, ``**`` with a number exponent, ``relu()``, ``tanh()``, ``exp()`` and
``log()``; ``backward()`` sets ``self.grad`` to 1 and adds each node's gradient to its
``.grad``, so gradients of parameters accumulate across graphs until they are zeroed; the
``repr`` is ``Value(data=..., grad=...)``.

What is better: ``backward()`` is one sweep over the tape in C, with no topological sort, no
recursion (a graph thousands of operations deep is fine) and no Python closure per node.

What differs, because the graph lives in C:

* values and gradients are floats: ``Value(2).data`` is ``2.0`` and a fresh ``.grad`` is
  ``0.0``;
* ``.data`` can be assigned on inputs (``Value(...)``, parameters) only, not on computed
  nodes;
* ``a / b`` is a true division, not micrograd's ``a * b**-1`` (the same value up to the last
  bit), and ``tanh`` is the C library's (micrograd's formula overflows for large inputs);
* a Value in an exponent raises TypeError, as micrograd's assertion fails, but also under
  ``python -O`` (use :func:`pyad.pow` to differentiate with respect to an exponent);
* calling ``backward()`` twice on one graph adds each gradient twice; micrograd also
  re-propagates the gradients the first call left on intermediate nodes;
* ``_prev``, ``_op`` and ``_backward`` do not exist: :func:`pyad.to_dot` draws the graph.

``Value`` is a subclass of :class:`pyad.Var`: Values also work with pyad's functions (which
return Values: ``pyad.softmax(logits)``, ``pyad.sum(losses)``) and on explicit tapes, and
comparisons (``<`` ...) compare data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Union, cast

from pyad.errors import PyadError
from pyad.var import Var, _set_grad, install_operators, unary_method

Number = Union[int, float]
Operand = Union[Var, int, float]

__all__ = ["Value"]


class Value(Var):
    """A scalar with micrograd's API: ``.data``, ``.grad``, ``backward()``, ``relu()`` ...

    ``Value(data)`` records a new input on the active tape; operators and methods record
    operations and return Values.
    """

    __slots__ = ()

    def __init__(self, data: Number, _children: Any = (), _op: str = "", label: str = "") -> None:
        super().__init__(data)

    #: The value (a float); assignable on inputs and parameters: ``p.data -= lr * p.grad``.
    data = Var.v

    def backward(self, upstream_grad: Number = 1.0) -> None:
        """Set ``self.grad`` to ``upstream_grad`` (1) and add d(self)/d(node) times it to
        ``.grad`` of every node self depends on. One sweep in C."""
        self._write(_set_grad, 0.0)
        Var.backward(self, upstream_grad)

    def __repr__(self) -> str:
        try:
            return f"Value(data={self.data}, grad={self.grad})"
        except PyadError as exc:  # a stale Value, a tape of another thread
            return f"<Value: {type(exc).__name__}>"

    # Installed below from the op table: their results are Values.
    if TYPE_CHECKING:

        def relu(self) -> Value: ...
        def tanh(self) -> Value: ...
        def exp(self) -> Value: ...
        def log(self) -> Value: ...
        def __pow__(self, other: Number, modulo: None = None) -> Value: ...  # type: ignore[override]


install_operators(Value)
for _name in ("relu", "tanh", "exp", "log"):
    setattr(Value, _name, unary_method(_name, Value))

_pow = cast(Callable[[Value, Number], Value], Value.__pow__)
_EXPONENT_MESSAGE = (
    "only number exponents are supported, as in micrograd (pyad.pow(a, b) also "
    "differentiates with respect to the exponent)"
)


def _number_pow(self: Value, other: Number, modulo: None = None) -> Value:
    """``self ** other`` for a number ``other``; TypeError for a Value exponent (and, as
    ``pow(x, y, modulo)`` has no meaning here, for a modulo)."""
    if isinstance(other, Var):
        raise TypeError(_EXPONENT_MESSAGE)
    if modulo is not None:
        return NotImplemented
    return _pow(self, other)


def _no_rpow(self: Value, other: Number) -> Value:
    """``number ** Value``: TypeError, as in micrograd."""
    raise TypeError(_EXPONENT_MESSAGE)


Value.__pow__ = _number_pow  # type: ignore[method-assign]
Value.__rpow__ = _no_rpow  # type: ignore[method-assign,assignment]
