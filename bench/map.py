"""``python -m bench.map``: when does ``Function.map`` across processes beat one process?

A workload (W5 by default: 100 inputs, 10,000 ops; W1/W2 take n parameters) is compiled
once. For each batch size k, one loop of repeats goes round-robin over (a)
``F.value_and_grad(X)`` in this process, (b) ``F.map(X, pool)`` on a process pool started
before timing (and warmed, so workers have the Function loaded), and, for the sizes given by
``--cold``, (c) ``F.map(X, pool)`` on a pool started for that call alone. Speedups are ratios of
medians within one run, the figures that carry over on a shared, noisy machine; the
crossover is the smallest k from which on (b) beats (a).
Every k's results are checked equal bit for bit first.

    python -m bench.map                        # W5, 10,000 ops, k up to 4096
    python -m bench.map --quick                # fewer sizes and repeats (< 1 min)
    python -m bench.map --workload W1 --size 2000 --ks 1,4,16,64
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

import pyad
from bench.cpeers import workload_inputs
from bench.replay import loss_function


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _time(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b))
    return bool(np.array_equal(a, b))


def _cold_map(f: pyad.Function, xs: np.ndarray, workers: int) -> Any:
    """F.map on a pool started for this call alone (by forkserver, as the default pool)."""
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return f.map(xs, pool)


def measure(
    workload: str, size: int, ks: list[int], cold: list[int], repeats: int, workers: int
) -> list[dict[str, Any]]:
    """One row per k: medians and minimums of each way, in seconds, and the speedups."""
    x0 = workload_inputs(workload, size)
    f = pyad.compile(loss_function(workload, size), x0[::-1].copy())
    rng = np.random.default_rng(0)
    rows = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        f.map(x0[None, :], pool, chunks=workers)  # workers start and load the Function
        for k in ks:
            xs = x0 * rng.uniform(0.9, 1.1, size=(k, x0.size))
            if not _same(f.map(xs, pool), f.value_and_grad(xs)):
                raise AssertionError(f"F.map differs from F.value_and_grad at k = {k}")
            ways: dict[str, Callable[[], Any]] = {
                "one": lambda xs=xs: f.value_and_grad(xs),
                "pool": lambda xs=xs: f.map(xs, pool),
            }
            if k in cold:
                ways["cold"] = lambda xs=xs: _cold_map(f, xs, workers)
            times: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(repeats):
                for name, call in ways.items():
                    times[name].append(_time(call))
            row: dict[str, Any] = {"k": k}
            for name, ts in times.items():
                row[name] = (statistics.median(ts), min(ts))
            row["speedup"] = row["one"][0] / row["pool"][0]
            if "cold" in row:
                row["cold_speedup"] = row["one"][0] / row["cold"][0]
            rows.append(row)
            print(f"k = {k}: {row['speedup']:.2f}x", file=sys.stderr, flush=True)
    return rows


def report(rows: list[dict[str, Any]], workload: str, size: int, workers: int) -> str:
    lines = [
        f"F.map on {workers} processes vs one process, {workload} n = {size}, "
        "value_and_grad; ms per call, median (min); speedup = one / map (medians)",
        f"{'k':>6} {'one process':>18} {'map, warm pool':>18} {'speedup':>8} "
        f"{'map, new pool':>20} {'speedup':>8}",
    ]
    for r in rows:

        def ms(pair: tuple[float, float]) -> str:
            return f"{pair[0] * 1e3:.2f} ({pair[1] * 1e3:.2f})"

        cold = f"{ms(r['cold']):>20} {r['cold_speedup']:>7.2f}x" if "cold" in r else ""
        lines.append(
            f"{r['k']:>6} {ms(r['one']):>18} {ms(r['pool']):>18} {r['speedup']:>7.2f}x {cold}"
        )
    crossover = None  # the smallest k from which on every larger k runs faster on the pool
    for r in reversed(rows):
        if r["speedup"] <= 1.0:
            break
        crossover = r["k"]
    lines.append(
        f"crossover (map faster from this k on): {crossover}"
        if crossover is not None
        else "crossover: none of the sizes run"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.map", description=__doc__.split("\n")[0])
    parser.add_argument("--workload", default="W5", choices=["W1", "W2", "W5"])
    parser.add_argument("--size", type=int, default=10_000, help="n parameters (W5: ops)")
    parser.add_argument("--ks", type=_ints, default=[1, 4, 16, 64, 256, 1024, 4096])
    parser.add_argument("--cold", type=_ints, default=[64, 1024], help="k also timed cold")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="k = 4, 64, 1024; 3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.ks, args.cold, args.repeats = [4, 64, 1024], [1024], 3
    rows = measure(args.workload, args.size, args.ks, args.cold, args.repeats, args.workers)
    print(report(rows, args.workload, args.size, args.workers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
