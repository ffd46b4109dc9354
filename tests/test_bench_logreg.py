"""The logistic-regression workload of ``python -m bench`` (bench/logreg.py).

Its data are what WORKLOADS.md says (deterministic, +-1 labels, no two samples alike), the
hand-written gradient is right (central differences, and pyad agrees), and a run at a tiny
size carries every figure, its checks and the targets, with the peers optional. No timing is
asserted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pyad
from bench import __main__ as bench_main
from bench import logreg

TINY = (12, 60)


def _quiet(_: str) -> None:
    pass


def _run(peers: tuple[str, ...] = ()) -> dict[str, Any]:
    return logreg.run(True, _quiet, repeats=1, size=TINY, min_seconds=1e-4, peers=peers)


def test_problem_is_fixed_by_formulas() -> None:
    p = logreg.problem(50, 400)
    q = logreg.problem(50, 400)
    assert np.array_equal(p.X, q.X) and np.array_equal(p.y, q.y) and np.array_equal(p.w, q.w)
    assert p.X.shape == (400, 50) and p.y.shape == (400,) and p.w.shape == (50,)
    assert set(np.unique(p.y)) == {-1.0, 1.0} and abs(p.y.mean()) < 0.2
    assert len({row.tobytes() for row in p.X}) == 400  # no two samples alike
    assert abs(p.X.mean()) < 0.01 and 0.5 < p.X.var() * 50 < 1.5  # variance about 1/d
    assert np.all(np.abs(p.w) <= 0.5) and p.lam == logreg.LAM
    assert p.X[3, 7] == (2 * ((7919 * 3 + 104729 * 7 + 31 * 21) % 10007) + 1 - 10007) / (
        2 * 10007
    ) * np.sqrt(12.0 / 50)


def test_hand_written_gradient_is_right() -> None:
    p = logreg.problem(8, 30)
    value, grad = logreg.hand_written(p)(p.w)
    t = -p.y * (p.X @ p.w)
    assert value == pytest.approx(np.log1p(np.exp(t)).mean() + p.lam * p.w @ p.w, rel=1e-14)
    h = 1e-6
    for j in range(p.d):
        e = np.zeros(p.d)
        e[j] = h
        fd = (logreg.hand_written(p)(p.w + e)[0] - logreg.hand_written(p)(p.w - e)[0]) / (2 * h)
        assert grad[j] == pytest.approx(fd, rel=1e-6, abs=1e-9)
    pv, pg = pyad.value_and_grad(logreg.pyad_loss(p))(p.w)
    assert pv == pytest.approx(value, rel=1e-14)
    np.testing.assert_allclose(pg, grad, rtol=1e-12, atol=1e-16)


def test_run_without_peers_has_pyads_figures_and_checks() -> None:
    result = _run()
    assert (result["d"], result["m"]) == TINY and result["x_nbytes"] == 8 * TINY[0] * TINY[1]
    engines = result["engines"]
    for name in (logreg.HAND, logreg.ONE_SHOT, logreg.REPLAY):
        fig = engines[name]
        assert fig["median_ms"] > 0 and fig["repeats"] == 1, name
        assert fig["grad_scaled_diff"] <= logreg.PYAD_RTOL
    assert engines[logreg.HAND]["x_hand"] == 1.0 and engines[logreg.REPLAY]["compile_ms"] > 0
    for name, _ in logreg.PEER_ENGINES:
        assert engines[name]["error"].startswith("not selected"), name
    assert result["checks"]["ok"] and result["checks"]["replay_equals_one_shot"]
    ratios = result["ratios"]
    assert ratios["one_shot_over_autograd"] is None  # autograd did not run
    assert ratios["replay_over_hand"] > 0 and ratios["tape_bytes_over_x"] > 0
    tape = result["tape"]
    assert tape["recorded"] > tape["before"] and tape["records"] > 3 * TINY[1]
    table = logreg.format_table(result)
    assert "LR logistic regression" in table and "<= 1.25" in table and "NO" not in table
    assert "autograd: not selected" in table


def test_missing_or_broken_peers_are_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logreg.peer_adapters, "load", lambda m: (None, f"not installed ({m})"))
    result = _run(("autograd_peer", "jax_peer", "torch_vectorised"))
    assert result["engines"]["autograd"] == {"error": "not installed (autograd_peer)"}
    assert result["engines"]["torch"] == {"error": "not installed (torch_vectorised)"}
    assert result["checks"]["ok"]

    def broken(p: logreg.Problem) -> Any:
        raise RuntimeError("no autograd today")

    monkeypatch.undo()
    pytest.importorskip("autograd")
    monkeypatch.setitem(logreg._PEER_FACTORIES, "autograd", broken)
    result = _run(("autograd_peer",))
    assert result["engines"]["autograd"]["error"] == "fails: RuntimeError: no autograd today"


@pytest.mark.parametrize(
    ("module", "adapter", "names"),
    [
        ("autograd", "autograd_peer", ("autograd",)),
        ("jax", "jax_peer", ("JAX eager", "JAX jit")),
        ("torch", "torch_vectorised", ("torch",)),
    ],
)
def test_peers_agree_with_the_hand_written_gradient(
    module: str, adapter: str, names: tuple[str, ...]
) -> None:
    pytest.importorskip(module)
    result = _run((adapter,))
    for name in names:
        fig = result["engines"][name]
        assert fig["grad_scaled_diff"] <= 1e-12 and fig["value_rel_diff"] <= 1e-14, name
    if module == "autograd":
        assert result["ratios"]["one_shot_over_autograd"] > 0
    if module == "jax":
        assert result["engines"]["JAX jit"]["compile_ms"] > 0


def test_python_m_bench_workloads_lr_writes_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logreg, "QUICK_SIZE", TINY)
    out = tmp_path / "lr.json"
    argv = ["--quick", "--workloads", "LR", "--peers", "none", "--repeats", "1"]
    assert bench_main.main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["workloads"] == {} and "replay" not in report
    assert report["logreg"]["checks"]["ok"] and report["logreg"]["d"] == TINY[0]
    assert "LR logistic regression" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench_main.main(["--workloads", "LR2"])
