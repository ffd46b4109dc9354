"""pyad.Array: arrays of Vars recorded with one C call per operation.

Every op of the table elementwise against the scalar path (the same records, so values and
gradients bit for bit), numpy's broadcasting and its errors, reductions and products against
numpy's, indexing and layout, the errors a scalar op raises (naming the element), and the
tape's memory in a loop that drops its arrays.
"""

from __future__ import annotations

import gc
import math
import operator
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from test_ops import BINARY_DOMAIN, BINARY_OPERATORS, UNARY_DOMAIN, UNARY_OPS

import pyad
from pyad import errors
from pyad._native import OPS

BINARY_OPS = [name for name, (_, arity) in OPS.items() if arity == 2]


def scalar_unary(name: str) -> Callable[[Any], Any]:
    return {"neg": operator.neg, "abs": abs}.get(name) or getattr(pyad, name)


def scalar_binary(name: str) -> Callable[[Any, Any], Any]:
    return BINARY_OPERATORS.get(name) or getattr(pyad, name)


def bits(x: Any) -> list[int]:
    """Exact bit patterns, so that -0.0 and NaNs compare as themselves."""
    return np.asarray(x, dtype=np.float64).view(np.int64).reshape(-1).tolist()


def assert_close(got: Any, want: Any) -> None:
    """Equal up to rounding of sums taken in another order (numpy's products)."""
    want = np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14 * np.abs(want).max())


def scalar_run(values: list[float], build: Callable[[list[pyad.Var]], list[pyad.Var]]):
    """Values of build's outputs and the gradient of their pyad.sum, on Vars, one by one."""
    with pyad.Tape():
        xs = [pyad.Var(v) for v in values]
        ys = build(xs)
        pyad.sum(ys).backward()
        return [y.v for y in ys], [x.grad for x in xs]


# -- elementwise against the scalar path ---------------------------------------------------


@pytest.mark.parametrize("name", UNARY_OPS)
def test_unary_op_elementwise_is_the_scalar_op_bit_for_bit(name: str) -> None:
    values = UNARY_DOMAIN[name]
    want_v, want_g = scalar_run(values, lambda xs: [scalar_unary(name)(x) for x in xs])
    with pyad.Tape():
        a = pyad.array(np.array(values))
        y = getattr(pyad, name)(a) if name not in ("neg", "abs") else scalar_unary(name)(a)
        assert isinstance(y, pyad.Array) and y.shape == (len(values),)
        pyad.sum(y).backward()
        assert bits(y.v) == bits(want_v)
        assert bits(a.grad) == bits(want_g)


@pytest.mark.parametrize("name", BINARY_OPS)
@pytest.mark.parametrize("form", ["vv", "vc", "cv"])
def test_binary_op_elementwise_is_the_scalar_op_bit_for_bit(name: str, form: str) -> None:
    pairs = BINARY_DOMAIN[name]
    av = [p[0] for p in pairs]
    bv = [p[1] for p in pairs]
    f = scalar_binary(name)
    n = len(pairs)
    if form == "vv":
        want_v, want_g = scalar_run(av + bv, lambda xs: [f(xs[i], xs[n + i]) for i in range(n)])
    elif form == "vc":
        want_v, want_g = scalar_run(av, lambda xs: [f(xs[i], bv[i]) for i in range(n)])
    else:
        want_v, want_g = scalar_run(bv, lambda xs: [f(av[i], xs[i]) for i in range(n)])
    with pyad.Tape():
        if form == "vv":
            a, b = pyad.array(np.array(av)), pyad.array(np.array(bv))
            y = f(a, b)
        elif form == "vc":
            a = pyad.array(np.array(av))
            y = f(a, np.array(bv))
        else:
            b = pyad.array(np.array(bv))
            y = f(np.array(av), b)
        assert isinstance(y, pyad.Array)
        pyad.sum(y).backward()
        grads = (
            np.concatenate([a.grad, b.grad])
            if form == "vv"
            else (a.grad if form == "vc" else b.grad)
        )
        assert bits(y.v) == bits(want_v)
        assert bits(grads) == bits(want_g)


def test_a_number_broadcasts_and_gives_the_constant_operand_records() -> None:
    with pyad.Tape() as t:
        a = pyad.array([1.0, 2.0, 3.0])
        before = len(t)
        y = 2.0 * a - 1
        assert len(t) == before + 6  # two records per element, no leaf for a constant
        assert y[1].op == "sub" and y[1].predecessors[0][1].op == "mul"
        assert y.v.tolist() == [1.0, 3.0, 5.0]


def test_numpy_ufuncs_record_on_the_tape() -> None:
    with pyad.Tape():
        a = pyad.array(np.array([0.5, 1.5]))
        y = np.exp(a) + np.sin(a) * np.sqrt(a) - np.square(a) / np.hypot(a, 2.0)
        want = np.exp([0.5, 1.5]) + np.sin([0.5, 1.5]) * np.sqrt([0.5, 1.5])
        want -= np.square([0.5, 1.5]) / np.hypot([0.5, 1.5], 2.0)
        assert isinstance(y, pyad.Array)
        np.testing.assert_allclose(y.v, want, rtol=1e-15)


def test_a_numpy_function_it_cannot_do_says_so() -> None:
    with pyad.Tape():
        a = pyad.array([1.0, 2.0])
        with pytest.raises(TypeError, match=r"numpy\.maximum is not supported"):
            np.maximum(a, 0.0)
        with pytest.raises(TypeError, match=r"numpy\.median is not supported"):
            np.median(a)
        with pytest.raises(TypeError, match=r"A\.v"):
            np.asarray(a)
        with pytest.raises(TypeError, match=r"A\.v"):
            float(a)


# -- broadcasting ----------------------------------------------------------------------------


def test_broadcasting_follows_numpy() -> None:
    col = np.array([[1.0], [2.0], [3.0]])
    row = np.array([[10.0, 20.0, 30.0, 40.0]])
    with pyad.Tape():
        a, b = pyad.array(col), pyad.array(row)
        y = a * b + a
        assert y.shape == (3, 4)
        np.testing.assert_array_equal(y.v, col * row + col)
        pyad.sum(y).backward()
        np.testing.assert_array_equal(a.grad, (row.sum() + 4) * np.ones((3, 1)))
        np.testing.assert_array_equal(b.grad, col.sum() * np.ones((1, 4)))


def test_a_var_broadcasts_against_an_array() -> None:
    with pyad.Tape():
        s = pyad.Var(3.0)
        a = pyad.array([1.0, 2.0])
        y = s * a
        assert isinstance(y, pyad.Array)
        pyad.sum(y).backward()
        assert s.grad == 3.0 and a.grad.tolist() == [3.0, 3.0]


def test_shapes_that_do_not_broadcast_raise_value_error_and_record_nothing() -> None:
    with pyad.Tape() as t:
        a, b = pyad.array(np.ones(2)), pyad.array(np.ones(3))
        before = len(t)
        with pytest.raises(ValueError, match="broadcast"):
            a + b
        assert len(t) == before


# -- errors ----------------------------------------------------------------------------------


def test_a_domain_error_names_the_element_and_leaves_the_tape_as_it_was() -> None:
    with pyad.Tape() as t:
        a = pyad.array([1.0, 2.0, -1.0, 3.0])
        before, nbytes = len(t), t.nbytes
        with pytest.raises(ValueError, match="element 2") as info:
            pyad.log(a)
        assert isinstance(info.value, errors.DomainError)
        assert len(t) == before and t.nbytes == nbytes
        with pytest.raises(ValueError, match=r"index \(1, 0\)"):
            pyad.sqrt(pyad.array([[1.0, 2.0], [-3.0, 4.0]]))
        with pytest.raises(OverflowError):
            pyad.exp(pyad.array([1.0, 1000.0]))
        with pytest.raises(ZeroDivisionError):
            pyad.array([1.0, 2.0]) / np.array([1.0, 0.0])


def test_non_real_dtypes_raise_type_error() -> None:
    with pytest.raises(TypeError, match="real numbers"):
        pyad.array(np.array([1 + 2j]))
    with pytest.raises(TypeError, match="real numbers"):
        pyad.array(np.array(["a"]))
    with pyad.Tape(), pytest.raises(TypeError, match="real numbers"):
        pyad.array([1.0]) + np.array([1j])


def test_arrays_of_two_tapes_do_not_mix() -> None:
    with pyad.Tape():
        a = pyad.array([1.0])
    with pyad.Tape():
        b = pyad.array([2.0])
        with pytest.raises(errors.ForeignVarError):
            a + b


def test_debug_mode_refuses_a_non_finite_element() -> None:
    with pyad.Tape(debug=True) as t:
        a = pyad.array([1.0, 0.0])
        before = len(t)
        with pytest.raises(errors.NonFiniteError, match=r"test_array\.py"):
            pyad.sqrt(a)  # sqrt'(0) is infinite
        assert len(t) == before


# -- reductions and products ----------------------------------------------------------------


def test_sums_along_axes_against_numpy_and_the_scalar_sum() -> None:
    x = np.arange(12.0).reshape(3, 4) / 7.0
    with pyad.Tape():
        a = pyad.array(x)
        total = pyad.sum(a)
        assert isinstance(total, pyad.Var)
        rows, cols = np.sum(a, axis=1), a.sum(axis=0)
        assert rows.shape == (3,) and cols.shape == (4,)
        assert total.v == pyad.sum([a[i, j] for i in range(3) for j in range(4)]).v
        np.testing.assert_allclose(rows.v, x.sum(axis=1), rtol=1e-15)
        np.testing.assert_allclose(cols.v, x.sum(axis=0), rtol=1e-15)
        np.testing.assert_allclose(a.mean(axis=0).v, x.mean(axis=0), rtol=1e-15)
        (pyad.sum(rows * np.array([1.0, 2.0, 3.0])) + cols[0]).backward()
        want = np.array([[1.0], [2.0], [3.0]]) * np.ones((3, 4))
        want[:, 0] += 1
        np.testing.assert_array_equal(a.grad, want)


def test_a_constant_matrix_times_an_array_and_its_gradient() -> None:
    rng = np.random.default_rng(1)
    X, wv, g = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=5)
    with pyad.Tape():
        w = pyad.array(wv)
        y = X @ w
        assert isinstance(y, pyad.Array) and y.shape == (5,)
        assert_close(y.v, X @ wv)
        pyad.dot(y, g).backward()
        assert_close(w.grad, X.T @ g)


def test_products_of_arrays_against_numpy() -> None:
    rng = np.random.default_rng(2)
    A, B, v = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=3)
    with pyad.Tape():
        a, b, x = pyad.array(A), pyad.array(B), pyad.array(v)
        assert_close((a @ b).v, A @ B)
        assert_close((a @ x).v, A @ v)
        assert_close((x @ b).v, v @ B)
        inner = np.dot(x, x)
        assert isinstance(inner, pyad.Var) and math.isclose(inner.v, v @ v, rel_tol=1e-14)
        inner.backward()
        np.testing.assert_allclose(x.grad, 2 * v, rtol=1e-15)
        with pytest.raises(ValueError, match="not aligned"):
            a @ a


def test_logsumexp_and_softmax_along_an_axis() -> None:
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 4.0]])
    with pyad.Tape():
        a = pyad.array(x)
        lse = pyad.arrays.logsumexp(a, axis=1)
        np.testing.assert_allclose(lse.v, np.log(np.exp(x).sum(axis=1)), rtol=1e-15)
        sm = pyad.arrays.softmax(a, axis=1)
        np.testing.assert_allclose(sm.v, np.exp(x) / np.exp(x).sum(axis=1, keepdims=True))
        assert pyad.logsumexp(a).v == pytest.approx(np.log(np.exp(x).sum()), rel=1e-15)


# -- layout ----------------------------------------------------------------------------------


def test_indexing_and_layout_record_nothing() -> None:
    with pyad.Tape() as t:
        a = pyad.array(np.arange(6.0).reshape(2, 3))
        before = len(t)
        assert isinstance(a[1, 2], pyad.Var) and a[1, 2].v == 5.0
        assert a[1].shape == (3,) and a[:, 1].v.tolist() == [1.0, 4.0]
        assert a.T.shape == (3, 2) and a.reshape(3, 2).v.tolist() == [[0, 1], [2, 3], [4, 5]]
        assert a[np.array([1, 0])].v[0].tolist() == [3.0, 4.0, 5.0]
        assert pyad.concatenate([a, a], axis=1).shape == (2, 6)
        assert pyad.stack([a[0], a[1]]).v.tolist() == a.v.tolist()
        assert len(a) == 2 and [row.shape for row in a] == [(3,), (3,)]
        assert a.size == 6 and a.ndim == 2
        assert len(t) == before


def test_an_element_is_the_var_of_its_record() -> None:
    with pyad.Tape():
        a = pyad.array([1.0, 2.0, 3.0])
        (a[0] * a[2] + pyad.sum(a * a)).backward()
        assert a[0].grad == a.grad[0] == 5.0
        assert a.grad.tolist() == [5.0, 4.0, 7.0]
        a.grad = 0.0
        assert a.grad.tolist() == [0.0, 0.0, 0.0]


def test_wrapping_vars_records_nothing() -> None:
    with pyad.Tape() as t:
        x, y = pyad.Var(1.0), pyad.Var(2.0)
        before = len(t)
        a = pyad.array([x, y])
        assert len(t) == before and a.v.tolist() == [1.0, 2.0]
        pyad.sum(a * a).backward()
        assert (x.grad, y.grad) == (2.0, 4.0)


def test_setting_the_values_of_inputs() -> None:
    with pyad.Tape():
        w = pyad.array([1.0, 2.0])
        w.v = w.v - 0.5
        assert w.v.tolist() == [0.5, 1.5]
        with pytest.raises(errors.NotLeafError):
            (w * 2.0).v = [0.0, 0.0]


def test_backward_needs_one_element() -> None:
    with pyad.Tape():
        a = pyad.array([1.0, 2.0])
        with pytest.raises(ValueError, match="one-element"):
            (a * a).backward()
        (a[:1] * 3.0).backward()
        assert a.grad.tolist() == [3.0, 0.0]


# -- segments and memory --------------------------------------------------------------------


def test_an_array_across_many_segments() -> None:
    n = 3 * pyad._native.CHUNK_RECORDS + 17
    x = np.linspace(0.5, 2.0, n)
    with pyad.Tape():
        a = pyad.array(x)
        loss = pyad.sum(pyad.log(a) * a)
        loss.backward()
        np.testing.assert_allclose(a.grad, np.log(x) + 1.0, rtol=1e-15)
        assert a[n - 1].grad == a.grad[-1]


def test_a_loop_that_drops_its_arrays_keeps_the_tape_bounded() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 10))
    with pyad.Tape() as t:
        w = pyad.array(np.zeros(10))
        sizes = []
        for _ in range(80):
            loss = pyad.sum(pyad.softplus(X @ w)) + 0.1 * pyad.dot(w, w)
            loss.backward()
            w.v = w.v - 0.01 * w.grad
            w.grad = 0.0
            del loss
            gc.collect()
            sizes.append(t.nbytes)
        # the segments in use settle within some 40 steps (as for the same loop on Vars)
        assert max(sizes[50:]) <= max(sizes[:50])


def test_an_element_is_one_var_object_as_in_a_list() -> None:
    with pyad.Tape():
        x = pyad.Var(1.0)
        a = pyad.array([x, pyad.Var(2.0)])
        assert a[0] is x and a[1] is a[1] and a[1] is a[:, None][1, 0]
        assert {a[0]: "first"}[x] == "first"


# -- arrays everywhere Vars go ----------------------------------------------------------------

X2 = np.array([[1.0, 2.0], [0.5, -1.0], [-0.3, 0.8]])


def array_loss(w: Any) -> Any:
    return pyad.sum(pyad.tanh(X2 @ w)) + w @ w


def test_check_grad_gives_fn_an_array() -> None:
    result = pyad.check_grad(array_loss, [0.3, -0.2])
    assert result.ok and result.grad.shape == (2,)


def test_to_dot_draws_the_elements_of_an_array() -> None:
    with pyad.Tape():
        w = pyad.array([0.3, -0.2])
        dot = pyad.to_dot(w * 2.0)
        assert dot.count("peripheries=2") == 2 and dot.count("shape=box") == 2
        with pytest.raises(TypeError, match="an Array"):
            pyad.to_dot("w")


def test_compiled_arrays_replay_hvp_save_and_map_as_a_fresh_recording() -> None:
    w0 = np.array([0.3, -0.2])
    F = pyad.compile(array_loss, w0)
    for w in (w0, np.array([-1.0, 2.0])):
        assert bits(F.value_and_grad(w)[1]) == bits(pyad.grad(array_loss)(w))
    np.testing.assert_allclose(F.hessian(w0), pyad.hessian(array_loss)(w0), rtol=1e-14)
    G = pyad.Function.from_bytes(F.to_bytes())
    assert bits(G.grad(w0)) == bits(F.grad(w0))
    points = np.array([[0.3, -0.2], [0.1, 0.4], [2.0, -1.0]])
    with ThreadPoolExecutor(1) as pool:
        values, grads = F.map(points, pool)
    assert bits(values) == bits(F(points))
    assert bits(grads) == bits(F.value_and_grad(points)[1])


def test_binary_functions_take_an_array_on_either_side_of_a_var() -> None:
    with pyad.Tape():
        s, a = pyad.Var(0.5), pyad.array([1.0, -2.0])
        for got, want in (
            (pyad.atan2(s, a), [math.atan2(0.5, 1.0), math.atan2(0.5, -2.0)]),
            (pyad.atan2(a, s), [math.atan2(1.0, 0.5), math.atan2(-2.0, 0.5)]),
            (pyad.hypot(a, 3.0), [math.hypot(1.0, 3.0), math.hypot(-2.0, 3.0)]),
            (pyad.pow(2.0, a), [2.0, 0.25]),
        ):
            assert isinstance(got, pyad.Array) and got.v.tolist() == want
