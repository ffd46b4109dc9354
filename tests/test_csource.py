"""The C sources' layout, read as text: what clang-format (run by CI) does not check.

Every C file says on its first lines what it holds; the two lists of sources (the Makefile's
and the cffi build's) agree with the files there are; lines stay within 100 characters, the
op table's too; and each row of the op table has the fields its arity needs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyad import _build

CSRC = Path(__file__).resolve().parent.parent / "csrc"
LIBRARY = sorted(path.name for path in CSRC.glob("*.c"))
TEXT = sorted(
    path
    for pattern in ("*.c", "*.h", "*.def", "tests/*.[ch]", "fuzz/*.[ch]", "fuzz/*.py")
    for path in CSRC.glob(pattern)
)


def test_both_source_lists_name_every_library_file() -> None:
    makefile = (CSRC / "Makefile").read_text()
    match = re.search(r"^SRC = ((?:.*\\\n)*.*)$", makefile, re.M)
    assert match is not None
    assert sorted(match.group(1).replace("\\", " ").split()) == LIBRARY
    assert sorted(_build.SOURCES) == LIBRARY


@pytest.mark.parametrize("path", [CSRC / name for name in LIBRARY], ids=str)
def test_every_library_file_says_what_it_holds(path: Path) -> None:
    head = path.read_text().splitlines()[:2]
    assert head[0] == "/*" and head[1].startswith(f" * {path.name} - "), head


@pytest.mark.parametrize("path", TEXT, ids=lambda p: str(p.relative_to(CSRC)))
def test_lines_fit_in_100_columns(path: Path) -> None:
    long = [n for n, line in enumerate(path.read_text().splitlines(), 1) if len(line) > 100]
    assert not long, f"{path.name}: lines {long} are longer than 100 characters"


def _rows() -> list[tuple[str, str, str, str]]:
    """(NAME, ARITY, KEEP, MATH) of every row of csrc/ops.def, comments removed."""
    text = re.sub(r"/\*.*?\*/", "", (CSRC / "ops.def").read_text(), flags=re.S)
    rows = []
    for row in re.split(r"^PYAD_OP\(", text, flags=re.M)[1:]:
        name, _, arity, keep, math = (part.strip() for part in row.split(",", 4))
        rows.append((name, arity, keep, " ".join(math.rstrip().removesuffix(")").split())))
    return rows


def test_the_op_table_is_read_whole() -> None:
    names = [row[0] for row in _rows()]
    assert len(names) == len(_build._op_rows()) and "MUL" in names and "SOFTMAX" in names


@pytest.mark.parametrize("row", _rows(), ids=lambda row: row[0])
def test_each_row_has_the_fields_its_arity_needs(row: tuple[str, str, str, str]) -> None:
    name, arity, keep, math = row
    assert keep in ("CONST", "OPERANDS", "STORED")
    if arity not in ("1", "2"):
        assert math == "", f"{name}: a leaf or n-ary row has no MATH"
        return
    fields = re.findall(r"\b(REFUSE|VALUE|NO_OVERFLOW|FIRST|SECOND)\b", math)
    # checks first, the value, the overflow check after it, then the partials
    order = [field for field in fields if field != "REFUSE"]
    assert order in (["VALUE", "FIRST", "SECOND"], ["VALUE", "NO_OVERFLOW", "FIRST", "SECOND"])
    assert fields.index("VALUE") == fields.count("REFUSE"), f"{name}: REFUSE after VALUE"
