"""The benchmark as one picture: ns per op, log scale, per engine per workload.

    python -m bench.plot bench/results/latest.json bench.png

:func:`plot` reads the dict that ``python -m bench --json`` writes (its structure is documented
in ``bench/peers/__init__.py``): each workload's ``"comparison"`` rows (one per engine: one-shot
``ns_per_op`` and, where the engine replays a recorded graph, ``replay_ns_per_op``) and, for
the replay rows of ``bench/replay.py``, ``replay.workloads[W].engines``. A file written before
the comparison rows existed still plots: its ``workloads[W].engines`` (pyad, pyad.reference,
the float floor) give the one-shot points.

Why a dot plot and a log axis: the engines span four orders of magnitude (a C replay at ~10 ns
per op, a Python tape at ~10 us), so bars on a linear axis would show only the slowest engine.
The op is one pyad record for every engine, so points in one column compare directly. Filled
circles are one-shot (record + gradient once), open squares replay (forward + gradient again on
a recorded graph, compile time excluded). A point run at a reduced size is labelled with it;
engines that failed or are missing are listed under the chart, so nothing drops out silently.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Engine names of bench/replay.py's rows as the chart labels them (the HVP row is not a
#: value-and-gradient, so it is not drawn).
REPLAY_LABELS = {
    "pyad": "pyad",
    "rogozhnikov": "Rogozhnikov C tape",
    "handwritten": "hand-written C",
    "pyad_batched": "pyad (batched x64)",
    "casadi": "CasADi",
    "jax": "JAX",
}
#: Engine names of the older ``workloads[W].engines`` dicts as the chart labels them.
ENGINE_LABELS = {"reference": "pyad.reference", "float": "float floor"}
ONE_SHOT, REPLAY = "one-shot", "replay"
MARKERS = {ONE_SHOT: "o", REPLAY: "s"}


@dataclass(frozen=True)
class Point:
    """One figure on the chart."""

    workload: str
    engine: str
    kind: str  # ONE_SHOT or REPLAY
    ns_per_op: float
    note: str = ""  # e.g. "n_ops=500" when the engine ran at a reduced size


def _number(x: Any) -> float | None:
    """A positive finite float, or None (the JSON writes inf/nan as strings, missing as null)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) and x > 0 else None


def _size_name(wr: dict[str, Any]) -> str:
    for name in ("n", "points", "depth", "n_ops"):
        if name in wr:
            return name
    return "size"


def collect(results: dict[str, Any]) -> tuple[list[Point], list[str]]:
    """The points to draw and the lines of the footnote (engines without figures).

    One point per (workload, engine, kind): the comparison rows come first, so a replay figure
    that also appears in the replay section is drawn once."""
    points: dict[tuple[str, str, str], Point] = {}
    missing: list[tuple[str, str, str]] = []  # (engine, short status, workload)

    def add(workload: str, engine: str, kind: str, value: Any, note: str = "") -> None:
        ns = _number(value)
        if ns is not None and (workload, engine, kind) not in points:
            points[workload, engine, kind] = Point(workload, engine, kind, ns, note)

    for key, wr in (results.get("workloads") or {}).items():
        comparison = wr.get("comparison")
        if comparison:
            for engine, row in comparison.items():
                status = str(row.get("status", "ok"))
                if status != "ok":
                    missing.append((engine, status.split(" (")[0], key))
                    continue
                note = ""
                if row.get("reduced") and row.get("size") is not None:
                    note = f"{_size_name(wr)}={row['size']:,}"
                add(key, engine, ONE_SHOT, row.get("ns_per_op"), note)
                add(key, engine, REPLAY, row.get("replay_ns_per_op"), note)
        else:
            for engine, fig in (wr.get("engines") or {}).items():
                add(key, ENGINE_LABELS.get(engine, engine), ONE_SHOT, fig.get("ns_per_op"))
    replay = results.get("replay") or {}
    for key, wr in (replay.get("workloads") or {}).items():
        size = wr.get("size")
        full = (results.get("workloads") or {}).get(key, {})
        note = ""
        if size is not None and full and size != full.get(wr.get("size_name", ""), size):
            note = f"{wr.get('size_name', 'size')}={size:,}"
        for engine, fig in (wr.get("engines") or {}).items():
            label = REPLAY_LABELS.get(engine)
            if label is not None:
                add(key, label, REPLAY, fig.get("median_ns_per_op"), note)
    return list(points.values()), _footnote(missing)


def _footnote(missing: list[tuple[str, str, str]]) -> list[str]:
    """One line per engine and status, its workloads listed: ``torch: not installed (W1,
    W5)``. The status is cut before its parenthesis (install hints belong in the table)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for engine, status, key in missing:
        grouped.setdefault((engine, status), []).append(key)
    return [f"{engine}: {status} ({', '.join(keys)})" for (engine, status), keys in grouped.items()]


def _title(results: dict[str, Any]) -> str:
    m = results.get("machine") or {}
    date = str(m.get("date", ""))[:16].replace("T", " ")
    cpu = m.get("cpu", "")
    cores = f" x{m['cpu_count']}" if m.get("cpu_count") else ""
    python = f"Python {m['python']}" if m.get("python") else ""
    quick = " (--quick sizes)" if (results.get("settings") or {}).get("quick") else ""
    where = ", ".join(part for part in (f"{cpu}{cores}", python) if part.strip())
    return f"pyad bench{quick}: ns per op, lower is better\n{date}  {where}".strip()


def plot(results: dict[str, Any], path: str) -> None:
    """Draw ``results`` (the bench JSON as a dict) as a PNG at ``path``.

    Raises ImportError naming the package when matplotlib is missing (it is an optional
    extra), and ValueError when ``results`` holds no figure at all."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as exc:
        raise ImportError("bench.plot needs matplotlib (pip install matplotlib)") from exc

    points, missing = collect(results)
    if not points:
        raise ValueError("no ns/op figures to plot in these results")
    workloads = list(dict.fromkeys(p.workload for p in points))
    engines = list(dict.fromkeys(p.engine for p in points))
    colours = _colours(len(engines))
    slot = 0.8 / len(engines)

    # A Figure without pyplot: no global backend state, and PNG output goes through Agg.
    fig = Figure(figsize=(max(8.0, 1.6 * len(workloads) + 4.0), 6.0), layout="constrained")
    ax = fig.add_subplot()
    for p in points:
        i = engines.index(p.engine)
        x = workloads.index(p.workload) - 0.4 + slot * (i + 0.5)
        filled = p.kind == ONE_SHOT
        ax.plot(
            [x],
            [p.ns_per_op],
            marker=MARKERS[p.kind],
            markersize=7,
            linestyle="none",
            color=colours[i],
            markerfacecolor=colours[i] if filled else "white",
            markeredgewidth=1.5,
        )
        if p.note:
            ax.annotate(
                p.note,
                (x, p.ns_per_op),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=7,
                color=colours[i],
                rotation=30,
            )
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels([_workload_label(results, w) for w in workloads], fontsize=8)
    ax.set_xlim(-0.5, len(workloads) - 0.5)
    for edge in range(1, len(workloads)):
        ax.axvline(edge - 0.5, color="0.85", linewidth=0.8)
    ax.set_ylabel("ns per op (op = one pyad record), log scale")
    ax.grid(True, axis="y", which="major", color="0.9")
    ax.set_title(_title(results), fontsize=10)
    handles = [Line2D([], [], color=c, marker="o", linestyle="none") for c in colours]
    handles += [
        Line2D([], [], color="0.3", marker=MARKERS[ONE_SHOT], linestyle="none"),
        Line2D([], [], color="0.3", marker=MARKERS[REPLAY], linestyle="none", mfc="white"),
    ]
    labels = [*engines, "one-shot (record + gradient)", "replay (compile excluded)"]
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    if missing:
        # supxlabel, unlike fig.text, gets its own room from the constrained layout
        lines = missing[:6] + ([f"... and {len(missing) - 6} more"] if len(missing) > 6 else [])
        fig.supxlabel("not drawn: " + "; ".join(lines), fontsize=7, color="0.35", wrap=True)
    fig.savefig(path, dpi=120)


def _workload_label(results: dict[str, Any], key: str) -> str:
    """``W1\\nn=20,000``: the workload and the size pyad ran it at."""
    wr = (results.get("workloads") or {}).get(key)
    if wr is None:
        wr = ((results.get("replay") or {}).get("workloads") or {}).get(key, {})
        size = wr.get("size")
        return f"{key}\n{wr.get('size_name', 'size')}={size:,}" if size is not None else key
    name = _size_name(wr)
    return f"{key}\n{name}={wr[name]:,}" if isinstance(wr.get(name), int) else key


def _colours(n: int) -> list[Any]:
    """``n`` distinguishable colours: tab10, then tab20 for more engines."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.plot RESULTS.json OUT.png``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.plot", description=__doc__.split("\n")[0]
    )
    parser.add_argument("results", type=Path, help="JSON written by python -m bench --json")
    parser.add_argument("out", type=Path, help="PNG to write")
    args = parser.parse_args(argv)
    try:
        plot(json.loads(args.results.read_text()), str(args.out))
    except (ImportError, ValueError, OSError) as exc:
        print(f"bench.plot: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
