"""The README's example runs as written and gives the values its comments state."""

from __future__ import annotations

import math
import pathlib
import re
from typing import Any

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_example_runs_and_its_comments_are_true() -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    ns: dict[str, Any] = {}
    with __import__("pyad").Tape():
        exec(block.group(1), ns)
        f, x, y, p = ns["f"], ns["x"], ns["y"], ns["p"]
        assert f.v == 11.652071455223084
        assert (x.grad, y.grad) == (5.5, 1.7163378145367738)
        assert y.grad == 2 - math.cos(5)
        assert [m for m, _ in f.predecessors] == [1.0, -1.0]
        assert p.grad == 0.0 and p.v == 0.5


def test_every_readme_python_block_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        with __import__("pyad").Tape():
            exec(block, {})
