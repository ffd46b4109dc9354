"""``pyad.compile``: record a function once, then evaluate it and its derivatives in C alone.

    >>> import numpy as np, pyad
    >>> def rosen(v):
    ...     return pyad.sum([100 * (b - a * a) ** 2 + (1 - a) ** 2 for a, b in zip(v, v[1:])])
    >>> F = pyad.compile(rosen, np.zeros(3))
    >>> F.value_and_grad(np.array([1.0, 1.0, 1.0]))
    (0.0, array([0., 0., 0.]))

Tracing runs ``fn`` on Vars of a private tape; the records that the outputs need are copied
into a C *program* (csrc/program.c). Each call then replays that program (csrc/replay.c):
a forward pass recomputing values and partials from the inputs, then reverse sweeps, on
numpy buffers, with no Python per operation. Values and gradients are bit for bit those of
a fresh recording at the same input.

Python control flow is frozen at trace time. Comparisons of Vars (``<``, ``<=``, ``>``,
``>=``, so also ``max``/``min`` and ``if x > 0:``) and truthiness (``if x:``) are recorded as
*guards*; a call whose input changes a guard's outcome traces ``fn`` again there
(``F.retraces`` counts it), or with ``strict=True`` raises :class:`pyad.errors.GuardError`.
A Function that traces again at most of the points it evaluates (after 20) warns once,
:class:`pyad.errors.RetraceWarning`. Reading a value (``x.v``) while tracing raises
:class:`pyad.errors.TraceError`: what Python computes from a value cannot be replayed. Kinks
inside ops (``abs``, ``relu``, ...) are not guards: the replay recomputes them.

Threads: a Function may be called from several threads at once. Its C programs are only read
by a replay, each replay takes a work buffer of its own, and replays long enough to pay for
it (see ``pyad._program._RELEASE_WORK``) run with the GIL released, so threads replaying
batches use several cores. Retraces are serialised by a lock.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import warnings
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from pyad import errors
from pyad._program import (
    BLOCK_BYTES,
    MAX_VARIANTS,
    ONE_SEED,
    FloatArray,
    Program,
    TracedFunction,
    as_points,
)
from pyad.var import _PACKAGE_DIR

# pyad._container and pyad.parallel (which import neither this module nor pyad.saved) are
# imported by the methods that use them, on their first call: they bring json,
# multiprocessing and concurrent.futures, which would add about 20 ms to `import pyad`
# (python -X importtime) for methods most programs never call.

# RetraceWarning: once retraces are most of the points evaluated, after at least this many
# points (a few retraces while the kept traces fill up are normal).
_WARN_AFTER = 20
_FLOAT64 = np.dtype(np.float64)
_COUNTED = ("input", "output", "instruction", "guard")  # what the repr counts


class Function:
    """A function recorded once by :func:`pyad.compile`, evaluated in C at new inputs.

    ``x`` is a 1-D array of the n inputs, or a 2-D array (k, n) of k points evaluated in one
    call (results then gain a leading axis of length k). Inputs are converted to float64.

    Thread-safe: several threads may call one Function at once and get what one thread
    would. Each replay takes a work buffer of its own; replays of many points or
    instructions release the GIL, so batches in several threads run on several cores. A
    retrace (an input flipping a guard) runs ``fn`` in the calling thread, on a tape of its
    own, under a lock that also guards the kept traces and ``retraces``: two threads flipping
    the same guard trace once. ``fn`` itself must then be safe to call from any thread.
    """

    def __init__(self, fn: TracedFunction, x0: npt.ArrayLike, strict: bool = False) -> None:
        x = as_points(x0, None, "x0")
        if np.ndim(x0) != 1:
            raise ValueError(f"x0 must be one point (a 1-D array), got shape {np.shape(x0)}")
        self._setup([Program(fn, x[0])], fn, strict, str(getattr(fn, "__name__", "fn")))

    @classmethod
    def _of_bytes(
        cls, data: bytes | bytearray | memoryview, fn: TracedFunction | None = None
    ) -> Function:
        """The Function of :meth:`to_bytes`'s bytes, with ``fn`` (None: it cannot trace
        again): what from_bytes, load, pyad.saved.from_bytes and unpickling make."""
        from pyad import _container  # deferred: see the imports

        programs, strict, name = _container.read(data)
        self = cls.__new__(cls)
        self._setup(programs, fn, strict, name)
        return self

    def _setup(
        self, programs: list[Program], fn: TracedFunction | None, strict: bool, name: str
    ) -> None:
        #: the traced Python function; None for a Function loaded without it (see load)
        self.fn = fn
        self._name = name
        self.strict = bool(strict)
        #: how many times ``fn`` was traced again because an input flipped a guard
        self.retraces = 0
        # Points evaluated, for RetraceWarning (a lost update between threads only moves
        # when the warning comes).
        self._evaluated = 0
        self._warned = False
        self._programs = programs
        # The shape of one point where value_and_grad may take the short way: (n,) for a
        # scalar fn (every trace has the first one's inputs and output shape), else None.
        first = programs[0]
        self._point_shape = (first.n_inputs,) if first.scalar else None
        # Held while the kept traces or the retrace count change, and while tracing; readers
        # take self._programs[0] without it (one list read, and the program stays alive in
        # their frame even if another thread drops it from the list).
        self._lock = threading.RLock()

    # -- shape ------------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return self._programs[0].n_inputs

    @property
    def n_outputs(self) -> int:
        return self._programs[0].n_outputs

    @property
    def scalar(self) -> bool:
        """True when fn returns one Var or number (not a sequence)."""
        return self._programs[0].scalar

    @property
    def info(self) -> dict[str, int]:
        """Sizes of the current trace's program: instructions, value slots, constants,
        n-ary operand entries, guards and bytes held."""
        return dict(self._programs[0].info)

    def __repr__(self) -> str:
        i = self.info
        counts = ", ".join(errors._count(i[k + "s"], k) for k in _COUNTED)
        return f"<pyad.Function {self._name}: {counts}, retraces={self.retraces}>"

    # -- saving (the bytes are pyad._container's, docs/FORMAT.md) ---------------------------
    def to_bytes(self) -> bytes:
        """Every trace's program and what its guards' messages need, as bytes (no pickle)."""
        from pyad import _container  # deferred: see the imports

        return _container.write(self._programs, self._name, self.strict)

    @classmethod
    def from_bytes(cls, data: bytes) -> Function:
        """The Function of :meth:`to_bytes`'s bytes, checked throughout (else
        :class:`pyad.errors.FormatError`). It has no ``fn``: an input that no stored trace's
        guards accept raises :class:`pyad.errors.GuardError` instead of tracing again."""
        return cls._of_bytes(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_bytes` to the file ``path``."""
        with open(path, "wb") as out:
            out.write(self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Function:
        """The Function saved in the file ``path`` (see :meth:`from_bytes`)."""
        with open(path, "rb") as src:
            return cls._of_bytes(src.read())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles as :meth:`to_bytes` plus ``fn`` where ``fn`` itself pickles (a module-level
        function), so that the copy can still trace again; otherwise as a loaded Function."""
        fn = self.fn if self.fn is not None and _picklable(self.fn) else None
        return self._of_bytes, (self.to_bytes(), fn)

    # -- evaluation -------------------------------------------------------------------------
    def __call__(self, x: npt.ArrayLike) -> Union[float, FloatArray]:
        """fn at x: a float (scalar fn) or array (m,); with k points, (k,) or (k, m)."""
        if self._is_one_point(x):
            value, _, failed = self._programs[0].point(x, grad=False)  # type: ignore[arg-type]
            if not failed:
                self._evaluated += 1
                return value
        pts, batched = self._points(x)
        values, _ = self._evaluate(pts, None)
        out = values[:, 0] if self.scalar else values
        if batched:
            return np.ascontiguousarray(out)
        return float(out[0]) if self.scalar else out[0]  # a view: its base is ours alone

    def value_and_grad(self, x: npt.ArrayLike) -> tuple[Union[float, FloatArray], FloatArray]:
        """(fn(x), gradient): (float, (n,)), or ((k,), (k, n)) for k points. Fits
        ``scipy.optimize.minimize(F.value_and_grad, x0, jac=True)``."""
        if self._is_one_point(x):
            value, grad, failed = self._programs[0].point(x, grad=True)  # type: ignore[arg-type]
            if not failed:
                self._evaluated += 1
                return value, grad  # type: ignore[return-value]
        self._need_scalar("value_and_grad")
        pts, batched = self._points(x)
        values, grads = self._evaluate(pts, ONE_SEED)
        assert grads is not None
        if batched:
            return np.ascontiguousarray(values[:, 0]), grads[:, 0, :]
        return float(values[0, 0]), grads[0, 0]  # a view, not a copy of n floats

    def grad(self, x: npt.ArrayLike) -> FloatArray:
        """The gradient at x, (n,), or (k, n) for k points."""
        return self.value_and_grad(x)[1]

    def jacobian(self, x: npt.ArrayLike) -> FloatArray:
        """d outputs / d inputs, (m, n), or (k, m, n) for k points: one forward pass and one
        reverse sweep per output."""
        pts, batched = self._points(x)
        _, grads = self._evaluate(pts, np.eye(self.n_outputs))
        assert grads is not None
        return grads if batched else grads[0]

    def hvp(self, x: npt.ArrayLike, v: npt.ArrayLike) -> FloatArray:
        """Hessian-vector product H(x) @ v, (n,); x and v of shape (k, n) give (k, n). By
        forward-over-reverse: one pass each way carrying tangents."""
        self._need_scalar("hvp")
        pts, batched = self._points(x)
        dirs, _ = self._points(v, "v")
        if dirs.shape != pts.shape:
            raise ValueError(f"v must have the shape of x, {np.shape(x)}, got {np.shape(v)}")
        out = np.empty(pts.shape)
        for i in range(pts.shape[0]):
            out[i] = self._hvp_point(pts[i], dirs[i : i + 1])[0]
        return out if batched else out[0]

    def hessian(self, x: npt.ArrayLike) -> FloatArray:
        """The Hessian at x, (n, n): Hessian-vector products with every unit vector, many
        directions per pass."""
        self._need_scalar("hessian")
        pts, batched = self._points(x)
        if batched:
            raise ValueError(f"hessian takes one point (shape ({self.n_inputs},))")
        n = self.n_inputs
        hess = np.empty((n, n))
        per_dir = 2 * (self.info["slots"] + self.info["instructions"]) + self.info["entries"]
        chunk = max(1, min(n, BLOCK_BYTES // (8 * max(per_dir, 1))))
        eye = np.eye(n)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            hess[start:stop] = self._hvp_point(pts[0], eye[start:stop])
        return hess

    def map(
        self,
        x: npt.ArrayLike,
        executor: Any = None,
        *,
        method: str = "value_and_grad",
        chunks: int | None = None,
    ) -> Any:
        """``getattr(self, method)(x)`` for a batch ``x`` (k, n), split across processes.

        ``executor`` is a ``concurrent.futures.Executor`` or a Dask ``distributed.Client``
        (anything with ``submit``); None uses a process pool of one worker per core, started
        at the first such call and kept (``pyad.parallel.shutdown()`` stops it). The points
        go in ``chunks`` parts (default: one per worker). ``method`` is ``"__call__"``,
        ``"value_and_grad"``, ``"grad"`` or ``"jacobian"``. Results are bit for bit those of
        the single-process call: workers use the kept traces, and points that flip a guard
        are traced again here. It pays only for large batches of costly points
        (``python -m bench.map`` measures where); see :mod:`pyad.parallel`.

        In a script, call it under ``if __name__ == "__main__":``: the pool's workers import
        the main script again while they start, and a call to map at its top level makes
        them stop and this call raise RuntimeError.
        """
        from pyad import parallel  # deferred: see the imports

        return parallel.map_points(self, x, executor, method=method, chunks=chunks)

    # -- internals --------------------------------------------------------------------------
    def _is_one_point(self, x: object) -> bool:
        """Is x one point of a scalar fn as optimisers pass it (a C-contiguous float64 array
        of shape (n,))? Then a call takes the short way, Program.point: the same C replay
        without the general path's conversions and allocations; where a guard fails there,
        the general path runs."""
        return (
            type(x) is np.ndarray
            and x.dtype is _FLOAT64
            and x.shape == self._point_shape
            and x.flags.c_contiguous
        )

    def _need_scalar(self, what: str) -> None:
        if not self.scalar:
            raise ValueError(f"{what} needs fn to return one Var; this fn returns a sequence")

    def _points(self, x: npt.ArrayLike, name: str = "x") -> tuple[FloatArray, bool]:
        a = np.asarray(x)
        return as_points(a, self.n_inputs, name), a.ndim == 2

    def _evaluate(
        self, pts: FloatArray, seeds: FloatArray | None
    ) -> tuple[FloatArray, FloatArray | None]:
        self._evaluated += pts.shape[0]
        first = self._programs[0]
        values, grads, guards = first.run(pts, seeds)
        for i in np.flatnonzero(guards).tolist():
            prog = self._program_for(first, pts[i], int(guards[i]), pts.shape[0] == 1)
            v, g, failed = prog.run(pts[i : i + 1], seeds)
            if failed[0]:
                raise errors.InternalError("a fresh trace does not hold its own guards")
            values[i] = v[0]
            if grads is not None and g is not None:
                grads[i] = g[0]
        return values, grads

    def _hvp_point(self, x: FloatArray, dirs: FloatArray) -> FloatArray:
        self._evaluated += 1
        first = self._programs[0]
        _, _, hv, failed = first.hvp(x, dirs)
        if failed:
            prog = self._program_for(first, x, failed, True)
            _, _, hv, failed = prog.hvp(x, dirs)
            if failed:
                raise errors.InternalError("a fresh trace does not hold its own guards")
        return hv

    def _program_for(self, tried: Program, x: FloatArray, failed: int, promote: bool) -> Program:
        """A trace whose guards hold at x (another kept one, or a new one), after the guard
        numbered ``failed`` of the trace ``tried`` did not."""
        if self.strict:
            raise errors.GuardError(
                f"{tried.describe(failed)} (x = {x.tolist()}); compiled with strict=True, so "
                "fn is not traced again"
            )
        point = x.reshape(1, -1)
        warn = False
        with self._lock:
            # Every kept trace but the one tried is a candidate, the first one included:
            # another thread may have traced or promoted one since this thread's replay.
            for j, prog in enumerate(self._programs):  # noqa: B007 - j used below
                if prog is not tried and not prog.run(point, None)[2][0]:
                    break
            else:
                if self.fn is None:
                    raise errors.GuardError(
                        f"{tried.describe(failed)} (x = {x.tolist()}), and no other stored "
                        "trace applies; this Function was loaded without its Python function "
                        "(Function.load, from_bytes, or unpickled where fn was not picklable), "
                        "so it cannot trace fn again at this input"
                    )
                prog = Program(self.fn, x)
                first = self._programs[0]
                if (prog.scalar, prog.n_outputs) != (first.scalar, first.n_outputs):
                    raise ValueError(
                        f"fn traced again at x = {x.tolist()} returns {_shape(prog)}, but "
                        f"{_shape(first)} where it was compiled; a compiled function keeps one "
                        "output shape"
                    )
                self.retraces += 1
                self._programs.append(prog)
                del self._programs[1 : max(1, len(self._programs) - MAX_VARIANTS)]
                j = len(self._programs) - 1
                warn = not self._warned and (
                    self._evaluated >= _WARN_AFTER and 2 * self.retraces > self._evaluated
                )
                self._warned |= warn
            if promote and j:  # a single point: later calls most likely fall on the same side
                self._programs.insert(0, self._programs.pop(j))
        if warn:  # outside the lock: a filter may make the warning an exception
            self._warn_retracing()
        return prog

    def _warn_retracing(self) -> None:
        """RetraceWarning, pointing at the caller's line (the first frame outside pyad)."""
        frame, level = sys._getframe(1), 2
        while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            frame, level = frame.f_back, level + 1  # to the caller's line, outside pyad
        warnings.warn(
            f"pyad.Function {self._name}: fn was traced again at {self.retraces} of "
            f"{self._evaluated} points evaluated. Its inputs keep flipping guards (comparisons "
            "of Vars made while tracing) to outcomes no kept trace has, so most calls run fn "
            "in Python. Compile with strict=True to find the comparison (the GuardError names "
            "its line); then compute that branch with a pyad op, which the replay recomputes "
            "(pyad.relu, abs, pyad.softplus), or compile one Function per region of inputs. "
            "(Warned once per Function.)",
            errors.RetraceWarning,
            stacklevel=level,
        )


def _picklable(fn: object) -> bool:
    try:
        pickle.dumps(fn)
    except Exception:  # any failure (PicklingError, AttributeError, ...): leave fn out
        return False
    return True


def _shape(prog: Program) -> str:
    return "one value" if prog.scalar else f"{prog.n_outputs} values"


def compile(fn: TracedFunction, x0: npt.ArrayLike, *, strict: bool = False) -> Function:
    """Record ``fn`` once at ``x0`` and return a :class:`Function` evaluating it in C.

    ``fn`` takes a list of Vars (one per entry of ``x0``) and returns a Var or number, or a
    sequence of them. See the module docstring for guards and what cannot be replayed
    (reading values while tracing, :func:`pyad.primitive`).
    """
    return Function(fn, x0, strict=strict)


__all__ = ["Function", "compile"]
