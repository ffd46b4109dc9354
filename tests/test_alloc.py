"""Running out of memory, from Python: at every allocation of a small workload, and at a
tape's ``max_bytes`` cap.

The workload is a list of steps, each one operation: leaves, binary and unary ops, n-ary
ops, a chain of records long enough to open (and, as its Vars die, release and reuse)
segments, backward, a summary, ``pyad.compile`` and the compiled function, a reset. A first
run counts the C allocations before each step (``pyad_debug_alloc_count``). Then, for every
n up to the total, the workload runs again with its n-th allocation failing: the step that
makes it must raise MemoryError (pyad's TapeMemoryError) with the tape as it was (length,
values and grads of every Var the workload holds), the step retried must give the first
run's result, and so must every later step.

One kind of step may absorb the failure instead: a push that opens a segment releases the
pins of dead segments afterwards, and if that release finds no memory, the pin waits for the
next release (the push itself succeeded). The test checks the pin did wait.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import pyad
from pyad import Var, errors
from pyad._native import CHUNK_RECORDS, ffi, lib


@contextlib.contextmanager
def failing_allocation(n: int) -> Iterator[None]:
    """Inside the block, the n-th allocation of pyad's C code (counted from its start) fails,
    once; the hook is off again afterwards, whatever happens."""
    assert lib.pyad_debug_fail_alloc(n) == 0
    try:
        yield
    finally:
        lib.pyad_debug_fail_alloc(0)


def _raw_len(tape: pyad.Tape) -> int:
    """len(tape) without releasing pending pins (which may allocate)."""
    out = ffi.new("int64_t *")
    assert lib.pyad_tape_len(tape._p, out) == 0
    return int(out[0])


class State:
    """What the workload holds between steps."""

    def __init__(self) -> None:
        self.tape: pyad.Tape | None = None
        self.xs: list[Var] = []
        self.v: dict[str, Var] = {}
        self.chain: Var | None = None
        self.fn: Any = None

    def held(self) -> list[Var]:
        return self.xs + list(self.v.values()) + ([self.chain] if self.chain else [])

    def snapshot(self) -> tuple[object, ...]:
        assert self.tape is not None
        return (_raw_len(self.tape), [(x.v, x.grad) for x in self.held()])


Result = tuple[float, ...]
Step = tuple[str, Callable[[State], Result]]

NX = 20
# the matrix of the workload's product, which the tape borrows: alive for the whole module
LENT = np.arange(42.0).reshape(7, 6) / 10.0


def _fn(x: list[Var]) -> Var:
    """The compiled function: binary, unary and n-ary ops and one guard."""
    y = pyad.logsumexp([x[0] * x[1], pyad.exp(x[2]), x[3] / 2.0]) + pyad.dot(x, x)
    y = y + pyad.sum(x) * pyad.softmax(x)[1] + pyad.tanh(x[4]) + 1.0 / x[5]
    return y + x[0] if x[0] > 0 else y - x[0]


def _workload() -> list[Step]:
    steps: list[Step] = []

    def make_tape(s: State) -> Result:
        s.tape = pyad.Tape()
        s.tape.__enter__()
        return ()

    def leaves(base: float) -> None:
        for k in range(NX):

            def leaf(s: State, v: float = base + 0.05 * k) -> Result:
                s.xs.append(Var(v))
                return (s.xs[-1].v,)

            steps.append((f"leaf {k}", leaf))

    def op(name: str, f: Callable[[State], Any]) -> None:
        def run(s: State) -> Result:
            y = f(s)
            if isinstance(y, list):
                for j, yj in enumerate(y):
                    s.v[f"{name} {j}"] = yj
                return tuple(yj.v for yj in y)
            s.v[name] = y
            return (y.v,)

        steps.append((name, run))

    def chain(count: int) -> None:
        for i in range(count):

            def link(s: State, i: int = i) -> Result:
                # a new leaf every 300 records: older segments are then not needed
                s.chain = Var(float(i % 7)) if i % 300 == 0 or s.chain is None else s.chain + 1.0
                return (s.chain.v,)

            steps.append((f"chain {i}", link))

    def backward(name: str) -> Callable[[State], Result]:
        def run(s: State) -> Result:
            s.v[name].backward()
            return tuple(x.grad for x in s.held())

        return run

    def summary(s: State) -> Result:
        assert s.tape is not None
        info = s.tape.summary()
        # not the depth or the chain's counts: they depend on when dead segments go
        return tuple(float(info.records_per_op[op]) for op in ("exp", "tanh", "softmax"))

    def compile_fn(s: State) -> Result:
        s.fn = pyad.compile(_fn, np.linspace(0.5, 1.5, 8))
        return ()

    def call_fn(s: State) -> Result:
        value, grad = s.fn.value_and_grad(np.linspace(0.6, 1.2, 8))
        hv = s.fn.hvp(np.linspace(0.6, 1.2, 8), np.ones(8))
        return (value, *grad.tolist(), *hv.tolist())

    def reset(s: State) -> Result:
        assert s.tape is not None
        s.tape.reset()
        s.xs, s.v, s.chain = [], {}, None
        return ()

    steps.append(("tape", make_tape))
    leaves(0.3)
    op("mul", lambda s: s.xs[0] * s.xs[1])
    op("add_vc", lambda s: s.xs[2] + 1.5)
    op("div_cv", lambda s: 2.0 / s.xs[3])
    op("pow", lambda s: s.xs[4] ** 2)
    op("exp", lambda s: pyad.exp(s.xs[5]))
    op("tanh", lambda s: pyad.tanh(s.v["mul"]))
    op("atan2", lambda s: pyad.atan2(s.xs[6], s.xs[7]))
    op("sum", lambda s: pyad.sum(s.xs))
    op("dot", lambda s: pyad.dot(s.xs[:10], s.xs[10:]))
    op("logsumexp", lambda s: pyad.logsumexp(s.xs[:18]))
    op("softmax", lambda s: pyad.softmax(s.xs[:5]))
    op("matvec", lambda s: (LENT @ pyad.array(s.xs[:6]))[3])  # the tape reads LENT
    chain(6 * CHUNK_RECORDS + 100)
    op("total", lambda s: pyad.sum([*s.v.values(), s.chain]))
    steps.append(("backward", backward("total")))
    steps.append(("backward again", backward("total")))
    steps.append(("summary", summary))
    steps.append(("compile", compile_fn))
    steps.append(("compiled call", call_fn))
    steps.append(("reset", reset))
    leaves(1.1)
    op("softmax", lambda s: pyad.softmax(s.xs))
    chain(CHUNK_RECORDS + 10)
    op("total", lambda s: pyad.dot(s.xs, [s.v["softmax 3"]] * NX) + s.chain)
    steps.append(("backward", backward("total")))
    return steps


class Run:
    """One run of the workload, with the n-th allocation failing (n > 0) or none."""

    def __init__(self, steps: list[Step], fail_at: int, ref: Run | None = None) -> None:
        self.results: list[Result] = []
        self.counts: list[int] = []
        self.lens: list[int] = []  # the tape's records after each step (first run only)
        self.raised = self.absorbed = 0
        self.final_len = -1
        s = State()
        gc.collect()
        gc.disable()
        try:
            start = lib.pyad_debug_alloc_count()
            with failing_allocation(fail_at):
                for i, (name, step) in enumerate(steps):
                    self.counts.append(lib.pyad_debug_alloc_count() - start)
                    here = (
                        ref is not None
                        and self.raised + self.absorbed == 0
                        and ref.counts[i] < fail_at <= ref.counts[i + 1]
                    )
                    if ref is not None and self.raised + self.absorbed == 0:
                        assert self.counts[i] == ref.counts[i], name
                    if not here:
                        self.results.append(step(s))
                    else:
                        self.results.append(self._fail_here(s, name, step))
                    if ref is not None:
                        assert self.results[i] == ref.results[i], (fail_at, name)
                    elif s.tape is not None:
                        self.lens.append(_raw_len(s.tape))
                self.counts.append(lib.pyad_debug_alloc_count() - start)
            assert s.tape is not None
            self.final_len = len(s.tape)
            s.tape.__exit__(None, None, None)
        finally:
            gc.enable()

    def _fail_here(self, s: State, name: str, step: Callable[[State], Result]) -> Result:
        before = s.snapshot() if s.tape is not None else None
        try:
            result = step(s)
        except MemoryError as exc:
            assert isinstance(exc, errors.TapeMemoryError), name
            if before is not None:
                assert s.snapshot() == before, name
            self.raised += 1
            return step(s)
        # the failed allocation was a release of dead segments after a successful push (the
        # pin waits for the next release), or a finished program's shrink
        assert s.tape is not None
        assert s.tape._pending or name == "compile", name
        self.absorbed += 1
        return result


@pytest.fixture(scope="module")
def reference() -> tuple[list[Step], Run]:
    steps = _workload()
    return steps, Run(steps, 0)


def test_reference_workload_does_what_it_should(reference: tuple[list[Step], Run]) -> None:
    steps, ref = reference
    assert ref.counts[-1] > 40
    # the chain's dead segments were released: of its six segments and more, the tape
    # holds fewer than four (segment 0, pinned by the leaves, among them)
    first_total = next(i for i, (name, _) in enumerate(steps) if name == "total")
    assert first_total > 6 * CHUNK_RECORDS
    assert ref.lens[first_total - 1] < 4 * CHUNK_RECORDS
    assert ref.results[-1] != ()


def test_every_allocation_fails_once(reference: tuple[list[Step], Run]) -> None:
    steps, ref = reference
    total = ref.counts[-1]
    raised = absorbed = 0
    for n in range(1, total + 1):
        run = Run(steps, n, ref)
        assert run.raised + run.absorbed == 1, n
        assert run.final_len == ref.final_len, n
        raised += run.raised
        absorbed += run.absorbed
    assert raised + absorbed == total
    assert raised > absorbed


def test_failing_allocation_turns_the_hook_off() -> None:
    with pytest.raises(ZeroDivisionError), failing_allocation(1):
        raise ZeroDivisionError
    with pyad.Tape():
        Var(1.0) + 1.0  # would fail if the hook were still armed
    with failing_allocation(1), pytest.raises(MemoryError):
        pyad.Tape()
    pyad.Tape()


# ---- max_bytes -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 0, -(2**40)])
def test_max_bytes_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        pyad.Tape(max_bytes=bad)


def test_max_bytes_below_what_an_empty_tape_holds_is_refused() -> None:
    empty = pyad.Tape().nbytes
    for small in (1, 4096, empty - 1):
        with pytest.raises(ValueError, match=f"max_bytes must be at least {empty} ") as info:
            pyad.Tape(max_bytes=small)
        assert f"not {small}" in str(info.value)
    assert pyad.Tape(max_bytes=empty).max_bytes == empty
    tape = pyad.Tape()
    with tape:
        xs = [Var(float(i)) for i in range(3 * CHUNK_RECORDS)]
    with pytest.raises(ValueError, match="an empty tape holds"):
        tape.max_bytes = 1
    assert tape.max_bytes is None and len(tape) == len(xs)  # unchanged
    tape.max_bytes = empty  # below what it holds now: allowed, it only stops growth
    assert tape.max_bytes == empty < tape.nbytes


@pytest.mark.parametrize("bad", [1.5, "100", True])
def test_max_bytes_must_be_an_int(bad: object) -> None:
    with pytest.raises(TypeError, match="max_bytes"):
        pyad.Tape(max_bytes=bad)  # type: ignore[arg-type]


def _fill(tape: pyad.Tape, limit: int) -> tuple[list[Var], BaseException | None]:
    """Leaves and products on ``tape`` until one fails; every Var is kept."""
    kept: list[Var] = []
    with tape:
        try:
            for i in range(limit):
                kept.append(Var(float(i)) if i % 2 == 0 else kept[-1] * 2.0)
        except MemoryError as exc:
            return kept, exc
    return kept, None


def test_max_bytes_caps_the_tape() -> None:
    one_segment = pyad.Tape().nbytes
    tape = pyad.Tape(max_bytes=one_segment + 1000)
    assert tape.max_bytes == one_segment + 1000
    kept, exc = _fill(tape, 4 * CHUNK_RECORDS)
    assert isinstance(exc, errors.TapeMemoryError) and isinstance(exc, MemoryError)
    assert "max_bytes" in str(exc) and str(one_segment + 1000) in str(exc)
    # nothing was recorded by the failed operation; what was recorded is intact
    assert len(kept) == CHUNK_RECORDS == len(tape)
    assert tape.nbytes <= one_segment + 1000
    assert [x.v for x in kept[:4]] == [0.0, 0.0, 2.0, 4.0]
    kept[-1].backward()
    assert kept[-2].grad == 2.0
    # the same operation fails again, and nothing else changed
    with tape, pytest.raises(MemoryError):
        kept[-1] + 1.0
    assert len(tape) == CHUNK_RECORDS
    # another tape records on
    more, exc = _fill(pyad.Tape(), 3 * CHUNK_RECORDS)
    assert exc is None and len(more) == 3 * CHUNK_RECORDS


def test_recording_goes_on_after_reset_or_a_higher_cap() -> None:
    tape = pyad.Tape(max_bytes=pyad.Tape().nbytes)
    kept, exc = _fill(tape, 2 * CHUNK_RECORDS)
    assert exc is not None and len(kept) == CHUNK_RECORDS
    tape.reset()
    again, exc = _fill(tape, 100)
    assert exc is None and [x.v for x in again[:3]] == [0.0, 0.0, 2.0]
    tape.max_bytes = None
    assert tape.max_bytes is None
    with tape:
        y = pyad.sum([again[-1] * float(i) for i in range(2 * CHUNK_RECORDS)])
    assert y.v == again[-1].v * sum(range(2 * CHUNK_RECORDS))
    assert tape.nbytes > pyad.Tape().nbytes


def test_max_bytes_counts_nary_operands_and_the_sweep() -> None:
    probe = pyad.Tape()
    tape = pyad.Tape(max_bytes=probe.nbytes)
    with tape:
        xs = [Var(0.5 * i) for i in range(64)]
        with pytest.raises(MemoryError, match="max_bytes"):
            pyad.sum(xs)
        assert len(tape) == 64
        xs[1].grad = 1.0
        with pytest.raises(MemoryError, match="max_bytes"):
            xs[0].backward()
        assert xs[0].grad == 0.0 and xs[1].grad == 1.0
    tape.max_bytes = 10 * probe.nbytes
    with tape:
        s = pyad.sum(xs)
    s.backward()
    assert s.v == 0.5 * 63 * 64 / 2 and xs[1].grad == 2.0
    assert probe.nbytes < tape.nbytes < 2 * probe.nbytes
