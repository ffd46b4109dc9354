"""The C peers of the replay benchmark (bench/cpeers.py) compute what pyad.reference computes.

A peer that is fast but wrong would make every replay target meaningless, so the Rogozhnikov
tape and the hand-written C are checked here against the pure-Python oracle on W1, W2 and W5,
at small sizes and, for W5, at WORKLOADS.md's 10 000 ops (where the input gradient is exactly 0).
Skipped only when there is no C compiler; with one, a failed build is a failure.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pyad
import pyad.reference as ref
from bench import cpeers
from bench.workloads import W5_INPUTS, input_vector, w1_loss, w2_loss

LOSSES = {"W1": w1_loss, "W2": w2_loss}
TINY = sys.float_info.min


def _have_compiler() -> bool:
    cc = sysconfig.get_config_var("CC") or "cc"
    return shutil.which(shlex.split(cc)[0]) is not None


@pytest.fixture(scope="module", autouse=True)
def native() -> Any:
    module, why = cpeers.load()
    if module is None:
        if not _have_compiler():
            pytest.skip(f"C peers not available ({why})")
        pytest.fail(f"a C compiler is present but the C peers did not build: {why}")
    return module


def _reference_vector(workload: str, n: int) -> tuple[float, np.ndarray]:
    xs = [ref.Var(v) for v in input_vector(n)]
    y = LOSSES[workload](ref, xs, n)
    y.backward()
    return y.v, np.array([x.grad for x in xs])


def _reference_w5(n_ops: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and adjoints of every W5 node (inputs first), seeded at the last node."""
    nodes = cpeers.w5_nodes(ref, n_ops)
    nodes[-1].backward()
    return np.array([v.v for v in nodes]), np.array([v.grad for v in nodes])


def _assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    """Elementwise ``|a - e| <= rtol * max(|e|, smallest normal)``: relative, except that
    adjoints which underflowed to subnormals are compared on the scale where they lost their
    precision."""
    assert actual.shape == expected.shape
    bound = rtol * np.maximum(np.abs(expected), TINY)
    bad = np.flatnonzero(~(np.abs(actual - expected) <= bound))
    assert bad.size == 0, f"{bad.size} differ, first at {bad[0]}: {actual[bad[0]]!r} vs " + repr(
        expected[bad[0]]
    )


# -- W1 and W2 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("workload", ["W1", "W2"])
@pytest.mark.parametrize("n", [2, 3, 50, 1000])
def test_vector_workloads_match_reference(workload: str, n: int) -> None:
    value, grad = _reference_vector(workload, n)
    x = cpeers.workload_inputs(workload, n)
    graph = cpeers.rogozhnikov_graph(workload, n)
    assert graph.n_ops == cpeers.ops_count(workload, n)
    for peer in (graph.replay, cpeers.handwritten(workload)):
        v, g = peer(x)
        assert v == value  # both sum in the workload's own order
        _assert_close(g, grad, 1e-12)


@pytest.mark.parametrize("workload", ["W1", "W2"])
def test_replay_follows_new_inputs(workload: str) -> None:
    """Replay re-evaluates at the new point: it is not a cached answer from recording time."""
    n = 30
    graph = cpeers.rogozhnikov_graph(workload, n)
    x = cpeers.workload_inputs(workload, n)[::-1].copy()
    xs = [ref.Var(float(v)) for v in x]
    y = LOSSES[workload](ref, xs, n)
    y.backward()
    for peer in (graph.replay, cpeers.handwritten(workload)):
        v, g = peer(x)
        assert v == pytest.approx(y.v, rel=1e-14)
        _assert_close(g, np.array([p.grad for p in xs]), 1e-12)
    v1, g1 = graph.replay(x)
    v2, g2 = graph.replay(x)
    assert v1 == v2 and np.array_equal(g1, g2)  # adjoints are zeroed between replays


@pytest.mark.parametrize("workload", ["W1", "W2"])
def test_single_parameter_is_zero(workload: str) -> None:
    """n = 1 has no terms: value 0 and gradient 0 (the reference returns the int 0 there)."""
    x = np.array([1.25])
    for peer in (cpeers.rogozhnikov_graph(workload, 1).replay, cpeers.handwritten(workload)):
        v, g = peer(x)
        assert v == 0.0
        assert g.tolist() == [0.0]


# -- W5 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_ops", [0, 1, 2, 3, 8, 40, 401, cpeers.W5_OPS])
def test_w5_every_node_matches_reference(n_ops: int) -> None:
    """Values agree bit for bit. Adjoints: the peers' softmax backward is y_j (g_j - sum g_i y_i)
    while the reference adds one term per output; where those sums cancel, the difference grows
    along the chain (about 3e-12 relative at 10 000 ops), hence 1e-10 rather than 1e-12."""
    values, adjoints = _reference_w5(n_ops)
    x = cpeers.workload_inputs("W5", n_ops)
    graph = cpeers.rogozhnikov_graph("W5", n_ops)
    hand = cpeers.handwritten("W5", n_ops)
    assert graph.n_ops == n_ops
    for peer, node_values, node_grads in (
        (graph.replay, graph.node_values, graph.node_grads),
        (hand, hand.node_values, hand.node_grads),
    ):
        v, g = peer(x)
        assert v == values[-1]
        assert np.array_equal(node_values(), values)
        _assert_close(node_grads(), adjoints, 1e-10)
        _assert_close(g, adjoints[:W5_INPUTS], 1e-10)


def test_w5_input_gradient_is_exactly_zero_at_full_size() -> None:
    """At 10 000 ops the softmax saturates and no adjoint reaches the 100 inputs: the gradient
    WORKLOADS.md asks for is exactly 0 in every engine, so the test above checks all nodes."""
    _, adjoints = _reference_w5(cpeers.W5_OPS)
    x = cpeers.workload_inputs("W5", cpeers.W5_OPS)
    assert not adjoints[:W5_INPUTS].any()
    for peer in (cpeers.rogozhnikov_graph("W5", cpeers.W5_OPS).replay, cpeers.handwritten("W5")):
        _, g = peer(x)
        assert not g.any()


# -- op counts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("workload", ["W1", "W2", "W5"])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 17, 41])
def test_ops_count_is_pyads_record_count(workload: str, size: int) -> None:
    with pyad.Tape() as tape:
        if workload == "W5":
            cpeers.w5_nodes(pyad, size)
            leaves = W5_INPUTS
        else:
            xs = [pyad.Var(v) for v in input_vector(size)]
            leaves = len(tape)
            LOSSES[workload](pyad, xs, size)
        assert len(tape) - leaves == cpeers.ops_count(workload, size)


def test_ops_count_rejects_unknown_workload() -> None:
    with pytest.raises(ValueError, match="W3"):
        cpeers.ops_count("W3", 10)


# -- errors: refused cleanly, the tape unchanged --------------------------------------------------


def test_bad_appends_are_refused_and_leave_the_tape_unchanged(native: Any) -> None:
    lib = native.lib
    g = cpeers.RogozhnikovGraph()
    a = g.input(2.0)
    b = g.op(lib.RZ_LOG, a)
    before = (g.n_ops, g.n_nodes, g.n_inputs)
    bad_calls = [
        (lib.RZ_ADD, a),  # too few inputs
        (lib.RZ_LOG, a, b),  # too many inputs
        (lib.RZ_SUM, *([a] * 9)),  # more than 8
        (lib.RZ_N_OPTYPES, a),  # unknown op
        (-1, a),
        (lib.RZ_MUL, a, 99),  # node past the end
        (lib.RZ_MUL, a, -1),
    ]
    for call in bad_calls:
        with pytest.raises(RuntimeError):
            g.op(*call)
        assert (g.n_ops, g.n_nodes, g.n_inputs) == before
    with pytest.raises(RuntimeError, match="bad argument"):
        g.replay(np.array([1.0, 2.0]))  # one input on this tape
    v, grad = g.replay(np.array([4.0]))
    assert v == pytest.approx(np.log(4.0)) and grad.tolist() == [0.25]


def test_softmax_has_consecutive_outputs(native: Any) -> None:
    lib = native.lib
    g = cpeers.RogozhnikovGraph()
    xs = [g.input(v) for v in (0.5, -1.0, 2.0)]
    first = g.op(lib.RZ_SOFTMAX, *xs)
    assert (first, g.n_nodes, g.n_ops) == (3, 6, 1)
    want = ref.softmax([ref.Var(v) for v in (0.5, -1.0, 2.0)])
    assert g.node_values()[3:].tolist() == [y.v for y in want]


def test_handwritten_w5_rejects_a_wrong_input_count() -> None:
    with pytest.raises(RuntimeError, match="bad argument"):
        cpeers.handwritten("W5", 8)(np.zeros(99))


def test_build_failure_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken source gives ``(None, reason)``: the benchmark prints "not available"."""
    src = tmp_path / "csrc"
    shutil.copytree(cpeers.CSRC, src)
    (src / "handwritten.c").write_text("this is not C;\n")
    monkeypatch.setattr(cpeers, "CSRC", src)
    monkeypatch.setattr(cpeers, "BUILD_DIR", tmp_path / "cache")
    module, why = cpeers._load_uncached()
    assert module is None
    assert why
    assert not list((tmp_path / "cache").glob("tmp-*"))  # the private build dir is gone


def test_time_replay_gives_seconds_per_call() -> None:
    calls: list[np.ndarray] = []
    times = cpeers.time_replay(calls.append, np.zeros(1), repeats=3, min_seconds=1e-4)
    assert len(times) == 3 and all(t > 0 for t in times)
    assert len(calls) > 3
