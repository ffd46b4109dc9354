"""``python -m bench``'s W5 and replay rows run, report what they promise, and are right.

No timing is asserted (numbers belong to the benchmark, never to the unit tests); what is
asserted is that the figures exist, that the replay's correctness checks pass (replay equal
to a fresh recording bit for bit, the Rogozhnikov peer to rounding), and that a machine
without the C peers gets "not available (reason)" instead of a crash. Sizes are tiny, so the
whole file takes a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import pyad
import pyad.reference as ref
from bench import __main__ as bench_main
from bench import calls, cpeers, harness, replay
from bench.workloads import FLOATS, WORKLOADS, w5_inputs, w5_loss, w5_nodes

TINY_SIZES = {"W1": 40, "W2": 40, "W3": 2, "W5": 40}
ENGINE_KEYS = {"median_us_per_call", "min_us_per_call", "median_ns_per_op", "min_ns_per_op"}


def _quiet(_: str) -> None:
    pass


def _tiny_run(batch: int = 4) -> dict[str, Any]:
    return replay.run(True, _quiet, repeats=2, sizes=TINY_SIZES, min_seconds=1e-4, batch=batch)


# -- W5, one definition for every engine -----------------------------------------------------------


@pytest.mark.parametrize("n_ops", [0, 3, 4, 40, 1000])
def test_w5_float_floor_equals_reference_value(n_ops: int) -> None:
    """The float engine computes W5 as pyad.reference does, to the last bit: same stable
    softplus, same left-to-right sums, same softmax."""
    want = w5_loss(ref, w5_inputs(ref, n_ops), n_ops)
    got = w5_loss(FLOATS, w5_inputs(FLOATS, n_ops), n_ops)
    assert isinstance(got, float)
    assert got == want.v


def test_w5_pyad_matches_reference_on_every_node() -> None:
    n_ops = 200
    with pyad.Tape():
        nodes = w5_nodes(pyad, w5_inputs(pyad, n_ops), n_ops)
        values = [v.v for v in nodes]
    ref_nodes = cpeers.w5_nodes(ref, n_ops)  # the peers' entry point: the same definition
    assert values == [v.v for v in ref_nodes]


def test_float_softmax_and_sum_behave_like_pyads() -> None:
    xs = [0.5, -1.0, 2.0, 2.0]
    assert FLOATS.softmax(xs) == [float(y) for y in pyad.softmax(xs)]
    assert FLOATS.sum(xs) == pyad.sum(xs)
    assert FLOATS.softplus(-800.0) == 0.0 and FLOATS.softplus(800.0) == 800.0


def test_w5_one_shot_rows() -> None:
    wr = harness.run_workload(WORKLOADS["W5"], 40, 1, 1.0, _quiet)
    assert wr.ops == cpeers.ops_count("W5", 40)
    assert set(wr.figures) == {"pyad", "reference", "float"}
    for name, fig in wr.figures.items():
        assert "error" not in fig, name
        assert fig["value_rel_diff"] == 0.0
    assert wr.figures["pyad"]["grad_max_rel_diff"] <= 1e-12
    assert "W5" in harness.format_table(wr)


# -- replay rows -----------------------------------------------------------------------------------


def test_replay_run_has_every_figure_and_passes_its_checks() -> None:
    result = _tiny_run()
    assert set(result["workloads"]) == set(TINY_SIZES)
    peers = result["peers"]["available"]
    for key, wr in result["workloads"].items():
        if key in cpeers.PEER_WORKLOADS:
            assert wr["ops"] == cpeers.ops_count(key, TINY_SIZES[key])
        assert wr["compile_ms"] > 0 and wr["retraces"] == 0
        engines = wr["engines"]
        expected = {"pyad", "pyad_hvp"} | ({"pyad_batched"} if key in replay.BATCHED else set())
        expected |= {"rogozhnikov", "handwritten", "casadi", "jax"}
        assert set(engines) == expected
        for name, fig in engines.items():
            if name in ("rogozhnikov", "handwritten") and (not peers or key == "W3"):
                assert fig["error"].startswith("not available (")
                continue
            if name in ("casadi", "jax") and "error" in fig:  # not installed here
                assert fig["error"].startswith("not installed (")
                continue
            assert set(fig) >= ENGINE_KEYS, name
            assert fig["repeats"] == 2
        ratios = wr["ratios"]
        assert ratios["hvp_over_value_and_grad"] > 0
        if key in replay.BATCHED:
            assert engines["pyad_batched"]["points"] == 4
            assert ratios["batched_over_single"] > 0
        if peers and key in cpeers.PEER_WORKLOADS:
            assert ratios["pyad_over_rogozhnikov"] > 0 and ratios["pyad_over_handwritten"] > 0
        checks = wr["checks"]
        assert checks["ok"], checks
        assert checks["vs_fresh_exact"]
        assert checks["vs_fresh_grad_max_abs_diff"] == 0.0
        if peers and key in cpeers.PEER_WORKLOADS:
            assert checks["vs_rogozhnikov_grad_max_rel_diff"] <= replay.PEER_RTOL
        if key in replay.BATCHED:
            assert checks["batched_vs_single_max_abs_diff"] == 0.0
    table = replay.format_table(result)
    assert "pyad/Rz" in table and "W5 n_ops=40" in table
    assert " NO" not in table


def test_w5_checks_again_where_the_gradient_is_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 10 000 ops W5's input gradient is all zeros, which any engine matches; the replay
    then also checks at 1 000 ops, where it is not. At 8 ops the gradient is all zeros too
    (the softmax saturates already), so the same path runs here in milliseconds."""
    monkeypatch.setattr(replay, "W5_CHECK_OPS", 40)
    wr = replay.run_case("W5", 8, 1, 1e-4, _quiet)
    checks = wr["checks"]
    assert checks["grad_nonzero"] == 0
    extra = checks["at_check_size"]
    assert extra["size"] == 40 and extra["grad_nonzero"] > 0 and extra["ok"]
    assert checks["ok"]
    assert "W5 n_ops=40" in replay.format_table({**_tiny_run(), "workloads": {"W5": wr}})


def test_replay_without_peers_says_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpeers, "load", lambda: (None, "no compiler here"))
    result = replay.run(True, _quiet, repeats=1, sizes={"W1": 20}, min_seconds=1e-4, batch=2)
    wr = result["workloads"]["W1"]
    assert wr["engines"]["rogozhnikov"] == {"error": "not available (no compiler here)"}
    assert wr["ratios"]["pyad_over_rogozhnikov"] is None
    assert wr["checks"]["ok"]
    assert "not available (no compiler here)" in replay.format_table(result)


def test_replay_names_the_peers_it_could_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay.peers, "load", lambda adapter: (None, f"not installed ({adapter})"))
    result = replay.run(True, _quiet, repeats=1, sizes={"W2": 20}, min_seconds=1e-4, batch=2)
    wr = result["workloads"]["W2"]
    assert wr["engines"]["casadi"] == {"error": "not installed (casadi_peer)"}
    assert wr["engines"]["jax"] == {"error": "not installed (jax_peer)"}
    assert wr["ratios"]["pyad_over_casadi"] is None and wr["ratios"]["batched_over_jax"] is None
    assert wr["checks"]["ok"]
    table = replay.format_table(result)
    assert "CasADi: not installed (casadi_peer)" in table
    assert "JAX jit: not installed (jax_peer)" in table


def test_small_function_row_times_pyad_and_its_c_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calls.peers, "load", lambda adapter: (None, "not installed (here)"))
    result = calls.run(True, _quiet, repeats=1, min_seconds=1e-4)
    sizes = result["sizes"]
    assert sorted(sizes) == [4, 100]
    assert [sizes[n]["instructions"] for n in (4, 100)] == [8 * 3, 8 * 99]  # W2: 8 per term
    for size in sizes.values():
        assert size["ok"] and set(size["engines"]) == {"pyad", "pyad_c_call"}
    table = calls.format_table(result)
    assert "n=4" in table and "n=100" in table and "jax: not installed (here)" in table


def test_python_m_bench_replay_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    assert bench_main.main(["--quick", "--replay", "--repeats", "1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["workloads"] == {}  # --replay: only the replay rows
    assert set(report["replay"]["workloads"]) == {"W1", "W2", "W3", "W5"}
    assert all(wr["checks"]["ok"] for wr in report["replay"]["workloads"].values())
    assert all(size["ok"] for size in report["small_functions"]["sizes"].values())
    out = capsys.readouterr().out
    assert "replay (pyad.compile)" in out and "small functions" in out
