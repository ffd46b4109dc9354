"""How many threads pyad's C library may use for one large product.

A product with a constant matrix (``X @ w`` with ``X`` an ndarray and ``w`` a
:class:`pyad.Array`) of 2^19 multiply-adds or more (a 1,000 x 524 matrix) runs on up to one
thread per 2^18 of them when it is recorded, swept backwards and replayed: each thread computes
outputs no other touches, in the order one thread would, so results are the same bits whatever
the number of threads. Everything else runs on the calling thread.

numpy's OpenBLAS keeps its threads spinning for a while after each large product it computes;
a pyad call made then shares a core with them and gains less from its threads (LR's replay:
3.9 ms with nothing else running, about 9 right after a BLAS call, 8 on one thread). Setting
``OPENBLAS_THREAD_TIMEOUT=4`` before numpy is imported makes them sleep sooner.

The default is the ``PYAD_NUM_THREADS`` environment variable when set, else the number of
processors online; at most 8 are used.
"""

from __future__ import annotations

import operator

from pyad import _native

__all__ = ["get_num_threads", "set_num_threads"]


def set_num_threads(n: int | None) -> int:
    """Let one large product use up to ``n`` threads (``n >= 1``; at most 8 are used), or
    restore the default with ``None``; returns the number in force afterwards. It applies to
    the whole process, every tape and compiled function.

    >>> import pyad
    >>> before = pyad.get_num_threads()
    >>> pyad.set_num_threads(1)
    1
    >>> _ = pyad.set_num_threads(before)
    """
    if n is None:
        return _native.num_threads(0)
    n = operator.index(n)
    if n < 1:
        raise ValueError(f"set_num_threads needs n >= 1 (or None for the default), got {n}")
    return _native.num_threads(n)


def get_num_threads() -> int:
    """The most threads one large product may use now (see :func:`set_num_threads`)."""
    return _native.num_threads(-1)
