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
    with pytest.raises(TypeError, match="real numbers"):
        pyad.grad(seed)(np.array(["2.0", "5.0"]))
    with pytest.raises(ValueError, match="1-D"):
        pyad.jacobian(seed)(np.ones((2, 2)))
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


def test_fn_gets_an_array_it_can_use_with_numpy() -> None:
    X = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])

    def loss(w: pyad.Array) -> Var:
        return pyad.sum(pyad.softplus(X @ w)) + 0.5 * (w @ w)

    w0 = np.array([0.3, -0.2])
    value, g = pyad.value_and_grad(loss)(w0)
    z = X @ w0
    assert value == pytest.approx(np.log1p(np.exp(z)).sum() + 0.5 * w0 @ w0, rel=1e-14)
    np.testing.assert_allclose(g, X.T @ (1 / (1 + np.exp(-z))) + w0, rtol=1e-13)
    F = pyad.compile(loss, w0)
    assert F.value_and_grad(w0 + 1.0)[0] == pyad.value_and_grad(loss)(w0 + 1.0)[0]


def test_a_number_in_gives_a_float_gradient() -> None:
    g = pyad.grad(lambda x: x * x * x)(2.0)
    assert type(g) is float and g == 12.0
    value, g = pyad.value_and_grad(lambda x: pyad.sin(x))(0.0)
    assert (value, g) == (0.0, 1.0)


def test_an_input_of_any_shape_gives_a_gradient_of_its_shape() -> None:
    m = np.arange(6.0).reshape(2, 3)
    g = pyad.grad(lambda a: pyad.sum(a * a))(m)
    assert g.shape == (2, 3) and np.array_equal(g, 2 * m)


def test_argnums_and_has_aux() -> None:
    def f(a: Var, b: pyad.Array, scale: float) -> tuple[Var, str]:
        return scale * a * pyad.sum(b), "aux"

    b = np.array([1.0, 2.0])
    assert pyad.grad(f, argnums=1, has_aux=True)(3.0, b, 2.0)[1] == "aux"
    ga, gb = pyad.grad(f, argnums=(0, 1), has_aux=True)(3.0, b, 2.0)[0]
    assert ga == 6.0 and gb.tolist() == [6.0, 6.0]
    (value, aux), gb = pyad.value_and_grad(f, argnums=-2, has_aux=True)(3.0, b, 2.0)
    assert value == 18.0 and aux == "aux" and gb.tolist() == [6.0, 6.0]
    with pytest.raises(ValueError, match="argnums"):
        pyad.grad(f, argnums=3)(3.0, b, 2.0)
    with pytest.raises(TypeError, match="pair"):
        pyad.grad(lambda x: x * x, has_aux=True)(1.0)


def test_list_style_fn_keeps_working_on_the_array_it_gets() -> None:
    def rosen(v: list[Var]) -> Var:
        return pyad.sum([100 * (b - a * a) ** 2 + (1 - a) ** 2 for a, b in zip(v, v[1:])])

    x = np.array([0.5, -0.3, 1.2])
    with pyad.Tape():
        vs = [Var(t) for t in x]
        rosen(vs).backward()
        want = [v.grad for v in vs]
    assert pyad.grad(rosen)(x).tolist() == want
