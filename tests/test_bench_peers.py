"""The peer adapters of ``python -m bench`` compute the workloads right, and a missing or
failing peer becomes a row of the table, never an error.

Each installed peer's gradient must equal pyad.reference's within 1e-12 relative at tiny
sizes (a peer that is not installed is skipped: CI installs only ``.[dev]``). The seed engine
is always there (pure Python), so its recursion failure on a deep chain is always checked.
"""

from __future__ import annotations

import sys
from types import ModuleType

import pytest

from bench import harness, peers
from bench.workloads import WORKLOADS

#: tiny sizes per workload: n, points, depth, n_ops
TINY = {"W1": 12, "W2": 12, "W3": 3, "W4": 30, "W5": 40}
RTOL = 1e-12


def _quiet(_: str) -> None:
    pass


def _installed(module: str) -> ModuleType:
    mod, why = peers.load(module)
    if mod is None:
        pytest.skip(why)
    return mod


def _cases() -> list[tuple[str, str]]:
    return [(m, w) for m in peers.PEERS for w in TINY]


@pytest.mark.parametrize(("module", "workload"), _cases())
def test_peer_gradient_equals_reference(module: str, workload: str) -> None:
    mod = _installed(module)
    if workload not in mod.WORKLOADS:
        pytest.skip(f"{mod.NAME} does not implement {workload}")
    w, size = WORKLOADS[workload], TINY[workload]
    value, grads = mod.one_shot(workload, size)
    ref_value, ref_grads = harness.reference_answer(w, size)
    assert len(grads) == len(ref_grads)
    assert any(g != 0.0 for g in ref_grads)  # a comparison of zeros would prove nothing
    worst, _ = harness.max_rel_diff([float(g) for g in grads], ref_grads)
    assert worst <= RTOL, (mod.NAME, workload, worst)
    assert abs(value - ref_value) <= RTOL * abs(ref_value)
    if hasattr(mod, "compile"):
        import numpy as np

        f = mod.compile(workload, size)
        x = np.array(harness.workload_vector(workload, size), dtype=np.float64)
        rvalue, rgrads = f(x)
        worst, _ = harness.max_rel_diff([float(g) for g in np.ravel(rgrads)], ref_grads)
        assert worst <= RTOL, (mod.NAME, workload, "replay", worst)
        assert abs(float(rvalue) - ref_value) <= RTOL * abs(ref_value)


def test_seed_recursion_failure_is_a_row_not_an_exception() -> None:
    """W4 at 5x the recursion limit: the seed's recursive grad() must fail, and the harness
    must say so in the row's status."""
    depth = 5 * sys.getrecursionlimit()
    wr = harness.WorkloadResult(WORKLOADS["W4"], depth, {})
    name, row = harness.run_peer("seed", wr.workload, depth, 1, 5.0, _quiet)
    assert name == peers.load("seed")[0].NAME  # type: ignore[union-attr]
    assert row["status"].startswith("fails: RecursionError"), row["status"]
    assert row["one_shot_ms"] is None
    assert "fails: RecursionError" in harness.format_comparison(wr, {name: row})


def test_seed_w1_runs_at_reduced_n_and_says_so() -> None:
    w = WORKLOADS["W1"]
    full = 10 * sys.getrecursionlimit()
    name, row = harness.run_peer("seed", w, full, 1, 5.0, _quiet)
    assert row["status"] == "ok"
    assert row["size"] < full and row["reduced"]
    assert row["grad_max_rel_diff"] <= RTOL
    assert row["ops"] == harness.pyad_ops(w, row["size"])
    wr = harness.WorkloadResult(w, full, {})
    assert f"n reduced to {row['size']}" in harness.format_comparison(wr, {name: row})


def test_unavailable_peer_shows_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = ModuleType("bench.peers.fake_peer")
    fake.NAME = "fake"  # type: ignore[attr-defined]
    fake.WORKLOADS = ("W1",)  # type: ignore[attr-defined]
    fake.available = lambda: (False, "not installed (pip install fake)")  # type: ignore[attr-defined]

    def explode(workload: str, size: int) -> tuple[float, list[float]]:
        raise AssertionError("an unavailable peer must not be run")

    fake.one_shot = explode  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.peers.fake_peer", fake)
    w = WORKLOADS["W1"]
    name, row = harness.run_peer("fake_peer", w, 10, 1, 1.0, _quiet)
    assert name == "fake"
    assert row["status"] == "not installed (pip install fake)"
    missing_name, missing = harness.run_peer("no_such_peer", w, 10, 1, 1.0, _quiet)
    assert missing["status"].startswith("not installed (")
    wr = harness.WorkloadResult(w, 10, {})
    table = harness.format_comparison(wr, {name: row, missing_name: missing})
    assert "not installed (pip install fake)" in table


def test_python_m_bench_comparison_in_json(tmp_path: pytest.TempPathFactory) -> None:
    import json
    from pathlib import Path

    from bench import __main__ as bench_main

    out = Path(str(tmp_path)) / "b.json"
    argv = ["--quick", "--workloads", "W2", "--repeats", "1", "--peers", "seed,no_such_peer"]
    assert bench_main.main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["workloads"]["W2"]["comparison"]
    assert rows["pyad"]["status"] == "ok" and rows["pyad"]["x_pyad"] == 1.0
    assert rows["pyad"]["replay_us_per_call"] > 0
    seed = rows["seed (recursive Var)"]
    assert seed["status"] == "ok" and seed["grad_max_rel_diff"] <= RTOL
    assert rows["no_such_peer"]["status"].startswith("not installed")
    assert report["peers"]["seed"]["available"] is True
    assert report["versions"]["seed (recursive Var)"]


def test_every_registered_peer_module_imports_without_its_engine() -> None:
    """A peer module imports its engine only inside its functions, so a module that fails to
    import is a bug in the adapter, never a missing engine (which load() would report as
    "not installed" and hide)."""
    import importlib

    for module in peers.PEERS:
        importlib.import_module(f"bench.peers.{module}")
