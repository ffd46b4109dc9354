"""The README's examples run as written and give the values their comments state; the README
stays short, its set-up commands are the ones CI runs, and the documentation's links stay
inside the repository."""

from __future__ import annotations

import contextlib
import io
import math
import pathlib
import re
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_first_example_runs_and_its_comments_are_true() -> None:
    ns: dict[str, Any] = {}
    out = io.StringIO()
    with __import__("pyad").Tape(), contextlib.redirect_stdout(out):
        exec(_python_blocks()[0], ns)
        f, x, y, w = ns["f"], ns["x"], ns["y"], ns["w"]
        assert f.v == 11.652071455223084
        assert (x.grad, y.grad) == (5.5, 1.7163378145367738)
        assert y.grad == 2 - math.cos(5)
        assert abs(w.v - 1.0) < 1e-9
    assert out.getvalue() == "11.652071455223084 5.5 1.7163378145367738\n"


def test_every_readme_python_block_runs() -> None:
    blocks = _python_blocks()
    assert len(blocks) >= 4
    for block in blocks:
        with __import__("pyad").Tape(), contextlib.redirect_stdout(io.StringIO()):
            exec(block, {})


def test_the_readme_stays_under_20_kb() -> None:
    assert len(README.read_bytes()) < 20_000


def test_the_set_up_commands_are_the_ones_ci_runs() -> None:
    setup = re.search(r"## Set-up: two commands\n\n```bash\n(.*?)```", README.read_text(), re.S)
    assert setup is not None
    commands = [line.split("#")[0].strip() for line in setup.group(1).splitlines()]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci, command


def test_the_documentation_links_stay_inside_the_repository() -> None:
    for page in DOCS:
        text = page.read_text()
        assert "://" not in text, f"{page.name} points outside the repository"
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            assert (page.parent / target).resolve().is_file(), f"{page.name}: {target}"
