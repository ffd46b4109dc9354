"""The C peers of pyad's replay benchmark: builds, loads and drives bench/csrc/*.c.

Two baselines for ``pyad.compile`` (record once, replay forward + reverse in C):

* **the Rogozhnikov tape** (``bench/csrc/rogozhnikov.c``): our re-creation of the C design of
  A. Rogozhnikov's "Fastest Autograd in the West" (2023) — one op struct with ``int ins[8]``,
  switch-based forward, switch-based reverse that recomputes partials from the values. Graphs
  are built from Python one append call per op, as a user of that design would build them;
* **hand-written C** (``bench/csrc/handwritten.c``): value and gradient of W1, W2 and W5 in
  plain loops with the adjoint code written by hand — the floor.

Both are compiled with cffi in API mode into ``bench/.cbuild/``, in a module whose name holds a
hash of the sources and flags, so an edit to the C rebuilds and an unchanged tree just imports.
Flags are ``-O3 -std=c11`` (what the design's author used; no ``-march=native``, no
``-ffast-math``, so the peers round like pyad) and pyad's own ``-ffp-contract=off
-fno-math-errno``, after the interpreter's own extension flags
(``-fwrapv`` among them, which touches only signed integer overflow). Without a compiler,
``load()`` returns None and the reason; callers print "not available (reason)" instead of
failing.

Op counts (:func:`ops_count`) are pyad's: the number of records pyad appends for a workload,
from closed formulas that ``tests/test_bench_cpeers.py`` checks against ``len(tape)``. For W1
and W2 the Rogozhnikov graph is built op for op like pyad's records, so its ``n_ops`` is the
same number; for W5 its ``n_ops`` is WORKLOADS.md's op count (softmax is one op with four
outputs there, four records in pyad).

``python -m bench.cpeers`` prints ns per op for both peers on W1, W2 (n = 20 000) and W5
(10 000 ops).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.util
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, Callable

import numpy as np

from bench import workloads
from bench.workloads import W5_OPS, input_values, input_vector

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"
BUILD_DIR = HERE / ".cbuild"
HEADER = "cpeers.h"
SOURCES = ("rogozhnikov.c", "handwritten.c")
#: The design author's -O3 -std=c11 (IEEE semantics, portable instruction set), with the two
#: floating-point flags pyad itself is built with (no fused multiply-adds, no errno from libm)
#: so that both sides get the same code generation; plus warnings: the peers build clean.
CFLAGS = ("-O3", "-std=c11", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wextra")
MODULE_PREFIX = "_cpeers_"

#: The workloads the C peers implement. (W5_INPUTS, the initial nodes x[i] = i, and W5_OPS,
#: the default op count, come from bench.workloads, where W5 is defined; read them here too.)
PEER_WORKLOADS = ("W1", "W2", "W5")
_cache: tuple[ModuleType | None, str] | None = None


# -- building and loading -------------------------------------------------------------------------


def _cdef(header_text: str) -> str:
    """The declarations between the CDEF markers of cpeers.h: the header is the cdef, so no
    prototype is typed twice."""
    start = header_text.index("/* CDEF BEGIN */") + len("/* CDEF BEGIN */")
    end = header_text.index("/* CDEF END */")
    return header_text[start:end]


def _module_name(texts: Sequence[str]) -> str:
    """A name that changes whenever anything that goes into the binary changes."""
    import cffi

    h = hashlib.sha256()
    for part in (*texts, " ".join(CFLAGS), cffi.__version__, sys.implementation.cache_tag):
        h.update(part.encode())
        h.update(b"\0")
    return MODULE_PREFIX + h.hexdigest()[:16]


def _import_extension(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _find_built(name: str) -> Path | None:
    for path in BUILD_DIR.glob(name + ".*"):
        if path.suffix in (".so", ".pyd"):
            return path
    return None


def _build(name: str, cdef: str) -> Path:
    """Compile into a private directory, then move the extension into the cache atomically, so
    that two processes building at once never import a half-written file."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(
        name,
        f'#include "{HEADER}"',
        sources=[str(CSRC / s) for s in SOURCES],
        include_dirs=[str(CSRC)],
        extra_compile_args=list(CFLAGS),
        libraries=["m"],
    )
    BUILD_DIR.mkdir(exist_ok=True)
    tmp = BUILD_DIR / f"tmp-{os.getpid()}"
    try:
        built = Path(ffi.compile(tmpdir=str(tmp), verbose=False))
        final = BUILD_DIR / built.name
        os.replace(built, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for stale in BUILD_DIR.glob(MODULE_PREFIX + "*"):
        if not stale.name.startswith(name + "."):
            with contextlib.suppress(OSError):  # only a cache; another process may hold it
                stale.unlink()
    return final


def load() -> tuple[ModuleType | None, str]:
    """The compiled peers module (with ``.ffi`` and ``.lib``) and ``""``, or ``(None, reason)``
    when it cannot be built (no cffi, no compiler, a compile error). Cached per process."""
    global _cache
    if _cache is None:
        _cache = _load_uncached()
    return _cache


def _load_uncached() -> tuple[ModuleType | None, str]:
    try:
        header = (CSRC / HEADER).read_text()
        texts = [header] + [(CSRC / s).read_text() for s in SOURCES]
        name = _module_name(texts)
        path = _find_built(name)
        if path is None:
            path = _build(name, _cdef(header))
        return _import_extension(name, path), ""
    except Exception as exc:  # any failure means "no peers here", never a crash of the bench
        lines = str(exc).strip().splitlines()
        detail = lines[-1] if lines else ""
        return None, f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _native() -> ModuleType:
    module, why = load()
    if module is None:
        raise RuntimeError(f"C peers not available ({why})")
    return module


def _check(lib: Any, ffi: Any, status: int, what: str) -> None:
    if status != lib.RZ_OK:
        reason = ffi.string(lib.rz_strstatus(status)).decode()
        raise RuntimeError(f"{what} failed: {reason} (status {status})")


# -- W5 in Python (for pyad and pyad.reference) ---------------------------------------------------


def w5_nodes(m: Any, n_ops: int) -> list[Any]:
    """WORKLOADS.md's W5 on an engine ``m`` (pyad, pyad.reference, or the Rogozhnikov graph's
    :func:`_rz_engine`): every node in order, the 100 inputs first; the loss is the last one.
    bench/workloads.py holds the one definition; the peers compare every node's adjoint, so
    they need all nodes, not only the loss."""
    return workloads.w5_nodes(m, workloads.w5_inputs(m, n_ops), n_ops)


def ops_count(workload: str, size: int) -> int:
    """Records pyad appends for ``workload`` at ``size`` (leaves excluded): the denominator of
    every ns/op figure. Closed formulas, checked against pyad's ``len(tape)`` by the tests:
    W1 6 records per term (log, mul, add, sin, sub, and the accumulating add — the first one
    adds to the integer 0), W2 8 per term, W5 1 per softplus/sum/mul op and 4 per softmax."""
    if workload == "W1":
        return 6 * (size - 1)
    if workload == "W2":
        return 8 * (size - 1)
    if workload == "W5":
        full, tail = divmod(size, 4)
        return 7 * full + tail
    raise ValueError(f"unknown workload {workload!r}; expected one of {PEER_WORKLOADS}")


def workload_inputs(workload: str, size: int) -> np.ndarray:
    """The inputs the peers are evaluated at: WORKLOADS.md's x vector (W1, W2) or 0..99 (W5)."""
    return np.array(input_values(workload, size), dtype=np.float64)


# -- the Rogozhnikov tape -------------------------------------------------------------------------


class RogozhnikovGraph:
    """One graph recorded on a Rogozhnikov C tape; ``replay(x)`` re-evaluates it in one call.

    Nodes are plain ints (indices into the tape's value array), as in the original design.
    """

    def __init__(self) -> None:
        module = _native()
        self._ffi = ffi = module.ffi
        self._lib = lib = module.lib
        tape = lib.rz_tape_new()
        if tape == ffi.NULL:
            raise MemoryError("rz_tape_new failed")
        self._tape = ffi.gc(tape, lib.rz_tape_free)
        self._ins = ffi.new("int[]", lib.RZ_MAX_INS)
        self._node = ffi.new("int *")
        self._value = ffi.new("double *")

    def _ok(self, status: int, what: str) -> None:
        _check(self._lib, self._ffi, status, what)

    # building
    def input(self, value: float) -> int:
        """A new input node (inputs are set by ``replay`` in creation order)."""
        self._ok(self._lib.rz_tape_input(self._tape, value, self._node), "input")
        return int(self._node[0])

    def const(self, value: float) -> int:
        """A new constant node."""
        self._ok(self._lib.rz_tape_const(self._tape, value, self._node), "const")
        return int(self._node[0])

    def op(self, op_type: int, *ins: int) -> int:
        """Append one op (evaluated at once); returns its (first) output node."""
        buf = self._ins
        if len(ins) <= len(buf):
            for j, node in enumerate(ins):
                buf[j] = node
        else:  # let the C side refuse it, as it would refuse any caller
            buf = self._ffi.new("int[]", list(ins))
        rc = self._lib.rz_tape_append(self._tape, op_type, buf, len(ins), self._node)
        _check(self._lib, self._ffi, rc, "append")
        return int(self._node[0])

    # evaluating
    @property
    def n_ops(self) -> int:
        """Ops on the tape (a softmax counts once, whatever its number of outputs)."""
        return int(self._lib.rz_tape_n_ops(self._tape))

    @property
    def n_nodes(self) -> int:
        return int(self._lib.rz_tape_n_nodes(self._tape))

    @property
    def n_inputs(self) -> int:
        return int(self._lib.rz_tape_n_inputs(self._tape))

    def replay(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Value of the output node and its gradient w.r.t. the inputs, at ``x`` (float64)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        grad = np.empty(x.shape[0], dtype=np.float64)
        ffi = self._ffi
        rc = self._lib.rz_tape_replay(
            self._tape,
            ffi.from_buffer("double[]", x),
            x.shape[0],
            ffi.from_buffer("double[]", grad),
            self._value,
        )
        _check(self._lib, ffi, rc, "replay")
        return float(self._value[0]), grad

    def node_values(self) -> np.ndarray:
        """Every node's value (after the last evaluation)."""
        return self._read(self._lib.rz_tape_values)

    def node_grads(self) -> np.ndarray:
        """Every node's adjoint (after the last replay)."""
        return self._read(self._lib.rz_tape_grads)

    def _read(self, reader: Any) -> np.ndarray:
        out = np.empty(self.n_nodes, dtype=np.float64)
        rc = reader(self._tape, self._ffi.from_buffer("double[]", out), out.shape[0])
        _check(self._lib, self._ffi, rc, "read")
        return out


class _RzNode:
    """A node of a Rogozhnikov graph as an engine value, so that W5's one definition
    (:func:`bench.workloads.w5_nodes`) also builds the C graph: ``*`` appends a mul op."""

    __slots__ = ("g", "i")

    def __init__(self, g: RogozhnikovGraph, i: int) -> None:
        self.g, self.i = g, i

    def __mul__(self, other: _RzNode) -> _RzNode:
        g = self.g
        return _RzNode(g, g.op(g._lib.RZ_MUL, self.i, other.i))


def _rz_engine(g: RogozhnikovGraph) -> SimpleNamespace:
    """The engine (``Var, softplus, sum, softmax`` and ``*``) that records W5 on ``g``, one
    append call per op; softmax is one op whose 4 outputs are consecutive nodes."""
    lib = g._lib

    def var(value: float) -> _RzNode:
        return _RzNode(g, g.input(value))

    def softplus(a: _RzNode) -> _RzNode:
        return _RzNode(g, g.op(lib.RZ_SOFTPLUS, a.i))

    def add_all(xs: Iterable[_RzNode]) -> _RzNode:
        return _RzNode(g, g.op(lib.RZ_SUM, *(a.i for a in xs)))

    def softmax(xs: Iterable[_RzNode]) -> list[_RzNode]:
        ins = [a.i for a in xs]
        first = g.op(lib.RZ_SOFTMAX, *ins)
        return [_RzNode(g, first + j) for j in range(len(ins))]

    return SimpleNamespace(Var=var, softplus=softplus, sum=add_all, softmax=softmax)


def rogozhnikov_graph(workload: str, size: int) -> RogozhnikovGraph:
    """Record W1 / W2 (``size`` = n parameters) or W5 (``size`` = ops) on a Rogozhnikov tape,
    one append call from Python per op. Constants are constant nodes, and W1/W2 start their
    sum with a constant 0 as pyad does (``0 + term``), so the ops match pyad's records."""
    g = RogozhnikovGraph()
    lib = g._lib
    add, sub, mul = lib.RZ_ADD, lib.RZ_SUB, lib.RZ_MUL
    op = g.op
    if workload in ("W1", "W2"):
        xs = [g.input(v) for v in input_vector(size)]
        acc = g.const(0.0)
        if workload == "W1":
            log, sin = lib.RZ_LOG, lib.RZ_SIN
            for a, b in zip(xs[:-1], xs[1:]):
                term = op(sub, op(add, op(log, a), op(mul, a, b)), op(sin, b))
                acc = op(add, acc, term)
        else:
            one, hundred = g.const(1.0), g.const(100.0)
            for a, b in zip(xs[:-1], xs[1:]):
                t = op(sub, b, op(mul, a, a))
                u = op(sub, one, a)
                term = op(add, op(mul, hundred, op(mul, t, t)), op(mul, u, u))
                acc = op(add, acc, term)
        _check(lib, g._ffi, lib.rz_tape_set_output(g._tape, acc), "set_output")
    elif workload == "W5":
        nodes = w5_nodes(_rz_engine(g), size)
        _check(lib, g._ffi, lib.rz_tape_set_output(g._tape, nodes[-1].i), "set_output")
    else:
        raise ValueError(f"unknown workload {workload!r}; expected one of {PEER_WORKLOADS}")
    return g


# -- hand-written C --------------------------------------------------------------------------------


class Handwritten:
    """``h(x) -> (value, gradient)`` from the hand-written C of one workload.

    For W5, ``x`` is the 100 inputs and the gradient is w.r.t. them; every node's value and
    adjoint from the last call stay readable (``node_values()``, ``node_grads()``).
    """

    def __init__(self, workload: str, size: int | None = None) -> None:
        if workload not in PEER_WORKLOADS:
            raise ValueError(f"unknown workload {workload!r}; expected one of {PEER_WORKLOADS}")
        module = _native()
        self._ffi, self._lib = module.ffi, module.lib
        self.workload = workload
        self._value = self._ffi.new("double *")
        self.n_ops = W5_OPS if size is None else size
        if workload == "W5":
            n_nodes = int(self._lib.hw_w5_n_nodes(self.n_ops))
            if n_nodes < 0:
                raise ValueError(f"W5 with {self.n_ops} ops is too large")
            self._vals = np.zeros(n_nodes, dtype=np.float64)
            self._adj = np.zeros(n_nodes, dtype=np.float64)

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        ffi, lib = self._ffi, self._lib
        x = np.ascontiguousarray(x, dtype=np.float64)
        n = x.shape[0]
        grad = np.empty(n, dtype=np.float64)
        px, pg = ffi.from_buffer("double[]", x), ffi.from_buffer("double[]", grad)
        if self.workload == "W1":
            rc = lib.hw_w1(px, n, pg, self._value)
        elif self.workload == "W2":
            rc = lib.hw_w2(px, n, pg, self._value)
        else:
            rc = lib.hw_w5(
                px,
                n,
                self.n_ops,
                ffi.from_buffer("double[]", self._vals),
                ffi.from_buffer("double[]", self._adj),
                self._vals.shape[0],
                pg,
                self._value,
            )
        _check(lib, ffi, rc, f"hw_{self.workload.lower()}")
        return float(self._value[0]), grad

    def node_values(self) -> np.ndarray:
        """W5 only: every node's value after the last call."""
        return self._vals.copy()

    def node_grads(self) -> np.ndarray:
        """W5 only: every node's adjoint after the last call."""
        return self._adj.copy()


def handwritten(workload: str, size: int | None = None) -> Handwritten:
    """The hand-written value-and-gradient of W1, W2 or W5 (``size``: W5's op count, default
    10 000; W1 and W2 take n from ``len(x)``)."""
    return Handwritten(workload, size)


# -- timing ---------------------------------------------------------------------------------------


def time_replay(
    fn: Callable[[np.ndarray], object], x: np.ndarray, repeats: int, min_seconds: float = 2e-3
) -> list[float]:
    """Seconds per call of ``fn(x)``, one figure per repeat.

    One untimed call warms caches and sizes the repeats: each repeat runs enough calls to last
    about ``min_seconds``, so that sub-millisecond calls are not lost in timer resolution. The
    garbage collector is off while timing (every call allocates one gradient array)."""
    start = time.perf_counter()
    fn(x)
    once = time.perf_counter() - start
    inner = max(1, int(min_seconds / once) if once > 0 else 1000)
    times = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(inner):
                fn(x)
            times.append((time.perf_counter() - start) / inner)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def _main() -> None:
    """Print ns/op of both peers on W1, W2 and W5, and their ratio (the figure that carries
    over between machines: absolute times here drift by tens of percent between runs)."""
    repeats = 21
    cases = (("W1", 20_000), ("W2", 20_000), ("W5", W5_OPS))
    module, why = load()
    print(f"C peers: ns per op (op = a pyad record), median of {repeats} repeats of >= 10 ms")
    if module is None:
        print(f"not available ({why})")
        return
    print(f"{'workload':<16}{'pyad ops':>10}{'Rogozhnikov':>13}{'hand-written':>14}{'ratio':>8}")
    w5_per_workload_op = ""
    for workload, size in cases:
        ops = ops_count(workload, size)
        x = workload_inputs(workload, size)
        peers: tuple[Callable[[np.ndarray], object], ...] = (
            rogozhnikov_graph(workload, size).replay,
            handwritten(workload, size),
        )
        # Round-robin repeats, so that a burst of machine noise hits both peers alike.
        samples: tuple[list[float], list[float]] = ([], [])
        for _ in range(repeats):
            for fn, times in zip(peers, samples):
                times += time_replay(fn, x, 1, 0.01)
        rz, hw = (statistics.median(times) for times in samples)
        label = f"{workload} ({'ops' if workload == 'W5' else 'n'}={size})"
        print(f"{label:<16}{ops:>10}{rz / ops * 1e9:>13.2f}{hw / ops * 1e9:>14.2f}{rz / hw:>8.2f}")
        if workload == "W5":
            w5_per_workload_op = (
                f"Rogozhnikov {rz / size * 1e9:.2f} ns, hand-written {hw / size * 1e9:.2f} ns"
            )
    print(f"W5 per workload op ({W5_OPS:,} ops, softmax counted once): {w5_per_workload_op}")


if __name__ == "__main__":
    _main()
