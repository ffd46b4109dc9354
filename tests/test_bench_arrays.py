"""The "pyad (arrays)" rows of ``python -m bench``: W1, W2 and W3 written with pyad.Array.

No timing is asserted; what is asserted is that the array formulations compute the scalar
workloads' losses (W1 and W2 bit for bit in value, W3 to rounding), that the rows carry their
figures and checks, and that a broken row is a status, not a crash. Sizes are tiny.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyad
from bench import arrays, harness
from bench import workloads as wl
from bench.replay import loss_function
from bench.workloads import FLOATS, WORKLOADS

TINY = {"W1": 40, "W2": 40, "W3": 3}


def _quiet(_: str) -> None:
    pass


@pytest.mark.parametrize("key", ["W1", "W2"])
def test_numpy_and_pyad_as_xp_record_the_same_thing(key: str) -> None:
    """numpy's functions dispatch to pyad.Array: w1_array/w2_array with numpy as xp give what
    they give with pyad's own functions, bit for bit, and the scalar recording's value."""
    n = TINY[key]
    x = np.array(wl.input_vector(n))
    loss = wl.w1_array if key == "W1" else wl.w2_array
    v_np, g_np = pyad.value_and_grad(lambda a: loss(np, a))(x)
    v_pyad, g_pyad = pyad.value_and_grad(lambda a: loss(pyad, a))(x)
    assert v_np == v_pyad and np.array_equal(g_np, g_pyad)
    v_scalar, g_scalar = pyad.value_and_grad(loss_function(key, n))(x)
    assert v_np == v_scalar  # the same operations, the sum left to right
    np.testing.assert_allclose(g_np, g_scalar, rtol=1e-15)  # adjoints meet in another order


def test_w3_array_is_w3() -> None:
    """The network as matrix products computes W3's loss and gradient up to summation order,
    on floats (numpy alone) and on pyad."""
    points = 5
    p = np.array(wl.mlp_parameter_values())
    want = wl.w3_loss(FLOATS, list(p), points)
    fn = arrays.array_loss("W3", points)
    assert fn(p) == pytest.approx(want, rel=1e-14)
    value, grad = pyad.value_and_grad(fn)(p)
    v_scalar, g_scalar = pyad.value_and_grad(loss_function("W3", points))(p)
    assert value == pytest.approx(v_scalar, rel=1e-14)
    np.testing.assert_allclose(grad, g_scalar, rtol=1e-12, atol=1e-15)


def test_array_loss_refuses_other_workloads() -> None:
    with pytest.raises(ValueError, match="W4"):
        arrays.array_loss("W4", 10)


@pytest.mark.parametrize("key", ["W1", "W2", "W3"])
def test_row_has_its_figures_and_checks(key: str) -> None:
    w, size = WORKLOADS[key], TINY[key]
    ops = harness.pyad_ops(w, size)
    row = arrays.row(w, size, ops, ops + len(wl.input_values(key, size)), 2, True)
    assert row["status"] == "ok", row["status"]
    assert row["kind"] == "pyad-arrays" and row["ops"] == ops and row["repeats"] == 2
    for name in ("one_shot_ms", "ns_per_op", "compile_ms", "replay_us_per_call", "bytes_per_op"):
        assert row[name] > 0, name
    assert 0 < row["array_records"] < ops  # fewer, wider records than the scalar recording
    assert row["replay_equals_one_shot"]
    vs = row["vs_scalar_pyad"]
    assert vs["grad_max_rel_diff"] <= (1e-12 if key == "W3" else 1e-15)
    assert row["grad_max_rel_diff"] <= (1e-12 if key == "W3" else 1e-15)
    if key != "W3":
        assert vs["value_rel_diff"] == 0.0
    assert "its replay equals its one-shot" in row["note"]


def test_comparison_table_shows_the_row_beside_the_others() -> None:
    wr = harness.run_workload(WORKLOADS["W2"], 40, 1, 1.0, _quiet)
    rows = harness.compare(wr, 1, 0.5, _quiet, modules=(), peer_replay=False, quick=True)
    assert list(rows)[:4] == ["pyad", "pyad.reference", "float floor", arrays.NAME]
    assert rows[arrays.NAME]["x_pyad"] > 0
    table = harness.format_comparison(wr, rows)
    assert arrays.NAME in table and "records of its own" in table
    # no row for the workloads that have no array formulation
    wr4 = harness.run_workload(WORKLOADS["W4"], 50, 1, 1.0, _quiet)
    assert arrays.NAME not in harness.compare(wr4, 1, 0.5, _quiet, modules=(), quick=True)


def test_a_failing_row_is_a_status(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(key: str, size: int) -> None:
        raise RuntimeError("no arrays today")

    monkeypatch.setattr(arrays, "array_loss", broken)
    row = arrays.row(WORKLOADS["W1"], 20, 100, 120, 1, True)
    assert row["status"] == "fails: RuntimeError: no arrays today"
    assert row["one_shot_ms"] is None
