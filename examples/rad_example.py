"""The two computations of Eli Bendersky's rad.py, recorded on pyad's tape.

rad.py ends with a short demonstration: the logistic sigmoid at 0.5 and its derivative, then
the function of Baydin et al.'s survey "Automatic Differentiation in Machine Learning",
f(x1, x2) = ln(x1) + x1*x2 - sin(x2) at (2, 5), and its gradient. This script does the same
through :mod:`pyad.compat.rad` (only the import differs) and prints the same lines, then the
numbers to the last digit next to their closed forms.

    python examples/rad_example.py
"""

from __future__ import annotations

import math

from pyad.compat.rad import Var, exp, log, sin


def main() -> None:
    # The sigmoid 1 / (1 + e^-x) at x = 0.5; its derivative is s * (1 - s).
    xx = Var(0.5)
    sigmoid = 1 / (1 + exp(-xx))
    print(f"xx = {xx.v:.2}, sigmoid = {sigmoid.v:.2}")

    sigmoid.grad(1.0)
    print(f"dsigmoid/dxx = {xx.gv:.2}")

    # Baydin et al.: df/dx1 = 1/x1 + x2 and df/dx2 = x1 - cos(x2).
    x1 = Var(2.0)
    x2 = Var(5.0)
    f = log(x1) + x1 * x2 - sin(x2)
    print(f"x1 = {x1.v:.2}, x2 = {x2.v:.2}, f = {f.v:.2}")

    f.grad(1.0)
    print(f"df/dx1 = {x1.gv:.2}, df/dx2 = {x2.gv:.2}")

    s = 1 / (1 + math.exp(-0.5))
    print()
    print("to the last digit (pyad, closed form):")
    print(f"  sigmoid(0.5)  {sigmoid.v!r:<20} {s!r}")
    print(f"  dsigmoid/dxx  {xx.gv!r:<20} {s * (1 - s)!r}")
    print(f"  f(2, 5)       {f.v!r:<20} {math.log(2.0) + 10.0 - math.sin(5.0)!r}")
    print(f"  df/dx1        {x1.gv!r:<20} {1 / 2.0 + 5.0!r}")
    print(f"  df/dx2        {x2.gv!r:<20} {2.0 - math.cos(5.0)!r}")


if __name__ == "__main__":
    main()
