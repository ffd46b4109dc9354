"""pyad: reverse-mode automatic differentiation for Python scalars, on a tape kept in C.

    >>> from pyad import Var, log, sin
    >>> x, y = Var(2.0), Var(5.0)
    >>> f = log(x) + x * y - sin(y)
    >>> f.backward()
    >>> x.grad
    5.5

``pyad.reference`` is the pure-Python engine with the same API (the oracle and baseline).
"""

from pyad import errors, functions, reference
from pyad._version import __version__
from pyad.api import grad, hessian, hvp, jacobian, jvp, value_and_grad, vjp
from pyad.arrays import Array, array, concatenate, matmul, stack
from pyad.check import GradCheck, assert_grad, check_grad
from pyad.compiled import Function, compile
from pyad.errors import PyadError
from pyad.functions import *  # noqa: F403 - the math-like functions, listed in functions.__all__
from pyad.graph import to_dot
from pyad.primitive import primitive
from pyad.tape import Tape, TapeSummary, detect_anomaly
from pyad.threads import get_num_threads, set_num_threads
from pyad.var import Var

__all__ = [
    "Array",
    "PyadError",
    "Tape",
    "TapeSummary",
    "Var",
    "__version__",
    "array",
    "concatenate",
    "detect_anomaly",
    "errors",
    "matmul",
    "primitive",
    "reference",
    "stack",
]
__all__ += functions.__all__
__all__ += ["GradCheck", "assert_grad", "check_grad", "to_dot"]
__all__ += ["grad", "hessian", "hvp", "jacobian", "jvp", "value_and_grad", "vjp"]
__all__ += ["Function", "compile"]
__all__ += ["get_num_threads", "set_num_threads"]
