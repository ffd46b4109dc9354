"""``python -m bench.leaks``: creating and dropping a million tapes and a million compiled
Functions holds memory flat.

Each tape cycle opens a :class:`pyad.Tape`, records a few operations, sweeps backward and
drops everything; each Function cycle compiles a tiny function with :func:`pyad.compile`,
calls it once and drops it. The resident set size (from ``/proc/self/statm``: tracemalloc
cannot see the C library's buffers) is sampled every ``n / 100`` cycles. The table on stdout
shows it at every tenth of the run; the verdict compares the end with the sample at 10% (the
warm-up: allocator pools, caches and the registry settle there) and fails, exit status 1, if
the growth passes the threshold in any run.

    python -m bench.leaks                  # 10^6 tapes, 10^6 Functions (about 40 s on a 2-core VM)
    python -m bench.leaks --quick          # 10^5 tapes, 10^4 Functions (seconds)
    python -m bench.leaks --tapes 200000 --functions 0 --threshold-mb 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyad

PAGE = os.sysconf("SC_PAGE_SIZE")
STATM = Path("/proc/self/statm")
MB = 1024 * 1024
#: allowed growth of the resident set after warm-up, in MB
THRESHOLD_MB = 5.0


def rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    return int(STATM.read_text().split()[1]) * PAGE


def tape_cycle() -> None:
    """One tape: two leaves, five records, a backward sweep, then dropped."""
    with pyad.Tape():
        x, y = pyad.Var(1.5), pyad.Var(-0.5)
        z = pyad.sin(x * y) + pyad.exp(y) / x
        z.backward()


def _tiny(v: Sequence[Any]) -> Any:
    return v[0] * v[1] + pyad.tanh(v[0])


def function_cycle() -> None:
    """One compiled Function: a trace (on its own tape), one replay, then dropped."""
    F = pyad.compile(_tiny, [0.5, 2.0])
    F.value_and_grad([1.5, -2.5])


@dataclass
class Run:
    """RSS samples of one run: ``samples[i]`` is (cycles done, bytes)."""

    name: str
    cycles: int
    samples: list[tuple[int, int]] = field(default_factory=list)
    seconds: float = 0.0

    def at(self, fraction: float) -> tuple[int, int]:
        """The first sample at or past ``fraction`` of the run."""
        for done, size in self.samples:
            if done >= fraction * self.cycles:
                return done, size
        return self.samples[-1]

    @property
    def growth(self) -> int:
        """Bytes gained between the end of the warm-up (10%) and the end."""
        return self.samples[-1][1] - self.at(0.1)[1]


def measure(name: str, cycle: Callable[[], None], cycles: int, progress: bool = False) -> Run:
    """Run ``cycle`` ``cycles`` times, sampling RSS 100 times (and before the first)."""
    run = Run(name, cycles)
    every = max(1, cycles // 100)
    run.samples.append((0, rss()))
    start = time.perf_counter()
    done = 0
    while done < cycles:
        for _ in range(min(every, cycles - done)):
            cycle()
        done += min(every, cycles - done)
        run.samples.append((done, rss()))
        if progress and done % (every * 10) == 0:
            print(
                f"  {name}: {done:,}/{cycles:,} cycles, RSS {run.samples[-1][1] / MB:.1f} MB, "
                f"{time.perf_counter() - start:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    run.seconds = time.perf_counter() - start
    return run


def report(runs: Sequence[Run], threshold_mb: float) -> bool:
    """Print the table and the verdict; True if every run stayed under the threshold."""
    print(f"{'fraction':>8}  " + "  ".join(f"{r.name + ' cycles':>18} {'RSS MB':>8}" for r in runs))
    for tenth in range(11):
        cells = []
        for r in runs:
            done, size = r.at(tenth / 10)
            cells.append(f"{done:>18,} {size / MB:>8.1f}")
        print(f"{tenth * 10:>7}%  " + "  ".join(cells))
    ok = True
    for r in runs:
        start, warm, end = r.samples[0][1], r.at(0.1)[1], r.samples[-1][1]
        peak = max(size for _, size in r.samples)
        grew = r.growth / MB
        verdict = "ok" if grew <= threshold_mb else f"LEAK? more than {threshold_mb} MB"
        ok = ok and grew <= threshold_mb
        print(
            f"{r.name}: {r.cycles:,} cycles in {r.seconds:.1f} s "
            f"({r.seconds / r.cycles * 1e6:.1f} us each); RSS {start / MB:.1f} MB at start, "
            f"{warm / MB:.1f} MB after warm-up (10%), {end / MB:.1f} MB at end, "
            f"peak {peak / MB:.1f} MB; growth after warm-up {grew:+.2f} MB: {verdict}"
        )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.leaks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10^5 tapes, 10^4 Functions")
    parser.add_argument("--tapes", type=int, help="tape cycles (default 10^6)")
    parser.add_argument("--functions", type=int, help="Function cycles (default 10^6)")
    parser.add_argument("--threshold-mb", type=float, default=THRESHOLD_MB)
    args = parser.parse_args(argv)
    tapes = args.tapes if args.tapes is not None else 10**5 if args.quick else 10**6
    functions = args.functions if args.functions is not None else 10**4 if args.quick else 10**6
    runs = []
    for name, cycle, n in (("tapes", tape_cycle, tapes), ("functions", function_cycle, functions)):
        if n > 0:
            runs.append(measure(name, cycle, n, progress=True))
    return 0 if report(runs, args.threshold_mb) else 1


if __name__ == "__main__":
    sys.exit(main())
