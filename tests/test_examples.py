"""The examples run and reach what they claim (small sizes)."""

from __future__ import annotations

import importlib.util
import pathlib
from types import ModuleType

import numpy as np

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scipy_minimize_with_pyad_gradients() -> None:
    result = _load("scipy_fit").main(["--n", "6"])
    assert result["success"] and result["fun"] < 1e-10
    assert np.allclose(result["x"], 1.0, atol=1e-4)


def test_least_squares_curve_fit(tmp_path: pathlib.Path) -> None:
    png = tmp_path / "fit.png"
    result = _load("curve_fit").main(["--points", "40", "--plot", str(png)])
    assert np.allclose(result["params"], result["true"], atol=0.1)
    assert png.stat().st_size > 1000


def test_logistic_regression_fits_with_a_compiled_gradient() -> None:
    module = _load("logistic_regression")
    result = module.main(["--d", "20", "--m", "300"])
    assert result["success"] and result["fun"] < result["start"]
    assert abs(result["start"] - np.log(2.0)) < 1e-14  # at w = 0 every sample costs log 2
    assert result["accuracy"] > 0.75  # labels: a linear rule with one in ten flipped
    assert result["grad_rel_diff"] < 1e-12 and result["grad_abs_diff_at_minimum"] < 1e-12
    assert result["grad_max_at_minimum"] < 1e-8
    # recording afresh at every call reaches the same minimum
    one_shot = module.main(["--d", "20", "--m", "300", "--one-shot"])
    assert np.allclose(one_shot["x"], result["x"], atol=1e-8)
