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
