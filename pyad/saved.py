"""Saving and loading compiled functions: :meth:`pyad.Function.save`, :meth:`~pyad.Function.load`,
:meth:`~pyad.Function.to_bytes`, :meth:`~pyad.Function.from_bytes` and pickling, here also as
module functions; :func:`from_bytes` also takes the Python function back.

A saved Function is the container of :mod:`pyad._container` (docs/FORMAT.md has every byte):
a JSON header and the C program of every kept trace, checksummed. Nothing in it is pickled, so
loading bytes from anywhere runs no code of theirs: a damaged or hostile file raises
:class:`pyad.errors.FormatError`.

A loaded Function has no Python function. Where an input changes a guard's outcome and no
stored trace applies, it raises :class:`pyad.errors.GuardError` instead of tracing again.
A pickled Function carries its ``fn`` too when ``fn`` pickles (a module-level function), so
an unpickled copy (in a worker process, say) traces again like the original.
"""

from __future__ import annotations

from pyad._container import MAGIC, VERSION
from pyad._program import TracedFunction
from pyad.compiled import Function

# Function's own methods, under the names this module has always had: the code is
# pyad.compiled's (which cannot import this module: it imports pyad.compiled).
to_bytes = Function.to_bytes
save = Function.save
load = Function.load
reduce = Function.__reduce__


def from_bytes(data: bytes | bytearray | memoryview, fn: TracedFunction | None = None) -> Function:
    """The Function that :func:`to_bytes` wrote, with ``fn`` (None: cannot trace again)."""
    return Function._of_bytes(data, fn)


__all__ = ["MAGIC", "VERSION", "from_bytes", "load", "reduce", "save", "to_bytes"]
