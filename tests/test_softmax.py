"""softmax: derivatives that keep their digits where an output saturates.

The exact derivatives come from mpmath at 200 bits: ``d y_i / d x_j = y_i (delta_ij - y_j)``
and ``d2 y_i / dx_j dx_k = y_i (delta_ik - y_k)(delta_ij - y_j) - y_i y_j (delta_jk - y_k)``.
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest

import pyad

#: points where one output is 1 - tiny: 1.0 - y_top would keep only y_top's rounding error
SATURATED = [
    [20.0, 0.0],
    [36.0, 0.0],
    [40.0, 0.0],
    [60.0, 0.0],
    [45.0, 0.5, -1.0],
    [-3.0, 50.0, 1.0, 2.0],
    [0.3, -1.2, 2.5, 0.5],  # and an ordinary one
]


def exact_derivatives(x: list[float]) -> tuple[list[Any], list[list[Any]], list[Any]]:
    """Outputs, Jacobian rows and Hessians (one matrix per output) of softmax at x."""
    with mpmath.workprec(200):
        es = [mpmath.exp(mpmath.mpf(v)) for v in x]
        s = mpmath.fsum(es)
        ys = [e / s for e in es]
        n = len(x)

        def d(a: int, b: int) -> int:
            return 1 if a == b else 0

        jac = [[ys[i] * (d(i, j) - ys[j]) for j in range(n)] for i in range(n)]

        def second(i: int, j: int, k: int) -> Any:
            return ys[i] * ((d(i, k) - ys[k]) * (d(i, j) - ys[j]) - ys[j] * (d(j, k) - ys[k]))

        hess = [[[second(i, j, k) for k in range(n)] for j in range(n)] for i in range(n)]
        return ys, jac, hess


def assert_relative(got: np.ndarray, want: list[Any], rel: float, what: str) -> None:
    for j, (g, w) in enumerate(zip(np.ravel(got), np.ravel(np.array(want, dtype=object)))):
        err = abs(mpmath.mpf(float(g)) - w)
        assert err <= rel * abs(w), f"{what}[{j}]: got {float(g)!r}, exact {mpmath.nstr(w, 17)}"


@pytest.mark.parametrize("x", SATURATED, ids=str)
def test_saturated_softmax_derivatives_keep_their_digits(x: list[float]) -> None:
    """Partials, gradients (recorded and replayed) and Hessians of every output agree with the
    exact ones to a few units in the last place, also for the output that saturates."""
    _, jac, hess = exact_derivatives(x)
    xa = np.array(x)
    for i in range(len(x)):

        def fn(v: list[pyad.Var], i: int = i) -> pyad.Var:
            out = pyad.softmax(v)[i]
            assert isinstance(out, pyad.Var)
            return out

        with pyad.Tape():
            vs = [pyad.Var(v) for v in x]
            partials = [m for m, _ in fn(vs).predecessors]
        assert_relative(np.array(partials), jac[i], 1e-14, f"partials of output {i}")
        grad = pyad.grad(fn)(xa)
        assert_relative(grad, jac[i], 1e-14, f"gradient of output {i}")
        F = pyad.compile(fn, xa)
        _, replayed = F.value_and_grad(xa)
        assert replayed.tobytes() == grad.tobytes()
        assert_relative(F.hessian(xa), hess[i], 1e-12, f"Hessian of output {i}")
