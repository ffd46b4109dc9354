"""What one Var operation costs, piece by piece, on this machine (``python -m bench.micro``).

Each piece is a statement run by :mod:`timeit` in this process (timeit's own loop, gc off),
many repeats taken round-robin over the pieces; min and median ns per statement are
reported. (0) is timeit's empty loop, the overhead included in every other row. On a noisy
shared machine the mins are the steadier figures.

(1) a float multiply in a Python loop: the float floor;
(2) method dispatch: ``a * b`` on a ``__slots__`` class whose ``__mul__`` returns a constant;
(3) one cffi call shaped like the frontend's binary op: ``mul(ha, hb)`` with
    ``mul = pyad._native.lib.pyad_mul`` and two handles of real Vars (it pushes records, so it
    runs inside ``with pyad.Tape() as t:``, reset before each repeat);
(4) a new object made as the frontend makes it: ``object.__new__(pyad.Var)`` and three slots;
(5) the floor: (2), (3) and (4) in one ``__mul__`` (no type checks, no status check);
(6) the real ``x * y`` on pyad Vars; (7) ``x * 3.0``; (8) ``pyad.exp(x)``;
(9) ``x * y`` on pyad.reference Vars.
"""

from __future__ import annotations

import statistics
import sys
import timeit
from typing import Any, Callable

import pyad
import pyad.reference
from pyad._native import lib

NEW = object.__new__


class _Dispatch:
    """Piece (2): a ``__slots__`` class whose ``__mul__`` does nothing but return."""

    __slots__ = ("_h",)

    def __init__(self) -> None:
        self._h = 0

    def __mul__(self, other: object) -> int:
        return 1


def _floor_class() -> type:
    """Piece (5): dispatch + the cffi call + the new Var, as a minimal frontend would."""
    mul = lib.pyad_mul
    var = pyad.Var

    class Floor:
        __slots__ = ("_h", "_s", "_t")

        def __mul__(self, other: Floor) -> Any:
            h = mul(self._h, other._h)
            t = self._t
            r = NEW(var)
            r._t = t
            r._h = h
            r._s = t._s
            return r

    return Floor


# Setup for the pieces that push records: a clean tape, two fresh leaves and their handles.
_TAPE_SETUP = """
tape.reset()
x = Var(1.25)
y = Var(2.5)
ha = x._h
hb = y._h
fx = Floor()
fx._t = x._t; fx._h = x._h; fx._s = x._s
fy = Floor()
fy._t = y._t; fy._h = y._h; fy._s = y._s
"""

PIECES: list[tuple[str, str, str, str]] = [
    # (id, description, statement, setup)
    ("0", "empty statement (timeit's loop, in every row)", "pass", ""),
    ("1", "float multiply a * b (the float floor)", "a * b", "a = 1.25; b = 2.5"),
    ("2", "dispatch: __slots__ __mul__ returning a constant", "d * d", "d = Dispatch()"),
    ("3", "cffi call mul(ha, hb) (lib.pyad_mul, local)", "mul(ha, hb)", _TAPE_SETUP),
    (
        "4",
        "object.__new__(pyad.Var) + 3 slot stores",
        "r = new(Var); r._t = t; r._h = h; r._s = s",
        "t = tape; h = 1; s = tape._s",
    ),
    ("5", "floor: (2)+(3)+(4) in one __mul__", "fx * fy", _TAPE_SETUP),
    ("6", "pyad x * y", "x * y", _TAPE_SETUP),
    ("7", "pyad x * 3.0", "x * 3.0", _TAPE_SETUP),
    ("8", "pyad exp(x)", "exp(x)", _TAPE_SETUP),
    ("9", "pyad.reference x * y", "rx * ry", "rx = RVar(1.25); ry = RVar(2.5)"),
]


def run(quick: bool, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure every piece; return {"pieces": [...], "overhead_over_floor": ..., ...}."""
    number, repeat = (20_000, 15) if quick else (100_000, 41)
    rows = []
    with pyad.Tape() as tape:
        namespace: dict[str, Any] = {
            "tape": tape,
            "Var": pyad.Var,
            "mul": lib.pyad_mul,
            "exp": pyad.exp,
            "new": NEW,
            "Dispatch": _Dispatch,
            "Floor": _floor_class(),
            "RVar": pyad.reference.Var,
        }
        timers = [timeit.Timer(stmt, setup, globals=namespace) for _, _, stmt, setup in PIECES]
        times: list[list[float]] = [[] for _ in PIECES]
        # Round-robin over the pieces, so that a burst of machine noise hits them all alike.
        for i in range(repeat):
            if progress and i % 5 == 0:
                progress(f"micro repeat {i + 1}/{repeat} ...\n")
            for k, timer in enumerate(timers):
                times[k].append(timer.timeit(number) / number * 1e9)
        for (pid, text, stmt, _), ts in zip(PIECES, times):
            rows.append(
                {
                    "id": pid,
                    "piece": text,
                    "statement": stmt,
                    "min_ns": min(ts),
                    "median_ns": statistics.median(ts),
                }
            )
        if progress:
            progress("micro ... done\n")
        tape.reset()
    by_id = {r["id"]: r for r in rows}
    pieces_sum = sum(by_id[i]["median_ns"] for i in ("2", "3", "4"))
    return {
        "number": number,
        "repeat": repeat,
        "pieces": rows,
        "sum_2_3_4_median_ns": pieces_sum,
        "overhead_over_floor": by_id["6"]["median_ns"] / by_id["5"]["median_ns"],
        "overhead_over_floor_min": by_id["6"]["min_ns"] / by_id["5"]["min_ns"],
    }


def format_report(result: dict[str, Any]) -> str:
    """The micro table as plain text."""
    rows = [["", "piece", "min ns", "median ns"]]
    for r in result["pieces"]:
        rows.append([f"({r['id']})", r["piece"], f"{r['min_ns']:.1f}", f"{r['median_ns']:.1f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        f"micro: cost of the pieces of one Var operation (timeit, {result['repeat']} repeats x "
        f"{result['number']} statements, gc off; every row includes row (0))"
    ]
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(
                [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
                + [c.rjust(widths[j]) for j, c in ((2, row[2]), (3, row[3]))]
            ).rstrip()
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(f"sum of pieces (2)+(3)+(4), medians: {result['sum_2_3_4_median_ns']:.1f} ns")
    lines.append(
        f"frontend overhead over the floor, (6)/(5): {result['overhead_over_floor']:.2f} "
        f"(medians), {result['overhead_over_floor_min']:.2f} (mins, the steadier figure)"
    )
    return "\n".join(lines)


def main() -> None:
    """Run the micro benchmarks alone: ``python -m bench.micro [--quick]``."""
    quick = "--quick" in sys.argv[1:]
    print(format_report(run(quick, lambda s: print(s, end="", file=sys.stderr, flush=True))))


if __name__ == "__main__":
    main()
