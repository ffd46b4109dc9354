"""pyad.to_dot: Graphviz source of a recorded graph.

The output is parsed with regexes (one statement a line, as to_dot writes it) and checked for
the nodes, edges and labels of known small graphs; then the walk: shared nodes drawn once, a
10,000-node chain drawn and truncated without recursion, deterministic text. Where Graphviz's
``dot`` is installed the source is also rendered to SVG.
"""

from __future__ import annotations

import importlib
import math
import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest

import pyad
from pyad.errors import StaleVarError

dot_module = importlib.import_module("pyad.graph")

NODE = re.compile(r'^  (n\d+|more) \[label="((?:[^"\\]|\\.)*)"(.*)\];$')
EDGE = re.compile(r"^  (n\d+|more) -> (n\d+) \[(.*)\];$")


class Graph:
    """The nodes and edges of to_dot's output, parsed strictly: every line must be known."""

    def __init__(self, source: str) -> None:
        lines = source.splitlines()
        assert source.endswith("}\n")
        assert lines[0] == "digraph pyad {"
        assert lines[-1] == "}"
        self.labels: dict[str, str] = {}
        self.attributes: dict[str, str] = {}
        self.edges: list[tuple[str, str, str]] = []
        for line in lines[1:-1]:
            if line.startswith(("  node [", "  edge [")):
                continue
            edge = EDGE.match(line)
            if edge:
                self.edges.append((edge[1], edge[2], edge[3]))
                continue
            node = NODE.match(line)
            assert node, f"not a node, an edge or a default: {line!r}"
            assert node[1] not in self.labels, f"node {node[1]} declared twice"
            self.labels[node[1]] = node[2]
            self.attributes[node[1]] = node[3]
        for src, dst, _ in self.edges:
            assert src in self.labels and dst in self.labels, "edge to an undeclared node"

    @property
    def nodes(self) -> list[str]:
        return [name for name in self.labels if name != "more"]

    def op(self, name: str) -> str:
        return self.labels[name].split("\\n")[0]

    def ops(self) -> Counter[str]:
        return Counter(self.op(name) for name in self.nodes)

    def edge_labels(self, dst: str) -> list[str]:
        return [re.match(r'label="(.*)"', attrs)[1] for _, d, attrs in self.edges if d == dst]  # type: ignore[index]


def readme_graph() -> tuple[pyad.Var, pyad.Var, pyad.Var]:
    x, y = pyad.Var(2.0), pyad.Var(5.0)
    f = pyad.log(x) + x * y - pyad.sin(y)
    return x, y, f


def test_readme_example_structure(tape: pyad.Tape) -> None:
    _, _, f = readme_graph()
    f.backward()
    graph = Graph(pyad.to_dot(f))
    # x, y; log(x), x*y, log+mul, sin(y), add-sin
    assert len(graph.nodes) == 7
    assert graph.ops() == Counter({"leaf": 2, "log": 1, "mul": 1, "add": 1, "sin": 1, "sub": 1})
    # x->log, x->mul, y->mul, y->sin, log->add, mul->add, add->sub, sin->sub
    assert len(graph.edges) == 8
    assert "more" not in graph.labels
    # the root is drawn first, with a double outline; inputs are boxes, ops ellipses
    assert graph.op("n0") == "sub" and "peripheries=2" in graph.attributes["n0"]
    for name in graph.nodes:
        shape = "box" if graph.op(name) == "leaf" else "ellipse"
        assert f"shape={shape}" in graph.attributes[name]
    # edges go from operand to result: leaves have no incoming edge, the root no outgoing one
    assert all(graph.op(dst) != "leaf" for _, dst, _ in graph.edges)
    assert all(src != "n0" for src, _, _ in graph.edges)


def test_labels_carry_op_value_grad_and_partials(tape: pyad.Tape) -> None:
    _, _, f = readme_graph()
    f.backward()
    graph = Graph(pyad.to_dot(f))
    labels = set(graph.labels.values())
    assert "sub\\nv = 11.6521\\ngrad = 1" in labels
    assert "leaf\\nv = 2\\ngrad = 5.5" in labels
    assert "leaf\\nv = 5\\ngrad = 1.71634" in labels
    assert "sin\\nv = -0.958924\\ngrad = -1" in labels
    mul = next(name for name in graph.nodes if graph.op(name) == "mul")
    assert sorted(graph.edge_labels(mul)) == ["2", "5"]  # d(x*y)/dx = y, d/dy = x
    sin = next(name for name in graph.nodes if graph.op(name) == "sin")
    assert graph.edge_labels(sin) == [f"{math.cos(5.0):.4g}"]
    sub = next(name for name in graph.nodes if graph.op(name) == "sub")
    assert sorted(graph.edge_labels(sub)) == ["-1", "1"]


def test_show_grad_false(tape: pyad.Tape) -> None:
    _, _, f = readme_graph()
    source = pyad.to_dot(f, show_grad=False)
    assert "grad" not in source
    assert "sub\\nv = 11.6521" in Graph(source).labels.values()


def test_grad_before_backward_is_zero(tape: pyad.Tape) -> None:
    _, _, f = readme_graph()
    assert all(label.endswith("grad = 0") for label in Graph(pyad.to_dot(f)).labels.values())


def test_shared_subexpressions_appear_once(tape: pyad.Tape) -> None:
    x, y = pyad.Var(1.5), pyad.Var(-0.5)
    s = x * y
    f = s * s + pyad.sin(s)
    graph = Graph(pyad.to_dot(f))
    # x, y, s, s*s, sin(s), add
    assert graph.ops() == Counter({"leaf": 2, "mul": 2, "sin": 1, "add": 1})
    # x->s, y->s, s->s*s twice (both operands), s->sin, s*s->add, sin->add
    assert len(graph.edges) == 7
    pairs = Counter((src, dst) for src, dst, _ in graph.edges)
    assert sorted(pairs.values()) == [1, 1, 1, 1, 1, 2]


def test_diamond_chain_is_linear(tape: pyad.Tape) -> None:
    # 2**60 paths from the top to x; 2 nodes a level
    y = pyad.Var(0.3)
    for _ in range(60):
        y = pyad.sin(y) + pyad.cos(y)
    graph = Graph(pyad.to_dot(y, max_nodes=1000))
    assert graph.ops() == Counter({"leaf": 1, "sin": 60, "cos": 60, "add": 60})
    assert len(graph.edges) == 60 * 4


def test_constant_operands_are_not_nodes(tape: pyad.Tape) -> None:
    x = pyad.Var(2.0)
    graph = Graph(pyad.to_dot(3.0 * x - 1, show_grad=False))
    assert graph.ops() == Counter({"leaf": 1, "mul": 1, "sub": 1})
    assert [attrs for _, _, attrs in graph.edges] == ['label="1"', 'label="3"']


def test_a_leaf_alone(tape: pyad.Tape) -> None:
    graph = Graph(pyad.to_dot(pyad.Var(-7.25)))
    assert graph.labels == {"n0": "leaf\\nv = -7.25\\ngrad = 0"}
    assert graph.edges == []


def test_nary_and_non_finite_values(tape: pyad.Tape) -> None:
    xs = [pyad.Var(float(i)) for i in range(4)]
    f = pyad.logsumexp(xs) * math.inf
    graph = Graph(pyad.to_dot(f, show_grad=False))
    assert graph.ops() == Counter({"leaf": 4, "logsumexp": 1, "mul": 1})
    assert graph.labels["n0"] == "mul\\nv = inf"
    assert len(graph.edges) == 5


def test_chain_of_10000_nodes_without_recursion(tape: pyad.Tape) -> None:
    y = pyad.Var(0.5)
    for _ in range(10_000):
        y = pyad.sin(y)
    limit = sys.getrecursionlimit()
    assert limit < 10_000  # so a recursive walk would fail here
    graph = Graph(pyad.to_dot(y, max_nodes=20_000))
    assert len(graph.nodes) == 10_001 and len(graph.edges) == 10_000
    assert "more" not in graph.labels

    graph = Graph(pyad.to_dot(y, max_nodes=50))
    assert len(graph.nodes) == 50
    assert len(graph.edges) == 49 + 1  # the chain's, and the note's to the last node drawn
    assert graph.labels["more"] == "… 9951 more nodes not shown"
    assert graph.edges[-1] == ("more", "n49", "style=dashed, arrowhead=none")
    assert "shape=note" in graph.attributes["more"]


def test_default_max_nodes_is_200(tape: pyad.Tape) -> None:
    y = pyad.Var(0.5)
    for _ in range(300):
        y = y * 1.01 + 0.1
    graph = Graph(pyad.to_dot(y))
    assert len(graph.nodes) == 200
    assert graph.labels["more"] == "… 401 more nodes not shown"


def test_truncation_notes_every_incomplete_node(tape: pyad.Tape) -> None:
    _, _, f = readme_graph()
    graph = Graph(pyad.to_dot(f, max_nodes=3))
    assert graph.ops() == Counter({"sub": 1, "add": 1, "sin": 1})
    assert graph.labels["more"] == "… 4 more nodes not shown"
    notes = sorted(dst for src, dst, _ in graph.edges if src == "more")
    assert notes == ["n1", "n2"]  # add (log, mul hidden) and sin (y hidden)

    graph = Graph(pyad.to_dot(f, max_nodes=1))
    assert graph.nodes == ["n0"]
    assert graph.labels["more"] == "… 6 more nodes not shown"


def test_count_of_hidden_nodes_is_bounded(tape: pyad.Tape, monkeypatch: pytest.MonkeyPatch) -> None:
    y = pyad.Var(0.5)
    for _ in range(1000):
        y = pyad.tanh(y)
    monkeypatch.setattr(dot_module, "COUNT_LIMIT", 100)
    graph = Graph(pyad.to_dot(y, max_nodes=10))
    assert graph.labels["more"] == "… 100+ more nodes not shown"


def test_output_is_deterministic() -> None:
    sources = []
    for _ in range(2):
        with pyad.Tape():
            _, _, f = readme_graph()
            f.backward()
            sources.append(pyad.to_dot(f))
            assert pyad.to_dot(f) == sources[-1]
    assert sources[0] == sources[1]


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("mul", '"mul"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("two\nlines", '"two\\nlines"'),
        ("… 3 more", '"… 3 more"'),
    ],
)
def test_quote(text: str, quoted: str) -> None:
    assert dot_module._quote(text) == quoted


def test_module_does_not_shadow_the_dot_function() -> None:
    assert pyad.dot is pyad.functions.dot
    assert pyad.dot([1.0, 2.0], [3.0, 4.0]) == 11.0
    assert dot_module.to_dot is pyad.to_dot


def test_bad_arguments(tape: pyad.Tape) -> None:
    with pytest.raises(TypeError, match="Var"):
        pyad.to_dot(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_nodes"):
        pyad.to_dot(pyad.Var(1.0), max_nodes=0)
    x = pyad.Var(1.0)
    f = x * x
    tape.reset()
    with pytest.raises(StaleVarError):
        pyad.to_dot(f)


def test_renders_with_graphviz(tape: pyad.Tape) -> None:
    _, _, f = readme_graph()
    f.backward()
    sources = [pyad.to_dot(f), pyad.to_dot(f, max_nodes=3)]
    for source in sources:
        Graph(source)
    dot = shutil.which("dot")
    if dot is None:
        # Graphviz is not installed here: the rendering part of this test is skipped
        return
    for source in sources:
        done = subprocess.run(
            [dot, "-Tsvg"], input=source.encode(), capture_output=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert b"<svg" in done.stdout
