"""The functional layer: numpy in, numpy out.

``fn`` takes a list of Vars and returns a Var (for ``jacobian``, ``jvp`` and ``vjp``: a Var or
a sequence of Vars). Each call records ``fn`` on a fresh tape and sweeps it in C; inputs are
1-D float64 arrays (anything ``numpy.asarray`` turns into one), and results are new float64
arrays, read from the tape in one call each.

    >>> import numpy as np, pyad
    >>> f = lambda v: pyad.log(v[0]) + v[0] * v[1] - pyad.sin(v[1])
    >>> pyad.grad(f)(np.array([2.0, 5.0]))
    array([5.5       , 1.71633781])

``value_and_grad(fn)`` fits ``scipy.optimize.minimize(..., jac=True)`` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Union

import numpy as np
import numpy.typing as npt

from pyad import _native, errors
from pyad._program import as_points
from pyad.compiled import compile
from pyad.errors import _count
from pyad.tape import Tape
from pyad.var import Var

FloatArray = npt.NDArray[np.float64]
ScalarFunction = Callable[[list[Var]], Var]
VectorFunction = Callable[[list[Var]], Union[Var, float, Sequence[Union[Var, float]]]]


def _vector(x: npt.ArrayLike, name: str = "x") -> FloatArray:
    """x as a C-contiguous 1-D float64 array, with pyad.compile's checks and messages."""
    if np.ndim(x) != 1:
        raise ValueError(f"{name} must be a 1-D array of numbers, got shape {np.shape(x)}")
    row: FloatArray = as_points(x, None, name)[0]
    return row


class _Recording:
    """``fn`` recorded at ``x`` on a fresh tape: the input Vars, their handles and outputs."""

    def __init__(self, fn: Callable[[list[Var]], Any], x: FloatArray) -> None:
        self.tape = Tape()
        with self.tape:
            self.inputs = [Var(v) for v in x.tolist()]
            self.handles = _native.handle_array([v._h for v in self.inputs])
            self.output = fn(self.inputs)

    def outputs(self) -> list[Union[Var, float]]:
        out = self.output
        if isinstance(out, Var) or not isinstance(out, Sequence):
            return [_scalar_output(out)]
        return [_scalar_output(y) for y in out]

    def gradient(self, y: Union[Var, float], upstream: float = 1.0) -> FloatArray:
        """d(y)/d(inputs) * upstream, as a new array (zeros when y is a constant)."""
        n = len(self.inputs)
        out = np.zeros(n)
        if not isinstance(y, Var):
            return out
        if y.tape is not self.tape:
            raise errors.ForeignVarError(
                "fn returned a Var recorded outside it (not computed from its input), so it "
                "has no derivative with respect to the input; return a Var computed from fn's "
                "argument"
            )
        _native.set_grads(self.tape._p, self.handles, 0.0)
        y.backward(upstream)
        _native.get_grads(self.tape._p, self.handles, out)
        return out


def _scalar_output(y: object) -> Union[Var, float]:
    if isinstance(y, Var):
        return y
    try:
        return float(y)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"fn must return Vars or numbers, got {type(y).__name__}") from None


def _differentiable(y: Union[Var, float]) -> Var:
    """The one output of a scalar function, which must be a Var: a plain number there is
    almost always a Var turned into a number by mistake, and its gradient would be zeros."""
    if isinstance(y, Var):
        return y
    raise TypeError(
        f"fn returned a plain number ({y!r}), not a Var computed from its input, so there is "
        "no gradient to take. A Var turned into a number (x.v) carries no derivative: use "
        "pyad's functions on Vars. For a function constant on purpose, return a Var such as "
        "0.0 * v[0] + c"
    )


def value_and_grad(fn: ScalarFunction) -> Callable[[npt.ArrayLike], tuple[float, FloatArray]]:
    """``x -> (fn(x), gradient)``: one recording and one reverse sweep."""

    def evaluate(x: npt.ArrayLike) -> tuple[float, FloatArray]:
        rec = _Recording(fn, _vector(x))
        outs = rec.outputs()
        if len(outs) != 1:
            raise ValueError(f"fn must return one Var, got {len(outs)} outputs (use jacobian)")
        y = _differentiable(outs[0])
        return y.v, rec.gradient(y)

    return evaluate


def grad(fn: ScalarFunction) -> Callable[[npt.ArrayLike], FloatArray]:
    """``x -> gradient of fn at x`` (a 1-D float64 array)."""
    both = value_and_grad(fn)

    def gradient(x: npt.ArrayLike) -> FloatArray:
        return both(x)[1]

    return gradient


def jacobian(fn: VectorFunction) -> Callable[[npt.ArrayLike], FloatArray]:
    """``x -> J`` of shape (m, n): row i is the gradient of output i (one sweep per output)."""

    def evaluate(x: npt.ArrayLike) -> FloatArray:
        rec = _Recording(fn, _vector(x))
        outs = rec.outputs()
        jac = np.empty((len(outs), len(rec.inputs)))
        for i, y in enumerate(outs):
            jac[i] = rec.gradient(y)
        return jac

    return evaluate


def vjp(fn: VectorFunction) -> Callable[[npt.ArrayLike, npt.ArrayLike], FloatArray]:
    """``(x, v) -> v^T J``: one sweep per output, each started with its cotangent ``v[i]``."""

    def evaluate(x: npt.ArrayLike, v: npt.ArrayLike) -> FloatArray:
        rec = _Recording(fn, _vector(x))
        outs = rec.outputs()
        cot = _vector(v, "v")
        if len(cot) != len(outs):
            raise ValueError(f"v has {len(cot)} entries for {_count(len(outs), 'output')}")
        total = np.zeros(len(rec.inputs))
        for y, c in zip(outs, cot.tolist()):
            total += rec.gradient(y, c)
        return total

    return evaluate


def jvp(fn: VectorFunction) -> Callable[[npt.ArrayLike, npt.ArrayLike], FloatArray]:
    """``(x, v) -> J v`` (shape (m,)), from the rows of the Jacobian: reverse mode pays one
    sweep per output, so this suits functions with few outputs."""
    jac = jacobian(fn)

    def evaluate(x: npt.ArrayLike, v: npt.ArrayLike) -> FloatArray:
        xv = _vector(x)
        tangent = _vector(v, "v")
        if len(tangent) != len(xv):
            raise ValueError(f"v has {len(tangent)} entries for {_count(len(xv), 'input')}")
        result: FloatArray = jac(xv) @ tangent
        return result

    return evaluate


def hvp(fn: ScalarFunction) -> Callable[[npt.ArrayLike, npt.ArrayLike], FloatArray]:
    """``(x, v) -> H(x) @ v``, the Hessian of fn times v, by forward-over-reverse on a
    recording of fn at x (see :func:`pyad.compile` to reuse the recording)."""

    def evaluate(x: npt.ArrayLike, v: npt.ArrayLike) -> FloatArray:
        return compile(fn, _vector(x)).hvp(x, _vector(v, "v"))

    return evaluate


def hessian(fn: ScalarFunction) -> Callable[[npt.ArrayLike], FloatArray]:
    """``x -> H(x)``, the (n, n) Hessian of fn, from Hessian-vector products with the unit
    vectors (several directions per pass) on one recording of fn at x."""

    def evaluate(x: npt.ArrayLike) -> FloatArray:
        xv = _vector(x)
        return compile(fn, xv).hessian(xv)

    return evaluate


__all__ = ["grad", "hessian", "hvp", "jacobian", "jvp", "value_and_grad", "vjp"]
