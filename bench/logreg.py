"""The logistic-regression workload "LR" of ``python -m bench`` (docs/WORKLOADS.md).

An L2-penalised logistic regression over a constant data matrix, the loss most array AD code
exists for::

    loss(w) = sum_i softplus(-y_i * (X @ w)_i) / m + lam * w.w

with X of shape (m, d) and y of +-1, both fixed by integer formulas (:func:`problem`). Unlike
W1 to W5 it is timed per call in milliseconds, not per op: the engines here all work on whole
arrays, and the question is how pyad's array recording compares with them and with the
hand-written numpy value and gradient, the floor (``X @ w`` and ``X.T @ r``, two BLAS
matrix-vector products, and a few passes over m numbers).

Engines, each ``w -> (value, gradient as an ndarray)``:

* ``numpy (hand-written)``: the value and the gradient written out by hand, the floor;
* ``pyad one-shot``: ``pyad.value_and_grad(loss)(w)``, recording afresh each call;
* ``pyad replay``: ``F.value_and_grad(w)`` with ``F = pyad.compile(loss, w0)`` (compile timed
  apart, traced at w0 reversed so no answer can be cached);
* ``autograd``, ``JAX eager`` (``jax.value_and_grad``), ``JAX jit`` (``jax.jit`` of it,
  compiled apart) and ``torch`` (float64 tensors on the CPU, ``backward()``), each when
  installed and selected by ``--peers`` (autograd_peer, jax_peer, torch_vectorised).

Every engine is timed in one loop of repeats that goes round-robin over all of them (a burst
of noise hits all alike); medians and mins of the samples. Each sample starts with one untimed
call, so every engine is timed in the steady state an optimiser's loop sees: without it, an
engine reading a private copy of X (pyad's program, JAX's device array) started every sample
with the caches the others had filled with theirs, while the engines sharing the caller's X
(hand-written, autograd, torch) found it cached (pyad's replay: 9.8 ms per call, 5.7 with the
warm-up call, in two runs minutes apart). At full size each sample also starts after a pause of
:data:`SETTLE_SECONDS`: numpy's OpenBLAS keeps its threads spinning for about 0.1 s after a
large product, and without the pause the engine after the hand-written numpy shared the cores
with them for its whole sample, a tax that an optimiser's loop over one engine never pays
(pyad right after ten hand-written calls: one-shot 11.5 ms, replay 7.6; after a pause of 0.1
s, 7.0 and 4.0). After the pause the processor takes a few tens of milliseconds to reach its
speed again (each call's time after a pause of 0.15 s, the hand-written numpy: 6.0, 4.5, 3.8,
3.6 ... 3.2 ms; pyad's replay: 7.0, 5.4, 4.4, 3.9 ... 3.5), so the warm-up goes on for
:data:`WARM_SECONDS` of untimed calls. The ratios of the issue that added
the workload are printed with their targets (never asserted): pyad one-shot / autograd
(<= 2), pyad replay / hand-written numpy (<= 1.2), and the bytes pyad's tape holds after
recording the loss once (leaves included) / X.nbytes (<= 1.25). Every engine's value and
gradient are checked against the hand-written ones; a pyad gradient off by more than
:data:`PYAD_RTOL`, or a replay that differs from the one-shot, fails the run.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

import pyad
from bench import peers as peer_adapters
from bench.replay import Timed, align, interleaved, note, scaled_diff

FloatArray = npt.NDArray[np.float64]
ValueAndGrad = Callable[[FloatArray], "tuple[float, FloatArray]"]
Progress = Callable[[str], None]

#: (d features, m samples): full size and ``--quick``; the penalty
SIZE, QUICK_SIZE = (1_000, 10_000), (100, 1_000)
LAM = 1e-3
#: the prime modulus of X's scatter: larger than m, so no two samples are alike
PRIME = 10_007
#: round-robin rounds, and the least time one sample lasts, full and --quick
REPEATS, QUICK_REPEATS = 7, 3
MIN_SECONDS, QUICK_MIN_SECONDS = 0.05, 0.005
#: the pause before each sample at full size (none with --quick): longer than numpy's
#: OpenBLAS keeps its threads spinning after a product (about 0.1 s), so that no engine
#: shares the cores with the threads of the engine before it (see the module's docstring)
SETTLE_SECONDS = 0.15
#: after that pause, untimed calls for this long before the sample (none with --quick): the
#: processor takes a few tens of milliseconds to reach its speed again after a pause (LR's
#: hand-written numpy, each call after a pause of 0.15 s: 6.0, 4.5, 3.8, 3.6 ... 3.2 ms; pyad's
#: replay 7.0, 5.4, 4.4, 3.9 ... 3.5), so a sample starting after one warm call timed the ramp
WARM_SECONDS = 0.05
#: pyad's value and gradient must agree with the hand-written ones to rounding
PYAD_RTOL = 1e-10
#: the targets printed beside the ratios: (ratio key, bound, what it divides)
TARGETS = (
    ("one_shot_over_autograd", 2.0, "pyad one-shot / autograd"),
    ("replay_over_hand", 1.2, "pyad replay / hand-written numpy"),
    ("tape_bytes_over_x", 1.25, "pyad tape bytes / X.nbytes"),
)
#: engine names in table order, and the peer adapter (bench/peers) each needs
HAND, ONE_SHOT, REPLAY = "numpy (hand-written)", "pyad one-shot", "pyad replay"
PEER_ENGINES = (
    ("autograd", ("autograd_peer",)),
    ("JAX eager", ("jax_peer",)),
    ("JAX jit", ("jax_peer",)),
    ("torch", ("torch_vectorised", "torch_peer")),
)


@dataclass(frozen=True)
class Problem:
    """The data and the point every engine evaluates: ``X`` (m, d), ``y`` (m,) of +-1, the
    point ``w`` (d,) and the penalty ``lam``."""

    X: FloatArray
    y: FloatArray
    w: FloatArray
    lam: float

    @property
    def m(self) -> int:
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        return int(self.X.shape[1])


def problem(d: int, m: int, lam: float = LAM) -> Problem:
    """WORKLOADS.md's LR data, by integer formulas (no random generator):

    * ``r[i, j] = (7919 i + 104729 j + 31 i j) mod 10007`` and ``c = 2 r + 1 - 10007`` (an
      even integer in [-10006, 10006]); ``X = c / (2 * 10007) * sqrt(12 / d)``: entries of
      mean about 0 and variance about 1/d, so that ``X @ w`` is of the order of ``|w|``;
    * ``y_i = +1`` where ``sum_j c[i, j] t_j > 0`` (exact, in integers) with
      ``t_j = (1, -1, 0)[j % 3]``, else ``-1``; then negated where ``i % 10 == 7``, so that
      one label in ten is noise;
    * ``w_j = ((7919 j) mod 1000) / 1000 - 0.5``, the input vector's scatter in [-0.5, 0.5).
    """
    i = np.arange(m, dtype=np.int64)[:, None]
    j = np.arange(d, dtype=np.int64)[None, :]
    c = 2 * ((7919 * i + 104729 * j + 31 * i * j) % PRIME) + 1 - PRIME
    X = c / (2 * PRIME) * np.sqrt(12.0 / d)
    t = np.array([1, -1, 0], dtype=np.int64)[np.arange(d) % 3]
    y = np.where(c @ t > 0, 1.0, -1.0)
    y[np.arange(m) % 10 == 7] *= -1.0
    w = ((np.arange(d, dtype=np.int64) * 7919) % 1000) / 1000.0 - 0.5
    return Problem(np.ascontiguousarray(X), y, w, lam)


def loss_of(p: Problem, softplus: Callable[[Any], Any], total: Callable[[Any], Any]) -> Any:
    """The loss as a function of w in any array idiom: ``softplus`` and ``total`` (a sum) from
    the engine, ``@``, ``*`` and ``/`` from its arrays; X and -y are constants."""
    X, minus_y, m, lam = p.X, -p.y, float(p.m), p.lam

    def loss(w: Any) -> Any:
        return total(softplus(minus_y * (X @ w))) / m + lam * (w @ w)

    return loss


def pyad_loss(p: Problem) -> Callable[[Any], Any]:
    """The loss on a pyad.Array w: ``X @ w`` one matvec group reading X in place, then one C
    call per elementwise operation and one sum record."""
    return loss_of(p, pyad.softplus, pyad.sum)  # type: ignore[arg-type]


def hand_written(p: Problem) -> ValueAndGrad:
    """Value and gradient by hand: ``t = -y * (X @ w)``, ``softplus(t) = logaddexp(0, t)``,
    ``d/dt softplus(t) = sigmoid(t) = exp(t - softplus(t))``, and the gradient
    ``X.T @ (-y * sigmoid(t)) / m + 2 lam w``."""
    X, minus_y, m, lam = p.X, -p.y, float(p.m), p.lam

    def value_and_grad(w: FloatArray) -> tuple[float, FloatArray]:
        t = minus_y * (X @ w)
        sp = np.logaddexp(0.0, t)
        value = float(np.sum(sp)) / m + lam * float(w @ w)
        grad = X.T @ (minus_y * np.exp(t - sp)) / m + (2.0 * lam) * w
        return value, grad

    return value_and_grad


# -- the peers: each a factory of (value_and_grad, compile seconds or None) --------------------


def _autograd(p: Problem) -> tuple[ValueAndGrad, float | None]:
    import autograd
    import autograd.numpy as anp

    vg = autograd.value_and_grad(loss_of(p, lambda t: anp.logaddexp(0.0, t), anp.sum))

    def call(w: FloatArray) -> tuple[float, FloatArray]:
        value, grad = vg(w)
        return float(value), grad

    return call, None


def _jax_loss(p: Problem) -> Callable[[Any], Any]:
    import jax

    # float64 must be on before the first array is made (bench/peers/jax_peer.py)
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    X, minus_y, m, lam = jnp.asarray(p.X), jnp.asarray(-p.y), float(p.m), p.lam

    def loss(w: Any) -> Any:
        return jnp.sum(jax.nn.softplus(minus_y * (X @ w))) / m + lam * (w @ w)

    return loss


def _jax_eager(p: Problem) -> tuple[ValueAndGrad, float | None]:
    import jax

    vg = jax.value_and_grad(_jax_loss(p))

    def call(w: FloatArray) -> tuple[float, FloatArray]:
        value, grad = vg(w)
        return float(value), np.asarray(grad)

    return call, None


def _jax_jit(p: Problem) -> tuple[ValueAndGrad, float | None]:
    import jax

    vg = jax.jit(jax.value_and_grad(_jax_loss(p)))
    start = time.perf_counter()
    jax.block_until_ready(vg(p.w[::-1].copy()))  # jit compiles at the first call
    compile_s = time.perf_counter() - start

    def call(w: FloatArray) -> tuple[float, FloatArray]:
        value, grad = vg(w)
        return float(value), np.asarray(grad)

    return call, compile_s


def _torch(p: Problem) -> tuple[ValueAndGrad, float | None]:
    import torch

    X, minus_y = torch.from_numpy(p.X), torch.from_numpy(-p.y)
    m, lam = float(p.m), p.lam
    softplus = torch.nn.functional.softplus

    def call(w: FloatArray) -> tuple[float, FloatArray]:
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        loss = softplus(minus_y * (X @ wt)).sum() / m + lam * (wt @ wt)
        loss.backward()
        assert wt.grad is not None
        return float(loss.item()), wt.grad.numpy()

    return call, None


_PEER_FACTORIES: dict[str, Callable[[Problem], tuple[ValueAndGrad, float | None]]] = {
    "autograd": _autograd,
    "JAX eager": _jax_eager,
    "JAX jit": _jax_jit,
    "torch": _torch,
}


def _peer(name: str, adapters: tuple[str, ...], selected: Collection[str]) -> str | None:
    """Why the peer engine ``name`` does not run (not selected, not installed), or None."""
    chosen = [a for a in adapters if a in selected]
    if not chosen:
        return f"not selected (--peers has none of {', '.join(adapters)})"
    mod, text = peer_adapters.load(chosen[0])
    return None if mod is not None else text


def tape_bytes(p: Problem) -> dict[str, int]:
    """Record the loss once on a fresh tape: its bytes before, after recording (leaves
    included) and after the backward pass, and its records."""
    gc.collect()
    with pyad.Tape() as tape:
        before = tape.nbytes
        w = pyad.array(p.w)
        loss = pyad_loss(p)(w)
        recorded, records = tape.nbytes, len(tape)
        loss.backward()
        swept = tape.nbytes
    del loss, w, tape
    gc.collect()
    return {"before": before, "recorded": recorded, "after_backward": swept, "records": records}


def run(
    quick: bool,
    progress: Progress,
    repeats: int | None = None,
    size: tuple[int, int] | None = None,
    min_seconds: float | None = None,
    peers: Collection[str] = tuple(peer_adapters.PEERS),
) -> dict[str, Any]:
    """Time and check every engine on LR at ``size`` = (d, m) (default: full or quick); every
    figure in one dict (the JSON's ``logreg``)."""
    repeats = repeats or (QUICK_REPEATS if quick else REPEATS)
    if min_seconds is None:
        min_seconds = QUICK_MIN_SECONDS if quick else MIN_SECONDS
    d, m = size or (QUICK_SIZE if quick else SIZE)
    p = problem(d, m)
    hand = hand_written(p)
    engines: dict[str, dict[str, Any]] = {}
    calls: dict[str, ValueAndGrad] = {HAND: hand, ONE_SHOT: pyad.value_and_grad(pyad_loss(p))}
    engines[HAND], engines[ONE_SHOT] = {}, {}
    start = time.perf_counter()
    compiled = pyad.compile(pyad_loss(p), p.w[::-1].copy())
    engines[REPLAY] = {
        "compile_ms": (time.perf_counter() - start) * 1e3,
        "program_bytes": compiled.info["bytes"],
    }
    calls[REPLAY] = compiled.value_and_grad
    progress(f"LR pyad compile ... {engines[REPLAY]['compile_ms']:.1f} ms\n")
    for name, adapters in PEER_ENGINES:
        why = _peer(name, adapters, peers)
        if why is None:
            try:
                calls[name], compile_s = _PEER_FACTORIES[name](p)
            except Exception as exc:  # a broken peer is a table row, not a crash
                why = f"fails: {type(exc).__name__}: {exc}"[:200]
            else:
                engines[name] = {} if compile_s is None else {"compile_ms": compile_s * 1e3}
        if why is not None:
            engines[name] = {"error": why}

    want_value, want_grad = hand(p.w)
    answers: dict[str, tuple[float, FloatArray]] = {}
    timed = []
    for name, call in calls.items():
        try:
            answers[name] = call(p.w)
        except Exception as exc:
            engines[name] = {"error": f"fails: {type(exc).__name__}: {exc}"[:200]}
            continue
        settle, warm = (0.0, 0.0) if quick else (SETTLE_SECONDS, WARM_SECONDS)
        timed.append(
            Timed(name, lambda call=call: call(p.w), 1, warm=True, warm_seconds=warm, settle=settle)
        )
    for t in timed:
        t.calibrate(min_seconds)
    interleaved(timed, repeats)
    for t in timed:
        value, grad = answers[t.name]
        fig = t.figures()
        engines[t.name].update(
            median_ms=fig["median_us_per_call"] / 1e3,
            min_ms=fig["min_us_per_call"] / 1e3,
            repeats=fig["repeats"],
            calls_per_repeat=fig["calls_per_repeat"],
            value=value,
            value_rel_diff=abs(value - want_value) / abs(want_value),
            grad_scaled_diff=scaled_diff(np.asarray(grad, dtype=np.float64), want_grad),
        )
        progress(f"LR {t.name} ... {engines[t.name]['median_ms']:.2f} ms\n")
    hand_ms = engines[HAND]["median_ms"]
    for fig in engines.values():
        if "median_ms" in fig:
            fig["x_hand"] = fig["median_ms"] / hand_ms
            fig["x_hand_min"] = fig["min_ms"] / engines[HAND]["min_ms"]

    tape = tape_bytes(p)
    ratios = {
        "one_shot_over_autograd": _over(engines, ONE_SHOT, "autograd", "median_ms"),
        "one_shot_over_autograd_min": _over(engines, ONE_SHOT, "autograd", "min_ms"),
        "replay_over_hand": _over(engines, REPLAY, HAND, "median_ms"),
        "replay_over_hand_min": _over(engines, REPLAY, HAND, "min_ms"),
        "tape_bytes_over_x": (tape["recorded"] - tape["before"]) / p.X.nbytes,
        "program_bytes_over_x": engines[REPLAY]["program_bytes"] / p.X.nbytes,
    }
    checks = _checks(engines, answers)
    return {
        "d": d,
        "m": m,
        "lam": p.lam,
        "x_nbytes": int(p.X.nbytes),
        "settings": {
            "repeats": repeats,
            "min_seconds_per_sample": min_seconds,
            "timer": "time.perf_counter; gc off inside a round; rounds round-robin over engines",
            "settle_seconds": 0.0 if quick else SETTLE_SECONDS,
            "warm_seconds": 0.0 if quick else WARM_SECONDS,
            "data": "bench.logreg.problem (docs/WORKLOADS.md, LR)",
        },
        "engines": engines,
        "tape": tape,
        "ratios": ratios,
        "targets": {key: bound for key, bound, _ in TARGETS},
        "checks": checks,
    }


def _over(engines: dict[str, dict[str, Any]], a: str, b: str, key: str) -> float | None:
    if key not in engines[a] or key not in engines.get(b, {}):
        return None
    return float(engines[a][key] / engines[b][key])


def _checks(
    engines: dict[str, dict[str, Any]], answers: dict[str, tuple[float, FloatArray]]
) -> dict[str, Any]:
    """pyad's value and gradient against the hand-written ones (to :data:`PYAD_RTOL`) and its
    replay against its one-shot (bit for bit); the peers' differences are shown, not checked
    (they sum in other orders)."""
    out: dict[str, Any] = {"pyad_rtol": PYAD_RTOL}
    for name in (ONE_SHOT, REPLAY):
        fig = engines[name]
        out[f"{name} close"] = bool(
            "error" not in fig
            and fig["value_rel_diff"] <= PYAD_RTOL
            and fig["grad_scaled_diff"] <= PYAD_RTOL
        )
    if ONE_SHOT in answers and REPLAY in answers:
        (v1, g1), (v2, g2) = answers[ONE_SHOT], answers[REPLAY]
        out["replay_equals_one_shot"] = bool(v1 == v2 and np.array_equal(g1, g2))
    else:
        out["replay_equals_one_shot"] = False
    out["ok"] = bool(
        out[f"{ONE_SHOT} close"] and out[f"{REPLAY} close"] and out["replay_equals_one_shot"]
    )
    return out


# -- the text table ---------------------------------------------------------------------------


def _diff(value: float | None) -> str:
    return "-" if value is None else "0" if value == 0.0 else f"{value:.1e}"


def format_table(result: dict[str, Any]) -> str:
    """LR's figures: per-engine times and checks, then the ratios beside their targets."""
    rows = [["engine", "ms per call", "(min)", "x hand", "compile ms", "grad diff", "value diff"]]
    missing = []
    for name, fig in result["engines"].items():
        if "median_ms" not in fig:
            missing.append(f"  {name}: {fig.get('error', 'no figures')}")
            continue
        compile_ms = fig.get("compile_ms")
        rows.append(
            [
                name,
                f"{fig['median_ms']:.3f}",
                f"{fig['min_ms']:.3f}",
                f"{fig['x_hand']:.2f}",
                "-" if compile_ms is None else f"{compile_ms:.1f}",
                _diff(fig["grad_scaled_diff"]),
                _diff(fig["value_rel_diff"]),
            ]
        )
    s = result["settings"]
    lines = [
        f"LR logistic regression  d={result['d']}  m={result['m']}  lam={result['lam']:g}",
        f"value and gradient per call, ms, median (min) of {s['repeats']} repeats, interleaved"
        + (f", each after a {s['settle_seconds']:g} s pause" if s.get("settle_seconds") else "")
        + (f" and {s['warm_seconds']:g} s of untimed calls" if s.get("warm_seconds") else ""),
        *align(rows),
        *missing,
    ]
    lines += note(
        "x hand: median over the hand-written numpy's (the floor); compile ms: pyad.compile, "
        "jax.jit's first call, timed apart; grad diff: against the hand-written gradient, "
        "relative per entry (on the largest entry's scale below 1e-4 of it); value diff: "
        "relative."
    )
    ratios, tape = result["ratios"], result["tape"]
    target_rows = [["ratio (same run)", "median", "(min)", "target", "met"]]
    for key, bound, label in TARGETS:
        value, low = ratios.get(key), ratios.get(key + "_min")
        target_rows.append(
            [
                label,
                "-" if value is None else f"{value:.2f}",
                "-" if low is None else f"{low:.2f}",
                f"<= {bound:g}",
                "-" if value is None else "yes" if value <= bound else "no",
            ]
        )
    lines += ["", *align(target_rows)]
    lines += note(
        f"targets are printed, not asserted. Tape: {tape['recorded'] - tape['before']:,} bytes "
        f"for {tape['records']:,} records (leaves included) against X.nbytes = "
        f"{result['x_nbytes']:,}; the compiled program holds "
        f"{ratios['program_bytes_over_x']:.2f} x X.nbytes."
    )
    c = result["checks"]
    lines += note(
        f"checks: pyad within {c['pyad_rtol']:g} of the hand-written value and gradient "
        f"(one-shot {'yes' if c[ONE_SHOT + ' close'] else 'NO'}, replay "
        f"{'yes' if c[REPLAY + ' close'] else 'NO'}); replay equals one-shot bit for bit: "
        f"{'yes' if c['replay_equals_one_shot'] else 'NO'}"
    )
    return "\n".join(lines)
