"""One compiled Function called from several threads at once.

Each replay takes a work buffer of its own and long replays release the GIL, so threads really
do replay one program concurrently; retraces (guard flips) change the Function's kept traces
under a lock. The oracle is what one thread computed beforehand: every threaded result must be
bit for bit the same. The GIL release itself is shown by another Python thread making progress
during one long replay, against the same replay with the release switched off.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import pyad
from bench.threads import release_threshold
from pyad import Var, compiled

THREADS = 8


def smooth(v: list[Var]) -> Any:
    """A chain mixing stored partials (exp, log, tanh), products and constants."""
    total: Any = 0.0
    for a, b in zip(v[:-1], v[1:]):
        total = total + pyad.tanh(a * b) + pyad.exp(0.1 * a) * pyad.log(1.0 + b * b) - a / 7.0
    return total


def run_threads(work: Callable[[int], None], count: int = THREADS) -> None:
    """work(i) in `count` threads started together; the first failure is raised here."""
    failures: list[BaseException] = []
    start = threading.Barrier(count)

    def body(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # reported in the calling thread
            failures.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]


def same(a: Any, b: Any) -> bool:
    """Bit for bit: the same type of result, shape and every float equal."""
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float):
        return type(b) is float and a == b
    return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)


# -- (a) the same results as one thread ---------------------------------------------------------


@pytest.mark.parametrize("threshold", [0, None], ids=["release-always", "release-long"])
def test_threads_replaying_one_function_match_one_thread(threshold: int | None) -> None:
    n, k = 24, 48
    F = pyad.compile(smooth, np.linspace(0.5, 1.5, n))
    # Single-point calls are short (the GIL stays held), the batches and the Hessian long
    # (released), unless the threshold is 0: then every replay releases it.
    assert F.info["instructions"] * 2 < compiled._RELEASE_WORK
    assert k * F.info["instructions"] * 2 >= compiled._RELEASE_WORK
    assert F.info["instructions"] * (n + 1) >= compiled._RELEASE_WORK
    rng = np.random.default_rng(5)
    points = rng.uniform(-2.0, 2.0, size=(THREADS, 4, n))
    batches = rng.uniform(-2.0, 2.0, size=(THREADS, 2, k, n))
    dirs = rng.uniform(-1.0, 1.0, size=(THREADS, 4, n))
    calls: list[list[tuple[Callable[[], Any], Any]]] = []
    for i in range(THREADS):  # each thread its own inputs, each call's result known beforehand
        mine: list[tuple[Callable[[], Any], Any]] = []
        for x, v in zip(points[i], dirs[i]):
            mine.append((lambda x=x: F.value_and_grad(x), F.value_and_grad(x)))
            mine.append((lambda x=x: F(x), F(x)))
            mine.append((lambda x=x, v=v: F.hvp(x, v), F.hvp(x, v)))
        for X in batches[i]:
            mine.append((lambda X=X: F.value_and_grad(X), F.value_and_grad(X)))
            mine.append((lambda X=X: F(X), F(X)))
            mine.append((lambda X=X: F.hvp(X[:3], X[3:6]), F.hvp(X[:3], X[3:6])))
        mine.append((lambda x=points[i][0]: F.hessian(x), F.hessian(points[i][0])))
        calls.append(mine)
    rounds = 20  # 8 threads x 20 rounds x 21 calls: 3360 calls

    def work(i: int) -> None:
        for r in range(rounds):
            for j in range(len(calls[i])):
                call, want = calls[i][(j + 7 * r) % len(calls[i])]  # each round from another start
                got = call()
                assert same(got, want), f"thread {i}, round {r}, call {j}"

    with release_threshold(compiled._RELEASE_WORK if threshold is None else threshold):
        run_threads(work)
    assert F.retraces == 0


# -- (b) retraces from several threads at once --------------------------------------------------


def test_threads_flipping_guards_retrace_once_per_branch() -> None:
    traced: list[int] = []

    def kinked(v: list[Var]) -> Any:
        traced.append(threading.get_ident())  # runs only while tracing
        m = max(v[0], v[1])
        return m * v[2] + pyad.sin(v[1]) if v[2] > 0 else pyad.exp(v[2]) - m * m

    F = pyad.compile(kinked, [2.0, 1.0, 1.0])
    rng = np.random.default_rng(9)
    # four branches (which of v0, v1 is larger; the sign of v2); each thread visits all four,
    # one point at a time (each flip promotes a trace) and in mixed batches
    points = rng.uniform(-2.0, 2.0, size=(THREADS, 40, 3))
    want = [[pyad.value_and_grad(kinked)(x) for x in mine] for mine in points]
    del traced[:]

    def work(i: int) -> None:
        for _ in range(4):
            for x, (value, grad) in zip(points[i], want[i]):
                got = F.value_and_grad(x)
                assert got[0] == value and np.array_equal(got[1], grad), x
            values, grads = F.value_and_grad(points[i])
            assert values.tolist() == [w[0] for w in want[i]]
            assert np.array_equal(grads, np.array([w[1] for w in want[i]]))

    run_threads(work)
    # a flipped guard traces under the Function's lock, after trying every kept trace, so each
    # of the three other branches is traced once, whichever thread meets it first
    assert F.retraces == len(traced) == 3
    assert len(F._programs) == 4


def test_threads_retracing_past_the_kept_limit() -> None:
    traced: list[int] = []
    guards = 5  # 2**5 branches, more than the traces a Function keeps

    def signs(v: list[Var]) -> Any:
        traced.append(1)
        total: Any = 0.0
        for a in v:
            total = total + (a * a if a > 0 else pyad.sin(a))
        return total

    F = pyad.compile(signs, np.ones(guards))
    rng = np.random.default_rng(3)
    points = rng.uniform(-1.0, 1.0, size=(THREADS, 60, guards))
    want = [[pyad.value_and_grad(signs)(x) for x in mine] for mine in points]
    del traced[:]

    def work(i: int) -> None:
        for _ in range(3):
            for x, (value, grad) in zip(points[i], want[i]):
                got = F.value_and_grad(x)
                assert got[0] == value and np.array_equal(got[1], grad), x

    run_threads(work)
    assert F.retraces == len(traced)  # no retrace lost or counted twice
    assert F.retraces >= 2**guards - 1  # every branch met is traced at least once
    assert len(F._programs) <= 1 + compiled._MAX_VARIANTS


# -- (c) the GIL is released during a long replay -----------------------------------------------


def where_another_thread_runs(call: Callable[[], Any]) -> tuple[set[str], Any]:
    """The Python functions this thread is in whenever it lets another thread have the GIL
    during `call`; and what `call` returned.

    With a switch interval far longer than `call`, this thread is never made to hand the GIL
    over, so the other thread runs only when this one lets it go: inside a replay that
    releases it (this thread is then in _Program.run or _Program.hvp, the C call's Python
    frame), at a numpy operation that releases it, or at the final join. The other thread
    notes where this one is each time it gets the GIL, then gives it back at once. No
    timing is compared: only the order of events, which the GIL fixes."""
    main = threading.get_ident()
    go, done = threading.Event(), threading.Event()
    seen: set[str] = set()

    def observe() -> None:
        go.wait()
        while not done.is_set():
            seen.add(sys._current_frames()[main].f_code.co_qualname)
            time.sleep(0)  # hand the GIL back: this thread runs again at the next release

    observer = threading.Thread(target=observe)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        observer.start()
        go.set()
        result = call()
        done.set()
        observer.join()
    finally:
        sys.setswitchinterval(interval)
    return seen, result


def wide(v: list[Var]) -> Any:
    return pyad.sum([pyad.tanh(a * b) + a * a for a, b in zip(v, v[1:])])


@pytest.mark.parametrize("kind", ["batch", "hessian"])
def test_a_long_replay_lets_other_threads_run(kind: str) -> None:
    # each call replays for about a tenth of a second here (one batch of 2000 points, or a
    # Hessian of 800 inputs in a few passes of some hundred directions), ample time for the
    # woken thread to be scheduled
    n = 400 if kind == "batch" else 800
    F = pyad.compile(wide, np.linspace(-1.0, 1.0, n))
    if kind == "batch":
        X = np.random.default_rng(1).uniform(-1.0, 1.0, size=(2000, n))
        call: Callable[[], Any] = lambda: F.value_and_grad(X)  # noqa: E731
    else:
        x = np.linspace(-1.0, 1.0, n)
        call = lambda: F.hessian(x)  # noqa: E731
    replay = {"_Program.run", "_Program.hvp"}
    with release_threshold(float("inf")):
        where_held, want = where_another_thread_runs(call)
    where_released, got = where_another_thread_runs(call)
    assert where_released & replay
    assert not where_held & replay  # the control: without the release, never in a replay
    assert same(got, want)


# -- (d) the speedup is measured, not tested: the benchmark runs and checks its results --------


def test_bench_threads_runs_quick() -> None:
    from bench import threads  # checks every threaded result against one thread's

    result = threads.run(quick=True)
    assert result["speedup_median"] > 0 and result["release_threshold"] == compiled._RELEASE_WORK
    assert "speedup of two threads" in threads.format_report(result)
