"""The functional layer: numpy in, numpy out.

``fn``'s differentiated arguments reach it as pyad values of the same shape: a number as a
:class:`~pyad.Var`, an array as a :class:`~pyad.Array` (indexable like the list of Vars it
used to be, and usable with numpy: ``v @ v``, ``np.exp(v)``). Each call records ``fn`` on a
fresh tape and sweeps it in C; gradients come back as floats and float64 arrays of the
arguments' shapes, read from the tape in one call each.

    >>> import numpy as np, pyad
    >>> f = lambda v: pyad.log(v[0]) + v[0] * v[1] - pyad.sin(v[1])
    >>> pyad.grad(f)(np.array([2.0, 5.0]))
    array([5.5       , 1.71633781])
    >>> pyad.grad(lambda x: x * x)(3.0)
    6.0

``grad`` and ``value_and_grad`` take ``argnums`` (which arguments to differentiate) and
``has_aux`` (fn returns ``(loss, aux)``) as autograd and JAX do; the other functions take one
1-D argument. ``value_and_grad(fn)`` fits ``scipy.optimize.minimize(..., jac=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Union

import numpy as np
import numpy.typing as npt

from pyad import _native, errors
from pyad._program import as_points
from pyad.arrays import Array, array
from pyad.compiled import compile
from pyad.errors import _count
from pyad.tape import Tape
from pyad.var import Var

FloatArray = npt.NDArray[np.float64]
ScalarFunction = Callable[..., Any]
VectorFunction = Callable[..., Any]
ArgNums = Union[int, Sequence[int]]


def _vector(x: npt.ArrayLike, name: str = "x") -> FloatArray:
    """x as a C-contiguous 1-D float64 array, with pyad.compile's checks and messages."""
    if np.ndim(x) != 1:
        raise ValueError(f"{name} must be a 1-D array of numbers, got shape {np.shape(x)}")
    row: FloatArray = as_points(x, None, name)[0]
    return row


def _real(x: object, name: str) -> FloatArray:
    """A differentiated argument as a float64 array of its own shape (0-d for a number)."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    return np.array(a, dtype=np.float64)  # a copy, C-contiguous, 0-d kept 0-d


class _Recording:
    """``fn`` recorded on a fresh tape, its arguments ``argnums`` made inputs: a Var for a
    number, an Array for an array."""

    def __init__(self, fn: Callable[..., Any], args: Sequence[Any], argnums: Sequence[int]):
        self.tape = Tape()
        values = [_real(args[i], f"argument {i}") for i in argnums]
        call = list(args)
        with self.tape:
            self.inputs: list[Union[Var, Array]] = []
            for i, x in zip(argnums, values):
                node = Var(float(x)) if x.ndim == 0 else array(x, tape=self.tape)
                self.inputs.append(node)
                call[i] = node
            flat = [np.asarray(v._h, dtype=np.int64).reshape(-1) for v in self.inputs]
            self.handles = _native.ffi.from_buffer("int64_t[]", np.concatenate(flat))
            self.output = fn(*call)

    def outputs(self, out: object = None) -> list[Union[Var, float]]:
        out = self.output if out is None else out
        if isinstance(out, Array):
            return [_scalar_output(y) for y in out.ravel()]
        if isinstance(out, Var) or not isinstance(out, Sequence):
            return [_scalar_output(out)]
        return [_scalar_output(y) for y in out]

    def gradient(self, y: Union[Var, float], upstream: float = 1.0) -> FloatArray:
        """d(y)/d(inputs) * upstream, all inputs flat, as a new array (zeros when y is a
        constant)."""
        out = np.zeros(len(self.handles))
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

    def split(self, flat: FloatArray) -> list[Union[float, FloatArray]]:
        """A flat gradient cut into one per input, each of its argument's shape."""
        parts: list[Union[float, FloatArray]] = []
        at = 0
        for node in self.inputs:
            if isinstance(node, Var):
                parts.append(float(flat[at]))
                at += 1
            else:
                parts.append(flat[at : at + node.size].reshape(node.shape))
                at += node.size
        return parts


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


def _argnums(argnums: ArgNums, nargs: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums or any(not isinstance(i, int) or not -nargs <= i < nargs for i in nums):
        raise ValueError(f"argnums {argnums!r} does not name arguments of a call with {nargs}")
    normal = tuple(i % nargs for i in nums)
    if len(set(normal)) != len(normal):
        raise ValueError(f"argnums {argnums!r} names an argument twice")
    return normal


def value_and_grad(
    fn: ScalarFunction, argnums: ArgNums = 0, has_aux: bool = False
) -> Callable[..., tuple[Any, Any]]:
    """``(*args) -> (fn(*args), gradient)``: one recording and one reverse sweep.

    The gradient is with respect to argument ``argnums`` (a float for a number, an array of
    its shape for an array), or a tuple of them for a tuple of argnums. With ``has_aux``, fn
    returns ``(loss, aux)`` and the first result is ``(loss, aux)``."""

    def evaluate(*args: Any) -> tuple[Any, Any]:
        nums = _argnums(argnums, len(args))
        rec = _Recording(fn, args, nums)
        out, aux = rec.output, None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("fn with has_aux=True must return a pair (loss, aux)")
            out, aux = out
        outs = rec.outputs(out)
        if len(outs) != 1:
            raise ValueError(f"fn must return one Var, got {len(outs)} outputs (use jacobian)")
        y = _differentiable(outs[0])
        parts = rec.split(rec.gradient(y))
        g = parts[0] if isinstance(argnums, int) else tuple(parts)
        return ((y.v, aux) if has_aux else y.v), g

    return evaluate


def grad(fn: ScalarFunction, argnums: ArgNums = 0, has_aux: bool = False) -> Callable[..., Any]:
    """``(*args) -> gradient of fn`` with respect to argument ``argnums`` (see
    :func:`value_and_grad`); with ``has_aux``, ``(gradient, aux)``."""
    both = value_and_grad(fn, argnums, has_aux)

    def gradient(*args: Any) -> Any:
        value, g = both(*args)
        return (g, value[1]) if has_aux else g

    return gradient


def jacobian(fn: VectorFunction) -> Callable[[npt.ArrayLike], FloatArray]:
    """``x -> J`` of shape (m, n): row i is the gradient of output i (one sweep per output)."""

    def evaluate(x: npt.ArrayLike) -> FloatArray:
        rec = _Recording(fn, (_vector(x),), (0,))
        outs = rec.outputs()
        jac = np.empty((len(outs), len(rec.handles)))
        for i, y in enumerate(outs):
            jac[i] = rec.gradient(y)
        return jac

    return evaluate


def vjp(fn: VectorFunction) -> Callable[[npt.ArrayLike, npt.ArrayLike], FloatArray]:
    """``(x, v) -> v^T J``: one sweep per output, each started with its cotangent ``v[i]``."""

    def evaluate(x: npt.ArrayLike, v: npt.ArrayLike) -> FloatArray:
        rec = _Recording(fn, (_vector(x),), (0,))
        outs = rec.outputs()
        cot = _vector(v, "v")
        if len(cot) != len(outs):
            raise ValueError(f"v has {len(cot)} entries for {_count(len(outs), 'output')}")
        total = np.zeros(len(rec.handles))
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
