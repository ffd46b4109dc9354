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

import os
from typing import Callable

from pyad._container import MAGIC, VERSION
from pyad._program import TracedFunction
from pyad.compiled import Function

# Function's own methods as module functions; the code is pyad.compiled's (which imports
# neither this module nor any that imports it).


def to_bytes(f: Function) -> bytes:
    """The container of ``f``'s traces (see the module docstring)."""
    return f.to_bytes()


def from_bytes(data: bytes | bytearray | memoryview, fn: TracedFunction | None = None) -> Function:
    """The Function that :func:`to_bytes` wrote, with ``fn`` (None: cannot trace again)."""
    return Function._of_bytes(data, fn)


def save(f: Function, path: str | os.PathLike[str]) -> None:
    """Write ``f`` to ``path`` (the bytes of :func:`to_bytes`)."""
    f.save(path)


def load(path: str | os.PathLike[str]) -> Function:
    """The Function saved at ``path``, without its Python function."""
    return Function.load(path)


def reduce(f: Function) -> tuple[Callable[..., Function], tuple[bytes, TracedFunction | None]]:
    """``f.__reduce__``: its bytes, and ``fn`` where it pickles."""
    return f.__reduce__()


__all__ = ["MAGIC", "VERSION", "from_bytes", "load", "reduce", "save", "to_bytes"]
