"""The API of Eli Bendersky's ``rad.py``, recorded on pyad's tape.

``rad.py`` is the engine of the tutorial "Reverse-mode automatic differentiation: a tutorial"
(2025). Scripts written for it run with only the import changed::

    from pyad.compat.rad import Var, exp, log, sin

    x1, x2 = Var(2.0), Var(5.0)
    f = log(x1) + x1 * x2 - sin(x2)
    f.grad(1.0)                    # backpropagate
    x1.gv, x2.gv                   # (5.5, 1.7163378145367738)

What is the same: ``Var(v)`` makes an input; ``.v`` is the value; ``.gv`` the adjoint
accumulated over every ``grad(gv)`` call so far (0.0 until then, assignable to reset it);
``grad(gv)`` adds ``gv * d(self)/d(node)`` to ``.gv`` of every node ``self`` depends on, itself
included; ``+ - * /`` and unary ``-`` with numbers on either side; ``exp``, ``log`` and
``sin`` make a Var of a number as well as of a Var; ``div(x, y)`` is ``x / y``;
``ensure_var(v)`` returns a Var unchanged and wraps anything else in a new one; and
``.predecessors`` lists ``Predecessor(multiplier, var)`` pairs.

What is better: ``grad()`` is one sweep over the tape in C instead of a recursive walk of
every path, so a node shared by many paths costs nothing extra and a chain a million
operations deep raises no RecursionError. The numbers are the same up to the order of
floating-point additions.

What differs, because the graph lives in C:

* values are floats: ``Var(2).v`` is ``2.0``;
* a number in an operator is stored in the record, not made into a node: ``(x * 3)`` has one
  predecessor, where rad.py lists a second one for ``Var(3)``;
* ``.predecessors`` is read from the tape, as a tuple: it cannot be appended to, so new
  functions are written by composing existing ones (or with pyad's functions, which give a
  Var of this class for one: ``pyad.cos(x)``), not by adding predecessors by hand;
* ``.v`` can be assigned on inputs only.

The class is a subclass of :class:`pyad.Var`, so its objects also work with pyad's functions
(whose results are of this class) and on explicit tapes.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Union, cast

from pyad.errors import PyadError
from pyad.var import Var as _Var
from pyad.var import _get_grad, _set_grad, install_operators, unary_method

Number = Union[int, float]
Operand = Union[_Var, int, float]

__all__ = ["Predecessor", "Var", "div", "ensure_var", "exp", "ln", "log", "sin"]


class Predecessor(NamedTuple):
    """One input of a node: the partial derivative of the node with respect to ``var``."""

    multiplier: float
    var: Var


class Var(_Var):
    """A scalar node with rad.py's API: ``.v``, ``.gv``, ``grad(gv)``, ``.predecessors``.

    ``Var(v)`` records a new input on the active tape; operators and the module functions
    record the operations and return Vars of this class.
    """

    __slots__ = ()

    @property
    def gv(self) -> float:
        """The adjoint accumulated over every ``grad()`` call so far (assignable)."""
        return self._read(_get_grad)

    @gv.setter
    def gv(self, value: Number) -> None:
        self._write(_set_grad, value)

    def grad(self, gv: Number = 1.0) -> None:  # type: ignore[override]
        """Backpropagate: add ``gv * d(self)/d(node)`` to ``.gv`` of every node self depends
        on, itself included. Calling it again accumulates again, as in rad.py."""
        _Var.backward(self, gv)

    @property
    def predecessors(self) -> tuple[Predecessor, ...]:  # type: ignore[override]
        """``(Predecessor(multiplier, var), ...)``: this node's Var operands and the partial
        derivatives recorded for them (numbers stored in the record are not listed)."""
        # pyad.Var.predecessors makes them of self's class, this one
        return tuple(Predecessor(m, cast(Var, node)) for m, node in super().predecessors)

    def __repr__(self) -> str:
        try:
            return f"Var(v={self.v!r}, gv={self.gv!r})"
        except PyadError as exc:  # a stale Var, a tape of another thread
            return f"<Var: {type(exc).__name__}>"

    # Operators are installed below (install_operators): their results are Vars of this
    # class, as pyad.Var's annotations say.


install_operators(Var)

_Unary = Callable[[_Var], Var]
_exp = cast(_Unary, unary_method("exp", Var))
_log = cast(_Unary, unary_method("log", Var))
_sin = cast(_Unary, unary_method("sin", Var))


def _view(x: _Var) -> Var:
    """A :class:`Var` for the same record as the pyad Var ``x``."""
    r: Var = object.__new__(Var)
    r._t = x._t
    r._h = x._h
    r._s = x._s
    return r


def ensure_var(v: Operand) -> Var:
    """``v`` itself if it is a Var, else a new input Var holding ``v``. (A plain
    :class:`pyad.Var` is given this module's API: same record, same tape.)"""
    if isinstance(v, Var):
        return v
    if isinstance(v, _Var):
        return _view(v)
    return Var(v)


def div(x: Operand, y: Operand) -> Var:
    """``x / y``; numbers are made into Vars first, as rad.py does. Division by zero raises
    ZeroDivisionError."""
    return ensure_var(x) / ensure_var(y)


def exp(x: Operand) -> Var:
    """e^x, a Var (of a number too). OverflowError where ``math.exp`` overflows."""
    return _exp(ensure_var(x))


def log(x: Operand) -> Var:
    """The natural logarithm of x, a Var (of a number too). ValueError for x <= 0."""
    return _log(ensure_var(x))


def sin(x: Operand) -> Var:
    """sin(x), a Var (of a number too)."""
    return _sin(ensure_var(x))


#: The name an earlier version of rad.py gave the natural logarithm.
ln = log
