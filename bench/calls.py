"""The small-function row of ``python -m bench``: what one call of a compiled function costs.

An optimiser or a sampler calls ``F.value_and_grad`` millions of times on a function of a
few to a few hundred ops, so the cost around the replay matters as much as the replay. For
W2's Rosenbrock function at n = 4 and n = 100 inputs (24 and 792 instructions), per call,
in one loop of repeats that goes round-robin over everything timed:

* ``F.value_and_grad(x)`` with x a float64 array, as scipy passes it;
* pyad's C call alone: the replay's one cffi call with every buffer made beforehand, the
  floor of what the Python around it can reach;
* ``jax.jit(jax.value_and_grad(...))`` and CasADi's ``Function`` (bench/peers), when
  installed.

Every engine's value and gradient must agree with a fresh pyad recording (to rounding).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

import pyad
from bench import cpeers, peers
from bench.replay import Timed, align, interleaved, loss_function, note, scaled_diff

#: inputs of the Rosenbrock functions timed
SIZES = (4, 100)
#: round-robin rounds, and the least time one sample lasts
REPEATS, QUICK_REPEATS = 21, 7
MIN_SECONDS, QUICK_MIN_SECONDS = 0.02, 0.005
PEERS = (("jax", "jax_peer", "JAX jit"), ("casadi", "casadi_peer", "CasADi"))

Progress = Callable[[str], None]


def _c_call(f: pyad.Function, x: np.ndarray) -> Callable[[], object]:
    """The replay's C call for one point with everything it needs made once: what a call
    of ``F.value_and_grad`` costs without the Python around it."""
    from pyad import _program
    from pyad._native import ffi

    program = f._programs[0]
    c_values, c_grads, c_guards, c_work, nwork = program._kit()[3:]
    c_x = ffi.from_buffer("double[]", x)
    run, p, seed = program._run_point, program.p, _program._ONE_SEED_C
    return lambda: run(p, 1, c_x, 1, seed, c_values, c_grads, c_guards, c_work, nwork)


def run(
    quick: bool, progress: Progress, repeats: int | None = None, min_seconds: float | None = None
) -> dict[str, Any]:
    """Per-call figures of every engine at every size, and their checks."""
    repeats = repeats or (QUICK_REPEATS if quick else REPEATS)
    if min_seconds is None:
        min_seconds = QUICK_MIN_SECONDS if quick else MIN_SECONDS
    out: dict[str, Any] = {"repeats": repeats, "sizes": {}, "peers": {}}
    for n in SIZES:
        fn = loss_function("W2", n)
        x = cpeers.workload_inputs("W2", n)
        f = pyad.compile(fn, x[::-1].copy())
        want_value, want_grad = pyad.value_and_grad(fn)(x)
        timed = [
            Timed("pyad", lambda f=f, x=x: f.value_and_grad(x), 1),
            Timed("pyad_c_call", _c_call(f, x), 1),
        ]
        checks: dict[str, float] = {}
        for key, adapter, _ in PEERS:
            module, why = peers.load(adapter)
            if module is None:
                out["peers"][key] = why
                continue
            replay = module.compile("W2", n)
            value, grad = replay(x)
            checks[key] = max(
                scaled_diff(np.asarray(grad), want_grad), abs(value - want_value) / abs(want_value)
            )
            timed.append(Timed(key, lambda replay=replay, x=x: replay(x), 1))
        value, grad = f.value_and_grad(x)
        exact = value == want_value and np.array_equal(grad, want_grad)
        for t in timed:
            t.calibrate(min_seconds)
        interleaved(timed, repeats)
        engines = {t.name: t.figures() for t in timed}
        out["sizes"][n] = {
            "instructions": f.info["instructions"],
            "engines": engines,
            "checks": {"pyad_vs_fresh_exact": bool(exact), "peers_scaled_diff": checks},
            "ok": bool(exact),
        }
        progress(
            f"small function n={n} ... pyad {engines['pyad']['median_us_per_call']:.2f} us/call\n"
        )
    return out


def _us(engines: dict[str, Any], key: str) -> str:
    fig = engines.get(key)
    if fig is None:
        return "n/a"
    return f"{fig['median_us_per_call']:.2f} ({fig['min_us_per_call']:.2f})"


def _over(engines: dict[str, Any], a: str, b: str) -> str:
    if a not in engines or b not in engines:
        return "-"
    return f"{engines[a]['median_us_per_call'] / engines[b]['median_us_per_call']:.2f}"


def _max_diff(diffs: dict[str, float]) -> str:
    return f"{max(diffs.values()):.1e}" if diffs else "-"


def format_table(result: dict[str, Any]) -> str:
    """Per-call times and ratios of the same run, as one plain-text table."""
    rows = [
        [
            "Rosenbrock",
            "instr",
            "pyad v&g us",
            "C call us",
            "JAX jit us",
            "CasADi us",
            "pyad/C call",
            "JAX/pyad",
            "CasADi/pyad",
            "peers' diff",
            "ok",
        ]
    ]
    for n, size in result["sizes"].items():
        e = size["engines"]
        rows.append(
            [
                f"n={n}",
                str(size["instructions"]),
                _us(e, "pyad"),
                _us(e, "pyad_c_call"),
                _us(e, "jax"),
                _us(e, "casadi"),
                _over(e, "pyad", "pyad_c_call"),
                _over(e, "jax", "pyad"),
                _over(e, "casadi", "pyad"),
                _max_diff(size["checks"]["peers_scaled_diff"]),
                "yes" if size["ok"] else "NO",
            ]
        )
    lines = [
        "small functions: one call of value and gradient, us, median (min) of "
        f"{result['repeats']} repeats, interleaved",
        *align(rows),
    ]
    lines += [f"  {key}: {why}" for key, why in result["peers"].items()]
    lines += note(
        "pyad v&g: F.value_and_grad(x), x a float64 array; C call: the replay's one cffi call "
        "with its buffers made beforehand; peers' diff: the peers' largest difference from a "
        "fresh pyad recording (bench/replay.py's scaled_diff); ok: pyad's replay equals that "
        "recording bit for bit."
    )
    return "\n".join(lines)
