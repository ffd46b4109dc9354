"""Least-squares curve fit: y = a * exp(-b * t) + c through noisy data, with the Jacobian of
the residuals from pyad (one reverse sweep per residual on one recorded tape).

    python examples/curve_fit.py [--points 50] [--plot fit.png]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import pyad


def model(params: list[Any], t: float) -> Any:
    a, b, c = params
    return a * pyad.exp(-b * t) + c


def residuals_and_jacobian(
    p: np.ndarray, t: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Residuals r_i = model(p, t_i) - y_i and their Jacobian dr_i/dp_j."""
    with pyad.Tape():
        params = [pyad.Var(float(v)) for v in p]
        res = [model(params, float(ti)) - float(yi) for ti, yi in zip(t, y)]
        jac = np.empty((len(res), len(params)))
        for i, r in enumerate(res):
            for q in params:
                q.grad = 0.0
            r.backward()
            jac[i] = [q.grad for q in params]
        return np.array([r.v for r in res]), jac


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from scipy.optimize import least_squares

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--plot", metavar="PNG", help="draw data and fit to this file")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    true = np.array([2.5, 1.3, 0.5])
    t = np.linspace(0, 4, args.points)
    y = true[0] * np.exp(-true[1] * t) + true[2] + rng.normal(0, 0.02, args.points)

    fit = least_squares(
        lambda p: residuals_and_jacobian(p, t, y)[0],
        x0=np.array([1.0, 1.0, 0.0]),
        jac=lambda p: residuals_and_jacobian(p, t, y)[1],
    )
    print("true   a, b, c =", ", ".join(f"{v:.4f}" for v in true))
    print("fitted a, b, c =", ", ".join(f"{v:.4f}" for v in fit.x))
    print(f"cost {fit.cost:.3e} after {fit.nfev} evaluations")
    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("--plot needs matplotlib: pip install matplotlib")
        else:
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.plot(t, y, ".", label="data")
            tt = np.linspace(0, 4, 200)
            ax.plot(tt, fit.x[0] * np.exp(-fit.x[1] * tt) + fit.x[2], label="fit")
            ax.set_xlabel("t")
            ax.set_ylabel("y")
            ax.legend()
            fig.tight_layout()
            fig.savefig(args.plot, dpi=100)
            print(f"wrote {args.plot}")
    return {"params": fit.x, "true": true, "cost": float(fit.cost)}


if __name__ == "__main__":
    main()
