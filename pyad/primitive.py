"""Custom primitives: an operation whose value and partial derivatives the user computes in
Python, recorded as one record of the tape (op "primitive").

    >>> import math, pyad
    >>> softsign = pyad.primitive(lambda x: x / (1 + abs(x)),
    ...                           lambda x: [1 / (1 + abs(x)) ** 2])
    >>> x = pyad.Var(1.0)
    >>> y = softsign(x)
    >>> y.backward()
    >>> x.grad
    0.25

Limits: ``f`` and ``df`` run on plain floats, once per call; the record keeps the value and
partials, not the functions, so a replay of the tape cannot recompute it (a compiled replay
must refuse tapes that contain primitives).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Union

from pyad import errors
from pyad._native import push_primitive
from pyad.functions import _operands
from pyad.var import Var, _checked_float, _slow

Number = Union[int, float]


def primitive(
    f: Callable[..., float], df: Callable[..., Sequence[float]]
) -> Callable[..., Union[Var, float]]:
    """A function of scalars that records as one operation.

    ``f(*values)`` gives the value and ``df(*values)`` one partial derivative per argument.
    Called with Vars among its arguments, the result is a Var on their tape, of the first
    Var argument's class; with numbers only, it is ``f``'s float.
    """

    label = f"pyad.primitive {getattr(f, '__name__', '')!r}"

    def recorded(*args: Union[Var, Number]) -> Union[Var, float]:
        items = list(args)
        if any(isinstance(a, Var) and a._t._trace is not None for a in items):
            raise errors.TraceError(
                f"{label}: pyad.compile cannot replay a primitive (its value comes from Python "
                "code); use pyad.grad for this function"
            )
        values = [a.v if isinstance(a, Var) else _checked_float(a) for a in items]
        value = float(f(*values))
        t, handles, consts, node = _operands(items)
        if t is None:
            return value
        partials = _partials(label, df(*values), len(items))
        s, call = t._s, (t._p, len(items), handles, consts, value, partials)
        return _slow(t, push_primitive(*call), s, node, tuple(items), push_primitive, *call)

    recorded.__name__ = getattr(f, "__name__", "primitive")
    recorded.__doc__ = getattr(f, "__doc__", None)
    return recorded


def _partials(label: str, returned: Any, n: int) -> list[float]:
    """What the derivative function ``returned`` for n arguments, as n floats; otherwise an
    error saying what it must return."""
    expected = (
        "it must return one partial derivative per argument, in the order of the arguments: "
        f"a sequence of length {n}" + (" ([d] for one argument)" if n == 1 else "")
    )
    try:
        items = iter(returned)
    except TypeError:  # a float, None, a 0-d array
        raise TypeError(
            f"{label}: the derivative function returned {returned!r}, not a sequence; {expected}"
        ) from None
    entries = list(items)
    if len(entries) != n:
        gave = errors._count(len(entries), "partial derivative")
        raise ValueError(
            f"{label}: the derivative function gave {gave} for {errors._count(n, 'argument')}; "
            f"{expected}"
        )
    partials = []
    for p in entries:
        try:
            partials.append(float(p))
        except (TypeError, ValueError):
            raise TypeError(
                f"{label}: the derivative function returned {p!r} among its partial "
                f"derivatives, which must be real numbers; {expected}"
            ) from None
    return partials


__all__ = ["primitive"]
