"""JAX: ``jax.value_and_grad`` eagerly (one-shot) and ``jax.jit`` of it (replay).

Written as JAX users write these losses, so that the comparison is with JAX at its best:

* W1, W2 and W3 are vectorised ``jax.numpy`` code over the input vector (the network as
  matrix products over the points). Nobody writes a scalar loop in JAX; its cost per op is
  the cost of one array operation, so pyad's per-op figures meet JAX's per-element ones.
* W5 is a Python loop over JAX scalars, as in the Rogozhnikov post: ``jax.nn.softplus``
  (``logaddexp(x, 0)``, WORKLOADS.md's stable form), Python's ``sum`` of four nodes,
  ``*``, and ``jax.nn.softmax`` of the four stacked nodes, its outputs appended one by one.
  JAX has no other way to say a graph of scalars, and pays for it: every op is a dispatch in
  eager mode, and both the eager gradient and XLA's compile time grow faster than linearly in
  the number of ops (the post reports 470 s for 10 000 ops, mostly compile). :func:`max_size`
  therefore runs W5 at a twentieth of the ops asked for, at most :data:`W5_MAX_OPS`, and the
  table says so.

W4 (a chain of 100 000 sigmoids) is left out: it is W5's problem without W5's variety.

Everything runs in float64 (``jax_enable_x64``, switched on before the first array is made),
so that gradients compare with pyad.reference to rounding.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

import numpy as np

from bench import workloads as wl
from bench.peers import unavailable

NAME = "JAX"
WORKLOADS = ("W1", "W2", "W3", "W5")

#: W5's op cap: on a 2-core x86 box JAX 0.10 takes about 3.5 s for one eager
#: value-and-gradient at 500 ops and about 9 s to jit-compile it; both grow faster than
#: linearly (1000 ops: about 7 s and 26 s; 2000 ops: 28 s and 76 s), so WORKLOADS.md's 10 000
#: ops would take minutes per figure.
W5_MAX_OPS = 500
#: W5 runs at 1/W5_SHARE of the ops asked for (10 000 -> 500, --quick's 1000 -> 50), so that
#: ``--quick`` stays quick; never below W5_MIN_OPS (a few softmax rounds) unless asked.
W5_SHARE = 20
W5_MIN_OPS = 40

Loss = Callable[[Any], Any]
Replay = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _jax() -> ModuleType:
    """Import JAX with float64 enabled. The flag must be set before any array is created (an
    array made earlier stays float32), hence here, on every path into JAX."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def available() -> tuple[bool, str]:
    """(True, "jax X, jaxlib Y") when JAX imports and runs on the CPU, else (False, why)."""
    try:
        import jaxlib

        jax = _jax()
    except Exception as exc:  # a broken install is a table row, not a crash
        return unavailable(exc, "pip install jax jaxlib")
    try:
        jaxlib_version = getattr(jaxlib, "__version__", None) or jaxlib.version.__version__
    except Exception:
        jaxlib_version = "unknown"
    return True, f"jax {jax.__version__}, jaxlib {jaxlib_version}"


def max_size(workload: str, size: int) -> int:
    """W5 at a twentieth of ``size``, between :data:`W5_MIN_OPS` and :data:`W5_MAX_OPS` ops
    (never more than asked); the vectorised workloads at full size."""
    if workload == "W5":
        return min(size, W5_MAX_OPS, max(size // W5_SHARE, W5_MIN_OPS))
    return size


def inputs(workload: str, size: int) -> np.ndarray:
    """WORKLOADS.md's point of the workload (bench.workloads.input_values)."""
    if workload not in WORKLOADS:
        raise ValueError(f"JAX adapter: no workload {workload!r}; it has {WORKLOADS}")
    return np.array(wl.input_values(workload, size), dtype=np.float64)


def loss(workload: str, size: int) -> Loss:
    """The workload's loss as a function of its input vector, written in ``jax.numpy``."""
    jax = _jax()
    jnp = jax.numpy

    if workload in ("W1", "W2"):
        loss = wl.w1_array if workload == "W1" else wl.w2_array
        return lambda x: loss(jnp, x)
    if workload == "W3":
        data = np.array(wl.mlp_data(size), dtype=np.float64)
        points, targets = data[:, :2], data[:, 2]

        return lambda p: wl.w3_array(jnp, p, points, targets)
    if workload == "W5":
        softplus, softmax = jax.nn.softplus, jax.nn.softmax

        def w5(x: Any) -> Any:
            nodes = list(x)
            for k in range(size):
                r = k % 4
                if r == 0:
                    nodes.append(softplus(nodes[-10]))
                elif r == 1:
                    nodes.append(sum(nodes[-30:-10:5]))
                elif r == 2:
                    nodes.append(nodes[-20] * nodes[-10])
                else:
                    nodes.extend(softmax(jnp.stack(nodes[-4:])))
            return nodes[-1]

        return w5
    raise ValueError(f"JAX adapter: no workload {workload!r}; it has {WORKLOADS}")


def one_shot(workload: str, size: int) -> tuple[float, list[float]]:
    """``jax.value_and_grad`` without jit: JAX's eager path, tracing and running op by op."""
    jax = _jax()
    value, grad = jax.value_and_grad(loss(workload, size))(inputs(workload, size))
    return float(value), np.asarray(grad, dtype=np.float64).tolist()


def compile(workload: str, size: int) -> Replay:
    """``jax.jit(jax.value_and_grad(loss))``, compiled here by one call (JAX compiles lazily,
    at the first call, so that call belongs to the compile time, not to the replay)."""
    jax = _jax()
    fn = jax.jit(jax.value_and_grad(loss(workload, size)))
    jax.block_until_ready(fn(inputs(workload, size)))

    def replay(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = fn(x)
        return float(value), np.asarray(grad)

    return replay
