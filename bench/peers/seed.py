"""The seed engine: the classic pure-Python ``Var`` of the tutorial pyad started from.

Our own re-creation, kept faithful on purpose, because it is the baseline every claim of pyad
is measured against: each operator makes a new ``Var`` and appends ``(multiplier, input)``
pairs to its ``children`` (constants become ``Var`` nodes too), and ``grad(gv)`` pushes the
adjoint down **recursively along every path**: no topological order, no memo of shared
nodes. So it pays one Python call per path (exponential on graphs whose nodes fan out and
fan in again), and a graph deeper than the interpreter's recursion limit (W4, and W1/W2 past
a few hundred terms, whose accumulator is a chain) raises RecursionError. The bench runs it
at the interpreter's default limit, as its users do, and reports that failure.

W5 needs softplus and softmax, which the seed does not have: it is not in WORKLOADS.
"""

from __future__ import annotations

import math
import sys
from typing import Union

from bench import workloads as wl

NAME = "seed (recursive Var)"
WORKLOADS = ("W1", "W2", "W3", "W4")

Number = Union[int, float]


class Var:
    """A value, the list of (local derivative, input) pairs it was made from, and its
    accumulated adjoint ``gv``."""

    __slots__ = ("children", "gv", "v")

    def __init__(self, v: float) -> None:
        self.v = v
        self.children: list[tuple[float, Var]] = []
        self.gv = 0.0

    def grad(self, gv: float) -> None:
        """Add ``gv`` here and push ``gv * multiplier`` to every input, recursively."""
        self.gv += gv
        for multiplier, var in self.children:
            var.grad(gv * multiplier)

    def __add__(self, other: Var | Number) -> Var:
        other = ensure_var(other)
        out = Var(self.v + other.v)
        out.children.append((1.0, self))
        out.children.append((1.0, other))
        return out

    def __radd__(self, other: Number) -> Var:
        return ensure_var(other) + self

    def __sub__(self, other: Var | Number) -> Var:
        other = ensure_var(other)
        out = Var(self.v - other.v)
        out.children.append((1.0, self))
        out.children.append((-1.0, other))
        return out

    def __rsub__(self, other: Number) -> Var:
        return ensure_var(other) - self

    def __mul__(self, other: Var | Number) -> Var:
        other = ensure_var(other)
        out = Var(self.v * other.v)
        out.children.append((other.v, self))
        out.children.append((self.v, other))
        return out

    def __rmul__(self, other: Number) -> Var:
        return ensure_var(other) * self

    def __truediv__(self, other: Var | Number) -> Var:
        other = ensure_var(other)
        out = Var(self.v / other.v)
        out.children.append((1.0 / other.v, self))
        out.children.append((-self.v / (other.v * other.v), other))
        return out

    def __rtruediv__(self, other: Number) -> Var:
        return ensure_var(other) / self

    def __neg__(self) -> Var:
        out = Var(-self.v)
        out.children.append((-1.0, self))
        return out


def ensure_var(v: Var | Number) -> Var:
    """Numbers become constant nodes, as in the tutorial."""
    return v if isinstance(v, Var) else Var(float(v))


def exp(x: Var | Number) -> Var:
    x = ensure_var(x)
    y = math.exp(x.v)
    out = Var(y)
    out.children.append((y, x))
    return out


def log(x: Var | Number) -> Var:
    x = ensure_var(x)
    out = Var(math.log(x.v))
    out.children.append((1.0 / x.v, x))
    return out


def sin(x: Var | Number) -> Var:
    x = ensure_var(x)
    out = Var(math.sin(x.v))
    out.children.append((math.cos(x.v), x))
    return out


def tanh(x: Var) -> Var:
    """The seed has no tanh: WORKLOADS.md's composition (exp(2v)-1)/(exp(2v)+1)."""
    e = exp(2 * x)
    return (e - 1) / (e + 1)


class _Engine:
    """The seed as a workloads.py engine (``Var``, ``log``, ``sin``, ``exp``, ``tanh``)."""

    Var = Var
    log = staticmethod(log)
    sin = staticmethod(sin)
    exp = staticmethod(exp)
    tanh = staticmethod(tanh)
    dot = None  # W3 is written with operators, as in the tutorial


ENGINE = _Engine()

#: Frames kept free below the recursion limit for the caller's own stack and a term's subtree:
#: W1/W2's accumulator is a chain one frame per term deep.
HEADROOM = 200


def available() -> tuple[bool, str]:
    return True, f"pure Python {sys.version.split()[0]}"


def max_size(workload: str, size: int) -> int:
    """W1/W2 recurse one frame per term: past the recursion limit (1000 by default) they fail,
    so they run at the largest n that fits; W4 stays at full depth, so that its failure is
    what the table reports."""
    if workload in ("W1", "W2"):
        return min(size, max(50, sys.getrecursionlimit() - HEADROOM))
    return size


def one_shot(workload: str, size: int) -> tuple[float, list[float]]:
    w = wl.WORKLOADS[workload]
    leaves = w.inputs(ENGINE, size)
    loss = ensure_var(w.loss(ENGINE, leaves, size))
    loss.grad(1.0)
    return loss.v, [x.gv for x in leaves]
