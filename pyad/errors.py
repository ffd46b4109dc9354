"""pyad's exceptions and its one warning. Each exception also derives from the builtin that
Python's math module raises in the same situation, so ``except ValueError`` keeps working for
code written for floats."""

from __future__ import annotations


class PyadError(Exception):
    """Base class of every error pyad raises."""


class DomainError(PyadError, ValueError):
    """An argument outside the function's domain: log(-1), sqrt(-1), asin(2), ..."""


class RangeError(PyadError, OverflowError):
    """A finite argument whose result overflows: exp(1000), cosh(1000), 10.0 ** 400."""


class ZeroDivision(PyadError, ZeroDivisionError):
    """Division by zero, or zero to a negative power."""


class StaleVarError(PyadError, RuntimeError):
    """A Var used after its tape was reset."""


class ForeignVarError(PyadError, ValueError):
    """Vars of two different tapes used in one operation."""


class ThreadError(PyadError, RuntimeError):
    """No longer raised: any thread may use any tape. Kept so that code catching it still
    runs."""


class NotLeafError(PyadError, AttributeError):
    """Assigning .v of a computed node; only inputs (leaves) can be assigned."""


class CopyError(PyadError, TypeError):
    """``copy.copy``, ``copy.deepcopy`` or ``pickle`` of a computed Var: only inputs (leaves)
    can be copied, as new inputs with the same value and grad."""


class NonFiniteError(PyadError, FloatingPointError):
    """Debug mode (``pyad.Tape(debug=True)`` or ``pyad.detect_anomaly()``): an operation
    produced a NaN or infinite value or partial. The message names the op and the line of
    your code that recorded it."""


class TapeMemoryError(PyadError, MemoryError):
    """The tape could not grow."""


class TraceError(PyadError, RuntimeError):
    """Something :func:`pyad.compile` cannot replay: reading a traced Var's value (``.v``,
    ``.grad``) while tracing, or a :func:`pyad.primitive` in the function."""


class GuardError(PyadError, RuntimeError):
    """A compiled function (``strict=True``) met an input at which a comparison made while
    tracing comes out differently; the message names the comparison and its line."""


class FormatError(PyadError, ValueError):
    """Bytes that are not a valid saved :class:`pyad.Function` (or C program): truncated,
    corrupted, of another format version, or structurally inconsistent. Loading checks
    everything before using any of it; the message says what is wrong."""


class MatrixChangedError(PyadError, RuntimeError):
    """A constant matrix of ``X @ w`` (an ndarray times an Array of Vars) was changed in place
    after the product was recorded, and a gradient (``backward``, ``pyad.compile``,
    ``.predecessors``) needed the changed rows. pyad reads the caller's matrix instead of a
    copy of it, and checks each row's bits before using it: nothing was computed, the tape is
    as it was. Change the matrix only once the records made from it are no longer used, or
    record ``X.copy() @ w``."""


class InternalError(PyadError, SystemError):
    """pyad called its C library wrongly: a bug in pyad, please report it."""


class RetraceWarning(RuntimeWarning):
    """A compiled function traced ``fn`` again at most of the points it evaluated: its inputs
    keep flipping guards, so it runs Python almost every call. Issued once per Function; the
    message says how to find the guard and what to do about it."""


def _count(n: int, noun: str) -> str:
    """``"1 output"``, ``"2 outputs"``: n and the noun, plural unless n is 1 (for messages
    and reprs; the nouns used take an s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
