"""pyad.set_num_threads / get_num_threads, and large products cut across threads.

A matvec of at least 2^19 multiply-adds is cut into parts, one per thread, when it is
recorded, swept and replayed (csrc/parallel.c); every output is computed by one thread in the
order one thread would, so the bits must not depend on the number of threads. The C tests cut
every product of their matvec scenarios into parts against the dot records; these check the
same through Python, on a product large enough to be cut by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import pyad

#: 640 x 1,000 = 640,000 multiply-adds: cut in two at the default part size (2^18 per part)
ROWS, COLS = 640, 1_000


def bits(x: Any) -> list[int]:
    return np.asarray(x, dtype=np.float64).view(np.int64).reshape(-1).tolist()


@pytest.fixture
def threads_restored() -> Iterator[None]:
    before = pyad.get_num_threads()
    yield
    pyad.set_num_threads(before)


def test_set_and_get(threads_restored: None) -> None:
    assert pyad.set_num_threads(3) == 3
    assert pyad.get_num_threads() == 3
    assert pyad.set_num_threads(1) == 1
    assert pyad.set_num_threads(10**6) == 8  # at most 8 are used
    default = pyad.set_num_threads(None)
    assert 1 <= default <= 8 and pyad.get_num_threads() == default
    assert pyad.set_num_threads(np.int64(2)) == 2  # an index, as numpy's integers are


@pytest.mark.parametrize("bad", [0, -1])
def test_refuses_fewer_than_one(threads_restored: None, bad: int) -> None:
    pyad.set_num_threads(2)
    with pytest.raises(ValueError, match="n >= 1"):
        pyad.set_num_threads(bad)
    assert pyad.get_num_threads() == 2


def test_refuses_non_integers(threads_restored: None) -> None:
    with pytest.raises(TypeError):
        pyad.set_num_threads(1.5)  # type: ignore[arg-type]


def _loss(X: np.ndarray) -> Any:
    def loss(w: Any) -> Any:
        z = X @ w
        return pyad.sum(pyad.tanh(z) * z) + 0.5 * (w @ X[0])

    return loss


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_results_do_not_depend_on_threads(threads_restored: None, threads: int) -> None:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(ROWS, COLS)) / np.sqrt(COLS)
    w0, w1 = rng.normal(size=COLS), rng.normal(size=COLS)
    loss = _loss(X)

    def everything() -> list[list[int]]:
        value, grad = pyad.value_and_grad(loss)(w0)  # the push and the tape's sweep
        F = pyad.compile(loss, w0)
        v1, g1 = F.value_and_grad(w1)  # the replay, one point
        vb, gb = F.value_and_grad(np.stack([w0, w1, w1[::-1]]))  # a batch
        return [bits(a) for a in (value, grad, v1, g1, vb, gb)]

    pyad.set_num_threads(1)
    one = everything()
    pyad.set_num_threads(threads)
    assert everything() == one
