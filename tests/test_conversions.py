"""A Var never quietly becomes a number: truthiness, float(), math.*, copies and pickles.

Each of these once gave a wrong answer without a word: ``if x:`` was always true (and a
compiled branch on it never retraced), ``math.exp(x)`` and ``float(x)`` turned x into a
constant and dropped its derivative, ``copy.copy(x)`` aliased x's record, and
``copy.deepcopy(model)`` failed on a C pointer.
"""

from __future__ import annotations

import copy
import math
import pickle
from typing import Any

import numpy as np
import pytest

import pyad
import pyad.reference
from pyad import Var, errors
from pyad.compat.micrograd.engine import Value
from pyad.compat.micrograd.nn import MLP

# -- truthiness --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("v", "truth"), [(0.0, False), (-0.0, False), (2.0, True), (-1e-300, True), (math.nan, True)]
)
def test_truthiness_is_nonzero_like_a_float(tape: pyad.Tape, v: float, truth: bool) -> None:
    x = Var(v)
    assert bool(x) is truth is bool(v)
    assert bool(pyad.reference.Var(v)) is truth
    y = Var(7.0)
    assert (x or y) is (x if truth else y)
    assert (x and y) is (y if truth else x)


def _branch_on_truth(v: list[Var]) -> Var:
    return v[0] * 2 if v[0] else v[0] + 5


@pytest.mark.parametrize("traced_at", [1.0, 0.0, -1.0])
def test_a_compiled_branch_on_truthiness_follows_the_input(traced_at: float) -> None:
    F = pyad.compile(_branch_on_truth, [traced_at])
    for x in [0.0, 1.0, -1.0, 0.0, 3.0, -0.0]:
        value, g = F.value_and_grad([x])
        want = x * 2 if x != 0.0 else x + 5
        assert value == want, (traced_at, x)
        assert g[0] == (2.0 if x != 0.0 else 1.0)
    strict = pyad.compile(_branch_on_truth, [traced_at], strict=True)
    other = 0.0 if traced_at != 0.0 else 1.0
    with pytest.raises(errors.GuardError):
        strict([other])


def test_truthiness_of_nan_under_compile_is_kept() -> None:
    F = pyad.compile(_branch_on_truth, [math.nan])
    assert F([0.0]) == 5.0 and F([4.0]) == 8.0 and math.isnan(F([math.nan]))


# -- conversions to numbers --------------------------------------------------------------

CONVERSIONS = {
    "float": float,
    "int": int,
    "round": round,
    "complex": complex,
    "math.exp": math.exp,
    "math.floor": math.floor,
    "math.isclose": lambda x: math.isclose(x, 1.0),
    "np.asarray(float)": lambda x: np.asarray([x], dtype=np.float64),
    "np.float64": np.float64,
}


@pytest.mark.parametrize("convert", list(CONVERSIONS.values()), ids=list(CONVERSIONS))
def test_no_implicit_conversion_to_a_number(tape: pyad.Tape, convert: Any) -> None:
    x = Var(1.5)
    y = x * 2.0
    n = len(tape)
    for v in (x, y):
        with pytest.raises(TypeError, match=r"x\.v"):
            convert(v)
    assert len(tape) == n
    assert x.v == 1.5  # the explicit way


def test_reference_engine_refuses_float_too() -> None:
    with pytest.raises(TypeError, match=r"x\.v"):
        math.exp(pyad.reference.Var(1.0))


def test_math_function_in_grad_is_an_error_not_a_wrong_gradient() -> None:
    with pytest.raises(TypeError, match=r"pyad\.exp\(x\)"):
        pyad.grad(lambda v: math.exp(v[0]) * v[0])([1.0])
    assert pyad.grad(lambda v: pyad.exp(v[0]) * v[0])([1.0])[0] == pytest.approx(2 * math.e)


def test_zero_dimensional_arrays_are_numbers(tape: pyad.Tape) -> None:
    x = Var(np.array(1.5))
    assert x.v == 1.5
    x.v = np.array(2.5)
    x.grad = np.float32(0.5)
    assert (x.v, x.grad) == (2.5, 0.5)
    assert Var(np.array(3)).v == 3.0
    for bad in (np.array([1.0]), np.array(1 + 2j), np.array("1")):
        with pytest.raises(TypeError):
            Var(bad)


# -- copies and pickles ------------------------------------------------------------------


@pytest.mark.parametrize("make", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
def test_copy_of_an_input_is_a_new_input(tape: pyad.Tape, make: Any) -> None:
    x = Var(2.0)
    (x * x).backward()
    c = make(x)
    assert type(c) is Var and c is not x and c.tape is tape
    assert (c.v, c.grad, c.op) == (2.0, 4.0, "leaf")
    c.v = 5.0
    c.grad = 0.0
    assert (x.v, x.grad) == (2.0, 4.0)  # no aliasing
    (c * x).backward()
    assert (c.grad, x.grad) == (2.0, 9.0)


def test_pickle_of_an_input_is_a_new_input_on_the_active_tape() -> None:
    with pyad.Tape():
        x = Value(3.0)
        x.grad = 0.25
        data = pickle.dumps(x)
    with pyad.Tape() as other:
        y = pickle.loads(data)
    assert type(y) is Value and y.tape is other
    assert (y.data, y.grad) == (3.0, 0.25)


def test_computed_nodes_refuse_copies(tape: pyad.Tape) -> None:
    y = Var(2.0) * 3.0
    n = len(tape)
    for make in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(errors.CopyError, match="computed Var") as info:
            make(y)
        assert isinstance(info.value, TypeError)
    assert len(tape) == n


def test_copies_while_tracing_are_refused() -> None:
    with pytest.raises(errors.TraceError):
        pyad.compile(lambda v: copy.copy(v[0]) * v[1], [1.0, 2.0])


def test_deepcopy_keeps_the_best_model() -> None:
    """The "keep the best model so far" idiom: deepcopy a micrograd model, train on, and the
    copy keeps its parameters and still computes."""
    model = MLP(2, [4, 1])
    best = copy.deepcopy(model)
    before = [p.data for p in best.parameters()]
    assert before == [p.data for p in model.parameters()]
    assert all(a is not b for a, b in zip(best.parameters(), model.parameters()))
    for p in model.parameters():
        p.data += 0.5
    assert [p.data for p in best.parameters()] == before
    out = best([0.5, -1.0])
    out.backward()
    assert all(isinstance(p, Value) for p in best.parameters())
    assert any(p.grad != 0.0 for p in best.parameters())
    assert all(p.grad == 0.0 for p in model.parameters())


# -- Vars from outside a recorded function -----------------------------------------------


def test_a_closed_over_var_gets_a_message_that_says_what_to_do() -> None:
    w = Var(3.0)
    with pytest.raises(errors.ForeignVarError, match=r"input vector.*p\.v"):
        pyad.grad(lambda v: w * v[0])([2.0])
    # the two fixes the message names
    assert pyad.grad(lambda v: w.v * v[0])([2.0])[0] == 3.0
    assert list(pyad.grad(lambda v: v[1] * v[0])([2.0, w.v])) == [3.0, 2.0]


def test_three_argument_pow_says_it_is_not_supported(tape: pyad.Tape) -> None:
    x = Var(3.0)
    n = len(tape)
    with pytest.raises(TypeError, match="three arguments"):
        pow(x, 2, 5)
    assert len(tape) == n
    assert pow(x, 2).v == 9.0
