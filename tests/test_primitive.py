"""Custom primitives, debug mode (NaN/inf tracing) and Tape.summary()."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pyad
import pyad.reference as R
from pyad import Tape, Var, errors


def _softsign(x: float) -> float:
    return x / (1 + abs(x))


def _dsoftsign(x: float) -> list[float]:
    return [1 / (1 + abs(x)) ** 2]


def _bilinear(x: float, c: float, y: float) -> float:
    return x * y + c * x


def _dbilinear(x: float, c: float, y: float) -> list[float]:
    return [y + c, x, x]


@pytest.mark.parametrize("engine", [pyad, R], ids=["pyad", "reference"])
def test_primitive_records_one_operation_with_the_given_partials(engine) -> None:  # type: ignore[no-untyped-def]
    softsign = engine.primitive(_softsign, _dsoftsign)
    bilinear = engine.primitive(_bilinear, _dbilinear)
    x, y = engine.Var(1.5), engine.Var(-0.5)
    s = softsign(x * y)
    f = bilinear(s, 2.0, y) + s
    f.backward()
    h = 1e-6

    def value(a: float, b: float) -> float:
        t = _softsign(a * b)
        return _bilinear(t, 2.0, b) + t

    assert f.v == value(1.5, -0.5)
    assert x.grad == pytest.approx((value(1.5 + h, -0.5) - value(1.5 - h, -0.5)) / (2 * h))
    assert y.grad == pytest.approx((value(1.5, -0.5 + h) - value(1.5, -0.5 - h)) / (2 * h))
    # numbers in, the function's float out
    assert softsign(3.0) == 0.75 and isinstance(softsign(3.0), float)


def test_primitive_matches_the_reference_bitwise_and_is_one_record() -> None:
    results = []
    for engine in (pyad, R):
        bilinear = engine.primitive(_bilinear, _dbilinear)
        x, y = engine.Var(0.25), engine.Var(4.0)
        f = bilinear(x, np.float64(3.0), y)
        f.backward()
        results.append((f.v, x.grad, y.grad, [m for m, _ in f.predecessors]))
    assert results[0] == results[1]
    with Tape() as t:
        x = Var(1.0)
        before = len(t)
        z = pyad.primitive(_softsign, _dsoftsign)(x)
        assert len(t) == before + 1 and z.op == "primitive"


def test_primitive_errors() -> None:
    bad = pyad.primitive(_softsign, lambda x: [1.0, 2.0])
    with Tape() as t:
        x = Var(1.0)
        n = len(t)
        with pytest.raises(ValueError, match="gave 2 partial derivatives for 1 argument") as info:
            bad(x)
        assert "a sequence of length 1" in str(info.value)
        with pytest.raises(TypeError):
            pyad.primitive(_softsign, _dsoftsign)("a")  # type: ignore[arg-type]
        assert len(t) == n


@pytest.mark.parametrize(
    ("df", "error", "words"),
    [
        (lambda x, y: y, TypeError, "returned 3.0, not a sequence"),
        (lambda x, y: np.float64(y), TypeError, "not a sequence"),  # repr: numpy version
        (lambda x, y: np.array(y), TypeError, "returned array(3.), not a sequence"),
        (lambda x, y: None, TypeError, "returned None, not a sequence"),
        (lambda x, y: [y], ValueError, "gave 1 partial derivative for 2 arguments"),
        (lambda x, y: [y, x, 1.0], ValueError, "gave 3 partial derivatives for 2 arguments"),
        (lambda x, y: [y, "x"], TypeError, "returned 'x' among its partial derivatives"),
        (lambda x, y: [y, None], TypeError, "returned None among its partial derivatives"),
    ],
    ids=["float", "numpy float", "0-d array", "None", "short", "long", "str", "None inside"],
)
def test_primitive_derivative_of_the_wrong_shape_says_what_is_expected(
    df: object, error: type[Exception], words: str
) -> None:
    def mul(x: float, y: float) -> float:
        return x * y

    bad = pyad.primitive(mul, df)  # type: ignore[arg-type]
    with Tape() as t:
        x, y = Var(2.0), Var(3.0)
        n, nbytes = len(t), t.nbytes
        with pytest.raises(error, match=r"pyad\.primitive 'mul': the derivative function") as info:
            bad(x, y)
        message = str(info.value)
        assert words in message
        assert "one partial derivative per argument" in message
        assert len(t) == n and t.nbytes == nbytes
    # numpy arrays and tuples of the right length are sequences
    for good in (lambda a, b: np.array([b, a]), lambda a, b: (b, a)):
        z = pyad.primitive(mul, good)(x, y)
        z.backward()
        assert (z.v, x.grad, y.grad) == (6.0, 3.0, 2.0)
        x.grad = y.grad = 0.0


def test_primitive_across_segments() -> None:
    step = pyad.primitive(lambda a: 0.5 * a + 1.0, lambda a: [0.5])
    with Tape():
        x = Var(1.0)
        v = x
        for _ in range(3000):
            v = step(v)
        v.backward()
    assert isinstance(v, Var)
    assert x.grad == 0.5**3000


def test_debug_mode_names_the_op_and_the_source_line() -> None:
    with Tape(debug=True) as t:
        assert t.debug
        x = Var(0.0)
        y = x * 2.0
        n = len(t)
        with pytest.raises(errors.NonFiniteError) as info:
            pyad.sqrt(y)  # the line the error must name
        message = str(info.value)
        assert "sqrt" in message and "test_primitive.py" in message
        assert "pyad.sqrt(y)  # the line the error must name" in message
        assert isinstance(info.value, FloatingPointError)
        assert len(t) == n and y.v == 0.0
        with pytest.raises(errors.NonFiniteError, match="div"):
            _ = 1.0 / (Var(1e-310) * 1e-10)  # 1/tiny: partial -y/b overflows to -inf
        with pytest.raises(errors.NonFiniteError, match="dot"):
            pyad.dot([Var(1e300)], [1e300])
        with pytest.raises(errors.NonFiniteError, match="primitive"):
            pyad.primitive(lambda a: math.inf, lambda a: [0.0])(x)


def test_debug_mode_is_off_by_default_and_detect_anomaly_restores_it() -> None:
    with Tape() as t:
        assert not t.debug
        x = Var(0.0)
        s = pyad.sqrt(x)  # value 0, partial inf: allowed when debug is off
        assert s.v == 0.0
        with pyad.detect_anomaly() as active:
            assert active is t and t.debug
            with pytest.raises(errors.NonFiniteError):
                pyad.sqrt(x)
        assert not t.debug
        assert pyad.sqrt(x).v == 0.0


def test_debug_mode_checks_partials_not_the_constant_operand() -> None:
    """A record with a constant operand keeps the constant where the other partial would be
    (csrc/internal.h); debug mode checks only the partial there is, so an infinite constant
    in a finite result is no anomaly, while an infinite partial still is."""
    with Tape() as t, pyad.detect_anomaly():
        x = Var(3.0)
        q = x / math.inf  # value 0, partial 1/inf = 0
        assert (q.v, pyad.atan2(x, math.inf).v, pyad.atan2(math.inf, x).v) == (
            0.0,
            0.0,
            math.pi / 2,
        )
        q.backward()
        assert x.grad == 0.0
        n = len(t)
        with pytest.raises(errors.NonFiniteError, match="pow"):
            _ = Var(0.0) ** 0.5  # value 0, partial 0.5 / sqrt(0) = inf
        with pytest.raises(errors.NonFiniteError, match="div"):
            _ = 1.0 / (x * 1e-320)  # value 3.3e319 overflows: the constant plays no part
        assert len(t) == n + 2  # the two leaves and x * 1e-320; nothing of the failed ops


def test_summary_counts_records_per_op_and_the_depth() -> None:
    with Tape() as t:
        x, y = Var(2.0), Var(5.0)
        f = pyad.log(x) + x * y - pyad.sin(y)
        summary = t.summary()
        assert summary.records == 7 == len(t)
        assert summary.records_per_op == {
            "leaf": 2,
            "log": 1,
            "mul": 1,
            "add": 1,
            "sin": 1,
            "sub": 1,
        }
        assert summary.depth == 3
        assert summary.nbytes == t.nbytes
        text = str(summary)
        assert "7 records" in text and "depth 3" in text and "leaf" in text
        v = f
        for _ in range(5000):
            v = pyad.tanh(v) * 0.5
        assert t.summary().depth == 3 + 2 * 5000
