"""``X @ w`` reads the caller's X in place: no copy on the tape, X kept alive as long as a record
needs it, and a row changed in place before a gradient needs it raises
:class:`pyad.errors.MatrixChangedError` with nothing computed, instead of a wrong gradient.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import pytest

import pyad
from pyad import errors

RNG = np.random.default_rng(11)


def bits(x: Any) -> list[int]:
    return np.asarray(x, dtype=np.float64).view(np.int64).reshape(-1).tolist()


def recorded(X: Any, weights: Any) -> tuple[pyad.Tape, pyad.Array, pyad.Array, pyad.Var]:
    """A tape with w, y = X @ w and loss = sum_j weights_j y_j^2."""
    t = pyad.Tape()
    with t:
        w = pyad.array(RNG.normal(size=X.shape[1]))
        y = X @ w
        loss = pyad.sum(weights * y * y)
    return t, w, y, loss


def test_the_tape_holds_no_copy() -> None:
    X = RNG.normal(size=(4000, 500))
    with pyad.Tape() as t:
        w = pyad.array(RNG.normal(size=500))
        before = t.nbytes
        X @ w
        grown = t.nbytes - before
    # per row a record (41 bytes), a link (12), a fingerprint (16) and a segment's share
    assert grown < 0.05 * X.nbytes and grown <= 100 * 4000 + 100 * 500


def test_the_gradient_is_the_copied_products() -> None:
    """The same bits as recording a private copy of X (which nothing can change)."""
    X = RNG.normal(size=(3000, 70))
    weights = RNG.normal(size=3000)
    weights[::7] = 0.0
    point = RNG.normal(size=70)
    results = []
    for matrix in (X, X.copy()):
        with pyad.Tape():
            w = pyad.array(point)
            loss = pyad.sum(weights * (matrix @ w) ** 2)
        loss.backward()
        results.append((bits(loss.v), bits(w.grad)))
    assert results[0] == results[1]


@pytest.mark.parametrize("change", ["one ulp", "doubled", "row swap", "negated columns"])
def test_a_changed_row_raises_and_changes_nothing(change: str) -> None:
    X = RNG.normal(size=(2500, 40))
    t, w, y, loss = recorded(X, RNG.normal(size=2500))
    loss.backward()  # grads to keep through the failure
    grads = [w.grad.copy(), y.grad.copy(), loss.grad]
    saved = X.copy()
    if change == "one ulp":
        X[1234, 5] = np.nextafter(X[1234, 5], np.inf)
    elif change == "doubled":
        X *= 2.0
    elif change == "row swap":
        X[[3, 4]] = X[[4, 3]]
    else:
        X[:, [0, 8]] *= -1.0
    n = len(t)
    with pytest.raises(errors.MatrixChangedError, match="changed in place"):
        loss.backward()
    assert bits(w.grad) == bits(grads[0]) and bits(y.grad) == bits(grads[1])
    assert loss.grad == grads[2] and len(t) == n
    with pytest.raises(errors.MatrixChangedError):
        y[3 if change == "row swap" else 1234].predecessors  # noqa: B018
    X[...] = saved
    loss.backward()  # as it was: works again, and adds a second time
    assert bits(w.grad) == bits(2 * grads[0])


def test_rows_a_gradient_does_not_need_may_change() -> None:
    """Only the rows the sweep reads are checked: a row of zero adjoint is never read, and a
    loss built from other rows never reads the changed one."""
    X = RNG.normal(size=(50, 6))
    weights = np.ones(50)
    weights[17] = 0.0
    _, w, y, loss = recorded(X, weights)
    X[17] += 1.0
    loss.backward()
    with pyad.Tape():
        w2 = pyad.array(w.v)
        keep = np.ones(50, dtype=bool)
        keep[17] = False
        expect = pyad.sum(weights[keep] * (X[keep] @ w2) ** 2)
    expect.backward()
    assert np.allclose(w.grad, w2.grad, rtol=1e-13, atol=0)
    with pytest.raises(errors.MatrixChangedError):
        y[17].predecessors  # noqa: B018
    y[3].backward()  # row 3 is as it was
    X[3, 0] = -X[3, 0] - 1.0
    with pytest.raises(errors.MatrixChangedError):
        y[3].backward()


def test_a_function_that_changes_its_matrix_after_using_it() -> None:
    X = RNG.normal(size=(30, 5))

    def loss(w: Any) -> Any:
        z = pyad.sum((X @ w) ** 2)
        X[0, 0] += 1.0  # after the product: the gradient would read the new X
        return z

    with pytest.raises(errors.MatrixChangedError):
        pyad.value_and_grad(loss)(np.ones(5))
    with pytest.raises(errors.MatrixChangedError):
        pyad.compile(loss, np.ones(5))


def test_the_matrix_lives_as_long_as_its_records() -> None:
    """The tape keeps X alive while a record reads it (the caller may drop it), and lets it go
    once those records are gone: collected in a training loop, or at a reset."""
    t = pyad.Tape()
    with t:
        w = pyad.array(np.ones(4))
        X = np.arange(12.0).reshape(3, 4)
        alive = weakref.ref(X)
        loss = pyad.sum(X @ w)
        del X
        gc.collect()
        assert alive() is not None
        loss.backward()
        assert bits(w.grad) == bits(np.arange(12.0).reshape(3, 4).sum(axis=0))
        del loss
        t.reset()
        assert alive() is None


def test_a_training_loop_keeps_few_matrices() -> None:
    """A new minibatch each step, on the default tape: the tape lets the old ones go."""
    w = pyad.array(np.zeros(20))
    refs = []
    alive = []
    for step in range(600):
        X = RNG.normal(size=(64, 20))
        refs.append(weakref.ref(X))
        loss = pyad.sum(pyad.softplus(X @ w))
        loss.backward()
        del X, loss
        if step in (299, 599):
            gc.collect()
            alive.append(sum(r() is not None for r in refs))
    # a few segments' worth (about 5 steps a segment), the same after 300 steps and 600
    assert alive[0] <= 100 and alive[1] <= 100, alive
    assert len(pyad.Tape.current()._borrowed) == alive[1]


@pytest.mark.parametrize(
    "make", [lambda X: X.T.copy().T, lambda X: X.astype(np.float32), lambda X: X[:, ::2]]
)
def test_matrices_numpy_must_convert(make: Any) -> None:
    """A matrix that is not C-contiguous float64 is converted once, and the conversion is
    what the tape reads: changing the original then changes nothing."""
    X0 = RNG.integers(-5, 5, size=(40, 12)).astype(np.float64)
    X = make(X0)
    expect = np.asarray(X, dtype=np.float64).sum(axis=0)
    with pyad.Tape():
        w = pyad.array(np.ones(X.shape[1]))
        loss = pyad.sum(X @ w)
    X[...] = 0
    loss.backward()
    assert bits(w.grad) == bits(expect)


def test_w_at_x_borrows_the_transpose_copy() -> None:
    X = RNG.normal(size=(8, 30))
    with pyad.Tape():
        w = pyad.array(np.ones(8))
        loss = pyad.sum(w @ X)
    X[0, 0] = 1e9  # w @ X reads a contiguous copy of X.T, which this does not change
    loss.backward()
    assert np.all(np.isfinite(w.grad)) and abs(w.grad[0]) < 1e3


def test_many_threads_find_the_same_row() -> None:
    """The check is cut into parts with the product: the first changed row is named, whatever
    the thread count."""
    X = RNG.normal(size=(3000, 400))
    saved = X.copy()
    messages = set()
    for threads in (1, 2, 3):
        pyad.set_num_threads(threads)
        try:
            _, _, _, loss = recorded(X, np.ones(3000))
            X[2200, 7] += 1.0
            X[900, 3] += 1.0
            with pytest.raises(errors.MatrixChangedError) as info:
                loss.backward()
            messages.add(str(info.value))
            X[...] = saved
            loss.backward()
        finally:
            pyad.set_num_threads(None)
    # the sweep takes the group's rows at once and names the first changed one
    assert len(messages) == 1 and "(row 900)" in messages.pop()
