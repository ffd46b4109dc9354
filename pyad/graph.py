"""Graphviz pictures of a recorded graph: ``pyad.to_dot(f)`` gives DOT source.

    >>> import pyad
    >>> with pyad.Tape():
    ...     x, y = pyad.Var(2.0), pyad.Var(5.0)
    ...     f = pyad.log(x) + x * y
    ...     source = pyad.to_dot(f)
    >>> source.splitlines()[0]
    'digraph pyad {'

Render it with ``dot -Tsvg graph.dot -o graph.svg`` (or paste it into any Graphviz viewer).
Each node is one record of the tape: its op, its value and (by default) its adjoint ``.grad``;
inputs are boxes, the node given to :func:`to_dot` has a double outline. Each edge goes from
an operand to the result, labelled with the partial derivative recorded for that operand (an
operand used twice, as in ``x * x``, has two edges). Constant operands (``x * 3.0``) are not
nodes of the tape and do not appear.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Union

from pyad.arrays import Array
from pyad.var import Var

#: after ``max_nodes``, the walk goes on only to count the nodes not shown, up to this many
COUNT_LIMIT = 100_000


def _quote(text: str) -> str:
    """``text`` as a DOT double-quoted string; newlines become centred line breaks."""
    lines = text.split("\n")
    escaped = [line.replace("\\", "\\\\").replace('"', '\\"') for line in lines]
    return '"' + "\\n".join(escaped) + '"'


def _label(node: Var, show_grad: bool) -> str:
    text = f"{node.op}\nv = {node.v:.6g}"
    if show_grad:
        text += f"\ngrad = {node.grad:.6g}"
    return text


def _count_hidden(frontier: dict[int, Var], seen: set[int]) -> tuple[int, bool]:
    """How many nodes are reachable from ``frontier`` and not in ``seen`` (which holds the
    frontier's handles already): ``(count, exact)``, counting at most :data:`COUNT_LIMIT`."""
    queue = deque(frontier.values())
    count = len(frontier)
    while queue:
        if count >= COUNT_LIMIT:
            return count, False
        for _, pred in queue.popleft().predecessors:
            if pred._h not in seen:
                seen.add(pred._h)
                queue.append(pred)
                count += 1
    return count, True


def to_dot(
    var: Union[Var, Array, Sequence[Var]], max_nodes: int = 200, show_grad: bool = True
) -> str:
    """Graphviz DOT source of the graph recorded below ``var`` (a Var, or the elements of an
    Array or sequence of Vars, each drawn with a double outline).

    The graph is walked breadth-first from ``var`` along ``.predecessors`` (iteratively, so
    any depth works) and each record is drawn once, however many paths reach it. Node ids
    follow the walk, so the same graph always gives the same text.

    Args:
        var: the node (or nodes) to draw the graph of, usually a computation's output.
        max_nodes: draw at most this many nodes, the ones closest to ``var``. When nodes are
            left out, a note node says how many, with dashed edges to the nodes whose
            operands are not all shown.
        show_grad: put each node's ``.grad`` in its label (as of now: zero before
            ``backward()``).

    Returns:
        The DOT source, one statement a line, ending with a newline.

    Raises:
        TypeError: ``var`` is not a Var, an Array or a sequence of Vars.
        ValueError: ``max_nodes`` is less than 1.
        pyad.errors.StaleVarError: ``var``'s tape was reset after it was recorded.
    """
    roots = _roots(var)
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, got {max_nodes!r}")

    nodes: list[Var] = []
    index: dict[int, int] = {}
    for root in roots:
        if root._h not in index:
            index[root._h] = len(nodes)
            nodes.append(root)
    outputs = len(nodes)
    edges: list[tuple[int, int, float]] = []  # (operand, result, partial)
    hidden: dict[int, Var] = {}  # operands met after max_nodes were drawn
    cut: list[int] = []  # drawn nodes with an operand not drawn
    i = 0
    while i < len(nodes):
        complete = True
        for partial, pred in nodes[i].predecessors:
            h = pred._h
            j = index.get(h)
            if j is None:
                if len(nodes) >= max_nodes:
                    hidden.setdefault(h, pred)
                    complete = False
                    continue
                j = index[h] = len(nodes)
                nodes.append(pred)
            edges.append((j, i, partial))
        if not complete:
            cut.append(i)
        i += 1

    lines = [
        "digraph pyad {",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for k, node in enumerate(nodes):
        attributes = [f"label={_quote(_label(node, show_grad))}"]
        attributes.append("shape=box" if node.op == "leaf" else "shape=ellipse")
        if k < outputs:
            attributes.append("peripheries=2")
        lines.append(f"  n{k} [{', '.join(attributes)}];")
    for j, k, partial in edges:
        lines.append(f"  n{j} -> n{k} [label={_quote(f'{partial:.4g}')}];")
    if hidden:
        count, exact = _count_hidden(hidden, set(index) | set(hidden))
        note = f"… {count} more nodes not shown" if exact else f"… {count}+ more nodes not shown"
        lines.append(f"  more [label={_quote(note)}, shape=note, style=dashed];")
        for k in cut:
            lines.append(f"  more -> n{k} [style=dashed, arrowhead=none];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _roots(var: object) -> list[Var]:
    """The Vars to_dot starts from."""
    if isinstance(var, Var):
        return [var]
    items = list(var.ravel()) if isinstance(var, Array) else var
    if isinstance(items, Sequence) and items and all(isinstance(v, Var) for v in items):
        return list(items)
    raise TypeError(
        f"to_dot() takes a Var, an Array or a sequence of Vars, got {type(var).__name__}"
    )


__all__ = ["to_dot"]
