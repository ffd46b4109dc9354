"""Property tests on random computation graphs: pyad against pyad.reference, and against
finite differences.

A program is a Wengert list drawn directly: a few input values, then steps ``(op, operands,
constants)`` whose operand indices point at earlier nodes, so shared subexpressions and deep
chains arise naturally. Every op of the table appears, with guards that keep each value inside
its domain and finite (``log(1 + a*a)``, ``a / (1 + b*b)``, ``exp(tanh(a))``, ...), and a node
whose static magnitude bound grows past ``BOUND`` is squashed with ``atan``. The same builder
runs once with ``pyad`` and once with ``pyad.reference``; every node (guard intermediates
included) is compared after each backward sweep.

The builder keeps every node alive, so the tape never reuses a segment while it records;
``build_dropping`` records a program as a user's function does instead, dropping each node
after its last use, with softmax groups run across segment ends and segments of temporaries
in between, and the compiled replay of that is checked too (collection interleaved with n-ary
groups, then compile, is where the tape's and the compiler's assumptions meet).
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyad
import pyad.reference as R
from pyad._native import CHUNK_RECORDS

#: magnitude past which a step's output is squashed with atan (keeps every value finite and
#: finite differences meaningful)
BOUND = 100.0
#: constants of the constant-operand steps: float, int and numpy scalars, all nonzero
CONSTANTS: list[Any] = [0.5, -1.5, 2, 3.0, np.float64(0.75), np.int64(-2), np.float32(1.25)]
E = math.e


@dataclass
class Graph:
    """What the builder made: every node in creation order (None: not kept), the step
    outputs, the inputs."""

    inputs: list[Any]
    main: list[Any]
    every: list[Any] | None
    #: values at the ops with kinks or jumps (abs, relu, atan2, hypot), for the FD check
    kinks: list[tuple[str, float, float]] = field(default_factory=list)

    def add(self, *nodes: Any) -> Any:
        if self.every is not None:
            self.every.extend(nodes)
        return nodes[-1]


# -- the steps: name -> (build, static bound of |result|) ---------------------------------------
# Each build function records through module M and returns the step's output; every Var it
# makes is registered with g.add so that its value and gradient are compared.


def _sq1(g: Graph, a: Any) -> Any:
    """1 + a*a (>= 1)."""
    sq = g.add(a * a)
    return g.add(1.0 + sq)


def _tanh(g: Graph, M: ModuleType, a: Any) -> Any:
    return g.add(M.tanh(a))


UNARY_STEPS: dict[str, tuple[Callable[..., Any], Callable[[float], float]]] = {
    "neg": (lambda M, g, a: g.add(-a), lambda b: b),
    "abs": (lambda M, g, a: g.add(abs(a)), lambda b: b),
    "exp": (lambda M, g, a: g.add(M.exp(_tanh(g, M, a))), lambda b: E),
    "log": (lambda M, g, a: g.add(M.log(_sq1(g, a))), lambda b: math.log1p(b * b)),
    "log1p": (lambda M, g, a: g.add(M.log1p(g.add(a * a))), lambda b: math.log1p(b * b)),
    "expm1": (lambda M, g, a: g.add(M.expm1(g.add(M.sin(a)))), lambda b: E),
    "sqrt": (lambda M, g, a: g.add(M.sqrt(_sq1(g, a))), lambda b: math.sqrt(1 + b * b)),
    "sin": (lambda M, g, a: g.add(M.sin(a)), lambda b: 1.0),
    "cos": (lambda M, g, a: g.add(M.cos(a)), lambda b: 1.0),
    "tan": (lambda M, g, a: g.add(M.tan(_tanh(g, M, a))), lambda b: math.tan(1.0)),
    "asin": (lambda M, g, a: g.add(M.asin(g.add(_tanh(g, M, a) / 2))), lambda b: math.pi / 2),
    "acos": (lambda M, g, a: g.add(M.acos(g.add(_tanh(g, M, a) * 0.5))), lambda b: math.pi),
    "atan": (lambda M, g, a: g.add(M.atan(a)), lambda b: math.pi / 2),
    "sinh": (lambda M, g, a: g.add(M.sinh(g.add(M.atan(a)))), lambda b: math.sinh(math.pi / 2)),
    "cosh": (lambda M, g, a: g.add(M.cosh(_tanh(g, M, a))), lambda b: math.cosh(1.0)),
    "tanh": (lambda M, g, a: g.add(M.tanh(a)), lambda b: 1.0),
    "sigmoid": (lambda M, g, a: g.add(M.sigmoid(a)), lambda b: 1.0),
    "relu": (lambda M, g, a: g.add(M.relu(a)), lambda b: b),
    "softplus": (lambda M, g, a: g.add(M.softplus(a)), lambda b: b + 1.0),
    "square": (lambda M, g, a: g.add(a**2), lambda b: b * b),
    "cube": (lambda M, g, a: g.add(a**3), lambda b: b**3),
    "pos": (lambda M, g, a: +a, lambda b: b),
}

BINARY_STEPS: dict[str, tuple[Callable[..., Any], Callable[[float, float], float]]] = {
    "add": (lambda M, g, a, b: g.add(a + b), lambda p, q: p + q),
    "sub": (lambda M, g, a, b: g.add(a - b), lambda p, q: p + q),
    "mul": (lambda M, g, a, b: g.add(a * b), lambda p, q: p * q),
    "div": (lambda M, g, a, b: g.add(a / _sq1(g, b)), lambda p, q: p),
    "pow": (
        lambda M, g, a, b: g.add(_sq1(g, a) ** _tanh(g, M, b)),
        lambda p, q: 1.0 + p * p,
    ),
    "pow_fn": (
        lambda M, g, a, b: g.add(M.pow(g.add(M.sigmoid(a)), _tanh(g, M, b))),
        lambda p, q: 1.0 + math.exp(p),  # sigmoid(a) ** -1 <= 1 + exp(|a|)
    ),
    "atan2": (lambda M, g, a, b: g.add(M.atan2(a, b)), lambda p, q: math.pi),
    "hypot": (lambda M, g, a, b: g.add(M.hypot(a, b)), lambda p, q: p + q),
}

CONST_STEPS: dict[str, tuple[Callable[..., Any], Callable[[float, float], float]]] = {
    "add_c": (lambda M, g, a, c: g.add(a + c), lambda p, c: p + abs(c)),
    "c_add": (lambda M, g, a, c: g.add(c + a), lambda p, c: p + abs(c)),
    "sub_c": (lambda M, g, a, c: g.add(a - c), lambda p, c: p + abs(c)),
    "c_sub": (lambda M, g, a, c: g.add(c - a), lambda p, c: p + abs(c)),
    "mul_c": (lambda M, g, a, c: g.add(a * c), lambda p, c: p * abs(c)),
    "c_mul": (lambda M, g, a, c: g.add(c * a), lambda p, c: p * abs(c)),
    "div_c": (lambda M, g, a, c: g.add(a / c), lambda p, c: p / abs(c)),
    "c_div": (lambda M, g, a, c: g.add(c / _sq1(g, a)), lambda p, c: abs(c)),
    "pow_c": (lambda M, g, a, c: g.add(_sq1(g, a) ** c), lambda p, c: (1 + p * p) ** abs(c)),
    "c_pow": (lambda M, g, a, c: g.add(abs(c) ** _tanh(g, M, a)), lambda p, c: 3.0),
    "atan2_c": (lambda M, g, a, c: g.add(M.atan2(a, c)), lambda p, c: math.pi),
    "c_atan2": (lambda M, g, a, c: g.add(M.atan2(c, a)), lambda p, c: math.pi),
    "hypot_c": (lambda M, g, a, c: g.add(M.hypot(a, c)), lambda p, c: p + abs(c)),
    "c_pow_fn": (lambda M, g, a, c: g.add(M.pow(abs(c), g.add(M.cos(a)))), lambda p, c: 3.0),
}

NARY_STEPS = ["sum", "dot", "logsumexp", "softmax", "primitive", "matvec"]


def _prim_f(*vs: float) -> float:
    """The user primitive of the "primitive" step: sin(v0) + sin(v1) + ..."""
    total = 0.0
    for v in vs:
        total += math.sin(v)
    return total


def _prim_df(*vs: float) -> list[float]:
    return [math.cos(v) for v in vs]


STEP_NAMES = [*UNARY_STEPS, *BINARY_STEPS, *CONST_STEPS, *NARY_STEPS]
#: steps by kind: a program draws the kind first, so the n-ary ops are not crowded out
STEP_KINDS = [list(UNARY_STEPS), list(BINARY_STEPS), list(CONST_STEPS), NARY_STEPS]


def test_steps_use_every_op() -> None:
    """The random programs exercise every op of the table."""
    used = {"leaf", *NARY_STEPS}
    for table in (UNARY_STEPS, BINARY_STEPS, CONST_STEPS):
        for name, (fn, _) in table.items():
            g = Graph([], [], [])
            x = pyad.Var(0.7)
            args = [x, x] if table is BINARY_STEPS else [x, 2.0] if table is CONST_STEPS else [x]
            fn(pyad, g, *args)
            used.update(node.op for node in g.every)
            assert g.every or name == "pos"
    assert used == set(pyad._native.OPS), sorted(set(pyad._native.OPS) - used)


# -- programs -------------------------------------------------------------------------------------

#: an n-ary operand: ("v", node index) or ("c", constant)
Item = tuple[str, Any]


@dataclass(frozen=True)
class Step:
    name: str
    operands: tuple[int, ...] = ()
    const: Any = None
    items: tuple[Item, ...] = ()
    items2: tuple[Item, ...] = ()


@dataclass(frozen=True)
class Program:
    inputs: tuple[float, ...]
    steps: tuple[Step, ...]


def _softmax_outputs(step: Step) -> int:
    return len(step.items) if step.name == "softmax" else 1


# The strategies a program draws from, made once per number of nodes: hypothesis validates
# every new strategy object, which cost several times the whole test when they were built
# afresh at every step.


@functools.cache
def _node_index(length: int) -> st.SearchStrategy[int]:
    # an offset from the newest node: shrinks toward deep chains; any earlier node is
    # reachable, so shared subexpressions arise too
    return st.integers(0, length - 1).map(lambda k: length - 1 - k)


@functools.cache
def _nary_item(length: int) -> st.SearchStrategy[Item]:
    return st.one_of(
        _node_index(length).map(lambda i: ("v", i)),
        st.sampled_from(CONSTANTS).map(lambda c: ("c", c)),
    )


_STEP_NAME = st.sampled_from([st.sampled_from(kind) for kind in STEP_KINDS])


@st.composite
def programs(draw: Any, max_inputs: int = 4, max_steps: int = 14) -> Program:
    inputs = tuple(
        draw(st.lists(st.floats(0.5, 2.0), min_size=1, max_size=max_inputs)),
    )
    length = len(inputs)
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        idx, item = _node_index(length), _nary_item(length)
        name = draw(draw(_STEP_NAME))  # the kind first, so the n-ary ops are not crowded out
        if name in UNARY_STEPS:
            step = Step(name, (draw(idx),))
        elif name in BINARY_STEPS:
            step = Step(name, (draw(idx), draw(idx)))
        elif name in CONST_STEPS:
            step = Step(name, (draw(idx),), draw(st.sampled_from(CONSTANTS)))
        else:
            k = draw(st.integers(1, 4))
            first = ("v", draw(idx))  # at least one Var, so the result is a Var
            rest = tuple(draw(item) for _ in range(k - 1))
            if name == "dot":
                others = tuple(draw(item) for _ in range(k))
                step = Step(name, items=(first, *rest), items2=others)
            else:
                items = [first, *rest]
                pos = draw(st.integers(0, k - 1))
                items[0], items[pos] = items[pos], items[0]
                step = Step(name, items=tuple(items))
        steps.append(step)
        length += _softmax_outputs(step)
    return Program(inputs, tuple(steps))


def random_program(rng: random.Random, n_inputs: int, n_steps: int) -> Program:
    """A long program drawn with a seeded generator (same shape as the hypothesis ones)."""
    inputs = tuple(rng.uniform(0.5, 2.0) for _ in range(n_inputs))
    length = n_inputs
    steps = []

    def idx() -> int:
        # mostly recent nodes (long chains), sometimes any node (sharing)
        if rng.random() < 0.7:
            return length - 1 - min(length - 1, int(rng.expovariate(0.5)))
        return rng.randrange(length)

    def item() -> Item:
        return ("v", idx()) if rng.random() < 0.7 else ("c", rng.choice(CONSTANTS))

    for _ in range(n_steps):
        name = rng.choice(STEP_NAMES)
        if name in UNARY_STEPS:
            step = Step(name, (idx(),))
        elif name in BINARY_STEPS:
            step = Step(name, (idx(), idx()))
        elif name in CONST_STEPS:
            step = Step(name, (idx(),), rng.choice(CONSTANTS))
        else:
            k = rng.randint(1, 4)
            items = (("v", idx()), *(item() for _ in range(k - 1)))
            items2 = tuple(item() for _ in range(k)) if name == "dot" else ()
            step = Step(name, items=items, items2=items2)
        steps.append(step)
        length += _softmax_outputs(step)
    return Program(inputs, tuple(steps))


# -- the builder, written once for both engines ----------------------------------------------


def build(
    M: ModuleType,
    program: Program,
    inputs: Sequence[float] | None = None,
    xs: Sequence[Any] | None = None,
) -> Graph:
    """Record ``program`` with module M (pyad or pyad.reference), on new leaves holding
    ``inputs`` (the program's own by default) or on the given Vars ``xs``. With ``xs`` no value
    is read (``kinks`` stays empty), so that ``pyad.compile`` can trace the builder."""
    kinks = xs is None
    if xs is None:
        xs = [M.Var(v) for v in (program.inputs if inputs is None else inputs)]
    g = Graph(list(xs), list(xs), list(xs))
    bounds = [2.0 + 1e-6] * len(xs)  # static bounds: inputs are in [0.5, 2]
    for step in program.steps:
        outs, b = _record_step(M, g, step, bounds, kinks)
        g.main.extend(outs)
        bounds.extend([b] * len(outs))
    return g


def _record_step(
    M: ModuleType, g: Graph, step: Step, bounds: list[float], kinks: bool
) -> tuple[list[Any], float]:
    """One step of a program: its outputs (one, or a softmax's) and their static bound."""
    outs: list[Any]
    if step.name in UNARY_STEPS:
        fn, bound = UNARY_STEPS[step.name]
        (i,) = step.operands
        a = g.main[i]
        if kinks and step.name in ("abs", "relu"):
            g.kinks.append((step.name, a.v, 0.0))
        outs = [fn(M, g, a)]
        b = bound(bounds[i])
    elif step.name in BINARY_STEPS:
        fn, bound = BINARY_STEPS[step.name]
        i, j = step.operands
        a, c = g.main[i], g.main[j]
        if kinks and step.name in ("atan2", "hypot"):
            g.kinks.append((step.name, a.v, c.v))
        outs = [fn(M, g, a, c)]
        b = bound(bounds[i], bounds[j])
    elif step.name in CONST_STEPS:
        fn, bound = CONST_STEPS[step.name]
        (i,) = step.operands
        a = g.main[i]
        if kinks and step.name in ("atan2_c", "hypot_c"):
            g.kinks.append((step.name, a.v, float(step.const)))
        elif kinks and step.name == "c_atan2":
            g.kinks.append((step.name, float(step.const), a.v))
        outs = [fn(M, g, a, step.const)]
        b = bound(bounds[i], float(step.const))
    else:
        vals = [g.main[x] if kind == "v" else x for kind, x in step.items]
        bs = [bounds[x] if kind == "v" else abs(float(x)) for kind, x in step.items]
        if step.name == "sum":
            outs = [g.add(M.sum(vals))]
            b = math.fsum(bs)
        elif step.name == "dot":
            ws = [g.main[x] if kind == "v" else x for kind, x in step.items2]
            ws_b = [bounds[x] if kind == "v" else abs(float(x)) for kind, x in step.items2]
            outs = [g.add(M.dot(ws, vals))]
            b = math.fsum(p * q for p, q in zip(ws_b, bs))
        elif step.name == "logsumexp":
            outs = [g.add(M.logsumexp(vals))]
            b = max(bs) + math.log(len(bs))
        elif step.name == "primitive":
            outs = [g.add(M.primitive(_prim_f, _prim_df)(*vals))]
            b = float(len(bs))
        elif step.name == "matvec":  # one row over the Vars among the items
            xs = [x for x in vals if isinstance(x, M.Var)]
            row = [0.5 - 0.25 * k for k in range(len(xs))]
            outs = [g.add(M.matvec([row], xs)[0])]
            b = math.fsum(
                abs(w) * bounds[x]
                for w, (kind, x) in zip(row, (i for i in step.items if i[0] == "v"))
            )
        else:
            outs = list(M.softmax(vals))
            g.add(*outs)
            b = 1.0
    if b > BOUND:  # keep every value finite, and derivatives moderate
        outs = [g.add(M.atan(outs[0]))]
        b = math.pi / 2
    return outs, b


# -- recording while the tape reuses segments ----------------------------------------------------

C = CHUNK_RECORDS
#: segments of temporaries a churn records and drops: enough for the tape to collect
CHURN = 5


@dataclass(frozen=True)
class Reuse:
    """Where a recording of a program makes the tape reuse segments: before step i of
    ``fills`` (i, d), leaves to the end of the segment and on to d records short of the next
    one's end (so that a softmax there runs across it, from a segment of its own); after each
    step of ``churns``, and after the last, CHURN segments of temporaries recorded and
    dropped."""

    fills: tuple[tuple[int, int], ...] = ()
    churns: frozenset[int] = frozenset()


def _last_uses(program: Program) -> list[int]:
    """For each node, the last step that uses it (its own for a node no step uses); the
    program's output is used by the end, step len(program.steps)."""
    last: list[int] = [-1] * len(program.inputs)
    for i, step in enumerate(program.steps):
        for k in step.operands:
            last[k] = i
        for kind, k in (*step.items, *step.items2):
            if kind == "v":
                last[k] = i
        last.extend([i] * _softmax_outputs(step))
    last[-1] = len(program.steps)
    return last


def _fill(d: int) -> None:
    """Leaves, dropped at once, to the end of the current segment and to d short of the next."""
    newest = pyad.Var(0.0)._h & (C - 1)  # its place in its segment
    for _ in range(C - 1 - newest + C - d):
        pyad.Var(0.0)


def _churn(t: pyad.Tape) -> None:
    for _ in range(CHURN):
        junk = [pyad.Var(1.0) for _ in range(C)]
        del junk
    len(t)  # releases the pins of the dead segments


def build_dropping(program: Program, xs: Sequence[Any], reuse: Reuse) -> Any:
    """Record ``program`` with pyad on the Vars ``xs`` as a user's function does: each node
    is dropped after its last use (a softmax's outputs one by one), so the tape collects and
    reuses segments while the program runs (where ``reuse`` says); returns the output."""
    t = pyad.Tape.current()
    last = _last_uses(program)
    fills = dict(reuse.fills)
    g = Graph(list(xs), list(xs), None)
    bounds = [2.0 + 1e-6] * len(xs)
    for i, step in enumerate(program.steps):
        if i in fills:
            _fill(fills[i])
        outs, b = _record_step(pyad, g, step, bounds, False)
        g.main.extend(outs)
        bounds.extend([b] * len(outs))
        del outs
        for k, use in enumerate(last):
            if use == i:
                g.main[k] = None
        if i in reuse.churns or i == len(program.steps) - 1:
            _churn(t)
    return g.main[-1]


@st.composite
def reuses(draw: Any, program: Program) -> Reuse:
    """Fills before some softmax steps (d short of a segment's end, inside the group) and
    churns after some steps."""
    fills = []
    for i, step in enumerate(program.steps):
        if step.name == "softmax" and len(step.items) > 1 and draw(st.booleans()):
            fills.append((i, draw(st.integers(1, len(step.items) - 1))))
    n = len(program.steps)
    churns = draw(st.frozensets(st.integers(0, n - 1), max_size=2))
    return Reuse(tuple(fills), churns)


# -- comparisons ---------------------------------------------------------------------------------


def close(got: float, want: float, rel: float, abs_tol: float) -> bool:
    if math.isnan(want):
        return math.isnan(got)
    return got == want or math.isclose(got, want, rel_tol=rel, abs_tol=abs_tol)


def assert_values_equal(gp: Graph, gr: Graph) -> None:
    assert len(gp.every) == len(gr.every)
    for k, (p, r) in enumerate(zip(gp.every, gr.every)):
        assert isinstance(p, pyad.Var)
        assert close(p.v, r.v, 1e-12, 0.0), f"node {k}: pyad value {p.v!r}, reference {r.v!r}"


def assert_grads_equal(gp: Graph, gr: Graph, when: str) -> None:
    ref = [r.grad for r in gr.every]
    scale = max([1.0, *(abs(v) for v in ref if math.isfinite(v))])
    for k, (p, want) in enumerate(zip(gp.every, ref)):
        got = p.grad
        assert close(got, want, 1e-12, 1e-12 * scale), (
            f"{when}: node {k} ({p.op}): pyad grad {got!r}, reference {want!r}"
        )


def assert_partials_equal(gp: Graph, gr: Graph) -> None:
    for k, (p, r) in enumerate(zip(gp.every, gr.every)):
        mp = [m for m, _ in p.predecessors]
        mr = [m for m, _ in r.predecessors]
        assert len(mp) == len(mr), f"node {k} ({p.op}): {mp} vs {mr}"
        for m1, m2 in zip(mp, mr):
            assert close(m1, m2, 1e-12, 0.0), f"node {k} ({p.op}): partials {mp} vs {mr}"


# -- the properties -----------------------------------------------------------------------------


def replayable(program: Program) -> Program:
    """The program with each user primitive (which ``pyad.compile`` refuses) replaced by a
    sum of the same operands."""
    steps = tuple(replace(s, name="sum") if s.name == "primitive" else s for s in program.steps)
    return Program(program.inputs, steps)


def assert_replay_is_a_fresh_trace(program: Program, point: Sequence[float]) -> None:
    """``pyad.compile`` of the program at its own inputs, replayed at ``point``, gives the
    bits a fresh recording at ``point`` gives (value and gradient)."""
    program = replayable(program)

    def fn(v: list[pyad.Var]) -> Any:
        return build(pyad, program, xs=v).main[-1]

    F = pyad.compile(fn, program.inputs)
    value, grad = F.value_and_grad(np.array(point))
    with pyad.Tape():
        g = build(pyad, program, point)
        out = g.main[-1]
        out.backward()
        want_value, want_grad = out.v, np.array([x.grad for x in g.inputs])
    assert type(value) is float
    assert np.float64(value).tobytes() == np.float64(want_value).tobytes(), (
        f"replay value {value!r}, fresh trace {want_value!r} at {list(point)}"
    )
    assert grad.dtype == np.float64 and grad.tobytes() == want_grad.tobytes(), (
        f"replay gradient {grad!r}, fresh trace {want_grad!r} at {list(point)}"
    )
    assert F.retraces == 0  # these programs compare nothing, so nothing can retrace


#: DAGs that passed test_dag_at_scale in this process, for a progress line on stderr every
#: PROGRESS_EVERY of them (seen with pytest -s) during the long runs of the large profile
_checked = itertools.count(1)
PROGRESS_EVERY = 10_000


@given(
    programs(),
    st.integers(0, 10**6),
    st.floats(-3.0, 3.0),
    st.lists(st.floats(0.5, 2.0), min_size=4, max_size=4),
)
def test_dag_at_scale(program: Program, pick: int, upstream: float, point: list[float]) -> None:
    """Everything one random DAG can be asked, in one property (the one the ``large``
    hypothesis profile runs 10^5 times: ``HYPOTHESIS_PROFILE=large ... -k scale``): values,
    partials and gradients against pyad.reference, a second backward accumulating, a backward
    from any node, and the compiled replay at another point against a fresh recording."""
    with pyad.Tape():
        gp = build(pyad, program)
        gr = build(R, program)
        assert_values_equal(gp, gr)
        assert_partials_equal(gp, gr)
        out_p, out_r = gp.main[-1], gr.main[-1]
        out_p.backward()
        out_r.backward()
        assert_grads_equal(gp, gr, "first backward")
        out_p.backward()
        out_r.backward()
        assert_grads_equal(gp, gr, "second backward (accumulation)")
        k = pick % len(gp.every)
        gp.every[k].backward(upstream)
        gr.every[k].backward(upstream)
        assert_grads_equal(gp, gr, f"backward({upstream!r}) on node {k}")
        assert_values_equal(gp, gr)
    assert_replay_is_a_fresh_trace(program, point[: len(program.inputs)])
    done = next(_checked)
    if done % PROGRESS_EVERY == 0:
        print(f"test_dag_at_scale: {done:,} DAGs checked", file=sys.stderr, flush=True)


@st.composite
def programs_and_reuse(draw: Any) -> tuple[Program, Reuse]:
    program = replayable(draw(programs()))
    return program, draw(reuses(program))


@given(programs_and_reuse(), st.lists(st.floats(0.5, 2.0), min_size=4, max_size=4))
def test_dag_compiled_while_segments_are_reused(
    case: tuple[Program, Reuse], point: list[float]
) -> None:
    """A random DAG recorded as a user's function records it, dropping every node after its
    last use, with softmax groups run across segment ends and segments of temporaries in
    between: the tape collects and reuses segments while it runs, also those of some outputs
    of a group. pyad.compile of it replays a fresh recording bit for bit, at the traced point
    and at another, and the recording is pyad.reference's."""
    program, reuse = case

    def fn(v: list[pyad.Var]) -> Any:
        return build_dropping(program, v, reuse)

    x0 = np.array(program.inputs)
    F = pyad.compile(fn, x0)
    for x in (x0, np.array(point[: len(x0)])):
        want_value, want_grad = pyad.value_and_grad(fn)(x)
        value, grad = F.value_and_grad(x)
        assert np.float64(value).tobytes() == np.float64(want_value).tobytes(), (
            f"replay value {value!r}, fresh trace {want_value!r} at {list(x)}"
        )
        assert grad.tobytes() == want_grad.tobytes(), (
            f"replay gradient {grad!r}, fresh trace {want_grad!r} at {list(x)}"
        )
    assert F.retraces == 0
    gr = build(R, program)
    out = gr.main[-1]
    out.backward()
    value, grad = pyad.value_and_grad(fn)(x0)
    assert close(value, out.v, 1e-12, 0.0), f"value {value!r}, reference {out.v!r}"
    for i, (g, x) in enumerate(zip(grad, gr.inputs)):
        assert close(float(g), x.grad, 1e-12, 1e-12), f"input {i}: {g!r} vs {x.grad!r}"


def _kink_signature(g: Graph) -> list[tuple[float, ...]]:
    """Which smooth piece each abs/relu/atan2/hypot sits on, and how close to the edge."""
    sig = []
    for _name, a, b in g.kinks:
        sig.append((math.copysign(1.0, a) if a else 0.0, math.copysign(1.0, b) if b else 0.0))
    return sig


def _kink_distance(g: Graph) -> float:
    dist = math.inf
    for name, a, b in g.kinks:
        # abs and relu bend at 0; atan2 jumps across a == 0 where b < 0 (its branch cut)
        if name in ("abs", "relu") or ("atan2" in name and b < 0.0):
            dist = min(dist, abs(a))
        else:  # the origin
            dist = min(dist, math.hypot(a, b))
    return dist


@given(programs(max_inputs=3, max_steps=10))
def test_dag_vs_finite_differences(program: Program) -> None:
    with pyad.Tape():
        g = build(pyad, program)
        out = g.main[-1]
        out.backward()
        grads = [x.grad for x in g.inputs]
        fval = out.v
        sig = _kink_signature(g)
        near_kink = _kink_distance(g) < 1e-3
        scale = max([1.0, abs(fval), *(abs(v) for v in grads)])
        for i, x0 in enumerate(program.inputs):
            h = 1e-6 * max(1.0, abs(x0))
            up, dn = list(program.inputs), list(program.inputs)
            up[i] += h
            dn[i] -= h
            g_up, g_dn = build(pyad, program, up), build(pyad, program, dn)
            if near_kink or _kink_signature(g_up) != sig or _kink_signature(g_dn) != sig:
                continue  # not one smooth piece around the point: FD says nothing
            fd = (g_up.main[-1].v - g_dn.main[-1].v) / (up[i] - dn[i])
            assert math.isclose(grads[i], fd, rel_tol=1e-5, abs_tol=1e-7 * scale), (
                f"d out / d x{i}: backward {grads[i]!r}, finite differences {fd!r}"
            )


@pytest.mark.parametrize("seed", range(4))
def test_long_random_program_matches_reference(seed: int) -> None:
    """A few thousand steps: deep chains and wide sharing, one backward over all of it."""
    rng = random.Random(seed)
    program = random_program(rng, n_inputs=5, n_steps=1500)
    with pyad.Tape():
        gp = build(pyad, program)
        gr = build(R, program)
        assert_values_equal(gp, gr)
        gp.main[-1].backward(0.5)
        gr.main[-1].backward(0.5)
        assert_grads_equal(gp, gr, "backward")
        k = rng.randrange(len(gp.every))
        gp.every[k].backward(-1.25)
        gr.every[k].backward(-1.25)
        assert_grads_equal(gp, gr, f"backward on node {k}")


def test_shared_subexpression_is_swept_once() -> None:
    """A ladder where each node uses the previous one twice: 2**n paths, one sweep."""
    for M in (pyad, R):
        with pyad.Tape():
            x = M.Var(1.0)
            y = x
            for _ in range(200):
                y = (y + y) * 0.5
            y.backward()
            assert y.v == 1.0
            assert x.grad == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_only_inputs_and_output_kept(seed: int) -> None:
    """Intermediate Vars dropped (their segments may be recycled), more graphs recorded and
    dropped, then backward on the kept output: still the reference's gradient."""
    rng = random.Random(100 + seed)
    program = random_program(rng, n_inputs=4, n_steps=2500)  # several tape segments
    gr = build(R, program)
    gr.main[-1].backward()
    with pyad.Tape() as t:
        gp = build(pyad, program)
        xs, out = gp.inputs, gp.main[-1]
        keep = [gp.every[k] for k in sorted(rng.sample(range(len(gp.every)), 5))]
        keep_ref = [gr.every[gp.every.index(v)] for v in keep]
        del gp
        gc.collect()
        n, recorded = len(t), 0
        for _ in range(5):  # churn: graphs recorded and dropped, so segments get recycled
            junk = build(pyad, random_program(rng, n_inputs=2, n_steps=1500))
            recorded += len(junk.every)
            del junk
            gc.collect()
            len(t)  # lets the tape release dead segments
        assert len(t) < n + recorded, "no segment was recycled: the test would prove nothing"
        assert close(out.v, gr.main[-1].v, 1e-12, 0.0)
        for v, r in zip(keep, keep_ref):
            assert close(v.v, r.v, 1e-12, 0.0)
        out.backward()
        for i, (x, r) in enumerate(zip(xs, gr.inputs)):
            assert close(x.grad, r.grad, 1e-12, 1e-12), f"input {i}: {x.grad!r} vs {r.grad!r}"
        for v, r in zip(keep, keep_ref):
            assert close(v.grad, r.grad, 1e-12, 1e-12), f"kept node: {v.grad!r} vs {r.grad!r}"
