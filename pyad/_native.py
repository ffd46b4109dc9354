"""The compiled library's one door: loads it, checks it is the one this package was built
with, reads its op and status tables, and turns status codes into exceptions (the only map
from statuses to exceptions). The frontend modules import ``lib`` from here and bind the
recording entry points directly, because a wrapper call per operation would cost about a
sixth of it. Their failed statuses come back here, to :func:`error`; only PYAD_STALE is
refined there (pyad.var tells a Var of another tape from one of before a reset).

Where the interpreter has no GIL, ``lib`` gives the locked entry points instead (see
:class:`_LockedLib` and ``LOCKED``)."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

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


def fail(status: int, tape: Any = None) -> NoReturn:
    raise error(status, tape)


def new_tape() -> Any:
    """A new C tape, freed when the returned pointer object is collected."""
    out = ffi.new("pyad_tape **")
    check(lib.pyad_tape_new(out))
    return ffi.gc(out[0], lib.pyad_tape_free)


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
