"""The compiled library's one door: loads it, checks it is the one this package was built
with, reads its op and status tables, turns status codes into exceptions (:func:`error` is
the only map from statuses to exceptions, :func:`check` the one helper that raises them), and
calls the library for the rest of the package.

Each entry point is called here, through a function of this module that makes its buffers
and raises on a failed status, except on the hot path, where a wrapper call would cost a
measurable share of each call (the modules say how much): the entry points that record or
read one Var's record (pushes, values, grads, backward) are bound directly by pyad.var and
pyad.functions, and a compiled Function's replay by pyad._program, which import ``lib`` from
here. The Var entry points return handles or statuses that only pyad.var can interpret (a new
segment; a stale Var told from one of another tape; the caller's line for a non-finite
value): it refines those failures and leaves the rest to :func:`error`.

Where the interpreter has no GIL, ``lib`` gives the locked entry points instead (see
:class:`_LockedLib` and ``LOCKED``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pyad import errors
from pyad._version import __version__

try:
    from pyad._pyad_cffi import ffi as ffi
    from pyad._pyad_cffi import lib as _lib
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "pyad's native module is missing: install the package (pip install -e .) so that "
        "setuptools compiles csrc/ through cffi"
    ) from exc


class _LockedLib:
    """The library with each entry point that uses a tape replaced by its locked wrapper
    (pyad/_build.py), under the same name: the frontend binds ``lib.pyad_mul`` and so on
    unchanged. Looked up once per name."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._raw, f"{name}_locked", None) or getattr(self._raw, name)
        setattr(self, name, value)
        return value


def _no_gil() -> bool:
    """Does this interpreter run without a GIL (free-threaded CPython, GIL not re-enabled)?
    PYAD_TAPE_LOCKS=1 says yes: the tests' switch to run the locked entry points under a GIL
    too (they release it around each call, so calls do overlap)."""
    if os.environ.get("PYAD_TAPE_LOCKS") == "1":
        return True
    gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return gil_enabled is not None and not gil_enabled()


#: Whether calls on a tape take its lock: decided once, here, so that a GIL build binds the
#: plain entry points and pays nothing for the locks.
LOCKED = _no_gil()
lib: Any = _LockedLib(_lib) if LOCKED else _lib

_built = ffi.string(lib.pyad_build_version()).decode()
if _built != __version__:  # pragma: no cover - stale in-place build
    raise ImportError(
        f"pyad's native module was built for version {_built}, but the package is "
        f"{__version__}: rebuild it (pip install -e .)"
    )


def _name(raw: Any) -> str:
    return str(ffi.string(raw).decode())


STATUS: dict[str, int] = {
    _name(lib.pyad_status_name(code)): code for code in range(lib.pyad_status_count())
}
OK = STATUS["OK"]
SEGMENT = STATUS["SEGMENT"]
_NOMEM = STATUS["NOMEM"]
_BADFORMAT = STATUS["BADFORMAT"]
CHUNK_RECORDS: int = lib.pyad_chunk_records()

#: op name (lower case, as in ops.def) -> (op code, arity; -1 for n-ary)
OPS: dict[str, tuple[int, int]] = {
    _name(lib.pyad_op_name(code)).lower(): (code, lib.pyad_op_arity(code))
    for code in range(lib.pyad_op_count())
}
OP_NAMES: list[str] = list(OPS)

#: each failure status -> the exception it raises (OK and SEGMENT are not failures)
EXCEPTIONS: dict[str, type[errors.PyadError]] = {
    "NOMEM": errors.TapeMemoryError,
    "DOMAIN": errors.DomainError,
    "OVERFLOW": errors.RangeError,
    "ZERODIV": errors.ZeroDivision,
    "STALE": errors.StaleVarError,
    "THREAD": errors.InternalError,  # retired: no call returns it (csrc/status.def)
    "NOTLEAF": errors.NotLeafError,
    "MISUSE": errors.InternalError,
    "FULL": errors.TapeMemoryError,
    "NONFINITE": errors.NonFiniteError,
    "NOREPLAY": errors.TraceError,
    "BADFORMAT": errors.FormatError,
    "CHANGED": errors.MatrixChangedError,
}
_BY_CODE = {STATUS[name]: exc for name, exc in EXCEPTIONS.items()}


def error(status: int, tape: Any = None) -> errors.PyadError:
    """The exception for a failed call, with the tape's message when it has one."""
    exc = _BY_CODE.get(status, errors.InternalError)
    message = ""
    if tape is not None:
        message = _name(lib.pyad_tape_errmsg(tape))
    return exc(message or _name(lib.pyad_strstatus(status)))


def check(status: int, tape: Any = None) -> None:
    """Raise the matching exception unless ``status`` is OK."""
    if status != OK:
        raise error(status, tape)


# Each function below makes its call's buffers itself, never shares them: another thread may
# make the same call at the same time. ``p`` is a C tape (pyad.tape.Tape._p) or C program.
# They are one Python call each, around the C call and check: a Tape's construction makes five
# of them, so a shared helper for the int64 out-parameter would cost it another 100 ns.


# -- tapes -----------------------------------------------------------------------------------


def new_tape() -> Any:
    """A new C tape, freed when the returned pointer object is collected."""
    out = ffi.new("pyad_tape **")
    check(lib.pyad_tape_new(out))
    return ffi.gc(out[0], lib.pyad_tape_free)


def _int_result(call: Any, p: Any) -> int:
    """The one integer a tape call ``call(p, out)`` writes to its out-pointer."""
    out = ffi.new("int64_t *")
    check(call(p, out), p)
    return int(out[0])


def tape_len(p: Any) -> int:
    """Records on the tape."""
    return _int_result(lib.pyad_tape_len, p)


def tape_nbytes(p: Any) -> int:
    """Bytes of memory the tape holds."""
    return _int_result(lib.pyad_tape_nbytes, p)


def tape_stats(p: Any) -> tuple[list[int], int]:
    """Records per op code, and the depth (the longest chain from an input)."""
    counts = ffi.new("int64_t[]", len(OP_NAMES))
    depth = ffi.new("int64_t *")
    check(lib.pyad_tape_stats(p, counts, depth), p)
    return [int(c) for c in counts], int(depth[0])


def tape_set_debug(p: Any, on: bool) -> None:
    check(lib.pyad_tape_set_debug(p, on), p)


def tape_set_max_bytes(p: Any, cap: int) -> None:
    """Cap the tape's memory at ``cap`` bytes (0: no cap)."""
    check(lib.pyad_tape_set_max_bytes(p, cap), p)


def tape_reset(p: Any) -> None:
    check(lib.pyad_tape_reset(p), p)


def tape_pin(p: Any, h: int) -> None:
    """Pin the segment of record ``h``."""
    check(lib.pyad_tape_pin(p, h), p)


def tape_unpin(p: Any, h: int) -> bool:
    """Release a pin on the segment of record ``h``: False when the release found no memory
    for its bookkeeping (the segment stays pinned: try again later); other failures raise."""
    status = lib.pyad_tape_unpin(p, h)
    if status == _NOMEM:
        return False
    check(status, p)
    return True


def tape_released(p: Any) -> list[int]:
    """The tokens of the matrices the tape borrowed (pyad_push_matvec_borrowed) that no
    record reads any more, each given once."""
    tokens: list[int] = []
    buf = ffi.new("int64_t[]", 64)
    n = ffi.new("int64_t *")
    while True:
        check(lib.pyad_tape_released(p, 64, buf, n), p)
        tokens.extend(buf[0 : n[0]])
        if n[0] < 64:
            return tokens


def tape_opened(p: Any) -> int:
    """The first record of the segment that this thread's last push opened (the push returned
    PYAD_SEGMENT and pinned the segment for this thread)."""
    return _int_result(lib.pyad_tape_opened, p)


def tape_pin_current(p: Any) -> int:
    """Pin the tape's current segment: a handle in it."""
    return _int_result(lib.pyad_tape_pin_current, p)


def tape_segment(p: Any) -> int:
    """A handle in the tape's current segment."""
    return _int_result(lib.pyad_tape_segment, p)


def tape_adopt(p: Any, h: int) -> None:
    """Make the current segment, that of record ``h``, the one pushes return handles into."""
    check(lib.pyad_tape_adopt(p, h), p)


def handle_array(handles: list[int]) -> Any:
    """``handles`` as the C array that :func:`set_grads` and :func:`get_grads` take: made once
    for all the sweeps over the same records (a jacobian's, one per output)."""
    return ffi.new("int64_t[]", handles)


def set_grads(p: Any, handles: Any, g: float) -> None:
    """Set the grad of each record of ``handles`` (a :func:`handle_array`) to ``g``."""
    check(lib.pyad_set_grads(p, len(handles), handles, g), p)


def get_grads(p: Any, handles: Any, out: npt.NDArray[np.float64]) -> None:
    """Read the grad of each record of ``handles`` (a :func:`handle_array`) into ``out``."""
    check(lib.pyad_get_grads(p, len(handles), handles, ffi.from_buffer("double[]", out)), p)


def get_values(p: Any, handles: Any, out: npt.NDArray[np.float64]) -> None:
    """Read the value of each record of ``handles`` (a :func:`handle_array`) into ``out``."""
    check(lib.pyad_get_values(p, len(handles), handles, ffi.from_buffer("double[]", out)), p)


def push_primitive(
    p: Any, n: int, handles: Any, consts: Any, value: float, partials: list[float]
) -> int:
    """Record a primitive (pyad.primitive): a handle, or minus a status, as every push returns
    (pyad.var._slow reads it)."""
    return int(lib.pyad_push_primitive(p, n, handles, consts, value, partials))


# -- the threads of large products ------------------------------------------------------------


def num_threads(n: int) -> int:
    """``pyad_num_threads``: n >= 1 sets the most threads one large product uses, 0 restores
    the default, -1 only reads; the number in force afterwards."""
    out = ffi.new("int64_t *")
    check(lib.pyad_num_threads(n, out))
    return int(out[0])


# -- ops on plain numbers ---------------------------------------------------------------------


def eval_op(op: int, a: float, b: float = 0.0) -> float:
    """Value of a unary or binary op on plain numbers, with the tape's checks."""
    out = ffi.new("double[3]")
    check(lib.pyad_eval(op, a, b, out, out + 1, out + 2))
    return float(out[0])


def eval_nary(op: int, values: list[float], nout: int) -> list[float]:
    """Value(s) of an n-ary op on plain numbers."""
    out = ffi.new("double[]", max(nout, 1))
    check(lib.pyad_eval_nary(op, len(values), values, out))
    return [float(out[i]) for i in range(nout)]


# -- programs (pyad.compile) -----------------------------------------------------------------

#: what pyad_program_info reports, in its order
_INFO = ("inputs", "outputs", "instructions", "slots", "constants", "entries", "guards", "bytes")


def program_new(
    tape: Any,
    inputs: list[int],
    out_h: Sequence[int],
    out_c: Sequence[float],
    kinds: list[int],
    guard_h: Sequence[int],
    guard_c: Sequence[float],
) -> Any:
    """The C program of the records of ``tape`` that outputs need, from input handles to output
    handles or constants (``out_h``, ``out_c``), with one guard per entry of ``kinds`` over a
    pair of operands each (``guard_h``, ``guard_c``); freed when the pointer is collected."""
    out = ffi.new("pyad_program **")
    status = lib.pyad_program_new(
        tape,
        len(inputs),
        inputs,
        len(out_h),
        list(out_h),
        list(out_c),
        len(kinds),
        list(guard_h),
        list(guard_c),
        kinds,
        out,
    )
    check(status, tape)
    return ffi.gc(out[0], lib.pyad_program_free)


def program_info(p: Any) -> dict[str, int]:
    """The program's sizes, by name."""
    info = ffi.new("int64_t[8]")
    check(lib.pyad_program_info(p, info))
    return dict(zip(_INFO, (int(v) for v in info)))


def program_save(p: Any) -> bytes:
    """The program in its portable saved form (csrc/saved.c)."""
    size = ffi.new("int64_t *")
    check(lib.pyad_program_save(p, ffi.NULL, 0, size))
    buf = bytearray(size[0])
    check(lib.pyad_program_save(p, ffi.from_buffer(buf), len(buf), size))
    return bytes(buf)


def program_load(blob: bytes, what: str) -> Any:
    """The program saved in ``blob``, every field checked: FormatError naming ``what`` and the
    loader's reason when the blob is not valid. Freed when the pointer is collected."""
    out = ffi.new("pyad_program **")
    msg = ffi.new("char[]", 256)
    status = lib.pyad_program_load(ffi.from_buffer(blob), len(blob), out, msg, 256)
    if status == _BADFORMAT:
        raise errors.FormatError(f"{what}: {ffi.string(msg).decode(errors='replace')}")
    check(status)
    return ffi.gc(out[0], lib.pyad_program_free)
