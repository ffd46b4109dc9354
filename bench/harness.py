"""Measurement of one-shot record + backward per (workload, engine), and the derived figures.

One repeat: ``gc.collect()``; for pyad a fresh ``with pyad.Tape():``; build the leaves (not
timed); time recording the loss; time ``loss.backward()``; then, untimed, read the tape's size
and the gradients. One-shot = record + backward. Figures are medians over the repeats of one
process; an untimed warm-up run of each engine comes first and also sizes its repeats to the
engine's time budget; the timed repeats then go round-robin over the engines. The float floor
runs the same workload code on plain floats (record = the whole computation, no backward).

Op counts come from pyad: ``len(tape)`` after recording minus the leaves. That one count is the
denominator of every engine's ns/op for the workload, so the figures are comparable.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from bench.workloads import FLOATS, Engine, Workload, w4_log10_true_gradient

TINY = sys.float_info.min
NS = 1e9
MS = 1e3


@dataclass(frozen=True)
class EngineSpec:
    """An engine to benchmark: ``kind`` is "pyad" (has tapes), "reference" or "float";
    ``loss``, when given, replaces the workload's loss (same leaves, another formulation)."""

    name: str
    kind: str
    module: Engine
    loss: Callable[[Engine, list[Any], int], Any] | None = None


def engines(w: Workload | None = None) -> list[EngineSpec]:
    """pyad, pyad.reference and the float floor, in the order they are run; for a workload
    with a ``baseline`` formulation (W3-dot), also pyad running that formulation, interleaved
    with the others so that the two formulations are compared under the same conditions."""
    import pyad
    import pyad.reference

    specs = [
        EngineSpec("pyad", "pyad", pyad),
        EngineSpec("reference", "reference", pyad.reference),
        EngineSpec("float", "float", FLOATS),
    ]
    if w is not None and w.baseline is not None:
        specs.insert(1, EngineSpec(BASELINE, "pyad", pyad, w.baseline))
    return specs


#: the engine name of pyad running a workload's baseline formulation
BASELINE = "pyad (operators)"


@dataclass
class Run:
    """One repeat of one engine on one workload (times in seconds)."""

    record: float
    backward: float | None
    value: float
    grads: list[float] | None
    leaves: int
    records: int | None = None  # pyad: len(tape) after recording
    nbytes: int | None = None  # pyad: tape.nbytes right after backward
    records_after: int | None = None  # pyad: len(tape) right after backward


@dataclass
class EngineResult:
    """All repeats of one engine on one workload, and what they summarise to."""

    engine: str
    repeats_asked: int
    runs: list[Run] = field(default_factory=list)
    warmup: Run | None = None
    error: str | None = None

    @property
    def repeats(self) -> int:
        return len(self.runs)

    def median(self, what: Callable[[Run], float | None]) -> float | None:
        values = [what(r) for r in self.runs]
        if not values or any(v is None for v in values):
            return None
        return float(statistics.median(v for v in values if v is not None))

    def minimum(self, what: Callable[[Run], float | None]) -> float | None:
        values = [what(r) for r in self.runs]
        if not values or any(v is None for v in values):
            return None
        return float(min(v for v in values if v is not None))


def _one_shot(r: Run) -> float:
    return r.record + (r.backward or 0.0)


def _pyad_run(spec: EngineSpec, w: Workload, size: int) -> Run:
    """One pyad repeat on a fresh tape."""
    module = spec.module
    gc.collect()
    with module.Tape() as tape:
        leaves = w.inputs(module, size)
        nleaves = len(tape)
        t0 = time.perf_counter()
        loss = (spec.loss or w.loss)(module, leaves, size)
        t1 = time.perf_counter()
        records = len(tape)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        nbytes = tape.nbytes
        records_after = len(tape)
        value = loss.v
        grads = [x.grad for x in leaves]
    del loss, leaves, tape
    return Run(
        record=t1 - t0,
        backward=t3 - t2,
        value=value,
        grads=grads,
        leaves=nleaves,
        records=records,
        nbytes=nbytes,
        records_after=records_after,
    )


def _reference_run(spec: EngineSpec, w: Workload, size: int) -> Run:
    """One pyad.reference repeat."""
    module = spec.module
    gc.collect()
    leaves = w.inputs(module, size)
    t0 = time.perf_counter()
    loss = w.loss(module, leaves, size)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    run = Run(
        record=t1 - t0,
        backward=t2 - t1,
        value=loss.v,
        grads=[x.grad for x in leaves],
        leaves=len(leaves),
    )
    del loss, leaves
    gc.collect()  # a deep graph is freed here, not inside the next repeat
    return run


def _float_run(spec: EngineSpec, w: Workload, size: int) -> Run:
    """One float-floor repeat: the whole computation is the "record" part."""
    module = spec.module
    gc.collect()
    leaves = w.inputs(module, size)
    t0 = time.perf_counter()
    loss = w.loss(module, leaves, size)
    t1 = time.perf_counter()
    return Run(record=t1 - t0, backward=None, value=float(loss), grads=None, leaves=len(leaves))


_RUNNERS: dict[str, Callable[[EngineSpec, Workload, int], Run]] = {
    "pyad": _pyad_run,
    "reference": _reference_run,
    "float": _float_run,
}


def _fail(result: EngineResult, exc: Exception) -> None:
    result.error = f"fails: {type(exc).__name__}: {exc}"[:200]


def measure(
    specs: list[EngineSpec],
    w: Workload,
    size: int,
    repeats: int,
    budget: float,
    progress: Callable[[str], None],
) -> dict[str, EngineResult]:
    """Warm each engine up once (untimed, also sizing its repeats to ``budget`` seconds; at
    least one repeat always runs), then run the timed repeats interleaved, round-robin over
    the engines, so that the ratios of one run see the same machine conditions."""
    results = {s.name: EngineResult(s.name, repeats) for s in specs}
    counts: dict[str, int] = {}
    for spec in specs:
        result = results[spec.name]
        try:
            start = time.perf_counter()
            result.warmup = _RUNNERS[spec.kind](spec, w, size)
            per_repeat = time.perf_counter() - start
        except Exception as exc:  # an engine failing is a result (WORKLOADS.md: W4)
            _fail(result, exc)
            progress(f"{w.key} {spec.name} ... {result.error}\n")
            continue
        counts[spec.name] = max(1, min(repeats, int(budget // max(per_repeat, 1e-9))))
    for i in range(max(counts.values(), default=0)):
        for spec in specs:
            result = results[spec.name]
            if result.error or i >= counts[spec.name]:
                continue
            try:
                result.runs.append(_RUNNERS[spec.kind](spec, w, size))
            except Exception as exc:  # a failure after the warm-up: report it too
                _fail(result, exc)
                progress(f"{w.key} {spec.name} ... {result.error}\n")
                continue
            if i + 1 == counts[spec.name]:
                ms = result.median(_one_shot) or 0.0
                note = "" if i + 1 == repeats else f" ({i + 1} of {repeats} repeats: time budget)"
                progress(f"{w.key} {spec.name} ... done {ms * MS:.1f} ms{note}\n")
    return results


def max_rel_diff(grads: list[float], ref: list[float]) -> tuple[float, int]:
    """max over inputs of |g - g_ref| / max(|g_ref|, tiny), and how many differ bitwise."""
    worst = 0.0
    differ = 0
    for g, r in zip(grads, ref):
        if g == r or (math.isnan(g) and math.isnan(r)):
            continue
        differ += 1
        if math.isnan(g) or math.isnan(r):
            worst = math.inf
            continue
        worst = max(worst, abs(g - r) / max(abs(r), TINY))
    if len(grads) != len(ref):
        worst, differ = math.inf, max(len(grads), len(ref))
    return worst, differ


@dataclass
class WorkloadResult:
    """Every engine's result on one workload and the figures derived from them."""

    workload: Workload
    size: int
    results: dict[str, EngineResult]
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    ops: int | None = None
    leaves: int | None = None
    records: int | None = None
    notes: list[str] = field(default_factory=list)


def _rel(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(b), TINY)


def summarise(wr: WorkloadResult) -> None:
    """Fill ``wr.figures`` (per engine) and ``wr.ops``: medians, ratios and correctness."""
    res = wr.results
    pyad_r, ref_r = res.get("pyad"), res.get("reference")
    base_r = res.get(BASELINE)
    if pyad_r and pyad_r.runs:
        first = pyad_r.runs[0]
        wr.leaves = first.leaves
        wr.records = first.records
        wr.ops = (first.records or 0) - first.leaves
        counts = {(r.records, r.leaves) for r in pyad_r.runs}
        if len(counts) != 1:
            wr.notes.append(f"pyad's record count changed between repeats: {sorted(counts)}")
    ref_run = ref_r.warmup if ref_r and not ref_r.error else None
    one = {name: r.median(_one_shot) for name, r in res.items() if not r.error}
    for name, r in res.items():
        fig: dict[str, Any] = {"repeats": r.repeats, "repeats_asked": r.repeats_asked}
        wr.figures[name] = fig
        if r.error:
            fig["error"] = r.error
            continue
        one_shot = one[name]
        fig["one_shot_ms"] = one_shot * MS if one_shot is not None else None
        fig["one_shot_min_ms"] = (r.minimum(_one_shot) or 0.0) * MS
        fig["record_ms"] = (r.median(lambda x: x.record) or 0.0) * MS
        bwd = r.median(lambda x: x.backward)
        fig["backward_ms"] = bwd * MS if bwd is not None else None
        if wr.ops and one_shot is not None:
            fig["ns_per_op"] = one_shot * NS / wr.ops
        if bwd is not None and wr.records:
            fig["sweep_ns_per_record"] = bwd * NS / wr.records
        if name != "reference" and one.get("reference") and one_shot:
            fig["speedup_over_reference"] = one["reference"] / one_shot  # type: ignore[operator]
        if name != "float" and one.get("float") and one_shot:
            fig["cost_over_float"] = one_shot / one["float"]  # type: ignore[operator]
        if r.runs and r.runs[-1].nbytes is not None:
            last = r.runs[-1]
            fig["nbytes"] = last.nbytes
            fig["bytes_per_record"] = last.nbytes / max(last.records_after or 1, 1)
        values = [x.value for x in ([r.warmup] if r.warmup else []) + r.runs]
        fig["value"] = values[-1]
        if ref_run is not None:
            fig["value_rel_diff"] = max(_rel(v, ref_run.value) for v in values)
            if r.runs[-1].grads is not None and ref_run.grads is not None:
                worst, differ = 0.0, 0
                for run in ([r.warmup] if r.warmup else []) + r.runs:
                    wd, nd = max_rel_diff(run.grads or [], ref_run.grads)
                    worst, differ = max(worst, wd), max(differ, nd)
                fig["grad_max_rel_diff"] = worst
                fig["grads_bitwise_different"] = differ
        if r.runs[-1].grads is not None and len(r.runs[-1].grads) <= 4:
            fig["grads"] = r.runs[-1].grads
    if pyad_r and base_r and pyad_r.runs and base_r.runs and not base_r.error:
        med = (base_r.median(_one_shot) or 0.0) / (pyad_r.median(_one_shot) or 1.0)
        low = (base_r.minimum(_one_shot) or 0.0) / (pyad_r.minimum(_one_shot) or 1.0)
        wr.figures["pyad"]["speedup_over_baseline"] = med
        wr.figures["pyad"]["speedup_over_baseline_min"] = low
        wr.notes.append(
            f"pyad with this formulation is {med:.2f}x faster than {BASELINE} one-shot "
            f"(medians; {low:.2f}x on the fastest repeats), measured interleaved; "
            f"{BASELINE}'s ns/op divides by this workload's op count"
        )


def run_workload(
    w: Workload,
    size: int,
    repeats: int,
    budget: float,
    progress: Callable[[str], None],
    specs: list[EngineSpec] | None = None,
) -> WorkloadResult:
    """Measure every engine on ``w`` and summarise."""
    specs = specs if specs is not None else engines(w)
    results = measure(specs, w, size, repeats, budget, progress)
    wr = WorkloadResult(w, size, results)
    summarise(wr)
    if w.note:
        wr.notes.append(w.note)
    if w.key == "W4":
        _w4_notes(wr)
    return wr


def _w4_notes(wr: WorkloadResult) -> None:
    """W4's gradient dv/dx0 as each engine gives it, next to the exact one (which underflows)."""
    exact = w4_log10_true_gradient(wr.size)
    got = ", ".join(
        f"{name} {fig['grads'][0]!r}" for name, fig in wr.figures.items() if fig.get("grads")
    )
    wr.notes.append(
        f"dv/dx0: {got}; exact value 10^{exact:.1f}, which underflows to 0.0 in float64"
    )
    for fig in wr.figures.values():
        if fig.get("grads"):
            fig["exact_log10_gradient"] = exact


# -- the text table -----------------------------------------------------------------------------
COLUMNS: list[tuple[str, str, str]] = [
    # (header, figure key, format)
    ("one-shot ms", "one_shot_ms", "{:.2f}"),
    ("(min)", "one_shot_min_ms", "{:.2f}"),
    ("record ms", "record_ms", "{:.2f}"),
    ("backward ms", "backward_ms", "{:.2f}"),
    ("ns/op", "ns_per_op", "{:.0f}"),
    ("sweep ns/rec", "sweep_ns_per_record", "{:.1f}"),
    ("x vs ref", "speedup_over_reference", "{:.2f}"),
    ("x float", "cost_over_float", "{:.2f}"),
    ("B/rec", "bytes_per_record", "{:.1f}"),
    ("grad max rel diff", "grad_max_rel_diff", "{:.1e}"),
    ("f rel diff", "value_rel_diff", "{:.1e}"),
]


def _cell(fig: dict[str, Any], key: str, fmt: str) -> str:
    value = fig.get(key)
    if value is None:
        return "-"
    if isinstance(value, float) and value == 0.0 and "diff" in key:
        return "0"
    return fmt.format(value)


def format_table(wr: WorkloadResult) -> str:
    """A plain-text, aligned table of one workload's figures."""
    w = wr.workload
    head = f"{w.key} {w.title}  {w.size_name}={wr.size}"
    if wr.ops is not None:
        head += f"  leaves={wr.leaves}  ops={wr.ops} (pyad records after the leaves)"
    header = ["engine", "reps", *(c[0] for c in COLUMNS)]
    rows = [header]
    errors = []
    for name, fig in wr.figures.items():
        if "error" in fig:
            errors.append(f"  {name}: {fig['error']}")
            rows.append([name, "-", *("-" for _ in COLUMNS)])
            continue
        reps = str(fig["repeats"])
        if fig["repeats"] != fig["repeats_asked"]:
            reps = f"{fig['repeats']}/{fig['repeats_asked']}*"
        rows.append([name, reps, *(_cell(fig, key, fmt) for _, key, fmt in COLUMNS)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [head]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [c.rjust(widths[j + 1]) for j, c in enumerate(row[1:])]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * wd for wd in widths))
    if any(fig.get("repeats") != fig.get("repeats_asked") for fig in wr.figures.values()):
        lines.append("  * fewer repeats than asked: the engine's time budget ran out")
    lines.extend(errors)
    lines.extend(f"  note: {n}" for n in wr.notes)
    return "\n".join(lines)


LEGEND = """\
columns: one-shot = record + backward (median of repeats, same process; the float floor has no
backward), (min) its fastest repeat; ns/op = one-shot / pyad's op count (the same denominator
for every engine); sweep ns/rec = backward alone / pyad's len(tape); x vs ref = pyad.reference
one-shot / this engine's; x float = this engine's one-shot / the float floor's; B/rec =
tape.nbytes / len(tape) after backward; grad max rel diff = max over inputs
|g - g_ref| / max(|g_ref|, tiny) against pyad.reference, over every repeat (the reference row:
its repeats against its warm-up); f rel diff = the same for the loss value."""


# -- peers: the comparison table -----------------------------------------------------------------
#: display names of the built-in rows of the comparison table
BUILTIN_ROWS = {"pyad": "pyad", "reference": "pyad.reference", "float": "float floor"}
#: a peer's first (probe) run is at size // PROBE_DIVISOR, to size its real run to its budget
PROBE_DIVISOR = 20
#: the least size a probe or a budget reduction goes down to
MIN_SIZE = {"W1": 20, "W2": 20, "W3": 2, "W4": 50, "W5": 40}


def workload_vector(key: str, size: int) -> list[float]:
    """WORKLOADS.md's inputs of ``key`` at ``size`` as one vector (what a compiled function of
    the inputs takes)."""
    import bench.workloads as wl

    if key in ("W1", "W2"):
        return wl.input_vector(size)
    if key.startswith("W3"):
        return wl.mlp_parameter_values()
    if key == "W4":
        return [0.5]
    return [float(i) for i in range(wl.W5_INPUTS)]


_OPS_CACHE: dict[tuple[str, int], int] = {}
_REF_CACHE: dict[tuple[str, int], tuple[float, list[float]]] = {}


def pyad_ops(w: Workload, size: int) -> int:
    """pyad's record count of ``w`` at ``size``, leaves excluded: the unit of every ns/op."""
    key = (w.key, size)
    if key not in _OPS_CACHE:
        import pyad

        with pyad.Tape() as tape:
            leaves = w.inputs(pyad, size)
            n0 = len(tape)
            w.loss(pyad, leaves, size)
            _OPS_CACHE[key] = len(tape) - n0
    return _OPS_CACHE[key]


def reference_answer(w: Workload, size: int) -> tuple[float, list[float]]:
    """pyad.reference's value and gradient of ``w`` at ``size`` (the oracle of every row)."""
    key = (w.key, size)
    if key not in _REF_CACHE:
        import pyad.reference as ref

        leaves = w.inputs(ref, size)
        loss = w.loss(ref, leaves, size)
        loss.backward()
        _REF_CACHE[key] = (float(loss.v), [float(x.grad) for x in leaves])
        del loss, leaves
        gc.collect()
    return _REF_CACHE[key]


def _empty_row(kind: str, size: int, status: str, module: str | None = None) -> dict[str, Any]:
    return {
        "kind": kind,
        "module": module,
        "status": status,
        "size": size,
        "full_size": size,
        "reduced": None,
        "ops": None,
        "repeats": 0,
        "one_shot_ms": None,
        "one_shot_min_ms": None,
        "ns_per_op": None,
        "x_pyad": None,
        "compile_ms": None,
        "replay_us_per_call": None,
        "replay_ns_per_op": None,
        "bytes_per_op": None,
        "grad_max_rel_diff": None,
        "value_rel_diff": None,
        "version": None,
    }


def _time_replay(
    fn: Callable[[Any], Any], x: Any, budget: float, repeats: int
) -> tuple[float, list[Any]]:
    """Median seconds per call of ``fn(x)`` (samples of at least 2 ms, within ``budget``),
    and the last result."""
    out = fn(x)
    start = time.perf_counter()
    out = fn(x)
    once = max(time.perf_counter() - start, 1e-9)
    calls = max(1, int(2e-3 / once))
    samples = []
    spent = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(x)
        elapsed = time.perf_counter() - start
        samples.append(elapsed / calls)
        spent += elapsed
        if spent > budget:
            break
    return float(statistics.median(samples)), out


def _check_row(row: dict[str, Any], w: Workload, value: float, grads: list[float]) -> None:
    """Fold one answer's differences from pyad.reference into the row (worst over calls)."""
    ref_value, ref_grads = reference_answer(w, row["size"])
    worst, _ = max_rel_diff([float(g) for g in grads], ref_grads)
    vdiff = _rel(float(value), ref_value)
    row["grad_max_rel_diff"] = max(row["grad_max_rel_diff"] or 0.0, worst)
    row["value_rel_diff"] = max(row["value_rel_diff"] or 0.0, vdiff)


def _compiled_rows(
    row: dict[str, Any],
    w: Workload,
    compile_fn: Callable[[str, int], Callable[[Any], tuple[float, Any]]],
    budget: float,
    repeats: int,
) -> None:
    """Compile once (timed apart), then time and check the replay at WORKLOADS.md's inputs."""
    import numpy as np

    size = row["size"]
    x = np.array(workload_vector(w.key, size), dtype=np.float64)
    gc.collect()
    start = time.perf_counter()
    f = compile_fn(w.key, size)
    row["compile_ms"] = (time.perf_counter() - start) * MS
    per_call, (value, grads) = _time_replay(f, x, budget, repeats)
    row["replay_us_per_call"] = per_call * 1e6
    if row["ops"]:
        row["replay_ns_per_op"] = per_call * NS / row["ops"]
    _check_row(row, w, float(value), list(np.asarray(grads, dtype=np.float64).ravel()))


def _pyad_compile(key: str, size: int) -> Callable[[Any], tuple[float, Any]]:
    """pyad.compile of the workload as a function of its input vector, traced at the inputs
    reversed (so that a replay cannot return an answer cached at trace time)."""
    import numpy as np

    import pyad
    from bench.workloads import WORKLOADS

    w = WORKLOADS[key]
    x = np.array(workload_vector(key, size), dtype=np.float64)
    fn = pyad.compile(lambda xs: w.loss(pyad, xs, size), x[::-1].copy())
    return fn.value_and_grad  # type: ignore[no-any-return]


def _builtin_rows(wr: WorkloadResult, budget: float, repeats: int) -> dict[str, dict[str, Any]]:
    """The pyad, pyad.reference and float floor rows, from the figures already measured, plus
    pyad's compiled replay."""
    rows: dict[str, dict[str, Any]] = {}
    for name, label in BUILTIN_ROWS.items():
        fig = wr.figures.get(name)
        if fig is None:
            continue
        row = _empty_row(name, wr.size, fig.get("error") or "ok")
        rows[label] = row
        if "error" in fig:
            continue
        row.update(
            ops=wr.ops,
            repeats=fig["repeats"],
            one_shot_ms=fig.get("one_shot_ms"),
            one_shot_min_ms=fig.get("one_shot_min_ms"),
            ns_per_op=fig.get("ns_per_op"),
            bytes_per_op=fig.get("bytes_per_record"),
            grad_max_rel_diff=fig.get("grad_max_rel_diff"),
            value_rel_diff=fig.get("value_rel_diff"),
        )
    pyad_row = rows.get("pyad")
    if pyad_row and pyad_row["status"] == "ok" and wr.workload.key in PEER_KEYS:
        try:
            _compiled_rows(pyad_row, wr.workload, _pyad_compile, budget, repeats)
        except Exception as exc:  # no replay for this workload: the one-shot figures stand
            pyad_row["replay_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return rows


#: the workloads peers implement (W3-dot is pyad's own second formulation of W3)
PEER_KEYS = ("W1", "W2", "W3", "W4", "W5")


def _peer_size(w: Workload, size: int, one: Callable[[int], float], budget: float) -> int:
    """The size that keeps about three runs within ``budget``: a probe at a fraction of
    ``size``, extrapolated linearly (every workload is linear in its size)."""
    floor = MIN_SIZE.get(w.key, 1)
    probe = max(floor, size // PROBE_DIVISOR)
    if probe >= size:
        return size
    t = max(one(probe), 1e-9)
    fits = int(probe * budget / (3 * t))
    return size if fits >= size else max(floor, fits)


def run_peer(
    module: str,
    w: Workload,
    size: int,
    repeats: int,
    budget: float,
    progress: Callable[[str], None],
    replay: bool = True,
) -> tuple[str, dict[str, Any]]:
    """One peer on one workload: (display name, comparison row). Never raises: a missing
    engine, a workload it does not implement and a failure are each a row's status. With
    ``replay`` False (``--quick``) a peer's compiled replay is not measured: compiling (JAX's
    jit above all) would cost most of the minute that --quick has."""
    from bench import peers

    mod, text = peers.load(module)
    name = peers.display_name(module)
    if mod is None:
        return name, _empty_row("peer", size, text, module)
    row = _empty_row("peer", size, "ok", module)
    row["version"] = text
    if w.key not in mod.WORKLOADS:
        row["status"] = "not implemented"
        return name, row

    def one(n: int) -> float:
        gc.collect()
        start = time.perf_counter()
        mod.one_shot(w.key, n)
        return time.perf_counter() - start

    run_size = size
    try:
        if hasattr(mod, "max_size"):
            run_size = min(size, int(mod.max_size(w.key, size)))
            if run_size < size:
                row["reduced"] = "engine limit"
        budget_size = _peer_size(w, run_size, one, budget)
        if budget_size < run_size:
            run_size, row["reduced"] = budget_size, "time budget"
        row["size"] = run_size
        row["ops"] = pyad_ops(w, run_size)
        times: list[float] = []
        spent = 0.0
        for i in range(repeats + 1):  # the first run is the untimed warm-up
            gc.collect()
            start = time.perf_counter()
            value, grads = mod.one_shot(w.key, run_size)
            elapsed = time.perf_counter() - start
            _check_row(row, w, value, grads)
            if i:
                times.append(elapsed)
            spent += elapsed
            if i and spent > budget:
                break
        row["repeats"] = len(times)
        one_shot = float(statistics.median(times))
        row["one_shot_ms"] = one_shot * MS
        row["one_shot_min_ms"] = min(times) * MS
        row["ns_per_op"] = one_shot * NS / row["ops"] if row["ops"] else None
        if replay and hasattr(mod, "compile"):
            _compiled_rows(row, w, mod.compile, budget, max(repeats, 5))
    except Exception as exc:  # RecursionError on W4 and the like: the row says what happened
        row["status"] = f"fails: {type(exc).__name__}: {exc}"[:200]
        row["size"] = run_size
        for key in ("one_shot_ms", "one_shot_min_ms", "ns_per_op", "repeats"):
            row[key] = 0 if key == "repeats" else None
    gc.collect()
    return name, row


def compare(
    wr: WorkloadResult,
    repeats: int,
    budget: float,
    progress: Callable[[str], None],
    modules: tuple[str, ...] | None = None,
    peer_replay: bool = True,
    quick: bool = False,
) -> dict[str, dict[str, Any]]:
    """The comparison rows of one workload: pyad, pyad.reference, the float floor, pyad
    running the workload written with arrays (W1, W2, W3: bench/arrays.py), then every
    registered peer (bench.peers.PEERS), each run alone within its time budget."""
    from bench import arrays, peers

    w = wr.workload
    rows = _builtin_rows(wr, budget, repeats)
    if w.key in arrays.WORKLOADS and wr.ops and wr.records:
        start = time.perf_counter()
        row = arrays.row(w, wr.size, wr.ops, wr.records, repeats, quick)
        rows[arrays.NAME] = row
        done = f"{row['one_shot_ms']:.1f} ms" if row["status"] == "ok" else row["status"]
        progress(f"{w.key} {arrays.NAME} ... {done} [{time.perf_counter() - start:.1f} s]\n")
    if w.key in PEER_KEYS:
        for module in modules if modules is not None else peers.PEERS:
            start = time.perf_counter()
            name, row = run_peer(module, w, wr.size, repeats, budget, progress, peer_replay)
            rows[name] = row
            if row["status"] == "ok":
                done = f"{row['one_shot_ms']:.1f} ms"
                if row["reduced"]:
                    done += f" at {w.size_name}={row['size']} ({row['reduced']})"
            else:
                done = row["status"]
            progress(f"{w.key} {name} ... {done} [{time.perf_counter() - start:.1f} s]\n")
    base = rows.get("pyad", {}).get("ns_per_op")
    for row in rows.values():
        if base and row.get("ns_per_op"):
            row["x_pyad"] = row["ns_per_op"] / base
        row["full_size"] = wr.size
    return rows


COMPARISON_COLUMNS: list[tuple[str, str, str]] = [
    ("one-shot ms", "one_shot_ms", "{:.2f}"),
    ("ns/op", "ns_per_op", "{:.0f}"),
    ("x pyad", "x_pyad", "{:.1f}"),
    ("compile ms", "compile_ms", "{:.1f}"),
    ("replay us/call", "replay_us_per_call", "{:.1f}"),
    ("replay ns/op", "replay_ns_per_op", "{:.2f}"),
    ("B/op", "bytes_per_op", "{:.1f}"),
    ("grad max rel err", "grad_max_rel_diff", "{:.1e}"),
]


def format_comparison(wr: WorkloadResult, rows: dict[str, dict[str, Any]]) -> str:
    """One workload's comparison table: every engine in one place, unavailable ones last."""
    w = wr.workload
    header = ["engine", "size", *(c[0] for c in COMPARISON_COLUMNS)]
    table = [header]
    notes = []
    ordered = sorted(rows.items(), key=lambda kv: kv[1]["status"] != "ok")
    for name, row in ordered:
        size = str(row["size"]) + ("*" if row["size"] != wr.size else "")
        if row["status"] != "ok":
            status = row["status"]
            if status.startswith("fails"):
                status += f" (at {w.size_name}={row['size']})"
            table.append([name, "-", status, *("" for _ in COMPARISON_COLUMNS[1:])])
            continue
        table.append([name, size, *(_cell(row, k, f) for _, k, f in COMPARISON_COLUMNS)])
        if row.get("note"):
            notes.extend(
                textwrap.wrap(
                    f"note: {row['note']}", 98, initial_indent="  ", subsequent_indent="  "
                )
            )
        if row["reduced"]:
            notes.append(
                f"  * {name}: {w.size_name} reduced to {row['size']} ({row['reduced']}); "
                f"its ns/op divides by pyad's {row['ops']} ops at that size"
            )
    figures = [r for r in table if r[1] != "-"]  # status rows span the columns instead
    widths = [max(len(r[i]) for r in figures) for i in range(len(header))]
    widths[0] = max(len(r[0]) for r in table)
    lines = [f"{w.key} {w.title}  {w.size_name}={wr.size}: pyad against its peers"]
    for i, r in enumerate(table):
        if r[1] == "-":  # a status row: the text spans the figure columns
            lines.append(f"{r[0].ljust(widths[0])}  {'-'.rjust(widths[1])}  {r[2]}".rstrip())
        else:
            cells = [r[0].ljust(widths[0])] + [c.rjust(widths[j + 1]) for j, c in enumerate(r[1:])]
            lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * wd for wd in widths))
    lines.extend(notes)
    return "\n".join(lines)


COMPARISON_LEGEND = """\
comparison tables: ns/op = one-shot / pyad's record count of the workload at the size that
engine ran (the same unit for all); x pyad = ns/op over pyad's ns/op (how many times slower than
pyad one-shot); compile ms and replay (forward + gradient again at new inputs) only for engines
that can replay, compile timed apart; B/op = bytes stored per op (pyad's tape); grad max rel err
against pyad.reference at the same size, checked on every call; * = run at a reduced size.
pyad (arrays) = pyad on the workload written with pyad.Array (bench/arrays.py): one-shot =
pyad.value_and_grad recording afresh, replay = pyad.compile's F.value_and_grad, per scalar op."""
