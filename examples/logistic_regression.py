"""Fit an L2-penalised logistic regression with scipy, pyad supplying value and gradient.

The loss is written once, with numpy operations on the weights, which ``pyad.compile`` passes
as a ``pyad.Array``::

    loss(w) = sum_i softplus(-y_i * (X @ w)_i) / m + lam * w.w

``pyad.compile(loss, w0)`` records it once; ``F.value_and_grad`` then evaluates value and
gradient at every point L-BFGS-B asks for, in C, without recording again (``--one-shot`` uses
``pyad.value_and_grad`` instead, which records afresh at each call). The data are the
benchmark's LR workload (docs/WORKLOADS.md), fixed by integer formulas, at a smaller size.
Before and after the fit, pyad's gradient is checked against the gradient written by hand.

    python examples/logistic_regression.py [--d 100] [--m 2000] [--one-shot]
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np

import pyad

LAM = 1e-3
PRIME = 10_007  # larger than m: no two samples alike


def data(d: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """X (m, d) with entries of variance about 1/d, and labels y of +-1 from a linear rule on
    X with one in ten flipped; all from integers, no random generator."""
    i = np.arange(m, dtype=np.int64)[:, None]
    j = np.arange(d, dtype=np.int64)[None, :]
    c = 2 * ((7919 * i + 104729 * j + 31 * i * j) % PRIME) + 1 - PRIME
    X = c / (2 * PRIME) * np.sqrt(12.0 / d)
    rule = np.array([1, -1, 0], dtype=np.int64)[np.arange(d) % 3]
    y = np.where(c @ rule > 0, 1.0, -1.0)
    y[np.arange(m) % 10 == 7] *= -1.0
    return X, y


def make_loss(X: np.ndarray, y: np.ndarray, lam: float = LAM) -> Callable[[Any], Any]:
    """The loss of w: numpy code that pyad records when w is a pyad.Array (X @ w is one matvec
    group holding X once, each elementwise operation one C call)."""
    minus_y, m = -y, float(X.shape[0])

    def loss(w: Any) -> Any:
        return pyad.sum(pyad.softplus(minus_y * (X @ w))) / m + lam * (w @ w)

    return loss


def hand_written(
    X: np.ndarray, y: np.ndarray, lam: float = LAM
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Value and gradient by hand: d/dt softplus(t) = sigmoid(t) = exp(t - softplus(t))."""
    minus_y, m = -y, float(X.shape[0])

    def value_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        t = minus_y * (X @ w)
        sp = np.logaddexp(0.0, t)
        grad = X.T @ (minus_y * np.exp(t - sp)) / m + 2.0 * lam * w
        return float(np.sum(sp)) / m + lam * float(w @ w), grad

    return value_and_grad


def grad_diff(got: np.ndarray, want: np.ndarray) -> float:
    """The largest difference relative to the gradient's largest entry."""
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from scipy.optimize import minimize

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d", type=int, default=100, help="features (default 100)")
    parser.add_argument("--m", type=int, default=2000, help="samples (default 2000)")
    parser.add_argument(
        "--one-shot", action="store_true", help="pyad.value_and_grad, recording at every call"
    )
    args = parser.parse_args(argv)
    X, y = data(args.d, args.m)
    loss, hand = make_loss(X, y), hand_written(X, y)
    w0 = np.zeros(args.d)

    start = time.perf_counter()
    fun = pyad.value_and_grad(loss) if args.one_shot else pyad.compile(loss, w0).value_and_grad
    setup = time.perf_counter() - start
    probe = ((np.arange(args.d) * 7919) % 1000) / 1000.0 - 0.5  # the benchmark's point
    before = grad_diff(fun(probe)[1], hand(probe)[1])

    start = time.perf_counter()
    result = minimize(fun, w0, jac=True, method="L-BFGS-B", tol=1e-12)
    elapsed = time.perf_counter() - start
    start_value = fun(w0)[0]
    value, grad = fun(result.x)
    # at the minimum the gradient is about 0, so only an absolute difference means anything
    after = float(np.max(np.abs(grad - hand(result.x)[1])))
    accuracy = float(np.mean(np.where(X @ result.x > 0, 1.0, -1.0) == y))
    how = "pyad.value_and_grad" if args.one_shot else f"pyad.compile ({setup * 1e3:.1f} ms)"
    print(f"d={args.d} m={args.m}: {how}, then L-BFGS-B: {result.nit} iterations, ", end="")
    print(f"{result.nfev} evaluations, {elapsed:.2f} s; converged: {result.success}")
    print(f"loss {start_value:.6f} at w=0 -> {value:.6f}; training accuracy {accuracy:.3f}")
    print(
        f"gradient vs hand-written: max diff / max |g| {before:.1e} at a point away from the "
        f"minimum, max diff {after:.1e} at the minimum (max |g| there {np.max(np.abs(grad)):.1e})"
    )
    return {
        "success": bool(result.success),
        "fun": float(value),
        "start": float(start_value),
        "accuracy": accuracy,
        "grad_rel_diff": before,
        "grad_abs_diff_at_minimum": after,
        "grad_max_at_minimum": float(np.max(np.abs(grad))),
        "x": result.x,
    }


if __name__ == "__main__":
    main()
