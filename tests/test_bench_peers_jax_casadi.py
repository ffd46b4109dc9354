"""The JAX and CasADi peers of ``python -m bench`` compute what pyad.reference computes, and
bench/plot.py draws the bench JSON.

A peer that is fast but wrong would make its row meaningless, so every workload a peer
implements is checked against the pure-Python oracle at small sizes: the one-shot call at the
WORKLOADS.md's inputs, and the compiled replay at a point other than the one it was compiled at
(where a graph that baked in its first inputs would be caught). Tolerance 1e-12 relative per
gradient entry: the peers sum in other orders (XLA's reductions, matrix products), so bitwise
equality is not expected, but anything beyond rounding is a bug.

Except for entries below 1e-4 of the gradient's largest, which are compared on that scale
(1e-16 of the largest, absolute): a reverse sweep is accurate to rounding of the gradient as a
whole, not entry by entry. W5 shows why this matters: at the replay point, 40 ops, input 82's
exact adjoint (80-digit mpmath) is 2.372e-19 against a largest entry of 2.9e-2; CasADi,
whose softmax differentiates through its max, gets 2.37e-19, while pyad.reference's partials
``y_i * (d_ij - y_j)`` round ``1 - y`` to 0 for the saturated output and give -2.6e-51 (JAX,
stopping the max's gradient, agrees with pyad.reference). Both are within rounding of the
gradient; only the componentwise view tells them apart.

A peer's tests are skipped only when its package is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import pyad.reference as ref
from bench import plot as bench_plot
from bench import replay
from bench.peers import casadi_peer, jax_peer
from bench.workloads import WORKLOADS

RTOL = 1e-12
#: entries below this share of the gradient's largest are compared on the largest's scale
FLOOR = 1e-4
TINY = sys.float_info.min
PEERS = {"jax": jax_peer, "casadi": casadi_peer}

#: (workload, size): tiny, but W5 runs through several softmax rounds (its input gradient is
#: not all zeros there), W3 over a few points, W1/W2 at the smallest n and a longer one.
CASES = [("W1", 2), ("W1", 60), ("W2", 2), ("W2", 60), ("W3", 3), ("W5", 40), ("W5", 101)]


def _peer(name: str) -> ModuleType:
    module = PEERS[name]
    ok, why = module.available()
    if not ok:
        pytest.skip(f"{module.NAME}: {why}")
    return module


def _reference(workload: str, size: int, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Value and gradient of the workload's loss at ``x`` with pyad.reference."""
    leaves = [ref.Var(float(v)) for v in x]
    y = WORKLOADS[workload].loss(ref, leaves, size)
    y.backward()
    return y.v, np.array([v.grad for v in leaves])


def _new_point(workload: str, x: np.ndarray) -> np.ndarray:
    """A point other than WORKLOADS.md's, in the workload's domain (W1 takes logs: keep > 0)."""
    if workload == "W3":
        return -0.7 * x[::-1].copy()
    return x[::-1].copy() + 0.125


def _assert_close(actual: Any, expected: Any, what: str) -> None:
    """Elementwise ``|a - e| <= RTOL * max(|e|, FLOOR * max|e|, smallest normal)``."""
    a = np.atleast_1d(np.asarray(actual, dtype=np.float64))
    e = np.atleast_1d(np.asarray(expected, dtype=np.float64))
    assert a.shape == e.shape, f"{what}: shape {a.shape} vs {e.shape}"
    scale = np.maximum(np.abs(e), max(FLOOR * float(np.max(np.abs(e))), TINY))
    bad = np.flatnonzero(~(np.abs(a - e) <= RTOL * scale))
    assert bad.size == 0, f"{what}: {bad.size} differ, first at {bad[0]}: {a[bad[0]]!r} vs " + repr(
        e[bad[0]]
    )


@pytest.mark.parametrize("name", sorted(PEERS))
def test_adapter_interface(name: str) -> None:
    module = PEERS[name]
    assert isinstance(module.NAME, str) and module.NAME
    assert set(module.WORKLOADS) <= {"W1", "W2", "W3", "W4", "W5"}
    ok, text = module.available()
    assert isinstance(ok, bool) and isinstance(text, str) and text


@pytest.mark.parametrize(("workload", "size"), CASES)
@pytest.mark.parametrize("name", sorted(PEERS))
def test_one_shot_matches_reference(name: str, workload: str, size: int) -> None:
    peer = _peer(name)
    if workload not in peer.WORKLOADS:
        pytest.skip(f"{peer.NAME} does not implement {workload}")
    value, grad = peer.one_shot(workload, size)
    assert isinstance(value, float)
    assert isinstance(grad, list) and all(isinstance(g, float) for g in grad)
    expected_value, expected_grad = _reference(workload, size, peer.inputs(workload, size))
    _assert_close(value, expected_value, f"{peer.NAME} {workload} value")
    _assert_close(grad, expected_grad, f"{peer.NAME} {workload} gradient")
    if workload == "W5":  # else the check would compare zeros
        assert np.count_nonzero(expected_grad) > 0


@pytest.mark.parametrize(("workload", "size"), CASES)
@pytest.mark.parametrize("name", sorted(PEERS))
def test_replay_matches_one_shot_and_reference(name: str, workload: str, size: int) -> None:
    peer = _peer(name)
    if workload not in peer.WORKLOADS:
        pytest.skip(f"{peer.NAME} does not implement {workload}")
    x = peer.inputs(workload, size)
    replay = peer.compile(workload, size)
    y = _new_point(workload, x)
    value, grad = replay(y)
    grad = np.array(grad, dtype=np.float64)  # CasADi's array is overwritten by the next call
    expected_value, expected_grad = _reference(workload, size, y)
    _assert_close(value, expected_value, f"{peer.NAME} {workload} replay value")
    _assert_close(grad, expected_grad, f"{peer.NAME} {workload} replay gradient")
    # back at WORKLOADS.md's inputs, the replay gives the one-shot answer
    value, grad = replay(x)
    once_value, once_grad = peer.one_shot(workload, size)
    _assert_close(value, once_value, f"{peer.NAME} {workload} replay vs one-shot value")
    _assert_close(grad, once_grad, f"{peer.NAME} {workload} replay vs one-shot gradient")


@pytest.mark.parametrize("name", sorted(PEERS))
def test_the_replay_tables_carry_the_peers_own_replay(name: str) -> None:
    """bench/replay.py times an installed peer's compiled replay beside pyad's, at the
    workload's size, and reports how far its gradient is from a fresh pyad recording."""
    _peer(name)
    wr = replay.run_case("W2", 20, 1, 1e-4, lambda _: None, batch=2)
    fig = wr["engines"][name]
    assert fig["size"] == 20 and fig["median_ns_per_op"] > 0 and fig["compile_ms"] > 0
    assert wr["checks"][f"vs_{name}_grad_max_scaled_diff"] <= RTOL
    assert wr["ratios"][f"pyad_over_{name}"] is not None


def test_casadi_replay_rejects_wrong_length() -> None:
    peer = _peer("casadi")
    replay = peer.compile("W1", 5)
    with pytest.raises(ValueError, match="expected 5 inputs"):
        replay(np.ones(4))


def test_jax_max_size_bounds_only_w5() -> None:
    assert jax_peer.max_size("W1", 20_000) == 20_000
    assert jax_peer.max_size("W3", 100) == 100
    assert jax_peer.max_size("W5", 10_000) == jax_peer.W5_MAX_OPS
    assert jax_peer.max_size("W5", 1_000) == 1_000 // jax_peer.W5_SHARE
    assert jax_peer.max_size("W5", 100) == jax_peer.W5_MIN_OPS
    assert jax_peer.max_size("W5", 10) == 10  # never more than asked


# -- bench/plot.py --------------------------------------------------------------------------------


def _row(status: str = "ok", **figures: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": "peer", "status": status, "size": 2000, "reduced": None}
    row.update(figures)
    return row


#: A small results dict in the structure bench/peers/__init__.py documents, plus the replay
#: section bench/replay.py writes.
RESULTS: dict[str, Any] = {
    "machine": {"date": "2026-11-27T12:00:00+00:00", "cpu": "test cpu", "cpu_count": 2},
    "settings": {"quick": True},
    "workloads": {
        "W1": {
            "n": 2000,
            "comparison": {
                "pyad": _row(ns_per_op=900.0, replay_ns_per_op=17.0),
                "JAX": _row(ns_per_op=5000.0, replay_ns_per_op="inf"),
                "micrograd": _row("not installed (pip install micrograd)"),
            },
        },
        "W5": {
            "n_ops": 1000,
            "comparison": {
                "pyad": _row(ns_per_op=2400.0),
                "JAX": _row(ns_per_op=9e5, replay_ns_per_op=600.0, size=50, reduced="max_size"),
            },
        },
    },
    "replay": {
        "workloads": {
            "W1": {
                "size_name": "n",
                "size": 2000,
                "engines": {
                    "pyad": {"median_ns_per_op": 99.0},  # drawn from the comparison row
                    "rogozhnikov": {"median_ns_per_op": 11.0},
                    "pyad_hvp": {"median_ns_per_op": 22.0},  # not a value-and-gradient
                },
            }
        }
    },
}


def test_plot_collects_points_once_and_lists_the_missing() -> None:
    points, missing = bench_plot.collect(RESULTS)
    found = {(p.workload, p.engine, p.kind): p for p in points}
    assert found["W1", "pyad", "replay"].ns_per_op == 17.0  # the comparison row wins
    assert found["W1", "Rogozhnikov C tape", "replay"].ns_per_op == 11.0
    assert ("W1", "JAX", "replay") not in found  # "inf" is not a figure
    assert found["W5", "JAX", "one-shot"].note == "n_ops=50"
    assert not any("hvp" in p.engine for p in points)
    assert missing == ["micrograd: not installed (W1)"]


def _png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_plot_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench.png"
    bench_plot.plot(RESULTS, str(out))
    _png(out)


def test_plot_reads_the_json_before_comparison_rows(tmp_path: Path) -> None:
    """Files written before the peers existed: one-shot figures in ``engines`` only."""
    pytest.importorskip("matplotlib")
    old = {
        "machine": {"date": "2026-11-27T12:09:37+00:00"},
        "workloads": {"W4": {"depth": 100, "engines": {"pyad": {"ns_per_op": 986.0}, "float": {}}}},
    }
    points, _ = bench_plot.collect(old)
    assert [(p.engine, p.ns_per_op) for p in points] == [("pyad", 986.0)]
    out = tmp_path / "old.png"
    assert bench_plot.main([_write(tmp_path / "old.json", old), str(out)]) == 0
    _png(out)


def test_plot_without_figures_is_an_error() -> None:
    with pytest.raises(ValueError, match="no ns/op figures"):
        bench_plot.plot({"workloads": {}}, "unused.png")


def _write(path: Path, results: dict[str, Any]) -> str:
    import json

    path.write_text(json.dumps(results))
    return str(path)
