"""Tapes and compiled Functions give their C memory back: a scaled-down ``python -m bench.leaks``
(flat resident set size), and a count of the C constructors and destructors called.

These are memory assertions, not timing ones: the margins are generous (allocator pools and
the tape registry's pages settle during the warm-up) and a real leak of even a few hundred
bytes per cycle passes them many times over.
"""

from __future__ import annotations

import collections
import gc
import sys
from typing import Any

import pytest

import pyad
import pyad._native
from bench import leaks

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RSS is read from /proc/self/statm"
)

#: more tapes than the C registry has slots (PYAD_REGISTRY_SIZE, 2^16 in csrc/internal.h):
#: a tape that is never freed keeps its slot, so without frees this many could not be made
TAPES = 70_000
FUNCTIONS = 2_000
#: allowed RSS growth after warm-up; a 100-byte leak per tape would be 6 MB here
MARGIN = 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("cycle", "cycles"),
    [(leaks.tape_cycle, TAPES), (leaks.function_cycle, FUNCTIONS)],
    ids=["tapes", "functions"],
)
def test_rss_stays_flat(cycle: Any, cycles: int) -> None:
    run = leaks.measure(cycle.__name__, cycle, cycles)
    assert len(run.samples) == 101
    assert run.growth < MARGIN, (
        f"RSS grew {run.growth / 2**20:.2f} MB after warm-up over {cycles} cycles: "
        f"{[size for _, size in run.samples]}"
    )


class CountingLib:
    """Stands in for the cffi ``lib`` of a frontend module: counts calls of the named
    functions (destructors given to ``ffi.gc`` included) and forwards everything."""

    def __init__(self, lib: Any, names: set[str]) -> None:
        self.lib, self.names = lib, names
        self.calls: collections.Counter[str] = collections.Counter()

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.lib, name)
        if name not in self.names:
            return real

        def counted(*args: Any) -> Any:
            self.calls[name] += 1
            return real(*args)

        return counted


def test_every_tape_and_program_made_is_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    pyad.Tape.current()  # the thread's default tape lives on: make it before counting
    names = {"pyad_tape_new", "pyad_tape_free", "pyad_program_new", "pyad_program_free"}
    counting = CountingLib(pyad._native.lib, names)
    monkeypatch.setattr(pyad._native, "lib", counting)
    for _ in range(300):
        leaks.tape_cycle()
        leaks.function_cycle()
    # one that retraces: a Function holding two programs
    F = pyad.compile(lambda v: v[0] if v[0] > 0 else -v[0], [1.0])
    assert F([-2.0]) == 2.0 and F.retraces == 1
    del F
    gc.collect()
    calls = counting.calls
    assert calls["pyad_tape_new"] >= 600 and calls["pyad_program_new"] == 302, calls
    assert calls["pyad_tape_free"] == calls["pyad_tape_new"], calls
    assert calls["pyad_program_free"] == calls["pyad_program_new"], calls
