"""One trace of a function, the layer under :func:`pyad.compile`: what tracing collects
(:class:`Trace`: the guards), the C program made from it (:class:`Program`), which replays it
at new points, and the point arrays both take. :mod:`pyad.compiled` keeps a Function's
traces, :mod:`pyad._container` writes and reads them as bytes, :mod:`pyad.parallel` replays
them in worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from pyad import _native, errors
from pyad._native import check, ffi, lib
from pyad.arrays import Array, array
from pyad.tape import Tape
from pyad.var import Var

FloatArray = npt.NDArray[np.float64]
TracedFunction = Callable[[Any], Any]

CMP = ("<", "<=", ">", ">=")  # by comparison code (csrc/program.h enum pyad_cmp)
_HELD = 4  # guard kind bit: the comparison held while tracing (csrc/program.h)
MAX_VARIANTS = 16  # traces kept per Function, for inputs on different sides of guards
BLOCK_BYTES = 32 << 20  # work buffer per block of points: about the L3 (32 MiB); measured best
ONE_SEED = np.ones((1, 1))  # the seed of a scalar function's one reverse sweep
ONE_SEED.flags.writeable = False
_ONE_SEED_C = ffi.from_buffer("double[]", ONE_SEED)
# Replays of at least this many instruction-passes (points x instructions x (1 + reverse
# sweeps); instructions x (1 + directions) for hvp) release the GIL. Releasing and retaking
# it costs ~0.2 us when no other thread wants it (measured on a one-point replay of 15
# instructions); a replay of this size took 40-80 us (9-19 ns a pass on a busy machine,
# python -m bench.threads), so the release costs under 1%, and the short calls of an
# optimiser's loop keep the GIL. A thread that releases it may wait up to
# sys.getswitchinterval() to take it back from a thread running Python: the usual price,
# paid only by long calls here.
_RELEASE_WORK = 1 << 12
# The replay, one C call per Function call, is bound here and called directly, as pyad.var's
# operations are: a function of pyad._native around it cost 140 ns of a 5.6 us
# F.value_and_grad(x) of 15 instructions (2.5%; timeit, both versions in one process). Its
# status still goes to pyad._native.check.
_work = lib.pyad_program_work
_run = lib.pyad_program_run
_run_nogil = lib.pyad_program_run_nogil
_hvp = lib.pyad_program_hvp
_hvp_nogil = lib.pyad_program_hvp_nogil


class Trace:
    """What tracing collects on the tape: guards (comparisons and their outcomes)."""

    def __init__(self) -> None:
        self.kinds: list[int] = []
        self.operands: list[tuple[object, object]] = []
        self.where: list[str] = []

    def guard(self, cmp: int, a: Var, other: object, held: bool, where: str) -> None:
        self.kinds.append(cmp | (_HELD if held else 0))
        self.operands.append((a, other))  # the Vars stay alive, so their records do
        self.where.append(where)

    def value_read(self, where: str) -> errors.TraceError:
        return errors.TraceError(
            f"a traced Var's value or gradient was used at {where} (.v, .grad, "
            "backward() or predecessors); pyad.compile replays the recorded operations only, "
            "so Python computations on values cannot be replayed. Use pyad ops (pyad.relu, "
            "pyad.abs; comparisons are kept as guards), or pyad.grad / pyad.value_and_grad, "
            "which record afresh at every call"
        )

    def foreign(self, where: str) -> errors.TraceError:
        return errors.TraceError(
            f"a comparison at {where} involves a Var recorded outside the traced function; "
            "pass it as an input of fn, or compare with a plain number"
        )


def _handle_or_const(x: object) -> tuple[int, float]:
    if isinstance(x, Var):
        return x._h, 0.0
    return 0, float(x)  # type: ignore[arg-type]


class Program:
    """One trace of ``fn``: its C program and what is needed to explain its guards. The C
    program is only read by replays; each replay takes a work buffer of its own."""

    def __init__(self, fn: TracedFunction, x: FloatArray) -> None:
        tape = Tape()
        trace = tape._trace = Trace()
        try:
            with tape:
                inputs = array(x, tape=tape)
                result = fn(inputs)
        finally:
            tape._trace = None
        if isinstance(result, Array):  # an Array out is a vector of outputs (0-d: one)
            self.scalar = result.ndim == 0
            outputs = [result[()]] if self.scalar else list(result.ravel())
        else:
            self.scalar = isinstance(result, Var) or not isinstance(result, Sequence)
            outputs = [result] if self.scalar else list(result)
        for y in outputs:
            if isinstance(y, Var):
                if y.tape is not tape:
                    raise ValueError("fn returned a Var that was not computed from its inputs")
            elif not isinstance(y, (int, float, np.integer, np.floating)):
                raise TypeError(f"fn must return Vars or numbers, got {type(y).__name__}")
        self.where = trace.where
        self.held = [bool(k & _HELD) for k in trace.kinds]
        self.cmps = [CMP[k & 3] for k in trace.kinds]
        self.n_inputs, self.n_outputs = len(inputs), len(outputs)

        out_h, out_c = zip(*(_handle_or_const(y) for y in outputs)) if outputs else ((), ())
        guard_pairs = [_handle_or_const(x) for pair in trace.operands for x in pair]
        guard_h, guard_c = zip(*guard_pairs) if guard_pairs else ((), ())
        handles = inputs._h.tolist()
        p = _native.program_new(tape._p, handles, out_h, out_c, trace.kinds, guard_h, guard_c)
        self._attach(p)

    @classmethod
    def restore(
        cls, p: Any, scalar: bool, where: list[str], cmps: list[str], held: list[bool]
    ) -> Program:
        """A trace from a loaded C program ``p`` (pyad._container) and its guards'
        descriptions."""
        self = cls.__new__(cls)
        self.scalar, self.where, self.cmps, self.held = scalar, where, cmps, held
        self._attach(p)
        self.n_inputs, self.n_outputs = self.info["inputs"], self.info["outputs"]
        return self

    def _attach(self, p: Any) -> None:
        self.p = p
        self.info = _native.program_info(p)
        self.instructions = self.info["instructions"]
        self.per_point = int(_work(p, 2, 0) - _work(p, 1, 0))
        self._spare: list[FloatArray] = []
        self._kits: list[tuple[Any, ...]] = []
        self._run_point = _run_nogil if 2 * self.instructions >= _RELEASE_WORK else _run

    def work(self, points: int, directions: int = 0) -> tuple[FloatArray, int]:
        """A work buffer for a block of points (or for hvp's directions), and the doubles of it
        the replay needs. The buffer is the caller's alone until it gives it back to
        ``_spare``: replays of this program in several threads at once, the GIL released,
        must not share one. Spare buffers are kept, and replaced by larger ones as needed,
        because allocating megabytes at every call would cost page faults at every call;
        there are as many as there were replays at once (list.pop and list.append are
        atomic, which is cheaper than a lock or a thread-local on the single-point path)."""
        size = int(_work(self.p, points, directions))
        if size < 0:
            raise MemoryError("the work buffer for this program would be too large")
        try:
            buf = self._spare.pop()
        except IndexError:
            return np.empty(size), size
        return (buf if buf.size >= size else np.empty(size)), size

    def block(self, k: int) -> int:
        """Points per block of a k-point call: as many as fit in the cache budget."""
        return max(1, min(k, BLOCK_BYTES // (8 * max(self.per_point, 1))))

    def run(
        self, x: FloatArray, seeds: FloatArray | None
    ) -> tuple[FloatArray, FloatArray | None, npt.NDArray[np.int64]]:
        """Values (k, m), gradients (k, seeds, n) or None, and guard results (k,)."""
        k = x.shape[0]
        nseed = 0 if seeds is None else seeds.shape[0]
        values = np.empty((k, self.n_outputs))
        grads = np.empty((k, nseed, self.n_inputs)) if nseed else None
        guards = np.empty(k, dtype=np.int64)
        work, nwork = self.work(self.block(k))
        long = k * self.instructions * (1 + nseed) >= _RELEASE_WORK
        status = (_run_nogil if long else _run)(
            self.p,
            k,
            ffi.from_buffer("double[]", x),
            nseed,
            ffi.from_buffer("double[]", seeds) if nseed else ffi.NULL,
            ffi.from_buffer("double[]", values),
            ffi.from_buffer("double[]", grads) if nseed else ffi.NULL,
            ffi.from_buffer("int64_t[]", guards),
            ffi.from_buffer("double[]", work),
            nwork,
        )
        self._spare.append(work)
        check(status)
        return values, grads, guards

    def point(self, x: FloatArray, grad: bool) -> tuple[float, FloatArray | None, int]:
        """A scalar fn's value, its gradient if ``grad`` (else None), and the guard result at
        one point: ``run`` with ``x`` of shape (n,) and the one seed or none, the same C
        call, for the small functions an optimiser calls millions of times. x must be a
        C-contiguous float64 array of n_inputs. What ``run`` makes at every call (the
        output arrays, their C views, a work buffer) comes from a kit kept for the next
        call; only the gradient is a new array."""
        try:
            kit = self._kits.pop()  # the caller's alone until it goes back, as in work()
        except IndexError:
            kit = self._kit()
        values, grads, guards, c_values, c_grads, c_guards, c_work, nwork = kit
        status = self._run_point(
            self.p, 1, ffi.from_buffer("double[]", x), int(grad),
            _ONE_SEED_C if grad else ffi.NULL, c_values, c_grads if grad else ffi.NULL,
            c_guards, c_work, nwork,
        )  # fmt: skip
        value, g, failed = float(values[0]), grads.copy() if grad else None, int(guards[0])
        self._kits.append(kit)
        check(status)
        return value, g, failed

    def _kit(self) -> tuple[Any, ...]:
        """The arrays of one single-point replay and their C views (see point); a C view keeps
        its array alive, so the work buffer needs no other reference."""
        values, grads = np.empty(1), np.empty(self.n_inputs)
        guards = np.empty(1, dtype=np.int64)
        nwork = int(_work(self.p, 1, 0))
        return (
            values, grads, guards, ffi.from_buffer("double[]", values),
            ffi.from_buffer("double[]", grads), ffi.from_buffer("int64_t[]", guards),
            ffi.from_buffer("double[]", np.empty(nwork)), nwork,
        )  # fmt: skip

    def hvp(self, x: FloatArray, v: FloatArray) -> tuple[float, FloatArray, FloatArray, int]:
        """Value, gradient, H @ v[d] for each row d of v (ndir, n), and the guard result."""
        ndir = v.shape[0]
        value = ffi.new("double[1]")
        grad = np.empty(self.n_inputs)
        hv = np.empty((ndir, self.n_inputs))
        guard = np.zeros(1, dtype=np.int64)
        work, nwork = self.work(1, ndir)
        long = self.instructions * (1 + ndir) >= _RELEASE_WORK
        status = (_hvp_nogil if long else _hvp)(
            self.p,
            ffi.from_buffer("double[]", x),
            ndir,
            ffi.from_buffer("double[]", v),
            value,
            ffi.from_buffer("double[]", grad),
            ffi.from_buffer("double[]", hv),
            ffi.from_buffer("int64_t[]", guard),
            ffi.from_buffer("double[]", work),
            nwork,
        )
        self._spare.append(work)
        check(status)
        return float(value[0]), grad, hv, int(guard[0])

    def describe(self, failed: int) -> str:
        """The guard numbered ``failed`` (1-based, as the C code reports it), in words."""
        g = failed - 1
        return (
            f"the comparison `{self.cmps[g]}` at {self.where[g]} was {self.held[g]} when "
            f"traced and is {not self.held[g]} at this input"
        )


def as_points(x: npt.ArrayLike, n: int | None, name: str = "x") -> FloatArray:
    """x as a C-contiguous float64 array of shape (k, n)."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim == 1:
        a = a.reshape(1, -1)
    expected = "(n,) or (k, n)" if n is None else f"({n},) or (k, {n})"
    if a.ndim != 2 or (n is not None and a.shape[1] != n):
        raise ValueError(f"{name} must have shape {expected}, got {np.shape(x)}")
    return np.ascontiguousarray(a, dtype=np.float64)
