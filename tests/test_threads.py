"""Threads: one compiled Function called from several threads at once, and one tape shared by
several threads (section e).

Each replay takes a work buffer of its own and long replays release the GIL, so threads really
do replay one program concurrently; retraces (guard flips) change the Function's kept traces
under a lock. The oracle is what one thread computed beforehand: every threaded result must be
bit for bit the same. The GIL release itself is shown by another Python thread making progress
during one long replay, against the same replay with the release switched off.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import pyad
from bench.threads import release_threshold
from pyad import Var, _native, _program, errors
from pyad._native import STATUS, ffi, lib
from pyad.tape import CHUNK_SHIFT

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
    assert F.info["instructions"] * 2 < _program._RELEASE_WORK
    assert k * F.info["instructions"] * 2 >= _program._RELEASE_WORK
    assert F.info["instructions"] * (n + 1) >= _program._RELEASE_WORK
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

    with release_threshold(_program._RELEASE_WORK if threshold is None else threshold):
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


@pytest.mark.filterwarnings("ignore::pyad.errors.RetraceWarning")  # retracing is the point
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
    assert len(F._programs) <= 1 + _program.MAX_VARIANTS


# -- (c) the GIL is released during a long replay -----------------------------------------------


def where_another_thread_runs(call: Callable[[], Any]) -> tuple[set[str], Any]:
    """The Python functions this thread is in whenever it lets another thread have the GIL
    during `call`; and what `call` returned.

    With a switch interval far longer than `call`, this thread is never made to hand the GIL
    over, so the other thread runs only when this one lets it go: inside a replay that
    releases it (this thread is then in Program.run or Program.hvp, the C call's Python
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
    replay = {"Program.run", "Program.hvp"}
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
    assert result["speedup_median"] > 0 and result["release_threshold"] == _program._RELEASE_WORK
    assert "speedup of two threads" in threads.format_report(result)


# -- (e) one tape, several threads --------------------------------------------------------------
#
# A tape may be used from any thread; only the implicit default tape is per thread. Each C call
# is atomic, the Python around it is not: the tests below share one tape between threads that
# record, read and sweep at once, with a tiny switch interval so that threads are switched
# between any two C calls, and check every value and gradient against what one thread computes.


@contextlib.contextmanager
def switching_often() -> Iterator[None]:
    """Threads switched every microsecond, so that one thread's Python between two C calls
    (a push and its segment, a read and its buffer) is interleaved with other threads' calls."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def expression(a: Any, b: Any, engine: Any) -> Any:
    """A few ops of each kind: Var-Var, Var-constant, constant-Var, unary, n-ary."""
    u = a * b + engine.sin(a) * 3.0 - 1.5 / (engine.exp(b) + 1.0)
    return engine.tanh(u) + engine.sum([u, a, 2.0]) + (-a) ** 2


def known(a: float, b: float) -> tuple[float, float, float]:
    """The value and the two partials of expression, from the pure-Python engine."""
    ra, rb = pyad.reference.Var(a), pyad.reference.Var(b)
    f = expression(ra, rb, pyad.reference)
    f.backward()
    return f.v, ra.grad, rb.grad


def test_threads_record_and_sweep_one_tape_at_once() -> None:
    tape = pyad.Tape()
    rounds = 300  # per thread: ~14 records each, several segments in all
    points = [
        [(0.1 * i + 0.01 * k, 1.0 - 0.02 * k + 0.1 * i) for k in range(rounds)] for i in range(4)
    ]
    want = [[known(a, b) for a, b in mine] for mine in points]
    kept: list[list[tuple[Var, float]]] = [[] for _ in points]

    def work(i: int) -> None:
        with tape:  # new leaves on the shared tape (each thread's own stack)
            for k, ((a, b), (value, ga, gb)) in enumerate(zip(points[i], want[i])):
                x, y = Var(a), Var(b)
                f = expression(x, y, pyad)
                assert f.tape is tape
                assert f.v == value, (i, k)  # the pure-Python engine's, bit for bit
                f.backward()
                assert (x.grad, y.grad) == (ga, gb), (i, k)
                if k < 5:  # these live on while all else is recorded, released and reused
                    kept[i].append((f, f.v))

    with switching_often():
        run_threads(work, count=4)
    for mine in kept:
        for f, value in mine:
            assert f.v == value
    # No pin was lost or left behind: once every Var is dead, recording more reuses the
    # segments, and the tape holds a few (it releases them in batches, see pyad_tape_unpin).
    del kept[:], f
    gc.collect()
    with tape:
        # x in a segment of leaves only: a segment the threads' records shared would keep the
        # segments of their operands, as many as the threads' interleaving spread them over
        # (a thread switched out between its leaves and its expression records them segments
        # apart), and the tape would hold that many more; only lost or stray pins matter here
        fill = pyad.array(np.zeros((1 << CHUNK_SHIFT) + 1))  # crosses into a fresh segment
        x = Var(1.0)  # in the segment the fill opened last, or in one of its own
        del fill
    for _ in range(300):
        churn = [x + 5.0 for _ in range(500)]
        del churn
    assert len(tape) < 12 * 1024  # ~20 segments were recorded by the threads alone


@contextlib.contextmanager
def another_thread_opening_a_segment(tape: pyad.Tape, x: Var) -> Iterator[None]:
    """Inside: the state between another thread's push that opened a segment and that
    thread's next line, made to last. Its push (raw C calls here, as the frontend makes them)
    opened a segment and holds the pin the push took; it has not made the segment the tape's
    yet, so ``tape._s`` names an older one. On exit that thread's segment object dies and its
    pin is released: what keeps the records made inside must be their own pins."""
    while True:
        r = lib.pyad_mul_vc(x._h, 1.0)
        if r < 0:
            break
    assert -r == STATUS["SEGMENT"]
    out = ffi.new("int64_t *")
    assert lib.pyad_tape_opened(tape._p, out) == 0
    theirs = int(out[0])
    stale = tape._s
    assert theirs >> CHUNK_SHIFT != stale._c
    try:
        yield
    finally:
        assert lib.pyad_tape_unpin(tape._p, theirs) == 0


def test_vars_made_while_another_thread_opens_a_segment_keep_their_records() -> None:
    # A Var recorded in another thread's new segment before that thread made it the tape's
    # must pin it itself: once every other Var of the segment dies and many segments are
    # recorded, its record must still be its own, not a reused slot's. Every way of recording.
    with pyad.Tape() as tape:
        x = Var(1.0)
        made: list[Any] = []
        for make in (
            lambda: x * 2.0,  # Var-constant
            lambda: pyad.exp(x),  # unary
            lambda: 3.0 - x,  # constant-Var
            lambda: Var(4.0),  # leaf
            lambda: x * x,  # Var-Var
            lambda: pyad.sum([x, x, 1.0]),  # n-ary
            lambda: pyad.softmax([x, 1.0]),  # several records
            lambda: pyad.dot([x, x], [x, 2.0]),
        ):
            with another_thread_opening_a_segment(tape, x):
                made.append(make())
        for _ in range(20):  # release the segments, record over the free ones
            churn = [x + 5.0 for _ in range(1500)]
            del churn
            gc.collect()
            len(tape)
        y, z, w, u, p, v, sm, d = made
        assert (y.v, z.v, w.v, u.v, p.v, v.v, d.v) == (2.0, math.exp(1.0), 2.0, 4.0, 1.0, 3.0, 3.0)
        assert [s.v for s in sm] == [0.5, 0.5] and [s.op for s in sm] == ["softmax"] * 2
        assert [r.op for r in (y, z, w, u, p, v, d)] == [
            "mul",
            "exp",
            "sub",
            "leaf",
            "mul",
            "sum",
            "dot",
        ]


def test_a_push_that_opens_a_segment_gets_its_own_record() -> None:
    # A push returns SEGMENT (it opened a segment), and before its thread asks for its record
    # another thread pushes one. The frontend must get its own record, not the newest one.
    with pyad.Tape() as tape:
        x = Var(1.0)
        while True:  # this thread's push, as the frontend makes it, until one opens a segment
            r = lib.pyad_mul_vc(x._h, 3.0)
            if r < 0:
                break
        assert -r == STATUS["SEGMENT"]
        theirs: list[Var] = []
        thread = threading.Thread(target=lambda: theirs.append(x * 7.0))
        thread.start()
        thread.join()
        mine = tape._new_segment()  # what the frontend does next after SEGMENT
        assert pyad.var._adopt_in(tape, mine._h, mine).v == 3.0 and theirs[0].v == 7.0


def test_unpin_failures_other_than_memory_are_raised() -> None:
    # An unpin failing for want of memory is retried later; any other failure means the pins
    # are out of step with the segments (a bug), and the next call that releases pins raises
    # it rather than carry on. Provoked here by queueing a pin the tape does not hold.
    with pyad.Tape() as tape:
        x = Var(1.0)
        tape._pending.append(x._h)  # a second release of the only pin on x's segment ...
        tape._pending.append(x._h)  # ... and a third, which no pin backs
        with pytest.raises(errors.InternalError, match="not pinned"):
            len(tape)
        assert not tape._pending


def test_reads_into_buffers_of_their_own() -> None:
    # Two threads read values and gradients of one tape at once, switched between the read's
    # C call and the use of its result: each must see its own.
    tape = pyad.Tape()
    with tape:
        xs = [Var(float(i)) for i in range(64)]
        for x in xs:
            (x * 2.0).backward()

    def work(i: int) -> None:
        for _ in range(200):
            for k in range(i, 64, 4):
                assert xs[k].v == float(k) and xs[k].grad == 2.0

    with switching_often():
        run_threads(work, count=4)


def test_each_thread_gets_its_own_error_message() -> None:
    # The message of a failed call is read after the call; another thread failing on the same
    # tape in between must not replace it (C keeps the messages per thread).
    tape = pyad.Tape()
    with tape:
        xs = [Var(-1.0 - i) for i in range(4)]
    ops = [pyad.log, pyad.sqrt, pyad.log, pyad.sqrt]

    def work(i: int) -> None:
        op, x = ops[i], xs[i]
        expected = f"{op.__name__}({x.v:g})"
        for _ in range(300):
            with pytest.raises(errors.DomainError) as info:
                op(x)
            assert expected in str(info.value), (expected, str(info.value))

    with switching_often():
        run_threads(work, count=4)


def test_the_default_tape_stays_per_thread() -> None:
    main = pyad.Tape.current()
    with ThreadPoolExecutor(max_workers=2) as pool:
        theirs = list(pool.map(lambda _: pyad.Tape.current(), range(2)))
    assert all(t is not main for t in theirs)
    assert pyad.Tape.current() is main


def train_micrograd(model: Any, steps: int) -> list[float]:
    """micrograd's demo loop on four points: the losses, step by step."""
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    losses = []
    for _ in range(steps):
        out = [model(x) for x in xs]
        loss = sum((o - y) ** 2 for o, y in zip(out, ys))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.05 * p.grad
        losses.append(loss.data)
    return losses


def train_plain(w: Var, b: Var, steps: int) -> list[float]:
    """Least squares on a line with plain pyad Vars: .v, .grad, backward and updates."""
    losses = []
    for _ in range(steps):
        loss = pyad.sum([(w * x + b - (2.0 * x - 1.0)) ** 2 for x in (0.0, 0.5, 1.0, 2.0)])
        w.grad = b.grad = 0.0
        loss.backward()
        w.v -= 0.05 * w.grad
        b.v -= 0.05 * b.grad
        losses.append(loss.v)
    return losses


def test_a_model_built_here_trains_in_a_thread_pool() -> None:
    from pyad.compat.micrograd.nn import MLP

    def fresh() -> tuple[Any, Var, Var]:
        random.seed(1)
        return MLP(3, [4, 4, 1]), Var(0.3), Var(-0.2)

    model, w, b = fresh()  # the known answer: trained in this thread
    want = (train_micrograd(model, 30), train_plain(w, b, 30), [p.data for p in model.parameters()])
    assert want[0][-1] < want[0][0] and want[1][-1] < want[1][0]
    model, w, b = fresh()  # built here, trained in a worker
    with ThreadPoolExecutor(max_workers=1) as pool:
        got = pool.submit(
            lambda: (
                train_micrograd(model, 30),
                train_plain(w, b, 30),
                [p.data for p in model.parameters()],
            )
        ).result()
    assert got == want
    assert [p.data for p in model.parameters()] == want[2]  # the updates are seen here too


def test_the_tape_locks_are_taken_where_the_switch_says() -> None:
    # Where the interpreter has no GIL, every entry point that uses a tape is the locked one;
    # with one, the plain one (the locks cost nothing there). PYAD_TAPE_LOCKS=1 forces them.
    forced = os.environ.get("PYAD_TAPE_LOCKS") == "1"
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    assert _native.LOCKED is (forced or not gil)
    suffix = "_locked" if _native.LOCKED else ""
    for name in (
        "pyad_mul",
        "pyad_exp",
        "pyad_push_leaf",
        "pyad_tape_unpin",
        "pyad_backward",
        "pyad_get_value",
        "pyad_push_softmax",
    ):
        assert getattr(lib, name).__name__ == name + suffix
    for name in ("pyad_tape_free", "pyad_tape_errmsg", "pyad_program_run_nogil", "pyad_eval"):
        assert getattr(lib, name).__name__ == name  # no tape to lock, or freed by the GC


#: section (e): what a subprocess runs again with the locked entry points
SHARED_TAPE_TESTS = [
    "test_threads_record_and_sweep_one_tape_at_once",
    "test_vars_made_while_another_thread_opens_a_segment_keep_their_records",
    "test_a_push_that_opens_a_segment_gets_its_own_record",
    "test_unpin_failures_other_than_memory_are_raised",
    "test_reads_into_buffers_of_their_own",
    "test_each_thread_gets_its_own_error_message",
    "test_a_model_built_here_trains_in_a_thread_pool",
    "test_the_tape_locks_are_taken_where_the_switch_says",
]


@pytest.mark.skipif(_native.LOCKED, reason="this run takes the locks already")
def test_one_tape_shared_by_threads_with_the_locks_of_interpreters_without_a_gil() -> None:
    # This interpreter has a GIL; PYAD_TAPE_LOCKS=1 makes a new one bind the locked entry
    # points, which release the GIL around each call: the C calls of several threads then
    # really run at once, and only the tapes' locks keep them one at a time (without the
    # locks, these tests crash).
    env = dict(os.environ, PYAD_TAPE_LOCKS="1")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", __file__]
    command += ["-k", " or ".join(SHARED_TAPE_TESTS)]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.count("PASSED tests/test_threads.py::") == len(SHARED_TAPE_TESTS)


def test_training_in_a_thread_pool_keeps_the_best_model_with_deepcopy() -> None:
    """The issue's drop-in case, unchanged micrograd-style code: a model built in the main
    thread, trained in a ThreadPoolExecutor worker, the best one kept with copy.deepcopy."""
    from pyad.compat.micrograd.engine import Value
    from pyad.compat.micrograd.nn import MLP

    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]

    def loss_of(model: Any) -> Any:
        return sum((o - y) ** 2 for o, y in zip((model(x) for x in xs), ys))

    def train(model: Any, steps: int) -> tuple[Any, float, list[float]]:
        best, best_loss, losses = copy.deepcopy(model), math.inf, []
        for k in range(steps):
            loss = loss_of(model)
            if loss.data < best_loss:
                best, best_loss = copy.deepcopy(model), loss.data
            model.zero_grad()
            loss.backward()
            lr = 0.3 if k % 7 == 6 else 0.05  # an overshoot now and then: the best is kept
            for p in model.parameters():
                p.data -= lr * p.grad
            losses.append(loss.data)
        return best, best_loss, losses

    random.seed(3)
    model = MLP(3, [4, 4, 1])
    with ThreadPoolExecutor(max_workers=2) as pool:
        best, best_loss, losses = pool.submit(train, model, 40).result()
    assert best_loss == min(losses) < losses[0]
    assert all(isinstance(p, Value) for p in best.parameters())
    assert all(a is not b for a, b in zip(best.parameters(), model.parameters()))
    assert loss_of(best).data == best_loss  # the copy computes what the original did then
