"""micrograd's ``nn`` module (``Module``, ``Neuron``, ``Layer``, ``MLP``) on pyad's tape.

Constructors, parameter order and initialisation are micrograd's: each weight is
``Value(random.uniform(-1, 1))`` drawn in the same order, each bias ``Value(0)``, so a model
built after ``random.seed(s)`` has exactly the weights micrograd would give it. A neuron's
weighted sum ``b + w0*x0 + w1*x1 + ...`` is recorded as one dot-product record instead of
``2 * nin`` records, and added up in micrograd's order, so its value is micrograd's to the
last bit.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any, Union

from pyad.compat.micrograd.engine import Value
from pyad.functions import dot

__all__ = ["MLP", "Layer", "Module", "Neuron"]

Input = Union[Value, float, int]


class Module:
    """Base class: ``parameters()`` lists the Values training updates; ``zero_grad()``
    sets their ``.grad`` to 0."""

    def zero_grad(self) -> None:
        """Set ``.grad`` of every parameter to 0 (before a new ``backward()``)."""
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list[Value]:
        """The trainable Values of this module (none for the base class)."""
        return []


class Neuron(Module):
    """``relu(b + sum(w_i * x_i))``, or without the relu when ``nonlin`` is False."""

    def __init__(self, nin: int, nonlin: bool = True) -> None:
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x: Iterable[Input]) -> Value:
        act = _weighted_sum(self.b, self.w, x)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Value]:
        """The weights, then the bias."""
        return [*self.w, self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons reading the same inputs; one output is returned as a Value, several
    as a list."""

    def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Iterable[Input]) -> Union[Value, list[Value]]:
        if not isinstance(x, list):
            x = list(x)
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        """The parameters of each neuron in turn."""
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A multi-layer perceptron: ``nin`` inputs, then a layer of each size in ``nouts``; every
    layer but the last has relu neurons."""

    def __init__(self, nin: int, nouts: list[int]) -> None:
        sz = [nin, *nouts]
        self.layers = [
            Layer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1) for i in range(len(nouts))
        ]

    def __call__(self, x: Iterable[Input]) -> Any:
        for layer in self.layers:
            x = layer(x)  # type: ignore[assignment]
        return x

    def parameters(self) -> list[Value]:
        """The parameters of each layer in turn."""
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"


def _weighted_sum(b: Value, w: Sequence[Value], x: Iterable[Input]) -> Value:
    """``b + w[0]*x[0] + w[1]*x[1] + ...`` (pairs as zip makes them) as one ``pyad.dot``
    record, added left to right from ``b`` as micrograd's ``sum(..., b)`` does: the same value
    to the last bit."""
    xs = x if type(x) is list else list(x)
    n = min(len(w), len(xs))  # zip stops at the shorter list
    act = dot(w[:n] if n < len(w) else w, xs[:n] if n < len(xs) else xs, start=b)
    return act  # type: ignore[return-value]
