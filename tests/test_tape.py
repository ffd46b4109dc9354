"""Tapes: activation, reset, stale and foreign Vars, memory that stays bounded without any
tape call, threads, and the drop-in Var behaviours that are not about a single op."""

from __future__ import annotations

import gc
import math
import random
import threading

import numpy as np
import pytest

import pyad
from pyad import Tape, Var, errors


def test_default_tape_is_per_thread_and_with_switches_it() -> None:
    default = Tape.current()
    assert Tape.current() is default
    with Tape() as t:
        assert Tape.current() is t
        x = Var(1.0)
        assert x.tape is t
        with Tape() as u:
            assert Tape.current() is u
        assert Tape.current() is t
    assert Tape.current() is default
    seen = []
    thread = threading.Thread(target=lambda: seen.append(Tape.current()))
    thread.start()
    thread.join()
    assert seen[0] is not default


def test_operations_record_on_the_operands_tape() -> None:
    with Tape() as t:
        x = Var(2.0)
    with Tape() as u:
        y = x * 3.0
        assert len(u) == 0
    assert y.tape is t
    assert len(t) == 2


def test_len_reset_and_stale_vars() -> None:
    with Tape() as t:
        x = Var(2.0)
        y = x * x + 1.0
        assert len(t) == 3
        t.reset()
        assert len(t) == 0
        for use in (
            lambda: y.v,
            lambda: y.grad,
            lambda: x * 2.0,
            lambda: pyad.exp(x),
            lambda: y.backward(),
            lambda: pyad.sum([x, 1.0]),
        ):
            with pytest.raises(errors.StaleVarError, match="reset"):
                use()
        z = Var(5.0)
        (z * z).backward()
        assert z.grad == 10.0


def test_vars_of_two_tapes_do_not_mix() -> None:
    with Tape():
        x = Var(1.0)
    with Tape():
        y = Var(2.0)
    for mix in (
        lambda: x + y,
        lambda: y * x,
        lambda: pyad.atan2(x, y),
        lambda: pyad.dot([x, y], [1.0, 2.0]),
        lambda: pyad.softmax([x, y]),
    ):
        with pytest.raises(errors.ForeignVarError, match="two different tapes"):
            mix()


def test_nbytes_counts_the_c_buffers() -> None:
    with Tape() as t:
        empty = t.nbytes
        x = Var(1.0)
        for _ in range(10_000):
            x = x * 1.0001
        assert t.nbytes > empty
        assert t.nbytes >= 41 * len(t)


def _mlp_loss(params: list[Var], data: list[tuple[float, float, float]]) -> Var:
    """A 2-8-1 tanh network's squared loss, micrograd style (a new graph every call)."""
    w1, b1, w2, b2 = params[:16], params[16:24], params[24:32], params[32]
    loss: Var | float = 0.0
    for x0, x1, target in data:
        hidden = [pyad.tanh(w1[2 * k] * x0 + w1[2 * k + 1] * x1 + b1[k]) for k in range(8)]
        out = sum((w * h for w, h in zip(w2, hidden)), b2)
        d = out - target
        loss = loss + d * d
    assert isinstance(loss, Var)
    return loss


def test_training_loop_runs_in_flat_memory_without_tape_calls() -> None:
    rng = random.Random(0)
    data = [(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.choice((-1.0, 1.0))) for _ in range(8)]
    with Tape() as t:
        params = [Var(0.5 * math.sin(k + 1)) for k in range(33)]
        sizes: list[tuple[int, int]] = []
        losses = []
        for _step in range(500):
            loss = _mlp_loss(params, data)  # the previous graph is still alive here
            for p in params:
                p.grad = 0.0
            loss.backward()
            for p in params:
                p.v -= 0.05 * p.grad
            losses.append(loss.v)
            sizes.append((t.nbytes, len(t)))
        assert len(t) > 300  # at least one graph's worth
    # After warming up, memory never exceeds what the first 250 steps reached: flat.
    warm = max(nbytes for nbytes, _ in sizes[50:250])
    late = max(nbytes for nbytes, _ in sizes[250:])
    assert late <= warm, f"tape grew from {warm} to {late} bytes"
    assert max(n for _, n in sizes) < 16 * 1024  # a few graphs, not 500
    assert losses[-1] < losses[0]


def test_a_million_records_deep() -> None:
    with Tape() as t:
        x = Var(1.0)
        v = x
        for _ in range(500_000):
            v = v * 0.999999 + 1e-9
        assert len(t) == 1_000_001
        v.backward()
    assert math.isclose(x.grad, 0.999999**500_000, rel_tol=1e-9)


@pytest.mark.parametrize("engine", [pyad, pyad.reference], ids=["pyad", "reference"])
def test_fan_out_dag_of_depth_60(engine) -> None:  # type: ignore[no-untyped-def]
    x = engine.Var(1.0)
    v = x
    for _ in range(60):
        v = v + v  # 2**60 paths from v to x
    v.backward()
    assert x.grad == 2.0**60
    assert v.v == 2.0**60


def test_a_tape_is_used_from_any_thread() -> None:
    # Once each of these raised ThreadError in a thread other than the tape's creator's.
    with Tape() as t:
        x = Var(3.0)
        seen: dict[str, object] = {}
        failures: list[BaseException] = []

        def use() -> None:
            try:
                y = x * 2.0
                z = pyad.exp(x) + y
                z.backward()
                seen.update(y=y.v, z=z.v, grad=x.grad, tape=z.tape, current=Tape.current())
                with t:  # entering it from this thread records new leaves on it too
                    w = Var(1.5) * x
                seen.update(w=w.v, w_tape=w.tape, repr=repr(t))
            except BaseException as exc:  # reported in the main thread
                failures.append(exc)

        thread = threading.Thread(target=use)
        thread.start()
        thread.join()
        assert not failures, failures
        assert seen["y"] == 6.0 and seen["z"] == math.exp(3.0) + 6.0
        assert seen["grad"] == math.exp(3.0) + 2.0
        assert seen["tape"] is t and seen["w_tape"] is t and seen["w"] == 4.5
        assert seen["current"] is not t  # the other thread's default tape is its own
        assert str(seen["repr"]).startswith("<pyad.Tape: 6 records")
        assert (x * 2.0).v == 6.0 and x.grad == math.exp(3.0) + 2.0


def test_threads_record_on_their_own_tapes_at_once() -> None:
    results: dict[int, float] = {}

    def work(k: int) -> None:
        x = Var(float(k))
        y = x
        for _ in range(20_000):
            y = pyad.sin(y) * 0.5 + x
        y.backward()
        results[k] = x.grad

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for k in range(4):
        ref_x = pyad.reference.Var(float(k))
        y = ref_x
        for _ in range(20_000):
            y = pyad.reference.sin(y) * 0.5 + ref_x
        y.backward()
        assert results[k] == pytest.approx(ref_x.grad, rel=1e-12)


def test_vars_dropped_in_another_thread_are_released() -> None:
    with Tape() as t:
        keep: list[Var] = []
        x = Var(1.0)
        for _ in range(5000):
            keep.append(x * 2.0)
        thread = threading.Thread(target=keep.clear)
        thread.start()
        thread.join()
        gc.collect()
        for _ in range(5000):
            x = x * 1.0
        assert len(t) < 10_000


def test_drop_in_var_behaviour() -> None:
    with Tape():
        x, y = Var(2.0), Var(5.0)
        f = pyad.log(x) + x * y - pyad.sin(y)
        assert isinstance(f.v, float)
        assert f.v == 11.652071455223084
        f.backward()
        assert (x.grad, y.grad) == (5.5, 1.7163378145367738)
        # predecessors: (multiplier, Var) pairs, as in the pure-Python engine
        (m1, a), (m2, b) = f.predecessors
        assert (m1, m2) == (1.0, -1.0)
        assert a.v == pytest.approx(math.log(2) + 10) and b.v == pytest.approx(math.sin(5))
        assert [m for m, _ in (x * y).predecessors] == [5.0, 2.0]
        assert x.predecessors == []
        assert [m for m, _ in (x * 3.0).predecessors] == [3.0]
        assert [m for m, _ in (3.0 - x).predecessors] == [-1.0]
        # identity semantics, comparisons on values, truthiness on values
        assert x == x and x != Var(2.0)
        assert len({x, y, x}) == 2 and {x: 1}[x] == 1
        assert x < y and y >= x and x <= 2.0 and x > 1 and not (x > y)
        assert bool(x) and not Var(0.0) and +x is x
        assert "Var(v=2.0" in repr(x)
        # .v writable on leaves, .grad writable
        x.v -= 0.5
        assert x.v == 1.5
        x.grad = 0.0
        assert x.grad == 0.0
        with pytest.raises(errors.NotLeafError):
            f.v = 1.0
        # numpy scalars on either side
        z = np.float64(2.0) * x + x * np.float32(0.5) - np.int64(1) / x
        assert z.v == pytest.approx(3.0 + 0.75 - 1 / 1.5)
        assert isinstance(z, Var)


def test_backward_accumulates_and_works_on_intermediate_nodes() -> None:
    with Tape():
        x = Var(3.0)
        u = x * x
        f = pyad.exp(u * 0.1)
        f.backward()
        g1 = x.grad
        f.backward()
        assert x.grad == 2 * g1
        assert u.grad == pytest.approx(2 * 0.1 * math.exp(0.9))
        u.backward(2.0)
        assert x.grad == pytest.approx(2 * g1 + 12.0)
        assert u.grad == pytest.approx(2 * 0.1 * math.exp(0.9) + 2.0)
