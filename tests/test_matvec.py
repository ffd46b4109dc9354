"""matvec: a constant matrix times a vector of Vars (``X @ w``, ``w @ X``, ``pyad.matvec``).

One group of records holding the matrix once: values, gradients, Hessians, compiled replays
and saved functions bit for bit those of the dot records it replaces (the dots path of
``pyad.arrays`` and ``pyad.dot`` per row), and the tape's bytes about those of the matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import pyad
from pyad import arrays

RNG = np.random.default_rng(7)


def bits(x: Any) -> list[int]:
    """Exact bit patterns, so that -0.0 and NaNs compare as themselves."""
    return np.asarray(x, dtype=np.float64).view(np.int64).reshape(-1).tolist()


def dots_matvec(X: Any, w: pyad.Array) -> pyad.Array:
    """``X @ w`` by the dots path (one dot record per row), what matmul did before matvec."""
    m, d = X.shape
    x = arrays._Operand(w)
    return arrays._dots(  # type: ignore[no-any-return]
        arrays._laid_out(arrays._Operand(X), np.asarray(X, dtype=np.float64)),
        arrays._laid_out(x, np.broadcast_to(w._h, (m, d))),
        m,
        d,
        (m,),
    )


def ops_of(t: pyad.Tape) -> dict[str, int]:
    return dict(t.summary().records_per_op)


@pytest.mark.parametrize(("m", "d"), [(1, 1), (3, 5), (40, 7), (1500, 1100), (7, 2100)])
def test_values_and_gradients_are_the_dots(m: int, d: int) -> None:
    X = RNG.normal(size=(m, d))
    X[0, 0] = 0.0
    w0, c = RNG.normal(size=d), RNG.normal(size=m)
    got = []
    for path in ("matvec", "dots"):
        with pyad.Tape() as t:
            w = pyad.array(w0)
            z = X @ w if path == "matvec" else dots_matvec(X, w)
            assert ops_of(t).get(path[:-1] if path == "dots" else path) == m
            loss = pyad.sum(pyad.tanh(z) * c)
            loss.backward()
            got.append((bits(z.v), bits(loss.v), bits(w.grad), bits(z.grad)))
            # each output's operands and partials: row j's pairs
            j = m - 1
            preds = z[j].predecessors
            assert [p for p, _ in preds] == X[j].tolist()
            assert [v._h for _, v in preds] == w._h.tolist()
    assert got[0] == got[1]


def test_pyad_dot_per_row_and_w_at_x() -> None:
    X = RNG.normal(size=(6, 4))
    w0 = RNG.normal(size=4)
    y0 = RNG.normal(size=6)
    with pyad.Tape() as t:
        w, y = pyad.array(w0), pyad.array(y0)
        z, u = X @ w, y @ X  # u = X.T @ y
        assert ops_of(t) == {"leaf": 10, "matvec": 10}
        s = pyad.sum(z * z) + pyad.sum(u * u)
        s.backward()
        got = bits(z.v) + bits(u.v) + bits(w.grad) + bits(y.grad)
        again = [list(pyad.matvec(X, list(w))), pyad.matvec(X.T, list(y))]
        assert all(v.op == "matvec" for part in again for v in part)
    with pyad.Tape():
        ws, ys = [pyad.Var(v) for v in w0], [pyad.Var(v) for v in y0]
        z2 = [pyad.dot(row.tolist(), ws) for row in X]
        u2 = [pyad.dot(ys, col.tolist()) for col in X.T]
        s2 = pyad.sum([a * a for a in z2]) + pyad.sum([a * a for a in u2])
        s2.backward()
        want = bits([v.v for v in z2]) + bits([v.v for v in u2])
        want += bits([v.grad for v in ws]) + bits([v.grad for v in ys])
    assert got == want


def test_other_products_keep_the_dots() -> None:
    X = RNG.normal(size=(3, 4))
    with pyad.Tape() as t:
        W = pyad.array(RNG.normal(size=(4, 2)))
        X @ W  # a constant matrix times a 2-D Array: dots (matvecs would hold X per column)
        pyad.array(RNG.normal(size=3)) @ pyad.array(RNG.normal(size=(3, 2)))
        np.ones(4) @ W
        assert "matvec" not in ops_of(t)


def test_odd_matrices() -> None:
    """Integer, Fortran-ordered and sliced matrices, repeated and shuffled operands."""
    X = np.arange(24).reshape(4, 6)
    for M in (X, np.asfortranarray(X * 0.5), (X * 0.25)[:, ::-1], X[::2]):
        with pyad.Tape():
            w = pyad.array(np.linspace(-1.0, 1.0, 6))
            v = w[[5, 0, 0, 3, 2, 1]]
            z = M @ v
            assert bits(z.v) == bits([_left_to_right(r, v.v) for r in M])
            pyad.sum(z).backward()
            assert bits(w.grad) == bits(_grads(M, [5, 0, 0, 3, 2, 1], 6))


def _left_to_right(row: Any, x: Any) -> float:
    y = 0.0
    for a, b in zip(row.tolist(), x.tolist()):
        y = y + a * b
    return y


def _grads(M: Any, pick: list[int], n: int) -> list[float]:
    g = [0.0] * n
    for row in np.asarray(M, dtype=np.float64).tolist()[::-1]:  # newest record first
        for k, p in enumerate(pick):
            g[p] = g[p] + row[k] * 1.0
    return g


def test_tape_bytes_are_the_matrix() -> None:
    m, d = 2000, 300
    X = RNG.normal(size=(m, d))
    with pyad.Tape() as t:
        w = pyad.array(RNG.normal(size=d))
        before = t.nbytes
        X @ w
        grown = t.nbytes - before
    # the matrix, and per row a record (41 bytes), a link (12) and a segment's share
    assert grown <= 1.1 * X.nbytes + 200 * m + 100 * d, grown / X.nbytes


def _loss(X: Any, y: Any, m: int) -> Any:
    def loss(w: Any) -> Any:
        z = X @ w
        return pyad.sum(pyad.softplus(-y * z)) / m + 1e-3 * (w @ w)

    return loss


def test_compile_replay_save_load_and_hessian(tmp_path: Any) -> None:
    m, d = 300, 40
    X = RNG.normal(size=(m, d)) / np.sqrt(d)
    y = np.where(RNG.normal(size=m) > 0, 1.0, -1.0)
    loss = _loss(X, y, m)

    def loss_dots(w: Any) -> Any:
        z = dots_matvec(X, w)
        return pyad.sum(pyad.softplus(-y * z)) / m + 1e-3 * (w @ w)

    w0, w1 = RNG.normal(size=d), RNG.normal(size=d)
    F, G = pyad.compile(loss, w0), pyad.compile(loss_dots, w0)
    v1, g1 = pyad.value_and_grad(loss)(w1)
    for H in (F, G):
        v, g = H.value_and_grad(w1)
        assert bits(v) == bits(v1) and bits(g) == bits(g1)
    batch = np.stack([w0, w1, -w1])
    assert bits(F.value_and_grad(batch)[1]) == bits(G.value_and_grad(batch)[1])
    assert bits(F.value_and_grad(batch)[1][1]) == bits(g1)
    assert bits(F.hessian(w1)) == bits(G.hessian(w1))
    assert bits(F.hessian(w1)) == bits(pyad.hessian(loss)(w1))
    vdir = RNG.normal(size=d)
    assert bits(F.hvp(w1, vdir)) == bits(G.hvp(w1, vdir))
    path = tmp_path / "f.pyad"
    F.save(path)
    L = pyad.Function.load(path)
    assert L.to_bytes() == F.to_bytes()
    assert bits(L.value_and_grad(w1)[1]) == bits(g1)
    assert bits(L.hessian(w1)) == bits(F.hessian(w1))
    # the file holds the matrix once: about its bytes, not three times them
    assert len(F.to_bytes()) < 1.2 * X.nbytes + 40 * m + 1000


def test_rows_in_reused_segments_of_lower_slots() -> None:
    """A product whose later rows land in segments reused from the free list, of lower slots
    than their row index: the sweep once indexed their adjoints by slot - row, off the end of
    the tape's buffers (a crash)."""
    with pyad.Tape():
        x = pyad.array(np.ones(3))
        junk = [pyad.array(np.zeros(1024)) for _ in range(12)]
        del junk
        for _ in range(40):  # segment changes: the dead segments are collected
            pyad.array(np.zeros(1024))
        X = np.arange(15000.0).reshape(5000, 3) % 7
        y = X @ x
        slots = y._h & ((1 << 28) - 1)
        assert np.any(slots < np.arange(5000))  # the layout this test is about
        pyad.sum(y).backward()
        assert bits(x.grad) == bits(X.sum(axis=0))
