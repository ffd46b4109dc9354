"""Replaying one compiled function from two threads (``python -m bench.threads [--quick]``).

A ``pyad.Function`` releases the GIL during long replays, so two threads replaying batches of
the same function should take little more time than one thread replaying one batch. Per
repeat, round-robin (this machine's 2 cores are shared and noisy, so bursts hit every row):

* one thread: ``F.value_and_grad`` of batch A, then of batch B;
* two threads: A in one, B in the other, at once;
* two threads with the release switched off (``pyad._program._RELEASE_WORK`` infinite): the
  control, which the GIL serialises.

The speedup is bounded by the cores other processes leave free, so the process's CPU time
over wall time during the two-thread rounds is reported too: above 1 only if both threads
computed at once.

The speedup is (one thread) / (two threads), per repeat; the median and the quartiles are
reported. Every threaded result is checked bit for bit against the single-thread one.

Also the price of the release, which sets ``_RELEASE_WORK``: a short single-point replay
with the GIL held and released (the difference is what a release and retake costs when no
other thread wants the GIL), and the time per instruction-pass of a batch replay (points x
instructions x (1 + reverse sweeps)), from which the threshold's duration follows.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

import numpy as np

import pyad
from pyad import Var, _program


def chain(v: list[Var]) -> Any:
    """Compute-bound per point: transcendental ops and products over n inputs."""
    total: Any = 0.0
    for a, b in zip(v[:-1], v[1:]):
        total = total + pyad.tanh(a * b) + pyad.exp(0.1 * a) * pyad.log(1.0 + b * b)
    return total


def small(v: list[Var]) -> Any:
    return pyad.sum([100 * (b - a * a) ** 2 + (1 - a) ** 2 for a, b in zip(v, v[1:])])


@contextmanager
def release_threshold(work: float) -> Iterator[None]:
    """Replays of at least `work` instruction-passes release the GIL (0: all, inf: none)."""
    before = _program._RELEASE_WORK
    _program._RELEASE_WORK = work  # type: ignore[assignment]
    try:
        yield
    finally:
        _program._RELEASE_WORK = before


class _Pair:
    """Two worker threads kept for the whole run: a round starts both at a barrier and
    returns when both are done, so thread start-up stays out of the timings."""

    def __init__(self) -> None:
        self._jobs: list[Callable[[], Any]] = []
        self.results: list[Any] = [None, None]
        self._start = threading.Barrier(3)
        self._done = threading.Barrier(3)
        self._stop = False
        self._threads = [threading.Thread(target=self._work, args=(i,)) for i in range(2)]
        for t in self._threads:
            t.start()

    def _work(self, i: int) -> None:
        while True:
            self._start.wait()
            if self._stop:
                return
            self.results[i] = self._jobs[i]()
            self._done.wait()

    def run(self, a: Callable[[], Any], b: Callable[[], Any]) -> tuple[float, float]:
        """Seconds to run a and b at once, one per thread, and the process's CPU seconds
        meanwhile."""
        self._jobs = [a, b]
        t0, c0 = time.perf_counter(), time.process_time()
        self._start.wait()
        self._done.wait()
        return time.perf_counter() - t0, time.process_time() - c0

    def close(self) -> None:
        self._stop = True
        self._start.wait()
        for t in self._threads:
            t.join()


def _check(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    if not all(np.array_equal(x, y) for x, y in zip(got, want)):
        raise RuntimeError("a threaded replay differs from the single-thread one")


def run(quick: bool, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure; return every figure in a dict (see format_report)."""
    n, k, repeats = (60, 300, 5) if quick else (200, 2000, 41)
    F = pyad.compile(chain, np.linspace(-1.0, 1.0, n))
    rng = np.random.default_rng(0)
    A, B = rng.uniform(-1.0, 1.0, size=(2, k, n))
    want_a, want_b = F.value_and_grad(A), F.value_and_grad(B)
    pair = _Pair()
    one, two, held, cores, held_cores = [], [], [], [], []
    try:
        for r in range(repeats):
            if progress and r % 10 == 0:
                progress(f"threads repeat {r + 1}/{repeats} ...\n")
            t0 = time.perf_counter()
            got_a = F.value_and_grad(A)
            got_b = F.value_and_grad(B)
            one.append(time.perf_counter() - t0)
            _check(got_a, want_a)
            _check(got_b, want_b)
            wall, cpu = pair.run(lambda: F.value_and_grad(A), lambda: F.value_and_grad(B))
            two.append(wall)
            cores.append(cpu / wall)
            _check(pair.results[0], want_a)
            _check(pair.results[1], want_b)
            with release_threshold(float("inf")):
                wall, cpu = pair.run(lambda: F.value_and_grad(A), lambda: F.value_and_grad(B))
            held.append(wall)
            held_cores.append(cpu / wall)
    finally:
        pair.close()
    speedup = [o / t for o, t in zip(one, two)]
    control = [o / t for o, t in zip(one, held)]

    # the price of a release: a short replay, GIL held against released
    S = pyad.compile(small, np.zeros(3))
    x = np.array([1.2, 1.0, 0.8])
    number, rounds = (1000, 5) if quick else (5000, 41)
    held_ns, released_ns = [], []
    for _ in range(rounds):
        with release_threshold(float("inf")):
            held_ns.append(timeit.timeit(lambda: S.value_and_grad(x), number=number) / number)
        with release_threshold(0):
            released_ns.append(timeit.timeit(lambda: S.value_and_grad(x), number=number) / number)
    release_cost = [(r - h) * 1e9 for h, r in zip(held_ns, released_ns)]
    passes = k * F.info["instructions"] * 2
    if progress:
        progress("threads ... done\n")
    return {
        "n": n,
        "points": k,
        "instructions": F.info["instructions"],
        "repeats": repeats,
        "one_thread_s": statistics.median(one),
        "two_threads_s": statistics.median(two),
        "two_threads_held_s": statistics.median(held),
        "speedup_median": statistics.median(speedup),
        "speedup_quartiles": statistics.quantiles(speedup, n=4),
        "held_speedup_median": statistics.median(control),
        "cores_used_median": statistics.median(cores),
        "held_cores_used_median": statistics.median(held_cores),
        "short_call_held_ns": statistics.median(held_ns) * 1e9,
        "short_call_released_ns": statistics.median(released_ns) * 1e9,
        "release_cost_ns": statistics.median(release_cost),
        "ns_per_instruction_pass": statistics.median(one) / 2 / passes * 1e9,
        "release_threshold": _program._RELEASE_WORK,
    }


def format_report(r: dict[str, Any]) -> str:
    """The figures as plain text."""
    q1, _, q3 = r["speedup_quartiles"]
    threshold_us = r["release_threshold"] * r["ns_per_instruction_pass"] / 1e3
    return "\n".join(
        [
            f"threads: F.value_and_grad on batches of {r['points']} points, {r['n']} inputs, "
            f"{r['instructions']} instructions; medians of {r['repeats']} repeats",
            f"  one thread, batch A then batch B    {r['one_thread_s'] * 1e3:8.1f} ms",
            f"  two threads, A and B at once        {r['two_threads_s'] * 1e3:8.1f} ms",
            f"  two threads, GIL held (control)     {r['two_threads_held_s'] * 1e3:8.1f} ms",
            f"  speedup of two threads: {r['speedup_median']:.2f} (quartiles {q1:.2f}, "
            f"{q3:.2f}); with the GIL held: {r['held_speedup_median']:.2f}",
            f"  cores busy while two threads run (process CPU time / wall time): "
            f"{r['cores_used_median']:.2f}; with the GIL held: {r['held_cores_used_median']:.2f}",
            f"release cost: short call {r['short_call_held_ns']:.0f} ns held, "
            f"{r['short_call_released_ns']:.0f} ns released "
            f"(difference {r['release_cost_ns']:.0f} ns)",
            f"replay: {r['ns_per_instruction_pass']:.2f} ns per instruction-pass, so the "
            f"release threshold ({r['release_threshold']} passes) is about {threshold_us:.0f} us",
        ]
    )


def main() -> None:
    """``python -m bench.threads [--quick]``."""
    quick = "--quick" in sys.argv[1:]
    print(format_report(run(quick, lambda s: print(s, end="", file=sys.stderr, flush=True))))


if __name__ == "__main__":
    main()
