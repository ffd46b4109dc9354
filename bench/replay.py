"""The replay rows of ``python -m bench``: what ``pyad.compile`` buys once a graph is recorded.

For W1, W2 (n parameters), W3 (points) and W5 (n ops) each workload is compiled once with
``pyad.compile`` (the function of the input vector; W3's inputs are the network's
parameters, W5's its 100 initial nodes, its output the last node), traced at the input
vector reversed and replayed at the vector itself, so that no figure can come from an answer
cached at trace time. Then, in one loop of
repeats that goes round-robin over everything timed (so that a burst of noise on this 2-core
machine hits all alike), per call:

* ``F.value_and_grad(x)``: pyad's replay, forward and reverse in C;
* the Rogozhnikov C tape's replay and the hand-written C value and gradient (bench/cpeers.py):
  the design pyad is compared with, and the floor;
* ``F.value_and_grad(X)`` with X of shape (64, n) (W1, W2): the batched replay, per point;
* ``F.hvp(x, v)``: a Hessian-vector product, relative to one value-and-gradient;
* CasADi's ``Function`` (its SX virtual machine) and ``jax.jit(jax.value_and_grad(...))``,
  when installed (bench/peers): the other engines that replay a recorded graph without
  Python, JAX's on whole arrays. JAX runs W5 at a reduced size (bench/peers/jax_peer.py),
  its figure divided by pyad's record count at that size.

Times are per op, op = one pyad record (:func:`bench.cpeers.ops_count`), the same denominator
for every engine; min and median over the repeats, and ratios of one run (what carries over:
absolute times here drift by tens of percent between runs). Tracing is timed apart, once.

Correctness, every run: the replay's value and gradient must equal a fresh recording's
(``pyad.value_and_grad``) exactly; the Rogozhnikov peer's to rounding (its softmax adjoint
sums in another order); each batched row must equal the single-point replay at that row; and
the Hessian-vector product must match central differences of the replayed gradient. W5's input
gradient is exactly 0 at 10 000 ops (the softmax saturates), so there the checks also run at
1 000 ops, where it is not.
"""

from __future__ import annotations

import gc
import math
import statistics
import textwrap
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

import pyad
from bench import cpeers, peers
from bench.harness import TINY, max_rel_diff
from bench.workloads import W5_OPS, WORKLOADS

FloatArray = npt.NDArray[np.float64]
Progress = Callable[[str], None]

#: (workload, full size, --quick size); W1/W2 sizes are n parameters, W5's are ops.
CASES: tuple[tuple[str, int, int], ...] = (
    ("W1", 20_000, 2_000),
    ("W2", 20_000, 2_000),
    ("W3", 100, 20),
    ("W5", W5_OPS, 1_000),
)
#: the workloads with replay rows
WORKLOADS_REPLAYED = tuple(case[0] for case in CASES)
#: points per batched call, and the workloads timed batched
BATCH = 64
BATCHED = ("W1", "W2", "W3")
#: W5 size at which the checks run again when the input gradient is all zeros
W5_CHECK_OPS = 1_000
#: repeats (round-robin rounds) and the least time one sample lasts, full and --quick
REPEATS, QUICK_REPEATS = 21, 7
MIN_SECONDS, QUICK_MIN_SECONDS = 0.01, 0.002
#: correctness bounds: the peer sums softmax adjoints in another order; hvp vs central
#: differences of the gradient, relative to the largest |Hv| entry
PEER_RTOL = 1e-9
HVP_RTOL = 1e-4
NS = 1e9

#: the peers whose own compiled replay joins the tables when installed: key, adapter, column
PEER_REPLAYS = (("casadi", "casadi_peer", "CasADi"), ("jax", "jax_peer", "JAX jit"))
ENGINES = ("pyad", "rogozhnikov", "handwritten", "casadi", "jax", "pyad_batched", "pyad_hvp")


@dataclass
class Timed:
    """One thing timed: ``fn()`` called ``calls`` times per sample; seconds per call per
    sample. ``per`` divides a call's time into per-op figures (ops, or ops x points)."""

    name: str
    fn: Callable[[], object]
    per: int
    calls: int = 1
    samples: list[float] = field(default_factory=list)
    #: one untimed call before each sample: times the steady state of repeated calls, as an
    #: optimiser's loop meets it, not the first call after other engines filled the caches
    warm: bool = False
    #: and untimed calls until this many seconds have passed since the first: after a pause
    #: the processor takes a few tens of milliseconds to reach its speed again (LR, each
    #: call's time after a pause of 0.15 s: 7.0, 5.4, 4.4, 3.9 ... 3.5 ms)
    warm_seconds: float = 0.0
    #: seconds to wait before each sample, so that it does not share the cores with threads
    #: the previous entry left spinning (numpy's OpenBLAS keeps its own busy for about 0.1 s
    #: after each large product); 0: none
    settle: float = 0.0

    def calibrate(self, min_seconds: float) -> None:
        """One untimed warm-up call (caches, work buffers), then the fastest of three timed
        ones sizes a sample to ``min_seconds``: a sub-millisecond call is otherwise lost in
        timer resolution, and one slow call would make a sample of too few."""
        self.fn()
        once = math.inf
        for _ in range(3):
            start = time.perf_counter()
            self.fn()
            once = min(once, time.perf_counter() - start)
        self.calls = max(1, math.ceil(min_seconds / once)) if once > 0 else 1000

    def sample(self) -> None:
        fn = self.fn
        if self.settle > 0:
            time.sleep(self.settle)
        if self.warm:
            start = time.perf_counter()
            fn()
            while time.perf_counter() - start < self.warm_seconds:
                fn()
        start = time.perf_counter()
        for _ in range(self.calls):
            fn()
        self.samples.append((time.perf_counter() - start) / self.calls)

    def figures(self) -> dict[str, Any]:
        med, low = statistics.median(self.samples), min(self.samples)
        return {
            "median_us_per_call": med * 1e6,
            "min_us_per_call": low * 1e6,
            "median_ns_per_op": med * NS / self.per,
            "min_ns_per_op": low * NS / self.per,
            "repeats": len(self.samples),
            "calls_per_repeat": self.calls,
        }


def interleaved(timed: list[Timed], repeats: int) -> None:
    """``repeats`` rounds, each one sample of every entry in turn; the collector runs between
    rounds only (every call allocates its result arrays)."""
    enabled = gc.isenabled()
    try:
        for _ in range(repeats):
            gc.collect()
            gc.disable()
            for t in timed:
                t.sample()
            if enabled:
                gc.enable()
    finally:
        if enabled:
            gc.enable()


def loss_function(workload: str, size: int) -> Callable[[list[Any]], Any]:
    """The workload's loss as a function of the input Vars, for pyad.compile and
    pyad.value_and_grad."""
    w = WORKLOADS[workload]

    def fn(xs: list[Any]) -> Any:
        return w.loss(pyad, xs, size)

    fn.__name__ = f"{workload.lower()}_{size}"
    return fn


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _max_abs(a: FloatArray, b: FloatArray) -> float:
    return float(np.max(np.abs(a - b), initial=0.0))


def _rel(a: float, b: float) -> float:
    return 0.0 if a == b else abs(a - b) / max(abs(b), TINY)


def _checks(
    workload: str, size: int, f: pyad.Function, x: FloatArray, peers_ok: bool
) -> dict[str, Any]:
    """The replay at ``x`` against a fresh recording (must be exact) and against the
    Rogozhnikov peer (to rounding), and its Hessian-vector product against central
    differences of the replayed gradient."""
    out_value, grad = f.value_and_grad(x)
    value = float(out_value)  # one point: a float
    fresh_value, fresh_grad = pyad.value_and_grad(loss_function(workload, size))(x)
    out: dict[str, Any] = {
        "size": size,
        "grad_nonzero": int(np.count_nonzero(grad)),
        "vs_fresh_value_abs_diff": abs(value - fresh_value),
        "vs_fresh_grad_max_abs_diff": _max_abs(grad, fresh_grad),
        "vs_fresh_exact": bool(value == fresh_value and np.array_equal(grad, fresh_grad)),
    }
    if peers_ok:
        rz_value, rz_grad = cpeers.rogozhnikov_graph(workload, size).replay(x)
        worst, differ = max_rel_diff(grad.tolist(), rz_grad.tolist())
        out["vs_rogozhnikov_value_rel_diff"] = _rel(value, rz_value)
        out["vs_rogozhnikov_grad_max_rel_diff"] = worst
        out["vs_rogozhnikov_grads_bitwise_different"] = differ
    v = np.cos(np.arange(x.shape[0], dtype=np.float64))
    hv = f.hvp(x, v)
    h = 1e-5
    fd = (f.grad(x + h * v) - f.grad(x - h * v)) / (2 * h)
    out["hvp_vs_central_difference"] = _max_abs(hv, fd) / max(float(np.max(np.abs(hv))), TINY)
    peer_ok = not peers_ok or (
        out["vs_rogozhnikov_value_rel_diff"] <= PEER_RTOL
        and out["vs_rogozhnikov_grad_max_rel_diff"] <= PEER_RTOL
    )
    hvp_ok = out["hvp_vs_central_difference"] <= HVP_RTOL or not np.any(hv)
    out["ok"] = bool(out["vs_fresh_exact"] and peer_ok and hvp_ok)
    return out


def scaled_diff(actual: FloatArray, expected: FloatArray) -> float:
    """The largest |a - e| over max(|e|, 1e-4 max|e|, tiny): relative where an entry is not
    tiny beside the gradient's largest, on that largest's scale where it is. A reverse sweep
    is accurate to rounding of the gradient as a whole, not entry by entry (a saturated
    softmax's adjoints: tests/test_bench_peers_jax_casadi.py)."""
    e = np.abs(expected)
    scale = np.maximum(e, max(1e-4 * float(np.max(e, initial=0.0)), TINY))
    return float(np.max(np.abs(actual - expected) / scale, initial=0.0))


def _records(workload: str, size: int, fn: Callable[[list[Any]], Any], x: FloatArray) -> int:
    """pyad's records for the workload, leaves excluded: the unit of every ns/op figure
    (bench.cpeers.ops_count's formula where it has one, else counted on a recording)."""
    if workload in cpeers.PEER_WORKLOADS:
        return cpeers.ops_count(workload, size)
    with pyad.Tape() as tape:
        fn([pyad.Var(v) for v in x.tolist()])
        return len(tape) - x.shape[0]


def _peer_replay(
    key: str, adapter: str, workload: str, size: int, progress: Progress
) -> tuple[Timed | None, dict[str, Any]]:
    """An installed peer's compiled replay of the workload: its timed call, and what the
    tables say of it (the size it ran at, its compile time, its agreement with a fresh pyad
    recording at that size), or why there is none."""
    module, why = peers.load(adapter)
    if module is None:
        return None, {"error": why}
    if workload not in module.WORKLOADS:
        return None, {"error": f"no {workload} in bench/peers/{adapter}.py"}
    peer_size = module.max_size(workload, size) if hasattr(module, "max_size") else size
    try:
        start = time.perf_counter()
        replay = module.compile(workload, peer_size)
        compile_s = time.perf_counter() - start
        x = module.inputs(workload, peer_size)
        value, grad = replay(x)
    except Exception as exc:  # a broken peer is a table row, not a crash
        return None, {"error": f"failed ({type(exc).__name__}: {exc})"}
    peer_fn = loss_function(workload, peer_size)
    want_value, want_grad = pyad.value_and_grad(peer_fn)(x)
    info: dict[str, Any] = {
        "size": peer_size,
        "compile_ms": compile_s * 1e3,
        "value_rel_diff": _rel(float(value), float(want_value)),
        "grad_max_scaled_diff": scaled_diff(np.asarray(grad), np.asarray(want_grad)),
    }
    progress(f"replay {workload} {key} compile ... {info['compile_ms']:.1f} ms\n")
    timed = Timed(key, lambda: replay(x), _records(workload, peer_size, peer_fn, x))
    return timed, info


def run_case(
    workload: str,
    size: int,
    repeats: int,
    min_seconds: float,
    progress: Progress,
    batch: int = BATCH,
) -> dict[str, Any]:
    """Compile one workload, time every engine interleaved, check correctness; every figure
    in one dict (the JSON's ``replay.workloads[workload]``)."""
    w = WORKLOADS[workload]
    x = cpeers.workload_inputs(workload, size)
    fn = loss_function(workload, size)
    ops = _records(workload, size, fn, x)
    gc.collect()
    start = time.perf_counter()
    f = pyad.compile(fn, x[::-1].copy())
    compile_s = time.perf_counter() - start
    progress(f"replay {workload} compile ... {compile_s * 1e3:.1f} ms\n")
    fresh = pyad.value_and_grad(fn)
    start = time.perf_counter()
    fresh(x)
    fresh_s = time.perf_counter() - start

    module, why = cpeers.load()
    if module is not None and workload not in cpeers.PEER_WORKLOADS:
        module, why = None, f"no {workload} in bench/csrc"
    peers_ok = module is not None
    n = x.shape[0]
    timed = [Timed("pyad", lambda: f.value_and_grad(x), ops)]
    if peers_ok:
        graph = cpeers.rogozhnikov_graph(workload, size)
        hand = cpeers.handwritten(workload, size if workload == "W5" else None)
        timed.append(Timed("rogozhnikov", lambda: graph.replay(x), ops))
        timed.append(Timed("handwritten", lambda: hand(x), ops))
    peer_info: dict[str, dict[str, Any]] = {}
    for key, adapter, _ in PEER_REPLAYS:
        peer_timed, peer_info[key] = _peer_replay(key, adapter, workload, size, progress)
        if peer_timed is not None:
            timed.append(peer_timed)
    xs: FloatArray | None = None
    if workload in BATCHED and batch > 0:
        xs = np.stack([np.roll(x, j) for j in range(batch)])
        points = xs
        timed.append(Timed("pyad_batched", lambda: f.value_and_grad(points), ops * batch))
    v = np.cos(np.arange(n, dtype=np.float64))
    timed.append(Timed("pyad_hvp", lambda: f.hvp(x, v), ops))

    for t in timed:
        t.calibrate(min_seconds)
    interleaved(timed, repeats)
    engines: dict[str, dict[str, Any]] = {t.name: t.figures() for t in timed}
    if not peers_ok:
        for name in ("rogozhnikov", "handwritten"):
            engines[name] = {"error": f"not available ({why})"}
    for key, info in peer_info.items():
        engines[key] = {**engines.get(key, {}), **info}
    if "pyad_batched" in engines:
        engines["pyad_batched"]["points"] = batch
    for t in timed:
        fig = engines[t.name]
        progress(
            f"replay {workload} {t.name} ... done {fig['median_ns_per_op']:.2f} ns/op "
            f"({fig['median_us_per_call']:.1f} us/call)\n"
        )

    def med(name: str) -> float | None:
        return engines.get(name, {}).get("median_ns_per_op")

    def low(name: str) -> float | None:
        return engines.get(name, {}).get("min_ns_per_op")

    pyad_s = engines["pyad"]["median_us_per_call"] / 1e6
    ratios = {
        "pyad_over_rogozhnikov": _ratio(med("pyad"), med("rogozhnikov")),
        "pyad_over_rogozhnikov_min": _ratio(low("pyad"), low("rogozhnikov")),
        "pyad_over_handwritten": _ratio(med("pyad"), med("handwritten")),
        "pyad_over_handwritten_min": _ratio(low("pyad"), low("handwritten")),
        "pyad_over_casadi": _ratio(med("pyad"), med("casadi")),
        "pyad_over_casadi_min": _ratio(low("pyad"), low("casadi")),
        "pyad_over_jax": _ratio(med("pyad"), med("jax")),
        "pyad_over_jax_min": _ratio(low("pyad"), low("jax")),
        "batched_over_single": _ratio(med("pyad_batched"), med("pyad")),
        "batched_over_single_min": _ratio(low("pyad_batched"), low("pyad")),
        "batched_over_jax": _ratio(med("pyad_batched"), med("jax")),
        "batched_over_jax_min": _ratio(low("pyad_batched"), low("jax")),
        "hvp_over_value_and_grad": _ratio(med("pyad_hvp"), med("pyad")),
        "hvp_over_value_and_grad_min": _ratio(low("pyad_hvp"), low("pyad")),
        "fresh_over_replay": _ratio(fresh_s, pyad_s),
    }

    checks = _checks(workload, size, f, x, peers_ok)
    for key, info in peer_info.items():  # reported, not part of "ok": pyad's own checks
        if "error" not in info:
            checks[f"vs_{key}_grad_max_scaled_diff"] = info["grad_max_scaled_diff"]
    if xs is not None:
        bv, bg = f.value_and_grad(xs)
        values = np.asarray(bv)  # k points: an array of k values
        diff = 0.0
        for j in range(batch):
            row_value, row_grad = f.value_and_grad(xs[j])
            diff = max(diff, abs(float(values[j]) - float(row_value)), _max_abs(bg[j], row_grad))
        checks["batched_vs_single_max_abs_diff"] = diff
        checks["ok"] = checks["ok"] and diff == 0.0
    if workload == "W5" and not checks["grad_nonzero"] and size != W5_CHECK_OPS:
        small = pyad.compile(loss_function(workload, W5_CHECK_OPS), x[::-1].copy())
        extra = _checks(workload, W5_CHECK_OPS, small, x, peers_ok)
        checks["at_check_size"] = extra
        checks["ok"] = checks["ok"] and extra["ok"]
    progress(f"replay {workload} checks ... {'ok' if checks['ok'] else 'FAILED'}\n")
    return {
        "title": w.title,
        "size_name": w.size_name,
        "size": size,
        "inputs": n,
        "ops": ops,
        "compile_ms": compile_s * 1e3,
        "fresh_value_and_grad_ms": fresh_s * 1e3,
        "program": f.info,
        "retraces": f.retraces,
        "engines": engines,
        "ratios": ratios,
        "checks": checks,
    }


def run(
    quick: bool,
    progress: Progress,
    repeats: int | None = None,
    sizes: dict[str, int] | None = None,
    min_seconds: float | None = None,
    batch: int = BATCH,
    workloads: Collection[str] | None = None,
) -> dict[str, Any]:
    """Every replay case, or those in ``workloads``; ``sizes`` overrides the sizes per
    workload (and then only those run)."""
    repeats = repeats or (QUICK_REPEATS if quick else REPEATS)
    if min_seconds is None:
        min_seconds = QUICK_MIN_SECONDS if quick else MIN_SECONDS
    module, why = cpeers.load()
    result: dict[str, Any] = {
        "settings": {
            "repeats": repeats,
            "min_seconds_per_sample": min_seconds,
            "batch_points": batch,
            "timer": "time.perf_counter; gc off inside a round; rounds round-robin over engines",
            "op": "one pyad record (bench.cpeers.ops_count), for every engine",
            "traced_at": "the input vector reversed; replayed at the vector itself",
        },
        "peers": {"available": module is not None, "reason": why or None},
        "workloads": {},
    }
    for workload, full, small in CASES:
        if (sizes is not None and workload not in sizes) or (
            workloads is not None and workload not in workloads
        ):
            continue
        size = sizes[workload] if sizes is not None else (small if quick else full)
        result["workloads"][workload] = run_case(
            workload, size, repeats, min_seconds, progress, batch
        )
    return result


# -- the text table -------------------------------------------------------------------------------


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def _diff(value: float | None) -> str:
    """A difference: "0" when exactly none, as the one-shot tables write it."""
    return "0" if value == 0.0 else _num(value, "{:.1e}")


def _pair(fig: dict[str, Any], key: str, fmt: str = "{:.2f}") -> str:
    """``median (min)`` of a per-op figure, or "n/a" for an unavailable engine."""
    if "error" in fig:
        return "n/a"
    if not fig:
        return "-"
    return f"{fmt.format(fig['median_' + key])} ({fmt.format(fig['min_' + key])})"


def _ratio_pair(ratios: dict[str, float | None], key: str) -> str:
    if ratios.get(key) is None:
        return "-"
    return f"{ratios[key]:.2f} ({ratios[key + '_min']:.2f})"


def align(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(widths[j + 1]) for j, c in enumerate(row[1:])]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * wd for wd in widths))
    return lines


def note(text: str) -> list[str]:
    return textwrap.wrap(
        text, 98, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False
    )


def format_table(result: dict[str, Any]) -> str:
    """The replay figures as three plain-text tables: times, ratios, checks."""
    s = result["settings"]
    batch = s["batch_points"]
    peer_columns = [column for _, _, column in PEER_REPLAYS]
    head = ["workload", "ops", "trace ms", "pyad", "Rogozhnikov", "hand-written", *peer_columns]
    times = [[*head, f"pyad x{batch}/pt", "pyad hvp"]]
    ratios = [
        [
            "workload",
            "pyad/Rz",
            "pyad/hand",
            "pyad/CasADi",
            "pyad/JAX",
            f"x{batch}/single",
            f"x{batch}/pt / JAX",
            "hvp/vg",
            "fresh/replay",
        ]
    ]
    checks = [
        [
            "workload",
            "= fresh",
            "max abs diff",
            "vs Rz: grad rel",
            "value rel",
            "batch vs single",
            "hvp vs c.d.",
            "vs CasADi",
            "vs JAX",
            "ok",
        ]
    ]
    missing: dict[str, str] = {}
    for key, wr in result["workloads"].items():
        e, r, c = wr["engines"], wr["ratios"], wr["checks"]
        label = f"{key} {wr['size_name']}={wr['size']}"
        times.append(
            [
                label,
                str(wr["ops"]),
                f"{wr['compile_ms']:.1f}",
                *(_pair(e.get(name, {}), "ns_per_op") + _reduced(e, name, wr) for name in ENGINES),
            ]
        )
        for peer_key, _, column in PEER_REPLAYS:
            if "error" in e.get(peer_key, {}):
                missing.setdefault(column, e[peer_key]["error"])
        if result["peers"]["available"] and "error" in e.get("rogozhnikov", {}):
            missing[f"Rogozhnikov, hand-written on {key}"] = e["rogozhnikov"]["error"]
        ratios.append(
            [
                label,
                _ratio_pair(r, "pyad_over_rogozhnikov"),
                _ratio_pair(r, "pyad_over_handwritten"),
                _ratio_pair(r, "pyad_over_casadi"),
                _ratio_pair(r, "pyad_over_jax"),
                _ratio_pair(r, "batched_over_single"),
                _ratio_pair(r, "batched_over_jax"),
                _ratio_pair(r, "hvp_over_value_and_grad"),
                _num(r.get("fresh_over_replay"), "{:.0f}"),
            ]
        )
        for label_c, cc in ((label, c), *_extra(key, wr["size_name"], c)):
            fresh_diff = max(cc["vs_fresh_value_abs_diff"], cc["vs_fresh_grad_max_abs_diff"])
            checks.append(
                [
                    label_c,
                    "yes" if cc["vs_fresh_exact"] else "NO",
                    _diff(fresh_diff),
                    _diff(cc.get("vs_rogozhnikov_grad_max_rel_diff")),
                    _diff(cc.get("vs_rogozhnikov_value_rel_diff")),
                    _diff(cc.get("batched_vs_single_max_abs_diff")),
                    _diff(cc["hvp_vs_central_difference"]),
                    _diff(cc.get("vs_casadi_grad_max_scaled_diff")),
                    _diff(cc.get("vs_jax_grad_max_scaled_diff")),
                    "yes" if cc["ok"] else "NO",
                ]
            )
    peers = result["peers"]
    lines = [
        "replay (pyad.compile): forward + gradient again per call, ns per op (op = a pyad record);",
        f"median (min) of {s['repeats']} repeats, interleaved round-robin over the engines",
        *align(times),
    ]
    if not peers["available"]:
        lines.append(f"  Rogozhnikov, hand-written: not available ({peers['reason']})")
    lines += [f"  {column}: {why}" for column, why in missing.items()]
    if any(_reduced(wr["engines"], k, wr) for wr in result["workloads"].values() for k in ENGINES):
        lines += note("* run at a reduced size (see the JSON), per op of pyad's records there.")
    lines += note(
        f"pyad x{batch}/pt: F.value_and_grad on ({batch}, n) points, per op per point; "
        "pyad hvp: F.hvp(x, v); trace ms: pyad.compile, once."
    )
    lines += ["", "ratios of the same run, medians (mins)", *align(ratios)]
    lines += note(
        "pyad/Rz, pyad/hand, pyad/CasADi, pyad/JAX: pyad replay's time over the peer's (< 1: "
        f"pyad faster); x{batch}/single: batched per point over one-point replay; "
        f"x{batch}/pt / JAX: batched per point over JAX's whole-array replay; hvp/vg: F.hvp over "
        "F.value_and_grad; fresh/replay: pyad.value_and_grad (records afresh; one call) "
        "over replay."
    )
    lines += ["", "correctness of this run", *align(checks)]
    lines += note(
        "= fresh: replay equals pyad.value_and_grad bit for bit (max abs diff of value and "
        f"gradient); vs Rz: the Rogozhnikov tape, relative (bound {PEER_RTOL:g}); batch vs "
        "single: each batched row against one-point replay; hvp vs c.d.: central differences "
        f"of the replayed gradient, relative to max |Hv| (bound {HVP_RTOL:g}); vs CasADi, "
        "vs JAX: their gradient against a fresh pyad recording at the size they ran, relative "
        "per entry, on the largest entry's scale for entries under 1e-4 of it (shown, not part "
        "of ok: the peers sum in other orders)."
    )
    return "\n".join(lines)


def _reduced(engines: dict[str, Any], name: str, wr: dict[str, Any]) -> str:
    """ "*" after a peer's figure when it ran at another size than the workload's."""
    size = engines.get(name, {}).get("size")
    return "*" if size is not None and size != wr["size"] else ""


def _extra(key: str, size_name: str, checks: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """W5's second check row, at the size where its input gradient is not all zeros."""
    extra = checks.get("at_check_size")
    if not extra:
        return []
    return [(f"{key} {size_name}={extra['size']}", extra)]
