"""pyad.check_grad and pyad.assert_grad: the finite-difference gradient checker.

First the checker itself: it passes smooth functions (n-ary ops included), fails where pyad's
derivative convention differs from the finite difference (relu and abs at 0), names the
failing coordinate, takes numpy input, treats NaN and infinities as documented, and rejects bad
arguments. Then the checker at work: every unary and binary op of the C op table (enumerated
from ``pyad._native.OPS``, so a new op needs an entry below) and every n-ary function, checked
at a few points inside its domain.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import pyad
from pyad._native import OPS
from pyad.check import WORST_SHOWN, _coordinate_ok

Fn = Callable[[list[pyad.Var]], Any]

# -- smooth functions pass ----------------------------------------------------------------------

SMOOTH: dict[str, tuple[Fn, list[float]]] = {
    "readme": (lambda v: pyad.log(v[0]) + v[0] * v[1] - pyad.sin(v[1]), [2.0, 5.0]),
    "rosenbrock": (
        lambda v: pyad.sum((1 - v[i]) ** 2 + 100 * (v[i + 1] - v[i] ** 2) ** 2 for i in range(3)),
        [-1.2, 1.0, 0.8, 1.3],
    ),
    "neuron": (
        lambda v: pyad.tanh(pyad.dot(v[:3], v[3:]) + 0.1),
        [0.3, -0.7, 0.5, 1.2, 0.4, -2.0],
    ),
    "logsumexp": (lambda v: pyad.logsumexp([v[0], 2 * v[1], v[2] * v[0]]), [0.5, -1.0, 2.0]),
    "softmax_xent": (lambda v: -pyad.log(pyad.softmax(v)[1]), [0.2, 1.5, -0.3, 0.9]),
    "reused_nodes": (
        lambda v: (lambda s: s * s / (1 + s) + pyad.exp(-s))(v[0] * v[1] + v[2]),
        [0.7, 1.1, -0.4],
    ),
    "binary_functions": (
        lambda v: pyad.atan2(v[0], v[1]) * pyad.hypot(v[1], v[2]) + pyad.pow(v[2], v[0]),
        [0.6, -1.3, 2.2],
    ),
    "large_values": (lambda v: v[0] ** 3 * v[1], [1.0e3, -2.5e2]),
    "constant_of_one_input": (lambda v: v[0] * 2.0 + 1.0, [3.0, 4.0]),
}


@pytest.mark.parametrize("name", SMOOTH)
def test_smooth_functions_pass(name: str) -> None:
    fn, x = SMOOTH[name]
    result = pyad.check_grad(fn, x)
    assert result.ok, str(result)
    assert result.failed == 0
    assert "PASS" in str(result)
    assert result.grad.shape == result.numeric.shape == (len(x),)
    np.testing.assert_allclose(result.grad, result.numeric, rtol=1e-5, atol=1e-8)
    assert np.all(result.abs_err >= 0) and np.all(result.rel_err >= 0)


def test_gradient_and_value_are_pyads() -> None:
    result = pyad.check_grad(SMOOTH["readme"][0], [2.0, 5.0])
    assert result.value == 11.652071455223084
    assert result.grad.tolist() == [5.5, 1.7163378145367738]  # exactly backward()'s
    assert result.x.tolist() == [2.0, 5.0]
    assert (result.eps, result.rtol, result.atol) == (1e-6, 1e-5, 1e-8)


def test_constant_function_has_zero_gradient() -> None:
    result = pyad.check_grad(lambda v: 4.0, [1.0, 2.0])
    assert result.ok and result.grad.tolist() == [0.0, 0.0] and result.value == 4.0


def test_fn_is_called_once_plus_twice_per_coordinate() -> None:
    calls: list[list[float]] = []

    def fn(v: list[pyad.Var]) -> pyad.Var:
        calls.append([x.v for x in v])
        return v[0] * v[1] * v[2]

    pyad.check_grad(fn, [1.0, -3.0, 200.0], eps=1e-4)
    assert len(calls) == 1 + 2 * 3
    assert calls[0] == [1.0, -3.0, 200.0]
    # the step of coordinate i is eps * max(1, |x_i|)
    assert calls[5][2] - 200.0 == pytest.approx(1e-4 * 200.0)
    assert calls[1][0] - 1.0 == pytest.approx(1e-4)
    assert calls[3][1] + 3.0 == pytest.approx(3e-4)


def test_leaves_the_active_tape_alone(tape: pyad.Tape) -> None:
    x = pyad.Var(1.0)
    before = len(tape)
    assert pyad.check_grad(SMOOTH["readme"][0], [2.0, 5.0]).ok
    assert len(tape) == before
    assert pyad.Tape.current() is tape
    assert x.v == 1.0


# -- non-differentiable points fail, and the report says where ------------------------------------


def test_kink_fails_and_report_names_the_coordinate() -> None:
    # relu'(0) = 0 by pyad's convention; the central difference is (h - 0) / 2h = 0.5
    def fn(v: list[pyad.Var]) -> pyad.Var:
        return v[0] * v[1] + pyad.relu(v[2]) + pyad.exp(v[3])

    result = pyad.check_grad(fn, [1.5, -0.5, 0.0, 0.25])
    assert not result.ok
    assert result.failed == 1
    index, analytic, numeric, rel_err = result.worst[0]  # the failure comes first
    assert (index, analytic) == (2, 0.0)
    assert numeric == pytest.approx(0.5)
    assert rel_err == pytest.approx(1.0)
    report = str(result)
    assert "FAIL" in report
    failing_rows = [line for line in report.splitlines() if line.rstrip().endswith("FAIL")]
    assert len(failing_rows) == 1
    assert failing_rows[0].split()[0] == "2", report
    assert "rtol=1e-05" in report and "atol=1e-08" in report


def test_relu_kink_inside_a_composition_fails() -> None:
    result = pyad.check_grad(lambda v: pyad.tanh(pyad.relu(v[0] - v[1]) * 3.0), [0.4, 0.4])
    assert not result.ok and result.failed == 2
    assert result.grad.tolist() == [0.0, 0.0]
    np.testing.assert_allclose(result.numeric, [1.5, -1.5], rtol=1e-6)


def test_symmetric_kink_is_invisible_to_central_differences() -> None:
    # abs'(0) = 0 and the central difference (h - h) / 2h is 0 as well: abs at 0 passes, and
    # only an asymmetric kink (relu, abs(x) + relu(x), ...) shows up as a failure
    assert pyad.check_grad(lambda v: abs(v[0]), [0.0]).ok
    result = pyad.check_grad(lambda v: abs(v[0]) + pyad.relu(v[0]), [0.0])
    assert not result.ok
    assert result.grad.tolist() == [0.0]
    assert result.numeric[0] == pytest.approx(0.5)
    assert result.worst == [(0, 0.0, result.numeric[0], 1.0)]


def test_worst_lists_failures_first_and_at_most_a_few() -> None:
    n = 12
    kinked = {3, 8}

    def fn(v: list[pyad.Var]) -> pyad.Var:
        return pyad.sum(pyad.relu(v[i]) if i in kinked else v[i] * v[i] for i in range(n))

    x = [0.0 if i in kinked else 0.1 * (i + 1) for i in range(n)]
    result = pyad.check_grad(fn, x)
    assert not result.ok and result.failed == 2
    assert len(result.worst) == WORST_SHOWN
    assert sorted(i for i, *_ in result.worst[:2]) == [3, 8]
    assert all(_coordinate_ok(a, b, 1e-5, 1e-8) for _, a, b, _ in result.worst[2:])
    report = str(result)
    assert "worst coordinates" in report
    assert "2 of 12" in report


def test_failures_beyond_the_table_are_counted() -> None:
    n = WORST_SHOWN + 3
    result = pyad.check_grad(lambda v: pyad.sum(pyad.relu(x) for x in v), [0.0] * n)
    assert result.failed == n
    assert f"and {n - WORST_SHOWN} more failing" in str(result)


def test_assert_grad_raises_with_the_report() -> None:
    fn: Fn = lambda v: v[0] * v[1] + pyad.relu(v[1])  # noqa: E731
    with pytest.raises(AssertionError) as info:
        pyad.assert_grad(fn, [2.0, 0.0])
    message = str(info.value)
    assert message == str(pyad.check_grad(fn, [2.0, 0.0]))
    assert "FAIL" in message and "1 of 2" in message
    row = next(line for line in message.splitlines() if line.rstrip().endswith("FAIL"))
    assert re.match(r"\s*1\s+0\s+2\s+2\.5", row), row  # index, x, analytic, numeric


def test_assert_grad_returns_the_result_when_ok() -> None:
    result = pyad.assert_grad(SMOOTH["readme"][0], (2.0, 5.0))
    assert isinstance(result, pyad.GradCheck) and result.ok


def test_tolerances_decide() -> None:
    fn: Fn = lambda v: pyad.exp(v[0]) * 1e3  # noqa: E731
    assert pyad.check_grad(fn, [2.0]).ok
    assert not pyad.check_grad(fn, [2.0], eps=1e-2).ok  # truncation error ~ eps**2 / 6
    assert pyad.check_grad(fn, [2.0], eps=1e-2, rtol=1e-4).ok


# -- numpy input, NaN and infinity ----------------------------------------------------------------


@pytest.mark.parametrize(
    "x",
    [
        np.array([2.0, 5.0]),
        np.array([2.0, 5.0], dtype=np.float32),
        np.array([2, 5]),
        [np.float64(2.0), np.int64(5)],
        (2.0, 5.0),
        range(2, 6, 3),
    ],
    ids=["float64", "float32", "int", "numpy_scalars", "tuple", "range"],
)
def test_numpy_and_sequence_input(x: Any) -> None:
    result = pyad.check_grad(SMOOTH["readme"][0], x)
    assert result.ok, str(result)
    assert isinstance(result.grad, np.ndarray) and result.grad.dtype == np.float64
    assert result.grad.tolist() == [5.5, 1.7163378145367738]


def test_input_array_is_not_modified() -> None:
    x = np.array([2.0, 5.0])
    result = pyad.check_grad(SMOOTH["readme"][0], x)
    assert x.tolist() == [2.0, 5.0] and x.flags.writeable
    assert result.x is not x


def test_result_is_frozen_and_read_only() -> None:
    result = pyad.check_grad(SMOOTH["readme"][0], [2.0, 5.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.ok = False  # type: ignore[misc]
    for array in (result.grad, result.numeric, result.abs_err, result.rel_err, result.x):
        with pytest.raises(ValueError):
            array[0] = 1.0


def test_empty_point() -> None:
    result = pyad.check_grad(lambda v: 1.0, [])
    assert result.ok and result.grad.shape == (0,) and result.worst == []
    assert "PASS" in str(result)


@pytest.mark.parametrize(
    ("analytic", "numeric", "ok"),
    [
        (math.nan, math.nan, True),
        (math.nan, 1.0, False),
        (1.0, math.nan, False),
        (math.inf, math.inf, True),
        (-math.inf, math.inf, False),
        (math.inf, 1e300, False),
        (1.0, 1.0 + 1e-6, True),
        (1.0, 1.0 + 1e-4, False),
        (0.0, 1e-9, True),
        (0.0, 1e-7, False),
    ],
)
def test_coordinate_verdict(analytic: float, numeric: float, ok: bool) -> None:
    assert _coordinate_ok(analytic, numeric, 1e-5, 1e-8) is ok


def test_nan_in_both_gradients_passes() -> None:
    result = pyad.check_grad(lambda v: v[0] * math.nan, [1.0])
    assert math.isnan(result.grad[0]) and math.isnan(result.numeric[0])
    assert result.ok, str(result)
    assert result.abs_err[0] == 0.0
    # a NaN value makes every finite difference NaN: coordinates with a finite gradient fail
    result = pyad.check_grad(lambda v: v[0] * math.nan + v[1], [1.0, 2.0])
    assert not result.ok and result.failed == 1 and result.worst[0][0] == 1


def test_nan_in_one_gradient_fails() -> None:
    calls: list[None] = []

    def fn(v: list[pyad.Var]) -> pyad.Var:
        calls.append(None)
        # NaN only in the first (recorded) call: pyad's gradient is NaN, the FD one is not
        return v[0] * (math.nan if len(calls) == 1 else 1.0) + v[1]

    result = pyad.check_grad(fn, [1.0, 2.0])
    assert not result.ok and result.failed == 1
    assert result.worst[0][0] == 0 and math.isnan(result.worst[0][1])
    assert "nan" in str(result)


# -- bad arguments -------------------------------------------------------------------------------


def test_bad_arguments() -> None:
    fn = SMOOTH["readme"][0]
    with pytest.raises(ValueError, match="1-D"):
        pyad.check_grad(fn, [[2.0, 5.0]])
    with pytest.raises(ValueError, match="1-D"):
        pyad.check_grad(fn, 2.0)
    with pytest.raises(ValueError, match="eps"):
        pyad.check_grad(fn, [2.0, 5.0], eps=0.0)
    with pytest.raises(ValueError, match="tolerance"):
        pyad.check_grad(fn, [2.0, 5.0], rtol=-1.0)
    with pytest.raises(TypeError, match="str"):
        pyad.check_grad(lambda v: "nope", [1.0])  # type: ignore[arg-type, return-value]


def test_var_of_another_tape_is_rejected() -> None:
    outside = pyad.Var(3.0)
    with pytest.raises(ValueError, match="another tape"):
        pyad.check_grad(lambda v: outside, [1.0])


def test_domain_error_at_a_shifted_point_propagates() -> None:
    # x - h < 0: the step crosses the edge of log's domain
    with pytest.raises(ValueError):
        pyad.check_grad(lambda v: pyad.log(v[0]), [1e-7])


# -- every op of pyad, checked -------------------------------------------------------------------

#: unary ops spelled as Python operators rather than functions
UNARY_OPERATORS: dict[str, Callable[[Any], Any]] = {"neg": operator.neg, "abs": abs}
#: binary ops spelled as Python operators; ops that are also functions are checked both ways
BINARY_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "pow": operator.pow,
}

#: a few points of each unary op inside its domain, away from kinks and poles
UNARY_POINTS: dict[str, list[float]] = {
    "neg": [-1.3, 2.0],
    "abs": [-1.3, 2.0],
    "exp": [-1.5, 2.2],
    "log": [0.3, 7.0],
    "log1p": [-0.6, 3.0],
    "expm1": [-0.8, 1.3],
    "sqrt": [0.2, 9.0],
    "sin": [-2.0, 0.7],
    "cos": [-2.0, 0.7],
    "tan": [-1.0, 0.5],
    "asin": [-0.7, 0.4],
    "acos": [-0.7, 0.4],
    "atan": [-2.5, 0.6],
    "sinh": [-1.2, 2.0],
    "cosh": [-1.2, 2.0],
    "tanh": [-1.2, 0.8],
    "sigmoid": [-3.0, 0.5],
    "relu": [-0.8, 1.6],
    "softplus": [-2.0, 1.5],
}
#: a few points (a, b) of each binary op inside its domain (pow: positive base)
BINARY_POINTS: dict[str, list[tuple[float, float]]] = {
    "add": [(1.3, -0.7), (-2.0, 4.5)],
    "sub": [(1.3, -0.7), (-2.0, 4.5)],
    "mul": [(1.3, -0.7), (-2.0, 4.5)],
    "div": [(1.3, -0.7), (-2.0, 4.5)],
    "pow": [(1.7, 2.3), (0.6, -1.4)],
    "atan2": [(0.8, -1.1), (-2.0, 0.5)],
    "hypot": [(0.8, -1.1), (-2.0, 0.5)],
}

UNARY_OPS = [name for name, (_, arity) in OPS.items() if arity == 1]
BINARY_OPS = [name for name, (_, arity) in OPS.items() if arity == 2]


def binary_forms(name: str) -> dict[str, Callable[[Any, Any], Any]]:
    """Each way a user spells binary op ``name``: operator and/or pyad function."""
    forms: dict[str, Callable[[Any, Any], Any]] = {}
    if name in BINARY_OPERATORS:
        forms["operator"] = BINARY_OPERATORS[name]
    if hasattr(pyad, name) and name in pyad.__all__:
        forms["function"] = getattr(pyad, name)
    return forms


def test_every_unary_and_binary_op_has_points() -> None:
    assert sorted(UNARY_OPS) == sorted(UNARY_POINTS)
    assert sorted(BINARY_OPS) == sorted(BINARY_POINTS)
    for name in BINARY_OPS:
        assert binary_forms(name), f"binary op {name!r} has no operator or function"


@pytest.mark.parametrize("name", UNARY_OPS)
def test_unary_op(name: str) -> None:
    f = UNARY_OPERATORS.get(name) or getattr(pyad, name)
    for x in UNARY_POINTS[name]:
        pyad.assert_grad(lambda v: f(v[0]), [x])
        # composed, so that the op's partial meets a non-trivial upstream adjoint
        pyad.assert_grad(lambda v: f(v[0] * v[1]) * v[1], [x / 0.9, 0.9])
        # the constant-operand forms around it
        pyad.assert_grad(lambda v: 2.5 * f(v[0] + 0.0) - 1.0, [x])


@pytest.mark.parametrize("name", BINARY_OPS)
def test_binary_op(name: str) -> None:
    for form, f in binary_forms(name).items():
        for a, b in BINARY_POINTS[name]:
            pyad.assert_grad(lambda v: f(v[0], v[1]), [a, b])  # noqa: B023
            pyad.assert_grad(lambda v: f(v[0], b) + f(a, v[0]) * v[0], [a])  # noqa: B023
            pyad.assert_grad(lambda v: pyad.exp(f(v[0], v[1]) * 0.3), [a, b])  # noqa: B023
            assert form in ("operator", "function")


NARY: dict[str, tuple[Fn, list[list[float]]]] = {
    "sum": (
        lambda v: pyad.sum([v[0], v[1], v[0], 2.0, v[2]], start=v[1]),
        [[0.3, -1.2, 2.0], [5.0, 0.0, -3.0]],
    ),
    "dot": (
        lambda v: pyad.dot([v[0], v[1], 3.0], [v[2], v[0], v[1]]),
        [[0.3, -1.2, 2.0], [5.0, 0.7, -3.0]],
    ),
    "logsumexp": (
        lambda v: pyad.logsumexp([v[0], v[1], 1.0, v[2] * 2]),
        [[0.3, -1.2, 2.0], [50.0, 49.0, 10.0]],
    ),
    "softmax": (
        lambda v: pyad.dot(pyad.softmax([v[0], v[1], v[2], 0.5]), [1.0, -2.0, 3.0, 0.5]),
        [[0.3, -1.2, 2.0], [4.0, 0.1, -3.0]],
    ),
}


@pytest.mark.parametrize("name", NARY)
def test_nary_function(name: str) -> None:
    fn, points = NARY[name]
    for x in points:
        pyad.assert_grad(fn, x)
