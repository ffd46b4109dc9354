"""Bad input raises what Python's math module raises, and leaves the tape exactly as it was.

Every failing case is checked for: the builtin exception type (what ``math`` or float
arithmetic raises for the same numbers) and, where pyad's C library raises it, the matching
``pyad.errors`` subclass; an unchanged tape (``len``, values and gradients of every node
recorded before); and a tape that still records and sweeps afterwards.

Also: ``.v`` is assignable on leaves only, Vars of a reset tape are stale, Vars of two tapes do
not mix, and plain-number calls raise the same exceptions as Var calls.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import pyad
from pyad import errors

INF = math.inf


# -- a tape with some history, and its snapshot ------------------------------------------------


@dataclass
class World:
    """A tape with inputs, a computed graph and a finished backward sweep."""

    tape: pyad.Tape
    v: dict[str, pyad.Var]
    nodes: list[pyad.Var]

    def snapshot(self) -> tuple[int, list[float], list[float]]:
        return (
            len(self.tape),
            [n.v for n in self.nodes],
            [n.grad for n in self.nodes],
        )


LEAVES = {
    "x": 2.0,
    "y": 5.0,
    "zero": 0.0,
    "one": 1.0,
    "two": 2.0,
    "neg1": -1.0,
    "neg2": -2.0,
    "neg8": -8.0,
    "third": 1.0 / 3.0,
    "big": 1000.0,
    "negbig": -1000.0,
    "ten": 10.0,
    "four_hundred": 400.0,
    "inf": INF,
}


@pytest.fixture
def world() -> Iterator[World]:
    with pyad.Tape() as t:
        v = {name: pyad.Var(value) for name, value in LEAVES.items()}
        x, y = v["x"], v["y"]
        f = pyad.log(x) + x * y - pyad.sin(y)
        s = pyad.softmax([x, y, 1.0])
        d = pyad.dot([x, y], [y, 2.0])
        out = f + s[0] * d
        out.backward()
        nodes = [*v.values(), f, *s, d, out]
        yield World(t, v, nodes)


def assert_intact(world: World, before: tuple[int, list[float], list[float]]) -> None:
    """The tape is as it was, and still records and sweeps."""
    n, values, grads = before
    assert len(world.tape) == n, "a failed operation changed the tape's length"
    after_values = [node.v for node in world.nodes]
    after_grads = [node.grad for node in world.nodes]
    assert after_values == values, "a failed operation changed recorded values"
    assert after_grads == grads, "a failed operation changed gradients"
    x, y, one = world.v["x"], world.v["y"], world.v["one"]
    gx, gy, g1 = x.grad, y.grad, one.grad
    g = x * y + pyad.exp(one)
    assert len(world.tape) == n + 3
    assert g.v == 2.0 * 5.0 + math.exp(1.0)
    g.backward()
    assert x.grad == gx + 5.0
    assert y.grad == gy + 2.0
    assert one.grad == g1 + math.exp(1.0)
    assert world.nodes[-1].v == values[-1]


# -- the failing cases ------------------------------------------------------------------------


@dataclass
class Case:
    label: str
    call: Callable[[dict[str, pyad.Var]], Any]
    builtin: type[BaseException]
    pyad_error: type[errors.PyadError] | None
    keyword: str | None
    #: the same computation on plain floats with math / float arithmetic (must raise builtin)
    math_call: Callable[[], Any] | None = None


def _case(
    label: str, call: Any, builtin: Any, pyad_error: Any, keyword: Any, math_call: Any = None
):
    return pytest.param(Case(label, call, builtin, pyad_error, keyword, math_call), id=label)


DOMAIN = (ValueError, errors.DomainError, "domain")
ZERODIV = (ZeroDivisionError, errors.ZeroDivision, "zero")
OVERFLOW = (OverflowError, errors.RangeError, "range")

CASES = [
    # domain errors
    _case("log(0)", lambda v: pyad.log(v["zero"]), *DOMAIN, lambda: math.log(0.0)),
    _case("log(-1)", lambda v: pyad.log(v["neg1"]), *DOMAIN, lambda: math.log(-1.0)),
    _case("sqrt(-1)", lambda v: pyad.sqrt(v["neg1"]), *DOMAIN, lambda: math.sqrt(-1.0)),
    _case("asin(2)", lambda v: pyad.asin(v["two"]), *DOMAIN, lambda: math.asin(2.0)),
    _case("acos(-2)", lambda v: pyad.acos(v["neg2"]), *DOMAIN, lambda: math.acos(-2.0)),
    _case("log1p(-1)", lambda v: pyad.log1p(v["neg1"]), *DOMAIN, lambda: math.log1p(-1.0)),
    _case("log1p(-2)", lambda v: pyad.log1p(v["neg2"]), *DOMAIN, lambda: math.log1p(-2.0)),
    _case("sin(inf)", lambda v: pyad.sin(v["inf"]), *DOMAIN, lambda: math.sin(INF)),
    _case("cos(inf)", lambda v: pyad.cos(v["inf"]), *DOMAIN, lambda: math.cos(INF)),
    _case("tan(inf)", lambda v: pyad.tan(v["inf"]), *DOMAIN, lambda: math.tan(INF)),
    _case("Var(-8)**(1/3)", lambda v: v["neg8"] ** (1 / 3), *DOMAIN, lambda: math.pow(-8, 1 / 3)),
    _case(
        "Var(-8)**Var(1/3)", lambda v: v["neg8"] ** v["third"], *DOMAIN, lambda: math.pow(-8, 1 / 3)
    ),
    _case("-8.0**Var(1/3)", lambda v: (-8.0) ** v["third"], *DOMAIN, lambda: math.pow(-8, 1 / 3)),
    _case(
        "pow(Var(-8), 1/3)",
        lambda v: pyad.pow(v["neg8"], 1 / 3),
        *DOMAIN,
        lambda: math.pow(-8, 1 / 3),
    ),
    _case("softmax([x, inf])", lambda v: pyad.softmax([v["x"], INF]), *DOMAIN),
    _case("softmax([x, Var(inf)])", lambda v: pyad.softmax([v["x"], v["inf"]]), *DOMAIN),
    # division by zero
    _case("x/Var(0)", lambda v: v["x"] / v["zero"], *ZERODIV, lambda: 2.0 / 0.0),
    _case("x/0.0", lambda v: v["x"] / 0.0, *ZERODIV, lambda: 2.0 / 0.0),
    _case("x/0", lambda v: v["x"] / 0, *ZERODIV, lambda: 2.0 / 0),
    _case("x/np.float64(0)", lambda v: v["x"] / np.float64(0.0), *ZERODIV),
    _case("x/np.int64(0)", lambda v: v["x"] / np.int64(0), *ZERODIV),
    _case("Var(0)/Var(0)", lambda v: v["zero"] / v["zero"], *ZERODIV, lambda: 0.0 / 0.0),
    _case("1/Var(0)", lambda v: 1 / v["zero"], *ZERODIV, lambda: 1 / 0.0),
    _case("1.0/Var(0)", lambda v: 1.0 / v["zero"], *ZERODIV, lambda: 1.0 / 0.0),
    _case("Var(0)**-1", lambda v: v["zero"] ** -1, *ZERODIV, lambda: 0.0**-1),
    _case("Var(0)**-1.5", lambda v: v["zero"] ** -1.5, *ZERODIV, lambda: 0.0**-1.5),
    _case("Var(0)**Var(-1)", lambda v: v["zero"] ** v["neg1"], *ZERODIV, lambda: 0.0**-1.0),
    _case("0.0**Var(-1)", lambda v: 0.0 ** v["neg1"], *ZERODIV, lambda: 0.0**-1.0),
    _case("pow(Var(0), -2)", lambda v: pyad.pow(v["zero"], -2), *ZERODIV, lambda: 0.0**-2),
    # overflow
    _case("exp(Var(1000))", lambda v: pyad.exp(v["big"]), *OVERFLOW, lambda: math.exp(1000.0)),
    _case("cosh(Var(1000))", lambda v: pyad.cosh(v["big"]), *OVERFLOW, lambda: math.cosh(1000.0)),
    _case("sinh(Var(1000))", lambda v: pyad.sinh(v["big"]), *OVERFLOW, lambda: math.sinh(1000.0)),
    _case(
        "sinh(-Var(1000))", lambda v: pyad.sinh(v["negbig"]), *OVERFLOW, lambda: math.sinh(-1000.0)
    ),
    _case(
        "expm1(Var(1000))", lambda v: pyad.expm1(v["big"]), *OVERFLOW, lambda: math.expm1(1000.0)
    ),
    _case("Var(10.0)**400", lambda v: v["ten"] ** 400, *OVERFLOW, lambda: 10.0**400),
    _case("Var(10.0)**400.0", lambda v: v["ten"] ** 400.0, *OVERFLOW, lambda: 10.0**400.0),
    _case("10.0**Var(400)", lambda v: 10.0 ** v["four_hundred"], *OVERFLOW, lambda: 10.0**400.0),
    _case(
        "Var(10)**Var(400)",
        lambda v: v["ten"] ** v["four_hundred"],
        *OVERFLOW,
        lambda: math.pow(10.0, 400.0),
    ),
    _case("pow(Var(10), 400)", lambda v: pyad.pow(v["ten"], 400), *OVERFLOW),
    # empty n-ary ops
    _case("logsumexp([])", lambda v: pyad.logsumexp([]), ValueError, None, "empty"),
    _case("softmax([])", lambda v: pyad.softmax([]), ValueError, None, "empty"),
    _case("logsumexp(iter([]))", lambda v: pyad.logsumexp(iter([])), ValueError, None, None),
    # not numbers
    _case("x + 'a'", lambda v: v["x"] + "a", TypeError, None, None, lambda: 2.0 + "a"),
    _case("'a' + x", lambda v: "a" + v["x"], TypeError, None, None, lambda: "a" + 2.0),
    _case("x * None", lambda v: v["x"] * None, TypeError, None, None, lambda: 2.0 * None),
    _case("None * x", lambda v: None * v["x"], TypeError, None, None),
    _case("x - [1]", lambda v: v["x"] - [1.0], TypeError, None, None),
    _case("x / 'a'", lambda v: v["x"] / "a", TypeError, None, None),
    _case("x ** '2'", lambda v: v["x"] ** "2", TypeError, None, None),
    _case("x + 1j", lambda v: v["x"] + 1j, TypeError, None, None),
    _case("pow(x, 2, 3)", lambda v: pow(v["x"], 2, 3), TypeError, None, None),
    _case("sin('a')", lambda v: pyad.sin("a"), TypeError, None, None, lambda: math.sin("a")),
    _case("exp(None)", lambda v: pyad.exp(None), TypeError, None, None),
    _case("atan2(x, 'a')", lambda v: pyad.atan2(v["x"], "a"), TypeError, None, "got str"),
    _case("hypot('a', x)", lambda v: pyad.hypot("a", v["x"]), TypeError, None, "got str"),
    _case("pow(x, None)", lambda v: pyad.pow(v["x"], None), TypeError, None, None),
    _case("sum([x, 'a'])", lambda v: pyad.sum([v["x"], "a"]), TypeError, None, None),
    _case("sum(['a', x])", lambda v: pyad.sum(["a", v["x"]]), TypeError, None, None),
    _case("dot([x], ['a'])", lambda v: pyad.dot([v["x"]], ["a"]), TypeError, None, None),
    _case("logsumexp([x, None])", lambda v: pyad.logsumexp([v["x"], None]), TypeError, None, None),
    _case("softmax([x, 'a'])", lambda v: pyad.softmax([v["x"], "a"]), TypeError, None, None),
    _case("Var('a')", lambda v: pyad.Var("a"), TypeError, None, None),
    _case("Var(None)", lambda v: pyad.Var(None), TypeError, None, None),
    _case("Var(1+2j)", lambda v: pyad.Var(1 + 2j), TypeError, None, None),
    _case("Var(complex(1, 0))", lambda v: pyad.Var(complex(1, 0)), TypeError, None, None),
    _case("Var(Var(1))", lambda v: pyad.Var(v["one"]), TypeError, None, None),
    _case("x.backward('a')", lambda v: v["x"].backward("a"), TypeError, None, None),
    _case("x.grad = 'a'", lambda v: setattr(v["x"], "grad", "a"), TypeError, None, None),
    _case("x.v = 'a'", lambda v: setattr(v["x"], "v", "a"), TypeError, None, None),
    # shape
    _case(
        "dot length mismatch",
        lambda v: pyad.dot([v["x"], v["y"]], [v["x"]]),
        ValueError,
        None,
        None,
    ),
    _case(
        "dot length mismatch 2", lambda v: pyad.dot([1.0], [v["x"], 2.0]), ValueError, None, None
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_failure_leaves_tape_intact(world: World, case: Case) -> None:
    if case.math_call is not None:  # the expected type is what math / floats raise
        with pytest.raises(case.builtin):
            case.math_call()
    before = world.snapshot()
    with pytest.raises(case.builtin) as info:
        case.call(world.v)
    if case.pyad_error is not None:
        assert isinstance(info.value, case.pyad_error), (
            f"{case.label}: raised {type(info.value).__name__}, expected {case.pyad_error.__name__}"
        )
        assert isinstance(info.value, errors.PyadError)
    if case.keyword is not None:
        assert case.keyword in str(info.value).lower(), str(info.value)
    assert_intact(world, before)
    # and again: a second failure in a row changes nothing either
    before = world.snapshot()
    with pytest.raises(case.builtin):
        case.call(world.v)
    assert_intact(world, before)


def test_failure_keeps_nbytes(world: World) -> None:
    before = world.tape.nbytes
    for case in CASES:
        with pytest.raises(case.values[0].builtin):
            case.values[0].call(world.v)
    assert world.tape.nbytes == before


# -- plain numbers ------------------------------------------------------------------------------

NUMBER_CASES = [
    ("log(-1.0)", lambda: pyad.log(-1.0), lambda: math.log(-1.0), errors.DomainError),
    ("log(0)", lambda: pyad.log(0), lambda: math.log(0), errors.DomainError),
    ("sqrt(-1)", lambda: pyad.sqrt(-1), lambda: math.sqrt(-1), errors.DomainError),
    ("asin(2)", lambda: pyad.asin(2), lambda: math.asin(2), errors.DomainError),
    ("acos(-2.0)", lambda: pyad.acos(-2.0), lambda: math.acos(-2.0), errors.DomainError),
    ("log1p(-1)", lambda: pyad.log1p(-1), lambda: math.log1p(-1), errors.DomainError),
    ("sin(inf)", lambda: pyad.sin(INF), lambda: math.sin(INF), errors.DomainError),
    ("cos(-inf)", lambda: pyad.cos(-INF), lambda: math.cos(-INF), errors.DomainError),
    ("exp(1000)", lambda: pyad.exp(1000), lambda: math.exp(1000), errors.RangeError),
    (
        "exp(np.float64)",
        lambda: pyad.exp(np.float64(1000)),
        lambda: math.exp(1000),
        errors.RangeError,
    ),
    ("cosh(1000)", lambda: pyad.cosh(1000), lambda: math.cosh(1000), errors.RangeError),
    ("sinh(-1000)", lambda: pyad.sinh(-1000), lambda: math.sinh(-1000), errors.RangeError),
    ("expm1(1000)", lambda: pyad.expm1(1000), lambda: math.expm1(1000), errors.RangeError),
    ("pow(0, -1)", lambda: pyad.pow(0, -1), lambda: 0.0**-1, errors.ZeroDivision),
    ("pow(-8, 1/3)", lambda: pyad.pow(-8, 1 / 3), lambda: math.pow(-8, 1 / 3), errors.DomainError),
    ("pow(10.0, 400)", lambda: pyad.pow(10.0, 400), lambda: 10.0**400, errors.RangeError),
    ("atan2('a', 1)", lambda: pyad.atan2("a", 1), lambda: math.atan2("a", 1), None),
    ("hypot(None, 1)", lambda: pyad.hypot(None, 1), lambda: math.hypot(None, 1), None),
    ("exp('1')", lambda: pyad.exp("1"), lambda: math.exp("1"), None),
    ("softmax([inf, 1])", lambda: pyad.softmax([INF, 1.0]), None, errors.DomainError),
    ("logsumexp([])", lambda: pyad.logsumexp([]), None, None),
    ("softmax([])", lambda: pyad.softmax([]), None, None),
]


@pytest.mark.parametrize(
    ("call", "math_call", "pyad_error"),
    [pytest.param(c, m, e, id=label) for label, c, m, e in NUMBER_CASES],
)
def test_plain_numbers_raise_like_math(
    tape: pyad.Tape, call: Callable[[], Any], math_call: Any, pyad_error: Any
) -> None:
    builtin: type[BaseException] = ValueError
    if math_call is not None:
        try:
            math_call()
        except Exception as exc:  # what math / float arithmetic raises for the same numbers
            builtin = type(exc)
        else:
            pytest.fail("math raised nothing")
    n = len(tape)
    with pytest.raises(builtin) as info:
        call()
    if pyad_error is not None:
        assert isinstance(info.value, pyad_error), type(info.value)
    assert len(tape) == n


def test_plain_number_examples() -> None:
    with pytest.raises(ValueError):
        pyad.log(-1.0)
    with pytest.raises(errors.DomainError):
        pyad.log(-1.0)
    with pytest.raises(OverflowError):
        pyad.exp(1000)
    with pytest.raises(errors.RangeError):
        pyad.exp(1000)
    with pytest.raises(ZeroDivisionError):
        pyad.pow(0.0, -1.0)


# -- .v on leaves and computed nodes ------------------------------------------------------------


def test_assign_value_of_computed_node_raises(world: World) -> None:
    x, y = world.v["x"], world.v["y"]
    g = x * y
    h = pyad.sum([x, y])
    (s0,) = pyad.softmax([x])[:1]
    for node in (g, h, s0, world.nodes[-1]):
        before = world.snapshot()
        old = node.v
        with pytest.raises(errors.NotLeafError) as info:
            node.v = 1.0
        assert isinstance(info.value, AttributeError)
        assert isinstance(info.value, errors.PyadError)
        assert "leaf" in str(info.value).lower() or "input" in str(info.value).lower()
        assert node.v == old
        assert_intact(world, before)


def test_assign_value_of_leaf(world: World) -> None:
    x, y = world.v["x"], world.v["y"]
    before_len = len(world.tape)
    x.v = 4.0
    assert x.v == 4.0
    assert len(world.tape) == before_len
    x.v -= 0.5  # the update of a training loop
    assert x.v == 3.5
    x.v = np.float32(1.5)
    assert x.v == 1.5
    assert type(x.v) is float
    x.v = 3
    assert x.v == 3.0
    g = x * y
    assert g.v == 15.0
    x.grad = 0.0
    y.grad = 0.0
    g.backward()
    assert (x.grad, y.grad) == (5.0, 3.0)
    x.grad = 2
    assert x.grad == 2.0
    assert type(x.grad) is float


# -- stale Vars after reset ----------------------------------------------------------------------

STALE_USES: list[tuple[str, Callable[[pyad.Var, pyad.Var, pyad.Var], Any]]] = [
    ("x + 1", lambda x, f, y: x + 1),
    ("1.0 - x", lambda x, f, y: 1.0 - x),
    ("x * y_new", lambda x, f, y: x * y),
    ("y_new * x", lambda x, f, y: y * x),
    ("f / 2", lambda x, f, y: f / 2),
    ("x ** 2", lambda x, f, y: x**2),
    ("2 ** x", lambda x, f, y: 2**x),
    ("-x", lambda x, f, y: -x),
    ("abs(x)", lambda x, f, y: abs(x)),
    ("sin(x)", lambda x, f, y: pyad.sin(x)),
    ("exp(f)", lambda x, f, y: pyad.exp(f)),
    ("atan2(x, 1.0)", lambda x, f, y: pyad.atan2(x, 1.0)),
    ("hypot(y_new, x)", lambda x, f, y: pyad.hypot(y, x)),
    ("sum([x])", lambda x, f, y: pyad.sum([x])),
    ("sum([y_new, x])", lambda x, f, y: pyad.sum([y, x])),
    ("sum([1.0], start=x)", lambda x, f, y: pyad.sum([1.0], start=x)),
    ("dot([x], [1.0])", lambda x, f, y: pyad.dot([x], [1.0])),
    ("dot([y_new], [f])", lambda x, f, y: pyad.dot([y], [f])),
    ("logsumexp([x])", lambda x, f, y: pyad.logsumexp([x])),
    ("logsumexp([y_new, x])", lambda x, f, y: pyad.logsumexp([y, x])),
    ("softmax([x, 1.0])", lambda x, f, y: pyad.softmax([x, 1.0])),
    ("softmax([y_new, x])", lambda x, f, y: pyad.softmax([y, x])),
    ("x.v", lambda x, f, y: x.v),
    ("f.v", lambda x, f, y: f.v),
    ("x.grad", lambda x, f, y: x.grad),
    ("f.grad", lambda x, f, y: f.grad),
    ("x.backward()", lambda x, f, y: x.backward()),
    ("f.backward()", lambda x, f, y: f.backward()),
    ("f.backward(2.0)", lambda x, f, y: f.backward(2.0)),
    ("x.v = 1", lambda x, f, y: setattr(x, "v", 1.0)),
    ("x.grad = 0", lambda x, f, y: setattr(x, "grad", 0.0)),
    ("f.predecessors", lambda x, f, y: f.predecessors),
    ("bool(x)", lambda x, f, y: bool(x)),
    ("copy.copy(x)", lambda x, f, y: copy.copy(x)),
    ("x < 1", lambda x, f, y: x < 1),
]


@pytest.mark.parametrize("use", [pytest.param(u, id=label) for label, u in STALE_USES])
def test_stale_var_after_reset(tape: pyad.Tape, use: Callable[..., Any]) -> None:
    x = pyad.Var(2.0)
    f = pyad.sin(x) * x
    f.backward()
    tape.reset()
    assert len(tape) == 0
    y = pyad.Var(3.0)  # may reuse the slot x had: the handle must still be stale
    z = pyad.Var(4.0)
    g = y * z
    g.backward()
    n = len(tape)
    with pytest.raises(errors.StaleVarError) as info:
        use(x, f, y)
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value, errors.PyadError)
    assert "reset" in str(info.value)
    assert len(tape) == n
    assert (y.v, z.v, g.v) == (3.0, 4.0, 12.0)
    assert (y.grad, z.grad, g.grad) == (4.0, 3.0, 1.0)
    h = y * z + 1.0
    h.backward()
    assert (y.grad, z.grad) == (8.0, 6.0)
    assert len(tape) == n + 2


def test_stale_after_many_resets(tape: pyad.Tape) -> None:
    old = []
    for i in range(5):
        x = pyad.Var(float(i))
        old.append((x, x * 2.0))
        tape.reset()
    fresh = pyad.Var(1.0)
    for x, f in old:
        for use in (lambda x=x: x.v, lambda f=f: f.backward(), lambda x=x: x + fresh):
            with pytest.raises(errors.StaleVarError):
                use()
    assert fresh.v == 1.0
    assert len(tape) == 1


# -- Vars of two tapes -------------------------------------------------------------------------

FOREIGN_USES: list[tuple[str, Callable[[pyad.Var, pyad.Var], Any]]] = [
    ("a + b", lambda a, b: a + b),
    ("b + a", lambda a, b: b + a),
    ("a - b", lambda a, b: a - b),
    ("a * b", lambda a, b: a * b),
    ("b / a", lambda a, b: b / a),
    ("a ** b", lambda a, b: a**b),
    ("atan2(a, b)", lambda a, b: pyad.atan2(a, b)),
    ("hypot(b, a)", lambda a, b: pyad.hypot(b, a)),
    ("pow(a, b)", lambda a, b: pyad.pow(a, b)),
    ("sum([a, b])", lambda a, b: pyad.sum([a, b])),
    ("sum([b, 1.0, a])", lambda a, b: pyad.sum([b, 1.0, a])),
    ("sum([a], start=b)", lambda a, b: pyad.sum([a], start=b)),
    ("dot([a], [b])", lambda a, b: pyad.dot([a], [b])),
    ("dot([a, 1.0], [2.0, b])", lambda a, b: pyad.dot([a, 1.0], [2.0, b])),
    ("logsumexp([a, b])", lambda a, b: pyad.logsumexp([a, b])),
    ("logsumexp([1.0, b, a])", lambda a, b: pyad.logsumexp([1.0, b, a])),
    ("softmax([a, b])", lambda a, b: pyad.softmax([a, b])),
    ("softmax([1.0, b, a])", lambda a, b: pyad.softmax([1.0, b, a])),
]


@pytest.mark.parametrize("use", [pytest.param(u, id=label) for label, u in FOREIGN_USES])
def test_foreign_vars(use: Callable[[pyad.Var, pyad.Var], Any]) -> None:
    t1, t2 = pyad.Tape(), pyad.Tape()
    with t1:
        a = pyad.Var(0.5)
        fa = pyad.exp(a) * a
        fa.backward()
    with t2:
        b = pyad.Var(1.5)
        fb = pyad.cos(b) + b
        fb.backward()
    n1, n2 = len(t1), len(t2)
    state = [(v.v, v.grad) for v in (a, fa, b, fb)]
    for _ in range(2):  # also with each tape active
        with t1, pytest.raises(errors.ForeignVarError) as info:
            use(a, b)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, errors.PyadError)
        assert "tape" in str(info.value)
        with t2, pytest.raises(errors.ForeignVarError):
            use(a, b)
        assert (len(t1), len(t2)) == (n1, n2)
        assert [(v.v, v.grad) for v in (a, fa, b, fb)] == state
    # both tapes still work
    with t1:
        g = a * 2.0
    g.backward()
    assert a.grad == state[0][1] + 2.0
    with t2:
        h = b * 3.0
    h.backward()
    assert b.grad == state[2][1] + 3.0
    assert (len(t1), len(t2)) == (n1 + 1, n2 + 1)
