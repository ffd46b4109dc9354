"""The "pyad (arrays)" rows of the comparison tables: W1, W2 and W3 written with pyad.Array.

The vectorised peers (autograd, JAX, torch) run W1, W2 and W3 as array code; these rows run
the very same code on pyad: ``bench.workloads.w1_array`` and ``w2_array`` with numpy as
``xp`` (numpy's functions dispatch to ``pyad.Array``), and ``w3_array``, the network as
matrix products over the points. Each array operation is one C call that records one scalar
record per element, so the rows show what recording array code costs next to recording the
same loss one scalar operator at a time (the "pyad" row).

Per workload, timed in one loop of repeats that alternates between the two (so a burst of
noise hits both):

* one-shot: ``pyad.value_and_grad(fn)(x)``, a fresh recording and sweep per call (making the
  inputs, one C call, included, as for the peers);
* replay: ``F.value_and_grad(x)`` with ``F = pyad.compile(fn, x0)``, traced once (timed apart)
  at the inputs reversed, so no figure comes from an answer cached at trace time.

Figures are per op, op = one record of pyad's *scalar* recording of the workload (the
comparison tables' unit for every engine), though the array recording has fewer records of
its own (one n-ary ``sum`` for the accumulator chain, ``dot`` records for the weighted sums).
B/op is the array recording's tape.nbytes over the scalar recording's records.

Checks, every run: against ``pyad.reference`` (the column every row has), against pyad's
scalar recording (the value; the gradient's largest relative difference and how many entries
differ in any bit: W1 and W2 perform the same floating-point operations, but adjoints reach a
shared input in another order, so the gradient agrees to rounding; W3's products add the bias
last), and the replay against the one-shot, which must agree bit for bit.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

import pyad
from bench import workloads as wl
from bench.harness import MS, TINY, _empty_row, max_rel_diff, reference_answer, workload_vector
from bench.replay import Timed, interleaved, loss_function
from bench.workloads import Workload

FloatArray = npt.NDArray[np.float64]

#: the display name of the rows, and the workloads they are written for
NAME = "pyad (arrays)"
WORKLOADS = ("W1", "W2", "W3")
#: the least time one sample lasts (a sub-millisecond call is lost in timer resolution)
MIN_SECONDS, QUICK_MIN_SECONDS = 0.01, 0.002


def array_loss(key: str, size: int) -> Callable[[Any], Any]:
    """The workload as array code, a function of its input vector (a ``pyad.Array`` under
    pyad, an ndarray under numpy alone)."""
    if key == "W1":
        return lambda x: wl.w1_array(np, x)
    if key == "W2":
        return lambda x: wl.w2_array(np, x)
    if key == "W3":
        data = np.array(wl.mlp_data(size), dtype=np.float64).reshape(size, 3)
        points, targets = data[:, :2].copy(), data[:, 2].copy()
        return lambda p: wl.w3_array(np, p, points, targets)
    raise ValueError(f"{NAME}: no workload {key!r}; it has {WORKLOADS}")


def _rel(a: float, b: float) -> float:
    return 0.0 if a == b else abs(a - b) / max(abs(b), TINY)


def _records_and_bytes(fn: Callable[[Any], Any], x: FloatArray) -> tuple[int, int]:
    """The array recording's own records (leaves excluded) and its tape's bytes after the
    backward pass, on a fresh tape."""
    with pyad.Tape() as tape:
        leaves = pyad.array(x)
        n0 = len(tape)
        loss = fn(leaves)
        records = len(tape) - n0
        loss.backward()
        nbytes = tape.nbytes
    return records, nbytes


def row(
    w: Workload,
    size: int,
    ops: int,
    records: int,
    repeats: int,
    quick: bool,
) -> dict[str, Any]:
    """The comparison row of ``w`` written with arrays at ``size``; ``ops`` and ``records``
    are pyad's scalar recording's (the unit of ns/op and B/op). Never raises: a failure is
    the row's status."""
    out = _empty_row("pyad-arrays", size, "ok")
    out.update(ops=ops, version=pyad.__version__)
    try:
        _measure(out, w, size, records, repeats, QUICK_MIN_SECONDS if quick else MIN_SECONDS)
    except Exception as exc:  # a broken row is a table row, not a crash
        out["status"] = f"fails: {type(exc).__name__}: {exc}"[:200]
    gc.collect()
    return out


def _measure(
    out: dict[str, Any], w: Workload, size: int, records: int, repeats: int, min_seconds: float
) -> None:
    """Compile (timed apart), time one-shot and replay interleaved, count and check."""
    fn = array_loss(w.key, size)
    x = np.array(workload_vector(w.key, size), dtype=np.float64)
    one_shot = pyad.value_and_grad(fn)
    gc.collect()
    start = time.perf_counter()
    F = pyad.compile(fn, x[::-1].copy())
    out["compile_ms"] = (time.perf_counter() - start) * MS
    timed = [
        Timed("one_shot", lambda: one_shot(x), out["ops"]),
        Timed("replay", lambda: F.value_and_grad(x), out["ops"]),
    ]
    for t in timed:
        t.calibrate(min_seconds)
    interleaved(timed, repeats)
    shot, replay = timed[0].figures(), timed[1].figures()
    out["repeats"] = shot["repeats"]
    out["one_shot_ms"] = shot["median_us_per_call"] / 1e3
    out["one_shot_min_ms"] = shot["min_us_per_call"] / 1e3
    out["ns_per_op"] = shot["median_ns_per_op"]
    out["replay_us_per_call"] = replay["median_us_per_call"]
    out["replay_ns_per_op"] = replay["median_ns_per_op"]
    out["replay_min_us_per_call"] = replay["min_us_per_call"]
    out["array_records"], out["nbytes"] = _records_and_bytes(fn, x)
    out["bytes_per_op"] = out["nbytes"] / max(records, 1)
    out.update(_checks(w, size, fn, x, F))
    out["note"] = _note(out)


def _checks(
    w: Workload, size: int, fn: Callable[[Any], Any], x: FloatArray, F: pyad.Function
) -> dict[str, Any]:
    """The one-shot against pyad.reference and against pyad's scalar recording; the replay
    against the one-shot (bit for bit)."""
    value, grad = pyad.value_and_grad(fn)(x)
    ref_value, ref_grad = reference_answer(w, size)
    scalar_value, scalar_grad = pyad.value_and_grad(loss_function(w.key, size))(x)
    worst_scalar, differ_scalar = max_rel_diff(grad.tolist(), scalar_grad.tolist())
    replay_value, replay_grad = F.value_and_grad(x)
    return {
        "grad_max_rel_diff": max_rel_diff(grad.tolist(), ref_grad)[0],
        "value_rel_diff": _rel(float(value), ref_value),
        "vs_scalar_pyad": {
            "value_rel_diff": _rel(float(value), float(scalar_value)),
            "grad_max_rel_diff": worst_scalar,
            "grads_bitwise_different": differ_scalar,
            "inputs": int(x.shape[0]),
        },
        "replay_equals_one_shot": bool(
            float(replay_value) == float(value) and np.array_equal(replay_grad, grad)
        ),
    }


def _note(out: dict[str, Any]) -> str:
    """The row's line under the table: its own records, its agreement with the scalar
    recording and of its replay with its one-shot."""
    vs = out["vs_scalar_pyad"]
    grad = (
        "equal bit for bit"
        if vs["grads_bitwise_different"] == 0
        else f"max rel diff {vs['grad_max_rel_diff']:.1e} "
        f"({vs['grads_bitwise_different']} of {vs['inputs']} entries differ)"
    )
    value = "equal" if vs["value_rel_diff"] == 0 else f"rel diff {vs['value_rel_diff']:.1e}"
    replay = "equals" if out["replay_equals_one_shot"] else "DIFFERS FROM"
    return (
        f"{NAME}: {out['array_records']} records of its own (ns/op and B/op per scalar op); "
        f"against pyad's scalar recording: value {value}, gradient {grad}; "
        f"its replay {replay} its one-shot bit for bit"
    )


__all__ = ["NAME", "WORKLOADS", "array_loss", "row"]
