"""Minimise a function with scipy.optimize, pyad supplying the gradient.

The 20-dimensional Rosenbrock function is written once, with pyad operators;
``pyad.value_and_grad`` records it on a fresh tape, sweeps once, and returns what
``scipy.optimize.minimize(..., jac=True)`` wants: the value and the gradient as an array.

    python examples/scipy_fit.py [--n 20]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

import pyad


def rosenbrock(x: Sequence[Any]) -> Any:
    """sum of 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2; minimum 0 at x = (1, ..., 1)."""
    total: Any = 0.0
    for a, b in zip(x[:-1], x[1:]):
        t = b - a * a
        u = 1.0 - a
        total = total + 100.0 * t * t + u * u
    return total


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from scipy.optimize import minimize

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="dimension (default 20)")
    args = parser.parse_args(argv)
    x0 = np.full(args.n, -1.2)
    result = minimize(pyad.value_and_grad(rosenbrock), x0, jac=True, method="L-BFGS-B", tol=1e-12)
    print(f"converged: {result.success} after {result.nit} iterations, {result.nfev} gradients")
    print(f"f = {result.fun:.3e}, max |x - 1| = {np.max(np.abs(result.x - 1)):.2e}")
    return {"success": bool(result.success), "fun": float(result.fun), "x": result.x}


if __name__ == "__main__":
    main()
