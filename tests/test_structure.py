"""The package's structure, read from its source with ``ast``: which pyad module imports which.

Every import counts, at any depth: module level, inside functions (imports deferred to a first
call), and under ``if TYPE_CHECKING:``. The graph among pyad's modules must have no circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pyad"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: every module of the package (subpackages included) -> its parsed source
MODULES: dict[str, ast.Module] = {
    _module_name(path): ast.parse(path.read_text(), str(path))
    for path in sorted(PACKAGE.rglob("*.py"))
}


def _package_of(module: str) -> str:
    """The package a module's relative imports start from."""
    is_package = (PACKAGE.parent / module.replace(".", "/") / "__init__.py").exists()
    return module if is_package else module.rpartition(".")[0]


def imported(module: str) -> set[str]:
    """The pyad modules that ``module`` imports. ``from P import n`` imports the module P.n when
    there is one, else P itself. The parent packages Python initialises on the way are not
    counted: a package's __init__ importing its submodules is no circle of theirs."""
    found: set[str] = set()
    for node in ast.walk(MODULES[module]):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = _package_of(module).split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, *([source] if source else [])])
            for alias in node.names:
                name = f"{source}.{alias.name}"
                found.add(name if name in MODULES else source)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imported(module) for module in MODULES}


def _circle() -> list[str] | None:
    """A circle of imports (its modules in order, the first repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while its imports are being walked, then "done"
    path: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state:
                found = walk(target)
                if found:
                    return found
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(GRAPH):
        if module not in state:
            found = walk(module)
            if found:
                return found
    return None


def test_the_reader_sees_imports_at_every_depth() -> None:
    # `from pyad import errors` names a module; `from pyad.var import Var` a name in one
    assert {"pyad.var", "pyad.compiled", "pyad.errors"} <= GRAPH["pyad"]
    assert "pyad.var" in GRAPH["pyad.compat.micrograd.engine"]
    # pyad.compiled imports pyad.parallel inside Function.map only
    assert "pyad.parallel" in GRAPH["pyad.compiled"]


def test_no_pyad_module_imports_itself_back_in_a_circle() -> None:
    circle = _circle()
    assert circle is None, "import circle: " + " -> ".join(circle or [])
