"""softmax: derivatives that keep their digits where an output saturates, storage linear in
the number of outputs, and groups whose segments the tape reuses (pyad.compile after that).

The exact derivatives come from mpmath at 200 bits: ``d y_i / d x_j = y_i (delta_ij - y_j)``
and ``d2 y_i / dx_j dx_k = y_i (delta_ik - y_k)(delta_ij - y_j) - y_i y_j (delta_jk - y_k)``.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np
import pytest

import pyad
import pyad.reference as R
from pyad._native import CHUNK_RECORDS

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


# -- softmax groups across segments that the tape reuses -----------------------------------------

C = CHUNK_RECORDS


def _outputs_left(n: int, before_end: int, keep: tuple[int, ...]) -> int:
    """How many outputs of _grouped's softmax the tape holds after the churn: those in the
    segments of the kept outputs and of output 0 (which each output keeps)."""
    first = 2 * C - before_end
    kept = {(first + k) // C for k in (0, *keep)}
    return sum((first + j) // C in kept for j in range(n))


def _grouped(n: int, before_end: int, keep: tuple[int, ...], churn: int = 6) -> Any:
    """A function that starts a softmax of n outputs ``before_end`` records before the end of
    the tape's second segment (so that it runs into the next ones), keeps only the outputs
    ``keep``, records and drops ``churn`` segments of temporaries (the tape collects and
    reuses the segments nothing keeps), and returns a weighted sum of the kept outputs. It
    checks that the churn left the tape holding the outputs it should (_outputs_left)."""

    def fn(v: list[pyad.Var]) -> Any:
        t = pyad.Tape.current()
        # operands: the inputs (repeated), scaled copies and constants, made before the fill
        items: list[Any] = [v[0], v[1] * 0.5, 0.75, v[2], v[0] - v[1]]
        items = [items[j % len(items)] for j in range(n)]
        while len(t) < 2 * C - before_end:
            pyad.Var(0.0)  # dies at once; the segment stays, as the current one
        outs = pyad.softmax(items)
        kept = [outs[k] for k in keep]
        del outs
        for _ in range(churn):
            junk = [pyad.Var(1.0) for _ in range(C)]
            del junk
            len(t)  # releases the dead segments' pins
        left = t.summary().records_per_op["softmax"]
        assert left == _outputs_left(n, before_end, keep), f"{left} softmax records left"
        return pyad.sum([o * (1.0 + k) for k, o in enumerate(kept)])

    return fn


GROUP_CASES = [
    (4, 2, (3,)),  # the case: output 0 in a segment nothing else keeps
    (4, 2, (0,)),  # output 0 kept, the segment of outputs 2 and 3 reused
    (4, 3, (1, 3)),
    (7, 1, (6, 2)),
    (7, 6, (5,)),
    (1, 1, (0,)),
    (C, 1, (C - 1,)),  # outputs 1 .. C - 1 in the next segment
    (C + 40, 20, (C + 30,)),  # three segments: the middle one held by nothing
    (C + 40, 20, (0, 5)),
    (2 * C + 3, 500, (700, 2 * C + 2)),
]


def _case_id(case: tuple[int, int, tuple[int, ...]]) -> str:
    n, before_end, keep = case
    return f"n{n}-at{before_end}-keep" + "_".join(map(str, keep))


@pytest.mark.parametrize(("n", "before_end", "keep"), GROUP_CASES, ids=map(_case_id, GROUP_CASES))
def test_compile_after_segments_of_a_softmax_were_reused(
    n: int, before_end: int, keep: tuple[int, ...]
) -> None:
    """pyad.compile of a function whose softmax's segments get reused while it runs: the replay
    is bit for bit the recording, at the traced point and at another one (a fresh recording
    there), and the recording is the formula's."""
    fn = _grouped(n, before_end, keep)
    x0, x1 = np.array([0.3, -1.2, 0.8]), np.array([-0.4, 0.9, 1.7])
    F = pyad.compile(fn, x0)
    assert F.info["entries"] > 0
    for x in (x0, x1):
        value, grad = pyad.value_and_grad(fn)(x)
        got_value, got_grad = F.value_and_grad(x)
        assert np.float64(got_value).tobytes() == np.float64(value).tobytes()
        assert got_grad.tobytes() == grad.tobytes()
        # against the formula, through numbers: y = softmax(items), out = sum_k w_k y_keep[k]
        a, b, c = x
        items = [a, b * 0.5, 0.75, c, a - b]
        vals = np.array([items[j % len(items)] for j in range(n)])
        ys = np.exp(vals - vals.max())
        ys /= ys.sum()
        w = np.zeros(n)
        for k, j in enumerate(keep):
            w[j] += 1.0 + k
        assert value == pytest.approx(float(w @ ys), rel=1e-13)
        dvals = ys * (w - w @ ys)  # d out / d vals
        d_items = np.zeros(5)
        for j in range(n):
            d_items[j % 5] += dvals[j]
        want = np.array([d_items[0] + d_items[4], 0.5 * d_items[1] - d_items[4], d_items[3]])
        np.testing.assert_allclose(grad, want, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    ("n", "before_end", "keep"), GROUP_CASES[:4], ids=map(_case_id, GROUP_CASES[:4])
)
def test_kept_outputs_of_a_reused_softmax_group(
    n: int, before_end: int, keep: tuple[int, ...]
) -> None:
    """On the tape itself: after the churn, the kept outputs' values, partials (read through
    the links to output 0) and the gradients are the reference's, bit for bit."""

    def kept_outputs(out: Any) -> list[Any]:
        # out = sum_k w_k * y_k: each product's only Var operand is a kept output
        return [prod.predecessors[0][1] for _, prod in out.predecessors]

    fn = _grouped(n, before_end, keep)
    with pyad.Tape():
        xs = [pyad.Var(v) for v in (0.3, -1.2, 0.8)]
        out = fn(xs)
        ys = kept_outputs(out)
        values = [y.v for y in ys]
        partials = [[m for m, _ in y.predecessors] for y in ys]
        out.backward()
        grads = [x.grad for x in xs]
    rs = [R.Var(v) for v in (0.3, -1.2, 0.8)]
    items: list[Any] = [rs[0], rs[1] * 0.5, 0.75, rs[2], rs[0] - rs[1]]
    routs = R.softmax([items[j % len(items)] for j in range(n)])
    rout = R.sum([routs[j] * (1.0 + k) for k, j in enumerate(keep)])
    rys = kept_outputs(rout)
    assert values == [y.v for y in rys]
    assert partials == [[m for m, _ in y.predecessors] for y in rys]
    rout.backward()
    assert grads == [x.grad for x in rs]


def test_softmax_storage_is_linear() -> None:
    """A softmax of n outputs holds O(n) bytes (it held n^2 partials), and is right when it
    spans several segments."""
    n = 3000
    with pyad.Tape() as t:
        xs = [pyad.Var(math.sin(i)) for i in range(n)]
        before = t.nbytes
        ys = pyad.softmax(xs)
        grown = t.nbytes - before
        w = [math.cos(i) for i in range(n)]
        pyad.dot(ys, w).backward()
        grads = np.array([x.grad for x in xs])
    assert grown < 200 * n, f"{grown} bytes for {n} outputs"
    v = np.sin(np.arange(n))
    y = np.exp(v - v.max())
    y /= y.sum()
    wa = np.cos(np.arange(n))
    np.testing.assert_allclose(grads, y * (wa - wa @ y), rtol=1e-11, atol=1e-18)


@pytest.mark.parametrize("n", [C - 3, C + 5, 2 * C + 7, 3 * C])
def test_a_softmax_over_several_segments_is_recorded_once(n: int) -> None:
    """A softmax that opens several segments records its n outputs once, each output pinned
    by the segment object of its own segment (the frontend once took such a push for one
    that raced another thread, and pushed it again, forever when it needed two segments)."""
    with pyad.Tape() as t:
        x = [pyad.Var(float(j % 5)) for j in range(7)]
        for _ in range(C - 2):
            pyad.Var(0.0)
        outs = pyad.softmax([x[j % 7] for j in range(n)])
        assert t.summary().records_per_op["softmax"] == n
        assert {o._s._c for o in outs} == {o._h >> pyad.tape.CHUNK_SHIFT for o in outs}
        assert all(o._s._c == o._h >> pyad.tape.CHUNK_SHIFT for o in outs)
        assert math.fsum(o.v for o in outs) == pytest.approx(1.0)
        del outs
        for _ in range(6):
            junk = [pyad.Var(1.0) for _ in range(C)]
            del junk
            len(t)
        assert "softmax" not in t.summary().records_per_op  # their segments were reused
