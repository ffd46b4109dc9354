"""``python -m bench``: pyad against pyad.reference and the float floor on the workloads of
docs/WORKLOADS.md; a text table per workload on stdout, progress on stderr,
every figure in a JSON file.

    python -m bench                      # full sizes, 7 repeats (< 5 min)
    python -m bench --quick              # small sizes, 3 repeats (< 1 min)
    python -m bench --workloads W1,W4 --repeats 5 --json /tmp/b.json
    python -m bench --workloads LR       # only the logistic regression (bench/logreg.py)
    python -m bench --micro              # also the cost of the pieces of one operation
    python -m bench --replay             # only the replay rows (pyad.compile vs C peers)
    python -m bench --peers micrograd_peer,seed --plot /tmp/bench.png
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench import calls, harness, logreg, peers, replay
from bench.workloads import WORKLOADS

#: the logistic regression (bench/logreg.py), its --workloads key and its key in the JSON
LR, LR_KEY = "LR", "logreg"
#: what --workloads takes: docs/WORKLOADS.md's W1 to W5 (and W3-dot), then LR
CHOICES = (*WORKLOADS, LR)
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
#: seconds of timed repeats allowed per (workload, engine): keeps the full run under 5 minutes
BUDGET = 20.0
QUICK_BUDGET = 2.0
#: seconds per (workload, peer): a probe run sizes each peer's n to about a third of this
PEER_BUDGET = 20.0
QUICK_PEER_BUDGET = 0.6


def _progress(text: str) -> None:
    print(text, end="", file=sys.stderr, flush=True)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def machine() -> dict[str, Any]:
    """Where and when the figures were measured."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def versions(modules: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Versions of python, numpy, cffi and pyad, and of the peers in ``modules`` (None for a
    peer that is not installed)."""
    import pyad

    out: dict[str, str | None] = {"python": sys.version.split()[0], "pyad": pyad.__version__}
    for name in ("numpy", "cffi"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    for module in modules:
        mod, text = peers.load(module)
        out[peers.display_name(module)] = text if mod is not None else None
    return out


def peer_status(modules: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each peer adapter: its name, whether its engine is installed, version or reason."""
    out: dict[str, dict[str, Any]] = {}
    for module in modules:
        mod, text = peers.load(module)
        out[module] = {
            "name": peers.display_name(module),
            "available": mod is not None,
            "version": text if mod is not None else None,
            "reason": None if mod is not None else text,
            "workloads": list(getattr(mod, "WORKLOADS", ())),
        }
    return out


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repeats (< 1 min)")
    parser.add_argument(
        "--workloads",
        default=",".join(CHOICES),
        help=f"comma-separated subset of {','.join(CHOICES)} (default: all)",
    )
    parser.add_argument("--repeats", type=int, help="timed repeats per engine (default 7, 3 quick)")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"JSON output (default {DEFAULT_JSON})"
    )
    parser.add_argument("--micro", action="store_true", help="also run bench/micro.py's report")
    parser.add_argument(
        "--replay",
        action="store_true",
        help="only the replay rows (bench/replay.py: pyad.compile against the C peers, CasADi "
        "and JAX on W1, W2, W3, W5) and the small-function row; by default they run after "
        "the one-shot tables",
    )
    parser.add_argument(
        "--peers",
        default=",".join(peers.PEERS),
        help="comma-separated peer adapters of bench/peers to run, or 'none' "
        f"(default: {','.join(peers.PEERS)})",
    )
    parser.add_argument(
        "--plot", type=Path, metavar="PNG", help="draw ns/op per engine per workload (matplotlib)"
    )
    args = parser.parse_args(argv)
    names = [] if args.peers.strip() == "none" else args.peers.split(",")
    args.peers = tuple(p.strip() for p in names if p.strip())
    keys = [k.strip() for k in args.workloads.split(",") if k.strip()]
    unknown = [k for k in keys if k not in CHOICES]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(CHOICES)}")
    args.workloads = keys
    if args.replay and not set(keys) & set(replay.WORKLOADS_REPLAYED):
        parser.error(f"--replay runs {list(replay.WORKLOADS_REPLAYED)}; --workloads has none")
    # the replay rows have their own default repeats (many short samples); --repeats sets both
    args.replay_repeats = args.repeats
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def _clean(x: Any) -> Any:
    """JSON has no inf/nan: write them as strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _plot(report: dict[str, Any], path: Path) -> None:
    """Draw the chart with bench/plot.py; without matplotlib, say how to get it and go on
    (the tables and the JSON are the results; the chart is a view of them)."""
    try:
        import matplotlib  # noqa: F401

        from bench import plot
    except ImportError as exc:
        _progress(f"--plot: no chart ({exc}); pip install matplotlib (in the dev extra)\n")
        return
    plot.plot(_clean(report), str(path))
    _progress(f"wrote {path}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the tables, write the JSON file."""
    args = _parse(argv)
    start = time.perf_counter()
    info = machine()
    budget = QUICK_BUDGET if args.quick else BUDGET
    peer_budget = QUICK_PEER_BUDGET if args.quick else PEER_BUDGET
    print(
        f"pyad bench{' --quick' if args.quick else ''}  {info['date']}  {info['platform']}  "
        f"{info['cpu']} x{info['cpu_count']}  Python {info['python']}"
    )
    if not args.replay:
        print(harness.LEGEND)
    report: dict[str, Any] = {
        "command": [sys.executable, "-m", "bench", *(sys.argv[1:] if argv is None else argv)],
        "machine": info,
        "versions": versions(args.peers),
        "settings": {
            "quick": args.quick,
            "repeats": args.repeats,
            "budget_seconds_per_engine": budget,
            "budget_seconds_per_peer": peer_budget,
            "gc": "collected before each repeat, enabled while timing",
            "timer": "time.perf_counter",
        },
        "peers": peer_status(args.peers),
        "workloads": {},
    }
    if args.peers and not args.replay:
        print(harness.COMPARISON_LEGEND)
    for key in [] if args.replay else [k for k in args.workloads if k in WORKLOADS]:
        w = WORKLOADS[key]
        size = w.quick_size if args.quick else w.size
        wr = harness.run_workload(w, size, args.repeats, budget, _progress)
        print()
        print(harness.format_table(wr), flush=True)
        report["workloads"][key] = {
            "title": w.title,
            w.size_name: size,
            "leaves": wr.leaves,
            "ops": wr.ops,
            "records": wr.records,
            "notes": wr.notes,
            "engines": wr.figures,
        }
        if key in harness.PEER_KEYS:
            rows = harness.compare(
                wr,
                args.repeats,
                peer_budget,
                _progress,
                args.peers,
                peer_replay=not args.quick,
                quick=args.quick,
            )
            print()
            print(harness.format_comparison(wr, rows), flush=True)
            report["workloads"][key]["comparison"] = rows
    if LR in args.workloads and not args.replay:
        lr = logreg.run(args.quick, _progress, repeats=args.repeats, peers=args.peers)
        print()
        print(logreg.format_table(lr), flush=True)
        report[LR_KEY] = lr
    replay_keys = [k for k in args.workloads if k in replay.WORKLOADS_REPLAYED]
    if replay_keys:
        result = replay.run(
            args.quick, _progress, repeats=args.replay_repeats, workloads=replay_keys
        )
        print()
        print(replay.format_table(result), flush=True)
        report["replay"] = result
        small = calls.run(args.quick, _progress, repeats=args.replay_repeats)
        print()
        print(calls.format_table(small), flush=True)
        report["small_functions"] = small
    if args.micro:
        from bench import micro

        result = micro.run(args.quick, _progress)
        print()
        print(micro.format_report(result))
        report["micro"] = result
    report["elapsed_seconds"] = time.perf_counter() - start
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(_clean(report), indent=2) + "\n")
    _progress(f"wrote {args.json} ({report['elapsed_seconds']:.1f} s)\n")
    if args.plot is not None:
        _plot(report, args.plot)
    failed = [
        k
        for k, wr in report.get("replay", {}).get("workloads", {}).items()
        if not wr["checks"]["ok"]
    ]
    failed += [
        f"small n={n}"
        for n, size in report.get("small_functions", {}).get("sizes", {}).items()
        if not size["ok"]
    ]
    if LR_KEY in report and not report[LR_KEY]["checks"]["ok"]:
        failed.append(LR)
    if failed:  # a wrong gradient makes every figure of it meaningless: fail loudly (CI smoke)
        _progress(f"correctness checks FAILED for {failed}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
