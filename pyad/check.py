"""Gradient checking: pyad's reverse sweep against central finite differences.

    >>> import pyad
    >>> result = pyad.check_grad(lambda v: pyad.log(v[0]) + v[0] * v[1], [2.0, 5.0])
    >>> result.ok
    True

``fn`` follows the convention of pyad's functional layer: it takes a list of Vars and returns
a Var. It is called once on a fresh tape for the analytic gradient, then twice per coordinate
(on a throwaway tape, with fresh input Vars) for the central differences
``(f(x + h_i e_i) - f(x - h_i e_i)) / (2 h_i)`` with ``h_i = eps * max(1, |x_i|)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np
import numpy.typing as npt

from pyad.arrays import array as pyad_array
from pyad.tape import Tape
from pyad.var import Var

FloatArray = npt.NDArray[np.float64]
Function = Callable[[Any], Union[Var, float]]

#: how many coordinates a report lists (all failing ones count towards the summary line)
WORST_SHOWN = 5


@dataclass(frozen=True, eq=False)
class GradCheck:
    """The outcome of :func:`check_grad`: both gradients, their errors and a verdict.

    Coordinate ``i`` passes when ``|grad[i] - numeric[i]| <= atol + rtol * max(|grad[i]|,
    |numeric[i]|)``; NaN passes only where both gradients are NaN, an infinity only where both
    are the same infinity. ``ok`` is True when every coordinate passes. The arrays are
    read-only.
    """

    ok: bool
    """True when every coordinate is within tolerance."""
    grad: FloatArray
    """pyad's gradient (reverse sweep)."""
    numeric: FloatArray
    """The central finite-difference gradient."""
    abs_err: FloatArray
    """``|grad - numeric|`` per coordinate (0 where both agree on a NaN or an infinity)."""
    rel_err: FloatArray
    """``abs_err / max(|grad|, |numeric|)`` per coordinate (0 where both are 0)."""
    worst: list[tuple[int, float, float, float]]
    """Up to :data:`WORST_SHOWN` coordinates as ``(index, analytic, numeric, rel_err)``, the
    worst first (ranked by error over tolerance, so failures come before passes)."""
    x: FloatArray
    """The point the gradient was checked at."""
    value: float
    """``fn(x)``."""
    eps: float
    """Relative finite-difference step."""
    rtol: float
    """Relative tolerance."""
    atol: float
    """Absolute tolerance."""
    failed: int
    """How many coordinates are out of tolerance."""

    def __str__(self) -> str:
        n = self.grad.size
        verdict = "PASS" if self.ok else "FAIL"
        if self.ok:
            summary = f"all {n} coordinate(s) within tolerance"
        else:
            summary = f"{self.failed} of {n} coordinate(s) out of tolerance"
        lines = [
            f"check_grad: {verdict}: {summary}",
            f"  tolerances: rtol={self.rtol:g}, atol={self.atol:g}; "
            f"finite-difference step eps={self.eps:g} (relative)",
            f"  f(x) = {self.value:.12g}",
        ]
        if not self.worst:
            return "\n".join(lines)
        title = "worst coordinates" if n > len(self.worst) else "coordinates"
        lines.append(f"  {title} (analytic = pyad's reverse sweep, numeric = central FD):")
        header = ("index", "x", "analytic", "numeric", "abs err", "rel err", "")
        rows = [header]
        for i, analytic, numeric, rel in self.worst:
            bad = not _coordinate_ok(analytic, numeric, self.rtol, self.atol)
            rows.append(
                (
                    str(i),
                    f"{self.x[i]:.6g}",
                    f"{analytic:.10g}",
                    f"{numeric:.10g}",
                    f"{self.abs_err[i]:.3g}",
                    f"{rel:.3g}",
                    "FAIL" if bad else "ok",
                )
            )
        widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
        for row in rows:
            cells = [cell.rjust(w) for cell, w in zip(row, widths)]
            lines.append("    " + "  ".join(cells).rstrip())
        more = self.failed - sum(
            not _coordinate_ok(a, b, self.rtol, self.atol) for _, a, b, _ in self.worst
        )
        if more > 0:
            lines.append(f"    ... and {more} more failing coordinate(s) not shown")
        return "\n".join(lines)


def _coordinate_ok(analytic: float, numeric: float, rtol: float, atol: float) -> bool:
    """One coordinate's verdict (see :class:`GradCheck`)."""
    if math.isnan(analytic) or math.isnan(numeric):
        return math.isnan(analytic) and math.isnan(numeric)
    if math.isinf(analytic) or math.isinf(numeric):
        return analytic == numeric
    return abs(analytic - numeric) <= atol + rtol * max(abs(analytic), abs(numeric))


def _point(x: Sequence[float] | npt.ArrayLike) -> FloatArray:
    """``x`` as a fresh 1-D float64 array; ValueError for anything else."""
    point = np.array(x, dtype=np.float64)
    if point.ndim != 1:
        raise ValueError(f"check_grad() takes a 1-D point, got an array of shape {point.shape}")
    return point


def _value(out: object, tape: Tape) -> float:
    """The value of what ``fn`` returned (a Var of ``tape`` or a plain number)."""
    if isinstance(out, Var):
        if out.tape is not tape:
            raise ValueError(
                "fn returned a Var recorded on another tape: build the result from the Vars "
                "it is given (use plain numbers, not Vars made outside fn, for constants)"
            )
        return out.v
    if isinstance(out, numbers.Real):
        return float(out)
    raise TypeError(f"fn must return a Var (or a number), got {type(out).__name__}")


def _evaluate(fn: Function, point: FloatArray, tape: Tape) -> float:
    """``fn`` at ``point`` on ``tape`` (active, and reset afterwards)."""
    try:
        return _value(fn(pyad_array(point, tape=tape)), tape)
    finally:
        tape.reset()


def check_grad(
    fn: Function,
    x: Sequence[float] | npt.ArrayLike,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> GradCheck:
    """Compare pyad's gradient of ``fn`` at ``x`` with central finite differences.

    Args:
        fn: takes a :class:`pyad.Array` of ``x``'s shape (indexable like a list of Vars, one
            per coordinate, and usable with numpy) and returns a Var. It must
            build its result from those Vars only: Vars made outside ``fn`` live on another
            tape. It is called ``1 + 2 * len(x)`` times.
        x: the point, a sequence or 1-D array of floats.
        eps: relative step: coordinate ``i`` moves by ``h_i = eps * max(1, |x_i|)``.
        rtol: relative tolerance.
        atol: absolute tolerance.

    Returns:
        A :class:`GradCheck`; ``str()`` of it is a readable report and ``ok`` the verdict.

    Raises:
        ValueError: ``x`` is not 1-D, a step or tolerance is negative (or the step is 0), or
            ``fn`` returned a Var of another tape.
        TypeError: ``fn`` returned something other than a Var or a number.
        Whatever ``fn`` raises, at ``x`` or at a shifted point (e.g. a step that crosses the
        edge of a function's domain raises ValueError).
    """
    if not eps > 0.0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    if not (rtol >= 0.0 and atol >= 0.0):
        raise ValueError(f"tolerances must be non-negative, got rtol={rtol!r}, atol={atol!r}")
    point = _point(x)
    n = point.size

    with Tape() as tape:
        xs = pyad_array(point, tape=tape)
        out = fn(xs)
        value = _value(out, tape)
        if isinstance(out, Var):
            out.backward()
            grad = xs.grad
        else:  # a constant function of x
            grad = np.zeros(n)
        del xs, out
        tape.reset()

        numeric = np.empty(n)
        for i in range(n):
            h = eps * max(1.0, abs(float(point[i])))
            up, down = point.copy(), point.copy()
            up[i] += h
            down[i] -= h
            # the step actually taken, rounding included
            numeric[i] = (_evaluate(fn, up, tape) - _evaluate(fn, down, tape)) / (up[i] - down[i])

    verdicts = [_coordinate_ok(a, b, rtol, atol) for a, b in zip(grad.tolist(), numeric.tolist())]
    with np.errstate(invalid="ignore", divide="ignore"):
        both_special = ~np.isfinite(grad) & (
            (np.isnan(grad) & np.isnan(numeric)) | (grad == numeric)
        )
        abs_err = np.where(both_special, 0.0, np.abs(grad - numeric))
        scale = np.maximum(np.abs(grad), np.abs(numeric))
        rel_err = np.where(abs_err == 0.0, 0.0, abs_err / scale)
        # rank by error over tolerance; mismatched NaNs and infinities first of all
        badness = np.where(abs_err == 0.0, 0.0, abs_err / (atol + rtol * scale))
        badness = np.where(np.isnan(badness), np.inf, badness)
    order = sorted(range(n), key=lambda i: (-float(badness[i]), i))[:WORST_SHOWN]
    worst = [(i, float(grad[i]), float(numeric[i]), float(rel_err[i])) for i in order]

    for array in (grad, numeric, abs_err, rel_err, point):
        array.setflags(write=False)
    return GradCheck(
        ok=all(verdicts),
        grad=grad,
        numeric=numeric,
        abs_err=abs_err,
        rel_err=rel_err,
        worst=worst,
        x=point,
        value=value,
        eps=eps,
        rtol=rtol,
        atol=atol,
        failed=verdicts.count(False),
    )


def assert_grad(
    fn: Function,
    x: Sequence[float] | npt.ArrayLike,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> GradCheck:
    """:func:`check_grad`, raising AssertionError with its report when a coordinate fails.

    Returns the :class:`GradCheck` when every coordinate passes (for further inspection).
    """
    result = check_grad(fn, x, eps=eps, rtol=rtol, atol=atol)
    if not result.ok:
        raise AssertionError(str(result))
    return result


__all__ = ["GradCheck", "assert_grad", "check_grad"]
