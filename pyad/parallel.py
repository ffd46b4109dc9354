"""``Function.map``: one batch of points split across worker processes (or a Dask cluster).

The workers receive the Function as :meth:`~pyad.Function.to_bytes` (its C programs, no
pickled code), so ``fn`` need not be importable in them, read its traces back (with
:mod:`pyad._container`) and evaluate their share of the points with them only. A point where
no kept trace's guards hold comes back unanswered and is evaluated here, by the Function
itself, which traces ``fn`` again as a single-process call would. Each point's results
therefore come from a trace whose guards hold at it, so they are bit for bit those of the
single-process batch call.

A script that calls ``map`` must do so under ``if __name__ == "__main__":``: the default
pool's workers (and those of any forkserver or spawn pool) import the main script again
while they start, and a call to ``map`` at its top level would run again in each of them. A
worker that meets such a call stops at once and the caller raises a RuntimeError saying so.

What it costs: the Function's bytes go to every chunk (about 8 bytes per instruction; a
worker loads them once), and the points and results are pickled. ``executor=None`` uses a
pool of one process per core started at the first such call and kept (:func:`shutdown`
stops it). It pays for large batches of costly points only: ``python -m bench.map``
measures the crossover.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import sys
import tempfile
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NoReturn, Protocol, Union

import numpy as np
import numpy.typing as npt

from pyad import _container
from pyad._program import ONE_SEED, FloatArray, Program

METHODS = ("__call__", "value_and_grad", "grad", "jacobian")
_KEPT = 4  # Functions a worker keeps loaded, so repeated maps do not load the bytes again
_loaded: OrderedDict[str, list[Program]] = OrderedDict()  # in a worker: traces by token


class Mapped(Protocol):
    """What ``map`` uses of the :class:`pyad.Function` it maps (declared here rather than
    imported: pyad.compiled imports this module for ``Function.map``)."""

    _programs: list[Program]
    _evaluated: int

    @property
    def n_inputs(self) -> int: ...
    @property
    def n_outputs(self) -> int: ...
    @property
    def scalar(self) -> bool: ...
    def to_bytes(self) -> bytes: ...
    def _need_scalar(self, what: str) -> None: ...
    def _points(self, x: npt.ArrayLike, name: str = "x") -> tuple[FloatArray, bool]: ...
    def _evaluate(
        self, pts: FloatArray, seeds: FloatArray | None
    ) -> tuple[FloatArray, FloatArray | None]: ...


_default_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
_bytes_of: weakref.WeakKeyDictionary[Mapped, tuple[tuple[Any, ...], str, bytes]] = (
    weakref.WeakKeyDictionary()
)  # in the caller

Result = Union[FloatArray, tuple[FloatArray, FloatArray]]


class Submitter(Protocol):
    """What ``map`` needs of an executor: ``concurrent.futures.Executor`` and
    ``distributed.Client`` both have it."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any: ...


def _seeds(n_outputs: int, method: str) -> FloatArray | None:
    if method == "__call__":
        return None
    if method == "jacobian":
        return np.eye(n_outputs)
    return ONE_SEED


def _kept_traces(
    programs: list[Program], pts: FloatArray, seeds: FloatArray | None
) -> tuple[FloatArray, FloatArray | None, npt.NDArray[np.intp]]:
    """Values, gradients and the indices of the points no kept trace accepts."""
    values, grads, guards = programs[0].run(pts, seeds)
    pending = np.flatnonzero(guards)
    for prog in programs[1:]:
        if pending.size == 0:
            break
        v, g, failed = prog.run(pts[pending], seeds)
        held = failed == 0
        values[pending[held]] = v[held]
        if grads is not None and g is not None:
            grads[pending[held]] = g[held]
        pending = pending[~held]
    return values, grads, pending


def _work(
    token: str, blob: bytes, pts: FloatArray, method: str
) -> tuple[FloatArray, FloatArray | None, npt.NDArray[np.intp]]:
    """A worker's share: the Function's traces (loaded once per worker), then evaluated with
    them."""
    programs = _loaded.get(token)
    if programs is None:
        programs = _loaded[token] = _container.read(blob).programs
        while len(_loaded) > _KEPT:
            _loaded.popitem(last=False)
    _loaded.move_to_end(token)
    return _kept_traces(programs, pts, _seeds(programs[0].n_outputs, method))


def _workers(executor: object) -> int:
    """How many tasks the executor runs at once, as far as it says."""
    count = getattr(executor, "_max_workers", None)  # concurrent.futures' pools
    if isinstance(count, int):
        return count
    info = getattr(executor, "scheduler_info", None)  # distributed.Client
    if callable(info):
        workers = info().get("workers", {})
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))
    return os.cpu_count() or 1


def default_executor() -> ProcessPoolExecutor:
    """The process pool ``map`` uses when given no executor: one worker per core, started at
    the first call and kept (workers keep the Functions they loaded) until :func:`shutdown`
    or exit. Workers start by ``forkserver``: forking a caller that runs threads (JAX, a
    thread pool) can deadlock the child; ``fork`` would start faster."""
    global _default_pool
    with _pool_lock:
        if _default_pool is None or getattr(_default_pool, "_broken", False):
            context = multiprocessing.get_context("forkserver")
            _default_pool = ProcessPoolExecutor(os.cpu_count() or 1, mp_context=context)
        return _default_pool


def shutdown() -> None:
    """Stop the default pool's workers (a later ``map`` without executor starts new ones)."""
    global _default_pool
    with _pool_lock:
        pool, _default_pool = _default_pool, None
    if pool is not None:
        pool.shutdown()


def _saved(f: Mapped) -> tuple[str, bytes]:
    """A name for ``f``'s current traces, under which workers keep them loaded, and their
    bytes; kept while the traces stay the same (saving takes milliseconds at 10^4 ops)."""
    traces = tuple(f._programs)
    kept = _bytes_of.get(f)
    if (
        kept is None
        or len(kept[0]) != len(traces)
        or any(a is not b for a, b in zip(kept[0], traces))
    ):
        blob = f.to_bytes()
        kept = _bytes_of[f] = (traces, hashlib.blake2b(blob, digest_size=16).hexdigest(), blob)
    return kept[1], kept[2]


_UNGUARDED = (
    "map's worker processes import the main script again while they start (forkserver and "
    "spawn pools do), and the call to map at its top level ran again in each of them: put "
    'the code that calls map under `if __name__ == "__main__":`'
)


def _importing_main_in_worker() -> bool:
    """Is this a worker process importing the main script again? (multiprocessing runs it
    under the name ``__mp_main__`` while a forkserver or spawn worker starts.)"""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__mp_main__":
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _unguarded_marker() -> str:
    """The file a worker that met a call to map while starting leaves for its caller: named
    after the authkey, which a process shares with its workers only."""
    key = hashlib.blake2b(bytes(multiprocessing.current_process().authkey), digest_size=8)
    return os.path.join(tempfile.gettempdir(), f"pyad-map-unguarded-{key.hexdigest()}")


def _stop_starting_worker() -> NoReturn:
    """End this worker, which met a call to map while importing the main script. Quietly:
    an exception would print a traceback from every worker; the caller says it once."""
    try:
        with open(_unguarded_marker(), "a"):
            pass
    except OSError:  # the caller cannot learn why: say it here
        sys.stderr.write(f"pyad: {_UNGUARDED}\n")
    raise SystemExit(1)


def _stopped_at_unguarded_map(executor: Any) -> bool:
    """After ``executor``'s pool broke: did its workers stop at a call to map in the main
    script? (Takes the marker they left.)"""
    marker = _unguarded_marker()
    if not os.path.exists(marker):
        return False
    executor.shutdown()  # waits for every worker to end, so none leaves the marker again
    with contextlib.suppress(OSError):
        os.remove(marker)
    return True


def map_points(
    f: Mapped,
    x: npt.ArrayLike,
    executor: Submitter | None = None,
    *,
    method: str = "value_and_grad",
    chunks: int | None = None,
) -> Result:
    """``getattr(f, method)(x)`` for a batch ``x`` of shape (k, n), the points split into
    ``chunks`` parts evaluated by ``executor``. See :meth:`pyad.Function.map`."""
    if (executor is None or isinstance(executor, ProcessPoolExecutor)) and (
        _importing_main_in_worker()
    ):
        _stop_starting_worker()
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if method in ("value_and_grad", "grad"):
        f._need_scalar(method)
    pts, batched = f._points(x)
    if not batched:
        raise ValueError(f"map takes a batch of points, shape (k, {f.n_inputs}); got {np.shape(x)}")
    if chunks is not None and (not isinstance(chunks, int) or chunks < 1):
        raise ValueError(f"chunks must be a positive int, got {chunks!r}")
    if executor is None:
        executor = default_executor()
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(
            "executor must have a submit method (a concurrent.futures.Executor or a "
            f"distributed.Client); got {type(executor).__name__}"
        )
    k = pts.shape[0]
    if k == 0:
        return getattr(f, method)(pts)  # type: ignore[no-any-return]
    parts = np.array_split(pts, min(k, chunks or _workers(executor)))
    token, blob = _saved(f)
    futures = [executor.submit(_work, token, blob, part, method) for part in parts]
    try:
        answers = [future.result() for future in futures]
    except BrokenProcessPool:
        if _stopped_at_unguarded_map(executor):
            raise RuntimeError(_UNGUARDED) from None
        raise
    finally:
        for future in futures:
            future.cancel()
    seeds = _seeds(f.n_outputs, method)
    values = np.concatenate([a[0] for a in answers])
    grads = None if seeds is None else np.concatenate([a[1] for a in answers])
    start = np.cumsum([0] + [len(p) for p in parts[:-1]])
    pending = np.concatenate([a[2] + s for a, s in zip(answers, start)])
    f._evaluated += k - len(pending)  # the workers' points count for RetraceWarning too
    if len(pending):  # points no kept trace accepts: traced again here, as f(x) would
        v, g = f._evaluate(pts[pending], seeds)
        values[pending] = v
        if grads is not None and g is not None:
            grads[pending] = g
    return _shaped(f, method, values, grads)


def _shaped(f: Mapped, method: str, values: FloatArray, grads: FloatArray | None) -> Result:
    """The results as ``getattr(f, method)`` gives them for a batch."""
    out = np.ascontiguousarray(values[:, 0]) if f.scalar else values
    if method == "__call__":
        return out
    assert grads is not None
    if method == "jacobian":
        return grads
    if method == "grad":
        return np.ascontiguousarray(grads[:, 0, :])
    return out, np.ascontiguousarray(grads[:, 0, :])
