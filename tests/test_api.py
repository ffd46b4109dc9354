"""The functional layer: grad, value_and_grad, jacobian, vjp, jvp (numpy in, numpy out)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pyad
from pyad import Var


def seed(v: list[Var]) -> Var:
    return pyad.log(v[0]) + v[0] * v[1] - pyad.sin(v[1])


def rosenbrock(v: list[Var]) -> Var:
    total: Var | float = 0.0
    for a, b in zip(v[:-1], v[1:]):
        total = total + 100.0 * (b - a * a) * (b - a * a) + (1.0 - a) * (1.0 - a)
    assert isinstance(total, Var)
    return total


def polar(v: list[Var]) -> list[Var | float]:
    r, theta = v
    return [r * pyad.cos(theta), r * pyad.sin(theta), 3.0]


def test_grad_and_value_and_grad() -> None:
    g = pyad.grad(seed)(np.array([2.0, 5.0]))
    assert g.dtype == np.float64 and g.flags.c_contiguous and g.shape == (2,)
    assert g[0] == 5.5 and g[1] == 2 - math.cos(5)
    value, g2 = pyad.value_and_grad(seed)([2.0, 5.0])
    assert value == 11.652071455223084 and np.array_equal(g, g2)
    x = np.linspace(-1.0, 1.5, 7)
    analytic = np.zeros_like(x)
    analytic[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    analytic[1:] += 200 * (x[1:] - x[:-1] ** 2)
    assert np.allclose(pyad.grad(rosenbrock)(x), analytic, rtol=1e-13, atol=1e-12)


def test_results_match_check_grad_and_a_constant_output_has_zero_gradient() -> None:
    x = [0.3, 1.7, -0.4]

    def f(v: list[Var]) -> Var:
        return pyad.tanh(v[0] * v[1]) + pyad.logsumexp(v) * v[2]

    assert np.array_equal(pyad.grad(f)(x), pyad.check_grad(f, x).grad)
    # a plain number has no gradient: almost always a Var turned into a number by mistake
    with pytest.raises(TypeError, match="plain number"):
        pyad.grad(lambda v: 2.0)(x)
    with pytest.raises(TypeError, match="plain number"):
        pyad.value_and_grad(lambda v: v[0].v * 2.0)(x)


def test_jacobian_vjp_jvp() -> None:
    x = np.array([2.0, 0.3])
    jac = pyad.jacobian(polar)(x)
    expected = np.array(
        [[math.cos(0.3), -2 * math.sin(0.3)], [math.sin(0.3), 2 * math.cos(0.3)], [0.0, 0.0]]
    )
    assert jac.shape == (3, 2) and np.allclose(jac, expected, rtol=1e-15)
    v = np.array([0.5, -1.0, 2.0])
    assert np.allclose(pyad.vjp(polar)(x, v), v @ expected, rtol=1e-15)
    t = np.array([1.0, -3.0])
    assert np.allclose(pyad.jvp(polar)(x, t), expected @ t, rtol=1e-15)
    # a scalar function's Jacobian is its gradient as one row
    assert np.array_equal(pyad.jacobian(seed)([2.0, 5.0])[0], pyad.grad(seed)([2.0, 5.0]))


def test_repeated_outputs_and_shared_nodes_do_not_leak_between_rows() -> None:
    def f(v: list[Var]) -> list[Var]:
        s = v[0] * v[1]
        return [s, s, s * s]

    jac = pyad.jacobian(f)([3.0, 4.0])
    assert np.array_equal(jac, [[4.0, 3.0], [4.0, 3.0], [2 * 12 * 4, 2 * 12 * 3]])


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="1-D"):
        pyad.grad(seed)(np.ones((2, 2)))
    with pytest.raises(ValueError, match="one Var"):
        pyad.value_and_grad(polar)([1.0, 2.0])
    with pytest.raises(ValueError, match="entries for 3 outputs"):
        pyad.vjp(polar)([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="entries for 2 inputs"):
        pyad.jvp(polar)([1.0, 2.0], [1.0])
    with pytest.raises(TypeError, match="Vars or numbers"):
        pyad.jacobian(lambda v: ["a"])([1.0])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="math domain error"):
        pyad.grad(lambda v: pyad.log(v[0]))([-1.0])
    with pyad.Tape():
        other = Var(1.0)
    with pytest.raises(ValueError, match="recorded outside"):
        pyad.grad(lambda v: other)([1.0])


def test_scipy_minimize_takes_value_and_grad() -> None:
    optimize = pytest.importorskip("scipy.optimize")
    result = optimize.minimize(
        pyad.value_and_grad(rosenbrock), np.full(5, -1.0), jac=True, method="BFGS", tol=1e-10
    )
    assert result.success and np.allclose(result.x, 1.0, atol=1e-5)
