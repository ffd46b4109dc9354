"""The package's structure, read from its source with ``ast``: which pyad module imports which.

Every import counts, at any depth: module level, inside functions (imports deferred to a first
call), and under ``if TYPE_CHECKING:``. The graph among pyad's modules must have no circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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


# -- the C library's one door ------------------------------------------------------------------

#: the modules that bind the library's entry points themselves (the rest call pyad._native's
#: functions), and why: the hot path, where a wrapper call would cost a share of each operation
HOT_PATH = {
    "pyad.var": "each operation on a Var is one cffi call: its push, read, write or sweep",
    "pyad.functions": "the n-ary pushes: a neuron's dot, a loss's sum, logsumexp, softmax",
    "pyad._program": "each call of a compiled Function is one replay: one cffi call",
    "pyad.arrays": "each operation on an Array is one cffi call, whose statuses (segments "
    "opened, the element that failed) only it interprets, as pyad.var does a Var's",
}


def _is_native(node: ast.expr) -> bool:
    """Is ``node`` the module pyad._native (``_native`` or ``pyad._native``)?"""
    if isinstance(node, ast.Name):
        return node.id == "_native"
    return isinstance(node, ast.Attribute) and node.attr == "_native"


def _lib_uses(module: str) -> list[ast.AST]:
    """Where ``module`` reaches the cffi library: importing ``lib`` or the cffi module, or
    using ``lib`` (a name imported from pyad._native, or ``_native.lib``)."""
    uses: list[ast.AST] = []
    for node in ast.walk(MODULES[module]):
        if isinstance(node, ast.ImportFrom):
            names = {alias.name for alias in node.names}
            cffi = "_pyad_cffi" in (node.module or "") or "_pyad_cffi" in names
            if cffi or (node.module == "pyad._native" and "lib" in names):
                uses.append(node)
        elif isinstance(node, ast.Import):
            if any("_pyad_cffi" in alias.name for alias in node.names):
                uses.append(node)
        elif _is_lib(node):
            uses.append(node)
    return uses


def _is_lib(node: ast.AST) -> bool:
    """Is ``node`` the library object: the name ``lib`` or ``_native.lib``?"""
    if isinstance(node, ast.Name):
        return node.id == "lib"
    return isinstance(node, ast.Attribute) and node.attr == "lib" and _is_native(node.value)


def test_only_native_and_the_hot_path_touch_the_library() -> None:
    touching = {module for module in MODULES if _lib_uses(module)}
    assert touching == {"pyad._native", *HOT_PATH}


@pytest.mark.parametrize("module", sorted(HOT_PATH))
def test_the_hot_path_binds_entry_points_once(module: str) -> None:
    # Its uses of lib are bindings made once: module-level `_name = lib.pyad_...` or the op
    # factories' `getattr(lib, ...)`; no call through lib anywhere else.
    tree = MODULES[module]
    bound = {
        id(statement.value.value)
        for statement in tree.body
        if isinstance(statement, ast.Assign)
        and isinstance(statement.value, ast.Attribute)
        and statement.value.attr.startswith("pyad_")
    }
    fetched = {
        id(node.args[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and node.args
    }
    names = [node for node in _lib_uses(module) if isinstance(node, ast.Name)]
    assert names, f"{module} is listed in HOT_PATH but uses no lib"
    loose = [node.lineno for node in names if id(node) not in bound | fetched]
    assert not loose, f"{module} uses lib other than in a binding at lines {loose}"


def _compares_ok(module: str) -> list[int]:
    """Lines of ``module`` that read the OK status (``STATUS["OK"]``, or OK from pyad._native)
    to compare a status with it by hand."""
    lines = []
    for node in ast.walk(MODULES[module]):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and node.slice.value == "OK"
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "pyad._native":
            lines += [node.lineno for alias in node.names if alias.name == "OK"]
        elif isinstance(node, ast.Attribute) and node.attr == "OK" and _is_native(node.value):
            lines.append(node.lineno)
    return lines


def test_statuses_are_checked_in_native_only() -> None:
    # one way from a status to an exception: pyad._native.check (pyad.var refines the
    # failures of its own calls and leaves the rest to pyad._native.error)
    found = {module: _compares_ok(module) for module in MODULES if module != "pyad._native"}
    assert not {module: lines for module, lines in found.items() if lines}
    assert _compares_ok("pyad._native")
