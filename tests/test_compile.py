"""pyad.compile: fn recorded once on a private tape, then replayed in C on numpy buffers.

The oracle throughout is a fresh trace: wherever a fresh recording of ``fn`` at x succeeds, the
replay's value and gradient must be bit-for-bit the same (same formulas, same accumulation
order), for single points and for each row of a batch. Comparisons met while tracing are
guards: where one flips, F traces again (or, with ``strict=True``, raises GuardError), so a
replay never silently differs from a fresh trace. Second derivatives (hvp, hessian) are
checked against finite differences of pyad.grad and the analytic Hessian of Rosenbrock.
"""

from __future__ import annotations

import gc
import math
import random
import re
import threading
import tracemalloc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import pyad
from pyad import Var

Node = Union[Var, float]
Fn = Callable[[list[Var]], Any]
E = math.e


# -- functions under test --------------------------------------------------------------------


def seed(v: list[Var]) -> Var:
    return pyad.log(v[0]) + v[0] * v[1] - pyad.sin(v[1])


def rosenbrock(v: list[Var]) -> Any:
    total: Any = 0.0
    for a, b in zip(v[:-1], v[1:]):
        total = total + 100.0 * (b - a * a) * (b - a * a) + (1.0 - a) * (1.0 - a)
    return total


def rosenbrock_hessian(x: np.ndarray) -> np.ndarray:
    n = len(x)
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        h[i + 1, i + 1] += 200.0
        h[i, i + 1] = h[i + 1, i] = -400.0 * x[i]
    return h


def polar(v: list[Var]) -> list[Any]:
    r, theta = v
    return [r * pyad.cos(theta), r * pyad.sin(theta), 3.0]


def smooth3(v: list[Var]) -> Var:
    """Three inputs, transcendental ops, every input used more than once."""
    a, b, c = v
    return pyad.log(a) * pyad.tanh(b) + a * b * c + pyad.exp(c * 0.5) * pyad.sin(a) / b


def branchy(v: list[Var]) -> Var:
    if v[0] > 0:
        return v[0]
    return -v[0] * 3


def cubic_or_square(v: list[Var]) -> Var:
    if v[0] > 0:
        return v[0] ** 3 * v[1]
    return -2.0 * v[0] * v[0] * v[1]


# -- helpers ---------------------------------------------------------------------------------


def assert_identical(got: Any, want: Any, what: str) -> None:
    """Same shape and the same float64 bits (so 0.0 and -0.0 differ, NaN equals NaN)."""
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert g.shape == w.shape, f"{what}: shape {g.shape}, want {w.shape}"
    assert g.tobytes() == w.tobytes(), f"{what}: got {g!r}, want {w!r}"


def assert_float_array(a: Any, shape: tuple[int, ...]) -> None:
    assert isinstance(a, np.ndarray), type(a)
    assert a.dtype == np.float64 and a.flags.c_contiguous, (a.dtype, a.flags)
    assert a.shape == shape, (a.shape, shape)


def fresh_values(fn: Fn, x: Any) -> np.ndarray:
    """The outputs of a fresh trace of a vector function, as floats."""
    with pyad.Tape():
        out = fn([Var(float(v)) for v in np.asarray(x, dtype=np.float64)])
        return np.array([y.v if isinstance(y, Var) else float(y) for y in out])


def fresh_value_and_grad(fn: Fn, x: Any) -> tuple[float, np.ndarray]:
    """A fresh recording's value and gradient of a scalar fn, which (unlike
    pyad.value_and_grad) may return a plain number: compile keeps those, with zero gradient,
    for a function constant on one side of a guard (min(1.0, x))."""
    (value,) = fresh_values(lambda v: [fn(v)], x)
    return float(value), pyad.jacobian(fn)(x)[0]


def assert_matches_fresh(F: Any, fn: Fn, x: Any) -> None:
    """F, F.grad and F.value_and_grad at x are exactly a fresh trace's results."""
    want_value, want_grad = fresh_value_and_grad(fn, x)
    value = F(x)
    assert type(value) is float
    assert_identical(value, want_value, f"F({x})")
    assert_identical(F.grad(x), want_grad, f"F.grad({x})")
    value2, grad2 = F.value_and_grad(x)
    assert type(value2) is float
    assert_identical(value2, want_value, f"F.value_and_grad({x})[0]")
    assert_identical(grad2, want_grad, f"F.value_and_grad({x})[1]")


def assert_batch_matches_fresh(F: Any, fn: Fn, xs: np.ndarray) -> None:
    """Each row of a batched call is exactly the fresh trace at that row."""
    k, n = xs.shape
    values, grads = F.value_and_grad(xs)
    assert_float_array(values, (k,))
    assert_float_array(grads, (k, n))
    assert_identical(F(xs), values, "F(batch) vs F.value_and_grad(batch)")
    assert_identical(F.grad(xs), grads, "F.grad(batch) vs F.value_and_grad(batch)")
    for i, x in enumerate(xs):
        want_value, want_grad = fresh_value_and_grad(fn, x)
        assert_identical(values[i], want_value, f"row {i} value at {x}")
        assert_identical(grads[i], want_grad, f"row {i} grad at {x}")


def fd_hvp(fn: Fn, x: np.ndarray, v: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of pyad.grad along v."""
    g = pyad.grad(fn)
    return (g(x + h * v) - g(x - h * v)) / (2 * h)  # type: ignore[no-any-return]


def assert_close(got: np.ndarray, want: np.ndarray, rel: float) -> None:
    scale = max(1.0, float(np.max(np.abs(want))))
    assert np.allclose(got, want, rtol=rel, atol=rel * scale), f"{got!r} vs {want!r}"


def count_functions() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, pyad.Function))


# -- shapes, types and the exactness contract --------------------------------------------------


def test_scalar_function_shapes_and_attributes() -> None:
    x0 = np.array([2.0, 5.0])
    F = pyad.compile(seed, x0)
    assert isinstance(F, pyad.Function)
    assert (F.n_inputs, F.n_outputs, F.retraces, F.strict) == (2, 1, 0, False)
    assert type(F(x0)) is float
    assert_float_array(F.grad(x0), (2,))
    value, g = F.value_and_grad(x0)
    assert type(value) is float
    assert_float_array(g, (2,))
    assert_float_array(F.jacobian(x0), (1, 2))
    assert_float_array(F.hvp(x0, [1.0, 0.0]), (2,))
    assert_float_array(F.hessian(x0), (2, 2))
    xs = np.array([[2.0, 5.0], [1.0, 1.0], [3.0, -0.5]])
    assert_float_array(F(xs), (3,))
    assert_float_array(F.grad(xs), (3, 2))
    values, grads = F.value_and_grad(xs)
    assert_float_array(values, (3,))
    assert_float_array(grads, (3, 2))
    assert_float_array(F.jacobian(xs), (3, 1, 2))
    assert_float_array(F.hvp(xs, np.ones((3, 2))), (3, 2))


def test_vector_function_values_and_jacobian() -> None:
    x0 = np.array([2.0, 0.3])
    F = pyad.compile(polar, x0)
    assert (F.n_inputs, F.n_outputs) == (2, 3)
    for x in (x0, np.array([0.5, -2.0]), np.array([-1.5, 4.0])):
        out = F(x)
        assert_float_array(out, (3,))
        assert_identical(out, fresh_values(polar, x), f"F({x})")
        jac = F.jacobian(x)
        assert_float_array(jac, (3, 2))
        assert_identical(jac, pyad.jacobian(polar)(x), f"F.jacobian({x})")
    xs = np.array([[2.0, 0.3], [0.5, -2.0], [-1.5, 4.0], [0.0, 0.0]])
    outs, jacs = F(xs), F.jacobian(xs)
    assert_float_array(outs, (4, 3))
    assert_float_array(jacs, (4, 3, 2))
    for i, x in enumerate(xs):
        assert_identical(outs[i], F(x), f"row {i} of F(batch)")
        assert_identical(jacs[i], F.jacobian(x), f"row {i} of F.jacobian(batch)")
    assert F.retraces == 0


def test_repr_counts_in_words() -> None:
    def one(v: list[Var]) -> Any:
        return v[0] * 2.0 if v[0] > 0 else v[0]

    assert repr(pyad.compile(one, [1.0])) == (
        "<pyad.Function one: 1 input, 1 output, 1 instruction, 1 guard, retraces=0>"
    )
    two = pyad.compile(lambda v: [v[0] * v[1], v[1] + 1.0, v[0]], [1.0, 2.0])
    assert repr(two) == (
        "<pyad.Function <lambda>: 2 inputs, 3 outputs, 2 instructions, 0 guards, retraces=0>"
    )


def test_gradients_of_a_vector_function_are_refused() -> None:
    F = pyad.compile(polar, [2.0, 0.3])
    with pytest.raises(ValueError):
        F.grad([1.0, 2.0])
    with pytest.raises(ValueError):
        F.value_and_grad([1.0, 2.0])


@pytest.mark.parametrize(
    ("fn", "x0", "points"),
    [
        (seed, [2.0, 5.0], [[2.0, 5.0], [0.1, -3.0], [7.5, 0.25], [1.0, 0.0]]),
        (rosenbrock, [-1.0] * 4, [[-1.0] * 4, [1.0] * 4, [0.3, -2.0, 1.7, 0.01]]),
        (smooth3, [1.3, 0.4, -0.7], [[0.2, -1.9, 3.0], [5.0, 0.01, -4.0]]),
    ],
    ids=["seed", "rosenbrock", "smooth3"],
)
def test_replay_is_exactly_a_fresh_trace(fn: Fn, x0: list[float], points: list[Any]) -> None:
    F = pyad.compile(fn, x0)
    for x in points:
        assert_matches_fresh(F, fn, np.array(x))
    assert_batch_matches_fresh(F, fn, np.array(points))
    assert F.retraces == 0


def test_compile_records_on_a_private_tape() -> None:
    with pyad.Tape() as t:
        x = Var(3.0)
        y = x * x
        before = len(t)
        F = pyad.compile(seed, [2.0, 5.0])
        assert len(t) == before
        assert pyad.Tape.current() is t
        F([1.0, 2.0])
        F.grad([[1.0, 2.0], [3.0, 4.0]])
        G = pyad.compile(branchy, [1.0])
        assert G([-1.0]) == 3.0 and G.retraces == 1  # the retrace is private too
        assert len(t) == before
        y.backward()
        assert x.grad == 6.0


def test_scipy_minimize_with_compiled_value_and_grad() -> None:
    optimize = pytest.importorskip("scipy.optimize")
    x0 = np.full(5, -1.0)
    F = pyad.compile(rosenbrock, x0)
    result = optimize.minimize(F.value_and_grad, x0, jac=True, method="BFGS", tol=1e-10)
    assert result.success and np.allclose(result.x, 1.0, atol=1e-5)
    # bitwise-equal values and gradients make the optimiser take exactly the same path
    fresh = pyad.value_and_grad(rosenbrock)
    again = optimize.minimize(fresh, x0, jac=True, method="BFGS", tol=1e-10)
    assert result.nit == again.nit and np.array_equal(result.x, again.x)
    assert F.retraces == 0


# -- second derivatives ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "x",
    [[-1.2, 1.0], [0.5, -0.3], np.linspace(-1.0, 1.5, 5), [0.9, 1.1, -0.4, 2.0, 0.0, 1.3]],
    ids=["n2", "n2b", "n5", "n6"],
)
def test_hessian_of_rosenbrock_is_the_analytic_one(x: Any) -> None:
    x = np.asarray(x, dtype=np.float64)
    want = rosenbrock_hessian(x)
    F = pyad.compile(rosenbrock, np.zeros(len(x)))  # compiled elsewhere: replayed at x
    for got in (F.hessian(x), pyad.hessian(rosenbrock)(x)):
        assert_float_array(got, want.shape)
        assert_close(got, want, 1e-12)
        asym = np.max(np.abs(got - got.T))
        assert asym <= 1e-12 * np.max(np.abs(got)), f"asymmetry {asym}"
    v = np.sin(np.arange(len(x)) + 1.0)
    assert_close(F.hvp(x, v), want @ v, 1e-12)
    one_shot = pyad.hvp(rosenbrock)(x, v)
    assert_float_array(one_shot, (len(x),))
    assert_close(one_shot, want @ v, 1e-12)


def test_hvp_matches_finite_differences_of_grad() -> None:
    rng = np.random.default_rng(7)
    F = pyad.compile(smooth3, [1.3, 0.4, -0.7])
    for _ in range(5):
        x = np.array([rng.uniform(0.5, 2.0), rng.uniform(0.3, 1.5), rng.uniform(-1.5, 1.5)])
        v = rng.normal(size=3)
        want = fd_hvp(smooth3, x, v)
        got = F.hvp(x, v)
        assert_float_array(got, (3,))
        assert_close(got, want, 1e-6)
        assert_close(pyad.hvp(smooth3)(x, v), want, 1e-6)
        h = F.hessian(x)
        assert np.max(np.abs(h - h.T)) <= 1e-12 * np.max(np.abs(h))
        assert_close(h @ v, got, 1e-12)
        assert_close(pyad.hessian(smooth3)(x), h, 1e-12)


def test_batched_hvp_matches_single_calls() -> None:
    rng = np.random.default_rng(3)
    F = pyad.compile(smooth3, [1.3, 0.4, -0.7])
    xs = np.column_stack([rng.uniform(0.5, 2, 6), rng.uniform(0.3, 1.5, 6), rng.normal(size=6)])
    vs = rng.normal(size=(6, 3))
    out = F.hvp(xs, vs)
    assert_float_array(out, (6, 3))
    for i in range(6):
        assert_close(out[i], F.hvp(xs[i], vs[i]), 1e-13)


def test_hvp_refuses_a_direction_of_the_wrong_shape() -> None:
    F = pyad.compile(smooth3, [1.3, 0.4, -0.7])
    with pytest.raises(ValueError):
        F.hvp([1.0, 1.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError):
        F.hvp(np.ones((2, 3)), np.ones((3, 3)))


# -- guards ----------------------------------------------------------------------------------


def test_a_flipped_guard_traces_again() -> None:
    F = pyad.compile(branchy, [1.0])
    assert F([-2.0]) == 6.0
    assert F.grad([-2.0])[0] == -3.0
    assert F.retraces == 1
    for x in ([5.0], [-2.0], [-0.5], [0.0], [1e-300], [3.0]):
        assert_matches_fresh(F, branchy, np.array(x))
    assert F.retraces >= 1


def test_the_spec_lambda_flips_too() -> None:
    F = pyad.compile(lambda v: v[0] if v[0] > 0 else -v[0] * 3, [1.0])
    value, g = F.value_and_grad([-2.0])
    assert (value, g[0], F.retraces) == (6.0, -3.0, 1)
    assert F.value_and_grad([5.0])[0] == 5.0 and F.grad([5.0])[0] == 1.0


def test_batch_with_some_points_flipping() -> None:
    F = pyad.compile(branchy, [1.0])
    assert_batch_matches_fresh(F, branchy, np.array([[1.0], [-2.0], [5.0], [-0.5], [0.0]]))
    assert F.retraces >= 1
    G = pyad.compile(cubic_or_square, [1.0, 2.0])
    xs = np.array([[1.0, 2.0], [-1.0, 2.0], [0.5, -3.0], [-4.0, 0.25]])
    assert_batch_matches_fresh(G, cubic_or_square, xs)
    vs = np.array([[1.0, 0.0], [0.5, -1.0], [2.0, 3.0], [-1.0, 1.0]])
    hv = G.hvp(xs, vs)
    for i in range(len(xs)):
        assert_close(hv[i], pyad.hvp(cubic_or_square)(xs[i], vs[i]), 1e-13)
        assert_close(hv[i], fd_hvp(cubic_or_square, xs[i], vs[i]), 1e-6)


def test_second_derivatives_follow_a_flipped_guard() -> None:
    F = pyad.compile(cubic_or_square, [1.0, 2.0])
    x, v = np.array([-1.5, 2.0]), np.array([1.0, -0.5])
    want = np.array([[-4.0 * 2.0, -4.0 * -1.5], [-4.0 * -1.5, 0.0]])
    assert_close(F.hessian(x), want, 1e-12)
    assert_close(F.hvp(x, v), want @ v, 1e-12)
    assert F.retraces >= 1
    assert_close(F.hvp([2.0, 1.0], v), np.array([[12.0, 12.0], [12.0, 0.0]]) @ v, 1e-12)
    assert_close(pyad.hessian(cubic_or_square)(x), want, 1e-12)
    assert_close(pyad.hvp(cubic_or_square)(x, v), want @ v, 1e-12)


def test_every_comparison_is_a_guard_and_ties_are_kept() -> None:
    """Each comparison kind, Var against Var, number or reflected; x1 flips it."""
    cases: list[tuple[Fn, list[float], list[float]]] = [
        (lambda v: v[0] * 2 if v[0] < v[1] else v[1] * 3, [1.0, 2.0], [2.0, 2.0]),
        (lambda v: v[0] * 2 if v[0] <= v[1] else v[1] * 3, [1.0, 2.0], [2.5, 2.0]),
        (lambda v: v[0] * 2 if v[0] > 0.5 else v[1] * 3, [1.0, 2.0], [0.5, 2.0]),
        (lambda v: v[0] * 2 if v[0] >= 0.5 else v[1] * 3, [1.0, 2.0], [0.25, 2.0]),
        (lambda v: v[0] * 2 if 0.5 < v[0] else v[1] * 3, [1.0, 2.0], [-1.0, 2.0]),  # noqa: SIM300
        (lambda v: v[0] * 2 if 2 >= v[1] else v[1] * 3, [1.0, 2.0], [1.0, 2.5]),  # noqa: SIM300
        (lambda v: max(v[0], v[1]) * v[0], [1.0, 2.0], [3.0, 2.0]),
        (lambda v: min(v[0], v[1]) * v[1], [1.0, 2.0], [3.0, 2.0]),
        (lambda v: max(v[0], 0.0) + v[1], [1.0, 2.0], [-1.0, 2.0]),
        (lambda v: min(1.0, v[0] * v[1]), [1.0, 2.0], [0.1, 2.0]),
    ]
    for k, (fn, x0, x1) in enumerate(cases):
        F = pyad.compile(fn, x0)
        assert_matches_fresh(F, fn, np.array(x1))
        assert F.retraces == 1, f"case {k}"
        assert_matches_fresh(F, fn, np.array(x0))


@pytest.mark.parametrize(
    ("op", "tie_flips"),
    [("<", True), ("<=", False), (">", False), (">=", True)],
)
def test_ties_follow_the_comparison_kind(op: str, tie_flips: bool) -> None:
    """Compiled at v0 < v1; at v0 == v1 only < and >= change their outcome."""
    compare = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }[op]

    def fn(v: list[Var]) -> Var:
        return v[0] * v[1] if compare(v[0], v[1]) else v[0] - v[1]

    F = pyad.compile(fn, [1.0, 2.0])
    assert_matches_fresh(F, fn, np.array([2.0, 2.0]))
    assert F.retraces == int(tie_flips)


def test_several_guards_many_branches() -> None:
    def fn(v: list[Var]) -> Any:
        total: Any = 0.0
        for a in v:
            total = total + (pyad.sin(a) * a if a > 0 else a * a)
        return total if total < 2.0 else pyad.log(total)

    F = pyad.compile(fn, [1.0, 1.0, 1.0])
    patterns = [[-1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [-1.0, -1.0, 2.0], [3.0, 0.5, -3.0]]
    for x in patterns:
        assert_matches_fresh(F, fn, np.array(x))
    assert F.retraces >= len(patterns)
    rng = np.random.default_rng(11)
    assert_batch_matches_fresh(F, fn, rng.uniform(-3.0, 3.0, size=(20, 3)))
    for x in [[1.0, 1.0, 1.0], *patterns]:  # revisiting old branches stays right
        assert_matches_fresh(F, fn, np.array(x))


def test_guards_that_never_flip_never_retrace() -> None:
    def fn(v: list[Var]) -> Any:
        total = v[0] * 0.0
        for a, b in zip(v[:-1], v[1:]):
            t = max(a * b, -1e6) + min(pyad.exp(a), 1e6)
            total = total + (t if a > -100 else t * 2.0)
        return total if total >= -1e9 else -total

    rng = np.random.default_rng(5)
    F = pyad.compile(fn, np.ones(6))
    for x in rng.uniform(-2.0, 2.0, size=(60, 6)):
        assert_matches_fresh(F, fn, x)
    assert_batch_matches_fresh(F, fn, rng.uniform(-2.0, 2.0, size=(40, 6)))
    assert F.retraces == 0


def _counting(v: list[Var]) -> Any:
    """A loop on a value: every unit interval of v[0] is a trace of its own (new guards)."""
    t = v[0] * 0.0
    while t < v[0]:
        t = t + 1.0
    return t * v[0]


def test_retracing_at_most_calls_warns_once() -> None:
    F = pyad.compile(_counting, [0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(19):  # a retrace at every call, but too few calls to judge
            F([i + 1.5])
    with pytest.warns(pyad.errors.RetraceWarning, match="traced again at 20 of 20 ") as info:
        F([20.5])
        for i in range(30):
            F([i + 21.5])
            F.grad(np.array([[i + 60.5]]))
    assert F.retraces == 80
    assert len(info) == 1  # once per Function
    assert info[0].filename == __file__  # the line of the call, not pyad's
    assert isinstance(info[0].message, RuntimeWarning)
    message = str(info[0].message)
    for advice in ("strict=True", "GuardError", "pyad op", "one Function per"):
        assert advice in message


def test_occasional_retraces_do_not_warn() -> None:
    F = pyad.compile(_counting, [0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(100):  # a retrace at every third call
            F([i / 3 + 1.25])
        F(np.arange(200.0).reshape(-1, 1) / 100 + 0.1)  # 200 points on kept traces
        assert F.retraces >= 34  # a minority of the 300 points


def test_eq_and_ne_are_identity_and_not_guards() -> None:
    def fn(v: list[Var]) -> Var:
        if v[0] == 1.0 or v[0] != v[0]:  # both False whatever the values
            return v[0] * 100.0
        return v[0] * 2.0 if v[0] == v[0] else v[0]

    F = pyad.compile(fn, [1.0])
    for x in ([1.0], [-3.0], [0.0], [7.0]):
        assert_matches_fresh(F, fn, np.array(x))
    assert F.retraces == 0


def test_strict_mode_raises_guard_error_naming_the_line() -> None:
    F = pyad.compile(branchy, [1.0], strict=True)
    assert F.strict is True
    assert issubclass(pyad.errors.GuardError, pyad.PyadError)
    for call in (F, F.grad, F.value_and_grad, F.hessian):
        with pytest.raises(pyad.errors.GuardError, match=re.escape("v[0] > 0")):
            call([-2.0])
    with pytest.raises(pyad.errors.GuardError, match=re.escape("v[0] > 0")):
        F.hvp([-2.0], [1.0])
    with pytest.raises(pyad.errors.GuardError):
        F(np.array([[1.0], [-1.0], [2.0]]))
    assert F.retraces == 0
    assert_matches_fresh(F, branchy, np.array([5.0]))  # still usable afterwards
    assert_batch_matches_fresh(F, branchy, np.array([[1.0], [2.0], [1e-9]]))


def test_strict_lambda_message_has_the_comparison() -> None:
    F = pyad.compile(lambda v: v[1] if v[0] > 0 else -v[1], [1.0, 1.0], strict=True)
    with pytest.raises(pyad.errors.GuardError, match=re.escape("v[0] > 0")):
        F.grad([-1.0, 1.0])
    assert F([2.0, 3.0]) == 3.0


# -- kinks inside ops are not guards -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "x0", "points"),
    [
        (lambda v: pyad.relu(v[0]), [1.0], [[-1.0], [0.0], [-0.0], [2.5]]),
        (lambda v: abs(v[0]) * 2.0, [2.0], [[-3.0], [0.0], [1e-300]]),
        (lambda v: pyad.softplus(v[0]) * v[0], [3.0], [[-3.0], [0.0], [-40.0], [40.0]]),
        (lambda v: pyad.hypot(v[0], v[1]), [3.0, 4.0], [[-3.0, 0.0], [0.0, 0.0], [1.0, -2.0]]),
        (lambda v: pyad.atan2(v[0], v[1]), [1.0, 1.0], [[1e-3, -1.0], [-1e-3, -1.0], [0.0, 0.0]]),
    ],
    ids=["relu", "abs", "softplus", "hypot", "atan2"],
)
def test_kinks_are_recomputed_by_the_replay(fn: Fn, x0: list[float], points: list[Any]) -> None:
    F = pyad.compile(fn, x0)
    for x in points:
        assert_matches_fresh(F, fn, np.array(x))
    assert F.retraces == 0


def test_relu_compiled_on_the_positive_side() -> None:
    F = pyad.compile(lambda v: pyad.relu(v[0]), [1.0])
    value, g = F.value_and_grad([-1.0])
    assert (value, g[0], F.retraces) == (0.0, 0.0, 0)


# -- what cannot be compiled -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        lambda v: v[0] * v[0].v,
        lambda v: v[1] * (v[0] * 2.0).v,
    ],
    ids=["input.v", "intermediate.v"],
)
def test_reading_a_value_while_tracing_is_refused(fn: Fn) -> None:
    with pytest.raises(pyad.errors.TraceError, match=r"(?i)replay") as info:
        pyad.compile(fn, [1.5, 2.0])
    assert isinstance(info.value, pyad.PyadError)
    # outside compile, reading values works as before
    value, g = pyad.value_and_grad(fn)([1.5, 2.0])
    assert math.isfinite(value) and g.shape == (2,)
    assert Var(2.0).v == 2.0


def _read_grad(v: list[Var]) -> Any:
    y = v[0] * v[0]
    y.backward()
    return y * v[0].grad


def _read_partial(v: list[Var]) -> Any:
    y = pyad.sin(v[0])
    ((m, _),) = y.predecessors
    return y * m


def _write_input(v: list[Var]) -> Any:
    v[0].v = 5.0
    return v[0] * v[1]


@pytest.mark.parametrize(
    "fn", [_read_grad, _read_partial, _write_input], ids=["grad", "predecessors", "write-v"]
)
def test_other_value_access_while_tracing_is_refused(fn: Fn) -> None:
    """Adjoints, recorded partials and assigned input values are Python computations on
    values too: a replay could not follow them, so (as for .v) compile must refuse rather
    than return something a fresh trace would not."""
    with pytest.raises(pyad.PyadError):
        pyad.compile(fn, [1.0, 1.0])
    pyad.value_and_grad(fn)([3.0, 2.0])  # fine outside compile


def test_value_reading_works_outside_compile() -> None:
    assert pyad.grad(lambda v: v[0] * v[0].v)([3.0])[0] == 3.0


@pytest.mark.parametrize(
    "fn",
    [
        lambda v: v[0] + float(v[1]),
        lambda v: v[0] * math.exp(v[1]),
        lambda v: v[0] * round(v[1]),
        lambda v: v[0] * int(v[1]),
    ],
    ids=["float", "math.exp", "round", "int"],
)
def test_a_var_never_quietly_becomes_a_number(fn: Fn) -> None:
    """float(x), math.exp(x), round(x), int(x) would drop x's derivative: they raise, in
    compile and out of it, naming what to write instead."""
    with pytest.raises(TypeError, match=r"pyad\.exp\(x\).*x\.v"):
        pyad.compile(fn, [1.5, 2.0])
    with pytest.raises(TypeError, match=r"pyad\.exp\(x\).*x\.v"):
        pyad.value_and_grad(fn)([1.5, 2.0])


def test_primitives_cannot_be_compiled() -> None:
    square = pyad.primitive(lambda a: a * a, lambda a: [2.0 * a])

    def fn(v: list[Var]) -> Any:
        return square(v[0]) + v[1]

    with pytest.raises(pyad.errors.TraceError, match="primitive"):
        pyad.compile(fn, [1.0, 2.0])
    assert list(pyad.grad(fn)([3.0, 1.0])) == [6.0, 1.0]


# -- degenerate functions ----------------------------------------------------------------------


def test_a_var_made_inside_fn_is_a_constant() -> None:
    def fn(v: list[Var]) -> Any:
        c = Var(2.0)
        return v[0] * c + c * c if v[0] > c else -v[0]

    F = pyad.compile(fn, [3.0])
    for x in ([5.0], [-1.0], [2.5]):
        assert_matches_fresh(F, fn, np.array(x))


def test_a_guard_on_a_value_the_output_does_not_use() -> None:
    def fn(v: list[Var]) -> Any:
        return v[1] * 2.0 if pyad.exp(v[0]) > 2.0 else -v[1]

    F = pyad.compile(fn, [1.0, 1.0])
    assert_matches_fresh(F, fn, np.array([0.0, 3.0]))
    assert F.retraces == 1
    assert_batch_matches_fresh(F, fn, np.array([[1.0, 2.0], [0.5, -1.0], [0.9, 4.0]]))


def test_a_branch_with_another_number_of_outputs_is_not_silently_reshaped() -> None:
    """If a retrace returns a different number of outputs, F must either give the fresh
    trace's outputs or refuse with ValueError, never pad or broadcast them."""

    def fn(v: list[Var]) -> list[Any]:
        return [v[0], v[0] * 2.0] if v[0] > 0 else [v[0] * 3.0]

    F = pyad.compile(fn, [1.0])
    for x in (np.array([-1.0]), np.array([[1.0], [-1.0]])):
        try:
            out = F(x)
        except ValueError:
            continue
        if x.ndim == 1:
            assert_identical(out, fresh_values(fn, x), "F after the output count changed")
        else:
            pytest.fail(f"a batch mixing 2 and 1 outputs gave {out!r}")


def test_unused_inputs_have_zero_gradient() -> None:
    F = pyad.compile(lambda v: v[1] * 2.0, [1.0, 2.0, 3.0])
    value, g = F.value_and_grad([4.0, 5.0, 6.0])
    assert value == 10.0 and list(g) == [0.0, 2.0, 0.0]
    assert_matches_fresh(F, lambda v: v[1] * 2.0, np.array([-1.0, 0.5, 9.0]))
    assert np.array_equal(F.hessian([1.0, 1.0, 1.0]), np.zeros((3, 3)))


@pytest.mark.parametrize("const", [2.5, 3, -0.0, np.float32(0.75)], ids=repr)
def test_constant_function(const: Any) -> None:
    fn: Fn = lambda v: const  # noqa: E731
    F = pyad.compile(fn, [1.0, 2.0])
    assert_matches_fresh(F, fn, np.array([3.0, -4.0]))
    value, g = F.value_and_grad(np.ones((4, 2)))
    assert_identical(value, np.full(4, float(const)), "constant batch")
    assert_identical(g, np.zeros((4, 2)), "constant batch gradient")
    assert np.array_equal(F.hvp([1.0, 2.0], [3.0, 4.0]), np.zeros(2))
    assert np.array_equal(F.hessian([1.0, 2.0]), np.zeros((2, 2)))


def test_function_returning_an_input() -> None:
    fn: Fn = lambda v: v[1]  # noqa: E731
    F = pyad.compile(fn, [1.0, 2.0])
    value, g = F.value_and_grad([7.0, -3.5])
    assert value == -3.5 and list(g) == [0.0, 1.0]
    assert_batch_matches_fresh(F, fn, np.array([[1.0, 2.0], [0.0, -0.0], [5.0, 6.0]]))


def test_vector_function_with_inputs_constants_and_repeats() -> None:
    def fn(v: list[Var]) -> list[Any]:
        s = v[0] * v[1]
        return [v[0], 2.0, s, s, s * s, 4]

    F = pyad.compile(fn, [3.0, 4.0])
    assert F.n_outputs == 6
    for x in ([3.0, 4.0], [-1.0, 0.5]):
        assert_identical(F(x), fresh_values(fn, x), f"F({x})")
        assert_identical(F.jacobian(x), pyad.jacobian(fn)(x), f"F.jacobian({x})")


# -- every op under replay -------------------------------------------------------------------

BINARY_FUNCTIONS = {"atan2", "hypot", "pow"}
NARY_FUNCTIONS = {"sum", "dot", "logsumexp", "softmax"}
POSITIVE_ONLY = {"log", "sqrt", "pow"}
POINTS = [[0.3, 0.6], [0.7, 0.2], [0.05, 0.95]]
SIGNED_POINTS = [[-0.4, -0.8], [0.0, 0.5], [-0.9, 0.1]]


def _points(name: str) -> list[list[float]]:
    return POINTS if name in POSITIVE_ONLY else POINTS + SIGNED_POINTS


def _op_function(name: str) -> Fn:
    f = getattr(pyad, name)
    if name in BINARY_FUNCTIONS:
        return lambda v: f(v[0], v[1]) + f(v[1], 0.5) * f(2.0, v[0])
    if name == "sum":
        return lambda v: pyad.sum([v[0], 2.0, v[1], v[0]], start=v[1]) + pyad.sum([v[1]])
    if name == "dot":
        return lambda v: (
            pyad.dot([v[0], 1.5, v[1]], [v[1], v[0], 3], start=0.5)
            + pyad.dot([v[0], v[1]], [2.0, v[0]], start=v[1])
        )
    if name == "logsumexp":
        return lambda v: pyad.logsumexp([v[0], v[1], 0.3, v[0]]) * v[1]
    if name == "softmax":
        return lambda v: (lambda s: s[0] * 2.0 + s[2] * v[0])(pyad.softmax([v[0], v[1], 1.0]))
    if name == "matvec":
        m = [[1.5, -2.0, 0.5], [0.25, 1.0, -3.0]]
        return lambda v: (lambda y: y[0] * y[1] + y[0])(pyad.matvec(m, [v[0], v[1], v[0]]))
    return lambda v: f(v[0]) * v[1] + f(v[1])


@pytest.mark.parametrize("name", sorted(pyad.functions.__all__))
def test_every_function_replays_exactly(name: str) -> None:
    fn = _op_function(name)
    points = _points(name)
    F = pyad.compile(fn, points[0])
    for x in points[1:]:
        assert_matches_fresh(F, fn, np.array(x))
    assert_batch_matches_fresh(F, fn, np.array(points))
    assert F.retraces == 0


def _assert_hvp_matches_fd(fn: Fn, points: list[list[float]]) -> None:
    F = pyad.compile(fn, points[0])
    rng = np.random.default_rng(4)
    for x in points:
        if 0.0 in x:  # a kink (relu, abs) may sit there: finite differences say nothing
            continue
        x_arr, v = np.array(x), rng.normal(size=len(x))
        assert_close(F.hvp(x_arr, v), fd_hvp(fn, x_arr, v), 1e-6)
        h = F.hessian(x_arr)
        assert np.max(np.abs(h - h.T)) <= 1e-12 * max(1.0, np.max(np.abs(h)))


@pytest.mark.parametrize("name", sorted(pyad.functions.__all__))
def test_every_function_hvp_matches_finite_differences(name: str) -> None:
    _assert_hvp_matches_fd(_op_function(name), _points(name))


def test_softmax_as_a_vector_function() -> None:
    fn: Fn = lambda v: pyad.softmax([v[0], v[1], 0.5, v[0] * v[1]])  # noqa: E731
    F = pyad.compile(fn, [0.1, 0.2])
    for x in ([0.1, 0.2], [3.0, -2.0], [-1.0, 40.0]):
        assert_identical(F(x), fresh_values(fn, x), f"F({x})")
        assert_identical(F.jacobian(x), pyad.jacobian(fn)(x), f"F.jacobian({x})")


OPERATOR_CASES: dict[str, Fn] = {
    "add": lambda v: v[0] + v[1],
    "sub": lambda v: v[0] - v[1],
    "mul": lambda v: v[0] * v[1],
    "div": lambda v: v[0] / v[1],
    "pow": lambda v: v[0] ** v[1],
    "neg": lambda v: -v[0] * v[1],
    "pos": lambda v: +v[0] * v[1],
    "abs": lambda v: abs(v[0] - v[1]),
    "radd": lambda v: 1 + v[0] + 2.5,
    "rsub": lambda v: 2.0 - v[0],
    "rmul": lambda v: 3 * v[0] * np.float64(1.5),
    "rdiv": lambda v: 2 / v[0],
    "rpow": lambda v: 3 ** v[0],
    "pow_const": lambda v: v[0] ** 2 + v[1] ** 0.5 + v[0] ** np.int64(3) + v[1] ** -1.5,
    "const_right": lambda v: (v[0] - 1) / 4 * v[1] + np.float32(0.25),
    "mixed": lambda v: (v[0] * v[1] - v[1] / v[0]) ** 2 / (1.0 + v[0] ** v[1]),
}


@pytest.mark.parametrize("name", list(OPERATOR_CASES))
def test_every_operator_replays_exactly(name: str) -> None:
    fn = OPERATOR_CASES[name]
    F = pyad.compile(fn, [0.3, 0.6])
    for x in ([1.7, 0.4], [0.9, 2.5], [0.3, 0.6]):
        assert_matches_fresh(F, fn, np.array(x))
    assert F.retraces == 0


@pytest.mark.parametrize("name", list(OPERATOR_CASES))
def test_every_operator_hvp_matches_finite_differences(name: str) -> None:
    _assert_hvp_matches_fd(OPERATOR_CASES[name], [[0.3, 0.6], [1.7, 0.4], [0.9, 2.5]])


# -- NaN, inf and domain errors: IEEE in the replay -------------------------------------------


def test_nan_and_inf_inputs_give_ieee_results() -> None:
    def fn(v: list[Var]) -> Var:
        return pyad.log(v[0]) * v[1] + pyad.sin(v[1])

    F = pyad.compile(fn, [1.0, 1.0])
    assert math.isnan(F([math.nan, 1.0]))
    assert F([math.inf, 1.0]) == math.inf
    assert math.isnan(F([1.0, math.inf]))  # sin(inf): a fresh trace raises
    assert math.isnan(F([-1.0, 1.0]))  # log(-1): a fresh trace raises DomainError
    with pytest.raises(ValueError):
        pyad.value_and_grad(fn)([-1.0, 1.0])
    F.grad([math.nan, 1.0])
    value, g = F.value_and_grad([-1.0, 1.0])
    assert math.isnan(value) and g.shape == (2,)
    xs = np.array([[math.nan, 1.0], [2.0, 3.0], [-1.0, 1.0], [math.inf, -math.inf]])
    values, grads = F.value_and_grad(xs)
    assert math.isnan(values[0]) and math.isnan(values[2]) and math.isnan(values[3])
    want_value, want_grad = pyad.value_and_grad(fn)(xs[1])
    assert_identical(values[1], want_value, "finite row of a batch with NaN rows")
    assert_identical(grads[1], want_grad, "finite row of a batch with NaN rows")
    F.hvp([math.nan, 1.0], [1.0, 0.0])
    assert F.retraces == 0


def test_overflow_and_division_by_zero_follow_ieee() -> None:
    F = pyad.compile(lambda v: pyad.exp(v[0]) + 1.0 / v[1], [0.0, 1.0])
    assert F([1000.0, 1.0]) == math.inf
    assert F([0.0, 0.0]) == math.inf
    assert F([0.0, -0.0]) == -math.inf
    assert math.isnan(F([1000.0, -0.0]))
    F.grad([1000.0, 0.0])
    assert F.retraces == 0


def test_nan_through_a_guard_does_not_crash() -> None:
    F = pyad.compile(branchy, [1.0])
    assert math.isnan(F([math.nan]))
    assert F([4.0]) == 4.0


# -- many random points on larger functions ---------------------------------------------------


def w1(v: list[Var]) -> Any:
    acc: Any = 0
    for a, b in zip(v[:-1], v[1:]):
        acc = acc + (pyad.log(a) + a * b - pyad.sin(b))
    return acc


MLP_DATA = [(math.cos(k), math.sin(2 * k), (-1.0) ** k) for k in range(6)]


def mlp(v: list[Var]) -> Any:
    """A 2-4-4-1 tanh network: tanh outputs are shared by every neuron of the next layer."""
    params = iter(v)
    layers = []
    for nin, nout in ((2, 4), (4, 4), (4, 1)):
        layers.append([([next(params) for _ in range(nin)], next(params)) for _ in range(nout)])
    loss: Any = 0.0
    for x0, x1, target in MLP_DATA:
        xs: list[Any] = [x0, x1]
        for depth, layer in enumerate(layers):
            acts = [sum((w * x for w, x in zip(ws, xs)), b) for ws, b in layer]
            xs = acts if depth == len(layers) - 1 else [pyad.tanh(a) for a in acts]
        loss = loss + (xs[0] - target) ** 2
    return loss


MLP_INPUTS = (2 + 1) * 4 + (4 + 1) * 4 + (4 + 1) * 1


def chain(v: list[Var]) -> Any:
    y = v[0]
    for _ in range(150):
        y = 1 / (1 + pyad.exp(-y))
    return y


def ladder(v: list[Var]) -> Any:
    y: Any = v[0]
    for k in range(60):
        y = (y + y) * 0.5 + pyad.sin(y) * v[k % len(v)] * 0.01
    return y * pyad.dot(v, v)


@pytest.mark.parametrize(
    ("fn", "n", "low", "high"),
    [
        (w1, 40, 0.5, 1.5),
        (rosenbrock, 30, -2.0, 2.0),
        (mlp, MLP_INPUTS, -1.0, 1.0),
        (chain, 1, -3.0, 3.0),
        (ladder, 3, -1.0, 1.0),
    ],
    ids=["w1", "rosenbrock", "mlp", "chain", "ladder"],
)
def test_larger_functions_at_fifty_random_points(fn: Fn, n: int, low: float, high: float) -> None:
    rng = np.random.default_rng(n)
    F = pyad.compile(fn, rng.uniform(low, high, n))
    xs = rng.uniform(low, high, size=(50, n))
    values, grads = F.value_and_grad(xs)
    for i, x in enumerate(xs):
        want_value, want_grad = fresh_value_and_grad(fn, x)
        assert_identical(values[i], want_value, f"value at row {i}")
        assert_identical(grads[i], want_grad, f"grad at row {i}")
        assert_identical(F(x), want_value, f"F at row {i}")
    assert_identical(F(xs), values, "F(batch)")
    assert F.retraces == 0


def test_a_trace_longer_than_a_tape_segment() -> None:
    """Thousands of records, most intermediates dropped while fn runs, a few kept and reused
    at the end: the program must hold every record the outputs need."""

    def fn(v: list[Var]) -> Any:
        kept = []
        y = v[0]
        for k in range(6000):
            y = pyad.sin(y) * 0.9 + v[k % 3] * 0.01
            if k % 997 == 0:
                kept.append(y)
        return y + pyad.sum(kept)

    rng = np.random.default_rng(9)
    F = pyad.compile(fn, [0.5, 0.5, 0.5])
    assert_batch_matches_fresh(F, fn, rng.uniform(-1.0, 1.0, size=(3, 3)))


def test_a_large_batch_of_a_long_trace_matches_single_calls() -> None:
    """Enough points times records that a batch cannot be evaluated in one block of work."""

    def fn(v: list[Var]) -> Any:
        y = v[0]
        for _ in range(20000):
            y = 1 / (1 + pyad.exp(-y * v[1]))
        return y

    F = pyad.compile(fn, [0.5, 0.5])
    xs = np.random.default_rng(8).uniform(-1.0, 1.0, size=(25, 2))
    values, grads = F.value_and_grad(xs)
    jac = F.jacobian(xs)
    for i in (0, 1, 2, 12, 23, 24):
        value, g = F.value_and_grad(xs[i])
        assert_identical(values[i], value, f"row {i}")
        assert_identical(grads[i], g, f"row {i}")
        assert_identical(jac[i, 0], g, f"jacobian row {i}")
    want_value, want_grad = pyad.value_and_grad(fn)(xs[7])
    assert_identical(values[7], want_value, "row 7 against a fresh trace")
    assert_identical(grads[7], want_grad, "row 7 against a fresh trace")


# -- property: random DAGs with guards, compiled at one point, replayed at another ---------------

#: magnitude past which a step's output is squashed with atan (keeps values finite)
BOUND = 100.0
#: constants of constant-operand steps, all nonzero
CONSTANTS: list[Any] = [0.5, -1.5, 2, 3.0, np.float64(0.75), np.int64(-2), np.float32(1.25)]


def _sq1(a: Any) -> Any:
    return 1.0 + a * a


#: name -> (build from operand a, static bound of |result| from the bound of a)
UNARY_STEPS: dict[str, tuple[Callable[[Any], Any], Callable[[float], float]]] = {
    "neg": (lambda a: -a, lambda p: p),
    "abs": (lambda a: abs(a), lambda p: p),
    "exp": (lambda a: pyad.exp(pyad.tanh(a)), lambda p: E),
    "log": (lambda a: pyad.log(_sq1(a)), lambda p: math.log1p(p * p)),
    "log1p": (lambda a: pyad.log1p(a * a), lambda p: math.log1p(p * p)),
    "expm1": (lambda a: pyad.expm1(pyad.sin(a)), lambda p: E),
    "sqrt": (lambda a: pyad.sqrt(_sq1(a)), lambda p: math.sqrt(1 + p * p)),
    "sin": (lambda a: pyad.sin(a), lambda p: 1.0),
    "cos": (lambda a: pyad.cos(a), lambda p: 1.0),
    "tan": (lambda a: pyad.tan(pyad.tanh(a)), lambda p: math.tan(1.0)),
    "asin": (lambda a: pyad.asin(pyad.tanh(a) / 2), lambda p: math.pi / 2),
    "acos": (lambda a: pyad.acos(pyad.tanh(a) * 0.5), lambda p: math.pi),
    "atan": (lambda a: pyad.atan(a), lambda p: math.pi / 2),
    "sinh": (lambda a: pyad.sinh(pyad.atan(a)), lambda p: math.sinh(math.pi / 2)),
    "cosh": (lambda a: pyad.cosh(pyad.tanh(a)), lambda p: math.cosh(1.0)),
    "tanh": (lambda a: pyad.tanh(a), lambda p: 1.0),
    "sigmoid": (lambda a: pyad.sigmoid(a), lambda p: 1.0),
    "relu": (lambda a: pyad.relu(a), lambda p: p),
    "softplus": (lambda a: pyad.softplus(a), lambda p: p + 1.0),
    "square": (lambda a: a**2, lambda p: p * p),
    "cube": (lambda a: a**3, lambda p: p**3),
}

BINARY_STEPS: dict[str, tuple[Callable[[Any, Any], Any], Callable[[float, float], float]]] = {
    "add": (lambda a, b: a + b, lambda p, q: p + q),
    "sub": (lambda a, b: a - b, lambda p, q: p + q),
    "mul": (lambda a, b: a * b, lambda p, q: p * q),
    "div": (lambda a, b: a / _sq1(b), lambda p, q: p),
    "pow": (lambda a, b: _sq1(a) ** pyad.tanh(b), lambda p, q: 1.0 + p * p),
    "pow_fn": (
        lambda a, b: pyad.pow(pyad.sigmoid(a), pyad.tanh(b)),
        lambda p, q: 1.0 + math.exp(p),
    ),
    "atan2": (lambda a, b: pyad.atan2(a, b), lambda p, q: math.pi),
    "hypot": (lambda a, b: pyad.hypot(a, b), lambda p, q: p + q),
}

CONST_STEPS: dict[str, tuple[Callable[[Any, Any], Any], Callable[[float, float], float]]] = {
    "add_c": (lambda a, c: a + c, lambda p, c: p + abs(c)),
    "c_sub": (lambda a, c: c - a, lambda p, c: p + abs(c)),
    "mul_c": (lambda a, c: a * c, lambda p, c: p * abs(c)),
    "c_mul": (lambda a, c: c * a, lambda p, c: p * abs(c)),
    "div_c": (lambda a, c: a / c, lambda p, c: p / abs(c)),
    "c_div": (lambda a, c: c / _sq1(a), lambda p, c: abs(c)),
    "pow_c": (lambda a, c: _sq1(a) ** c, lambda p, c: (1 + p * p) ** abs(c)),
    "c_pow": (lambda a, c: abs(c) ** pyad.tanh(a), lambda p, c: 3.0),
    "c_atan2": (lambda a, c: pyad.atan2(c, a), lambda p, c: math.pi),
    "hypot_c": (lambda a, c: pyad.hypot(a, c), lambda p, c: p + abs(c)),
}


def _guard_step(name: str, a: Any, b: Any, c: Any, log: list[bool]) -> Any:
    """A step that compares (each comparison kind, Python's max/min, reflected forms) and
    appends the outcome to log."""
    if name == "max":
        r = max(a, b)
        log.append(r is b)
    elif name == "min":
        r = min(a, b)
        log.append(r is b)
    elif name == "max_c":
        r = max(a, c)
        log.append(r is a)
    elif name == "min_c":
        r = min(c, a)
        log.append(r is a)
    elif name == "lt":
        log.append(bool(a < b))
        r = a * b if log[-1] else a + b
    elif name == "le_c":
        log.append(bool(a <= c))
        r = pyad.sin(a) if log[-1] else a * c
    elif name == "c_ge":
        log.append(bool(c >= a))
        r = a - c if log[-1] else c - a * 0.5
    else:  # "gt"
        log.append(bool(a > b))
        r = a - b if log[-1] else pyad.tanh(b - a)
    return r


def _guard_bound(name: str, p: float, q: float, c: float) -> float:
    return {
        "max": max(p, q),
        "min": max(p, q),
        "max_c": max(p, abs(c)),
        "min_c": max(p, abs(c)),
        "lt": max(p * q, p + q),
        "le_c": max(1.0, p * abs(c)),
        "c_ge": p + abs(c),
        "gt": p + q,
    }[name]


GUARD_STEPS = ["max", "min", "max_c", "min_c", "lt", "le_c", "c_ge", "gt"]
NARY_STEPS = ["sum", "dot", "logsumexp", "softmax", "matvec"]
STEP_KINDS = [list(UNARY_STEPS), list(BINARY_STEPS), list(CONST_STEPS), NARY_STEPS, GUARD_STEPS]

#: an n-ary operand: ("v", node index) or ("c", constant)
Item = tuple[str, Any]


@dataclass(frozen=True)
class Step:
    name: str
    operands: tuple[int, ...] = ()
    const: Any = 1.0
    items: tuple[Item, ...] = ()
    items2: tuple[Item, ...] = ()


@dataclass(frozen=True)
class Program:
    n_inputs: int
    steps: tuple[Step, ...]
    sum_all: bool


def _nary_step(step: Step, nodes: list[Any], bounds: list[float]) -> tuple[list[Any], float]:
    vals = [nodes[x] if kind == "v" else x for kind, x in step.items]
    bs = [bounds[x] if kind == "v" else abs(float(x)) for kind, x in step.items]
    if step.name == "sum":
        return [pyad.sum(vals[1:], start=vals[0])], math.fsum(bs)
    if step.name == "dot":
        ws = [nodes[x] if kind == "v" else x for kind, x in step.items2]
        ws_b = [bounds[x] if kind == "v" else abs(float(x)) for kind, x in step.items2]
        start, start_b = (nodes[step.operands[0]], bounds[step.operands[0]])
        return [pyad.dot(ws, vals, start=start)], start_b + math.fsum(
            p * q for p, q in zip(ws_b, bs)
        )
    if step.name == "logsumexp":
        return [pyad.logsumexp(vals)], max(bs) + math.log(len(bs))
    if step.name == "matvec":  # two rows over the Vars among the items
        xs = [v for v in vals if isinstance(v, Var)]
        vb = [b for v, b in zip(vals, bs) if isinstance(v, Var)]
        rows = [[0.5 - 0.25 * k for k in range(len(xs))], [1.0] * len(xs)]
        return list(pyad.matvec(rows, xs)), math.fsum(
            abs(w) * b for w, b in zip(rows[0], vb)
        ) + math.fsum(vb)
    return list(pyad.softmax(vals)), 1.0


def run_program(program: Program, v: Sequence[Any], log: list[bool]) -> Any:
    """Build the program on the inputs v; guard outcomes are appended to log."""
    nodes: list[Any] = list(v)
    bounds = [2.0] * len(nodes)  # inputs are drawn from [-2, 2]
    for step in program.steps:
        if step.name in UNARY_STEPS:
            build, bound = UNARY_STEPS[step.name]
            (i,) = step.operands
            outs, b = [build(nodes[i])], bound(bounds[i])
        elif step.name in BINARY_STEPS:
            build2, bound2 = BINARY_STEPS[step.name]
            i, j = step.operands
            outs, b = [build2(nodes[i], nodes[j])], bound2(bounds[i], bounds[j])
        elif step.name in CONST_STEPS:
            build2, bound2 = CONST_STEPS[step.name]
            (i,) = step.operands
            outs, b = [build2(nodes[i], step.const)], bound2(bounds[i], float(step.const))
        elif step.name in GUARD_STEPS:
            i, j = step.operands
            outs = [_guard_step(step.name, nodes[i], nodes[j], step.const, log)]
            b = _guard_bound(step.name, bounds[i], bounds[j], float(step.const))
        else:
            outs, b = _nary_step(step, nodes, bounds)
        if b > BOUND:
            outs, b = [pyad.atan(o) for o in outs], math.pi / 2
        nodes.extend(outs)
        bounds.extend([b] * len(outs))
    return pyad.sum(nodes) if program.sum_all else nodes[-1]


@st.composite
def dag_cases(
    draw: Any, max_inputs: int = 4, max_steps: int = 12, kinds: list[list[str]] = STEP_KINDS
) -> tuple[Any, ...]:
    """A program and three points: compile at the first, replay at the other two."""
    n = draw(st.integers(1, max_inputs))
    point = st.lists(st.floats(-2.0, 2.0), min_size=n, max_size=n)
    length, steps = n, []
    for _ in range(draw(st.integers(1, max_steps))):
        idx = st.integers(0, length - 1)
        item = st.one_of(
            idx.map(lambda i: ("v", i)), st.sampled_from(CONSTANTS).map(lambda c: ("c", c))
        )
        name = draw(st.sampled_from(draw(st.sampled_from(kinds))))
        if name in NARY_STEPS:
            k = draw(st.integers(1, 4))
            items = (("v", draw(idx)), *(draw(item) for _ in range(k - 1)))
            items2 = tuple(draw(item) for _ in range(k)) if name == "dot" else ()
            step = Step(name, (draw(idx),), items=items, items2=items2)
        else:
            step = Step(name, (draw(idx), draw(idx)), draw(st.sampled_from(CONSTANTS)))
            if name in UNARY_STEPS or name in CONST_STEPS:
                step = Step(name, step.operands[:1], step.const)
        steps.append(step)
        length += len(step.items) if name == "softmax" else 2 if name == "matvec" else 1
    program = Program(n, tuple(steps), draw(st.booleans()))
    return program, draw(point), draw(point), draw(point)


def _ops_reached(out: Var) -> set[str]:
    """The ops of every record that out depends on (an iterative walk of predecessors)."""
    seen: set[int] = set()
    ops: set[str] = set()
    stack = [out]
    while stack:
        node = stack.pop()
        if node._h not in seen:
            seen.add(node._h)
            ops.add(node.op)
            stack.extend(p for _, p in node.predecessors)
    return ops


def test_dag_steps_use_every_op_and_comparison() -> None:
    """The random programs reach every op of the table except the user primitive."""
    log: list[bool] = []
    used: set[str] = set()
    with pyad.Tape():
        x, y = Var(0.7), Var(-0.3)
        for name in [*UNARY_STEPS, *BINARY_STEPS, *CONST_STEPS, *GUARD_STEPS, *NARY_STEPS]:
            items = (("v", 0), ("c", 2.0), ("v", 1))
            operands = (0,) if name in UNARY_STEPS or name in CONST_STEPS else (0, 1)
            step = Step(name, operands, 2.0, items=items, items2=items)
            used |= _ops_reached(run_program(Program(2, (step,), True), [x, y], log))
    missing = set(pyad._native.OPS) - {"primitive"} - used
    assert not missing, sorted(missing)
    assert len(log) == len(GUARD_STEPS)


def _guard_outcomes(program: Program, x: list[float]) -> list[bool]:
    log: list[bool] = []
    fresh_values(lambda v: [run_program(program, v, log)], x)
    return log


@given(dag_cases())
def test_random_dag_replays_as_a_fresh_trace(case: tuple[Any, ...]) -> None:
    program, x0, x1, x2 = case
    log: list[bool] = []

    def fn(v: list[Var]) -> Any:
        return run_program(program, v, log)

    F = pyad.compile(fn, x0)
    flipped = _guard_outcomes(program, x0) != _guard_outcomes(program, x1)
    event("a guard flips" if flipped else "no guard flips")
    want_value, want_grad = fresh_value_and_grad(fn, x1)
    value, g = F.value_and_grad(x1)
    assert_identical(value, want_value, "value at x1")
    assert_identical(g, want_grad, "grad at x1")
    assert F.retraces == int(flipped)
    assert_identical(F(x1), want_value, "F(x1)")
    assert_batch_matches_fresh(F, fn, np.array([x0, x1, x2], dtype=np.float64))


#: steps whose results are smooth functions of their operands (no kinks, no guards; atan2
#: and hypot of two nodes are not smooth where both are 0)
SMOOTH_KINDS = [
    [name for name in UNARY_STEPS if name not in ("abs", "relu")],
    [name for name in BINARY_STEPS if name not in ("atan2", "hypot")],
    list(CONST_STEPS),
    NARY_STEPS,
]


@given(dag_cases(kinds=SMOOTH_KINDS), st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4))
def test_random_smooth_dag_hvp_matches_finite_differences(
    case: tuple[Any, ...], direction: list[float]
) -> None:
    program, x0, x1, _ = case

    def fn(v: list[Var]) -> Any:
        return run_program(program, v, [])

    F = pyad.compile(fn, x0)
    x, v = np.array(x1), np.array(direction[: len(x1)])
    want = fd_hvp(fn, x, v)
    got = F.hvp(x, v)
    scale = max(1.0, float(np.max(np.abs(pyad.grad(fn)(x)))), float(np.max(np.abs(want))))
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5 * scale), f"{got!r} vs {want!r}"


# -- inputs: conversions and refusals ----------------------------------------------------------


def test_inputs_are_converted_like_numpy_asarray() -> None:
    fn: Fn = lambda v: pyad.log(v[0]) + v[0] * v[1] - pyad.sin(v[2])  # noqa: E731
    F = pyad.compile(fn, [2.0, 5.0, 1.0])
    want = F(np.array([1.0, 3.0, 5.0]))
    want_grad = F.grad(np.array([1.0, 3.0, 5.0]))
    base = np.arange(1.0, 7.0)
    column = np.arange(1.0, 7.0).reshape(3, 2)[:, 0]
    for x in ([1, 3, 5], (1.0, 3.0, 5.0), np.array([1, 3, 5]), base[::2], column):
        assert_identical(F(x), want, f"F({x!r})")
        assert_identical(F.grad(x), want_grad, f"F.grad({x!r})")
    x32 = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    assert_identical(F(x32), F(x32.astype(np.float64)), "float32 input")
    xs = np.array([[1.0, 3.0, 5.0], [2.0, 0.5, -1.0], [4.0, 4.0, 4.0]])
    want_batch = F.value_and_grad(xs)
    for view in (np.asfortranarray(xs), xs.T.copy().T, np.repeat(xs, 2, axis=0)[::2]):
        values, grads = F.value_and_grad(view)
        assert_identical(values, want_batch[0], "batch values from a non-contiguous array")
        assert_identical(grads, want_batch[1], "batch grads from a non-contiguous array")
        assert_float_array(grads, (3, 3))
    want_hvp = F.hvp(np.array([1.0, 3.0, 5.0]), np.array([1.0, 0.0, 0.0]))
    assert_identical(F.hvp([1, 3, 5], np.array([1, 0, 0])), want_hvp, "hvp of int inputs")


def _calls(F: Any) -> list[Callable[[Any], Any]]:
    return [F, F.grad, F.value_and_grad, F.jacobian, F.hessian, lambda x: F.hvp(x, x)]


EXPECTED_SHAPE = r"\(3,\)|\(k, ?3\)|\(\w+, ?3\)"


@pytest.mark.parametrize(
    "x",
    [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], np.ones((2, 4)), np.ones((2, 2, 3)), [], 1.0],
    ids=["short", "long", "batch-wide", "3-D", "empty", "scalar"],
)
def test_wrong_shapes_are_refused_naming_the_expected_shape(x: Any) -> None:
    F = pyad.compile(smooth3, [1.3, 0.4, -0.7])
    for call in _calls(F):
        with pytest.raises(ValueError, match=EXPECTED_SHAPE):
            call(x)


@pytest.mark.parametrize(
    "x",
    [
        ["a", "b", "c"],
        [1j, 2.0, 3.0],
        np.array([1 + 1j, 2.0, 3.0]),
        np.array([object(), 1.0, 2.0], dtype=object),
        [None, 1.0, 2.0],
    ],
    ids=["str", "complex", "complex-array", "object-array", "None"],
)
def test_values_that_are_not_real_numbers_are_refused(x: Any) -> None:
    F = pyad.compile(smooth3, [1.3, 0.4, -0.7])
    for call in _calls(F):
        with pytest.raises(TypeError):
            call(x)
    with pytest.raises(TypeError):
        F.hvp([1.0, 2.0, 3.0], x)


# -- lifetime and threads --------------------------------------------------------------------


def _guarded(k: int) -> Fn:
    def fn(v: list[Var]) -> Any:
        return (v[0] * k if v[0] > 0 else pyad.sin(v[1])) + v[1]

    return fn


def test_functions_are_garbage_collected() -> None:
    gc.collect()
    before = count_functions()
    for k in range(200):
        F = pyad.compile(_guarded(k), [1.0, 2.0])
        assert F([1.0, 2.0]) == k + 2.0
        assert F([-1.0, 2.0]) == math.sin(2.0) + 2.0  # a retrace: F holds two traces now
    assert count_functions() >= before + 1  # the count sees a live Function
    del F
    gc.collect()
    assert count_functions() == before


def test_memory_held_does_not_grow_with_the_number_of_batch_sizes() -> None:
    """Calls with k = 1, 2, ..., 400 points: what F keeps between calls stays about what one
    400-point call needs (numpy reports its buffers to tracemalloc)."""
    F = pyad.compile(seed, [2.0, 5.0])
    tracemalloc.start()
    try:
        F.value_and_grad(np.ones((400, 2)))
        gc.collect()
        after_one = tracemalloc.get_traced_memory()[0]
        for k in range(1, 400):
            F.value_and_grad(np.ones((k, 2)))
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - after_one
    finally:
        tracemalloc.stop()
    assert growth < 1_000_000, f"F holds {growth:,} more bytes after 399 other batch sizes"


def test_calls_from_several_threads_agree() -> None:
    F = pyad.compile(mlp, np.linspace(-1, 1, MLP_INPUTS))
    rng = random.Random(2)
    points = [np.array([rng.uniform(-1, 1) for _ in range(MLP_INPUTS)]) for _ in range(8)]
    # by the batch path; each thread's calls of one point take the short way, with its kits
    want = list(zip(*F.value_and_grad(np.stack(points))))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                for x, (value, g) in zip(points, want):
                    got_value, got_g = F.value_and_grad(x)
                    assert got_value == value and np.array_equal(got_g, g)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_one_point_takes_a_short_way_to_the_batch_paths_bits() -> None:
    """F(x) and value_and_grad of one C-contiguous float64 point of the right length take a
    short way (Program.point, with output arrays and a work buffer kept between calls). It
    gives the batch path's bits, a new gradient array at every call, falls back to the
    general path where a guard fails, and leaves every other input to the general path."""
    fn = lambda v: (v[0] * v[1] if v[0] > 0 else pyad.exp(v[1]) - v[0]) + pyad.sin(v[2]) * v[0]  # noqa: E731
    F = pyad.compile(fn, [1.0, 2.0, 3.0])
    xs = np.random.default_rng(5).normal(size=(40, 3))  # both sides of the guard
    want_values, want_grads = F.value_and_grad(xs)
    grads = []
    for x, want_value, want_grad in zip(xs, want_values, want_grads):
        value, grad = F.value_and_grad(np.ascontiguousarray(x))
        assert type(value) is float and value == want_value and np.array_equal(grad, want_grad)
        assert F(np.ascontiguousarray(x)) == want_value
        grads.append(grad)
    assert all(np.array_equal(g, w) for g, w in zip(grads, want_grads))  # none overwritten
    assert F.retraces == 1
    x = xs[7]
    want = F.value_and_grad(x.copy())
    others = (x.tolist(), np.asfortranarray(xs)[7], x.astype(">f8"), np.array(x, order="F"))
    assert not np.asfortranarray(xs)[7].flags.c_contiguous
    for other in others:
        value, grad = F.value_and_grad(other)
        assert value == want[0] == F(other) and np.array_equal(grad, want[1]), type(other)
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(k, 3\)"):
        F.value_and_grad(np.zeros(4))
    pair = pyad.compile(lambda v: [v[0], v[1]], [1.0, 2.0])
    with pytest.raises(ValueError, match="needs fn to return one Var"):
        pair.value_and_grad(np.zeros(2))


def test_hvp_skips_zero_adjoints_like_the_gradient() -> None:
    """sqrt'(0) is infinite; times a zero adjoint it adds nothing in the gradient's sweep, and
    the gradient that a Hessian-vector product carries along must agree (not turn NaN). The
    Hessian itself is 0 * sqrt''(0) there, which IEEE arithmetic leaves undefined."""
    fn = lambda v: 0.0 * pyad.sqrt(v[0]) + v[0] * v[1]  # noqa: E731
    x = np.array([0.0, 3.0])
    F = pyad.compile(fn, [1.0, 1.0])
    value, grad, hv, failed = F._programs[0].hvp(x, np.array([[0.0, 1.0]]))
    assert failed == 0
    assert value == F(x)
    assert grad.tolist() == F.grad(x).tolist() == [3.0, 0.0]
    assert hv.tolist() == [[1.0, 0.0]]
