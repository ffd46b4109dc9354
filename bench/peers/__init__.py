"""Peer engines of ``python -m bench``: one small adapter module per AD engine.

Why adapters: each peer computes the workloads of docs/WORKLOADS.md in its own
idiom (what its users would write), so the comparison with pyad is fair, and a peer that is
not installed costs nothing but a "not installed (...)" row.

An adapter is a module ``bench/peers/<module>.py`` with

* ``NAME: str`` — the display name in the tables;
* ``WORKLOADS: tuple[str, ...]`` — which of "W1".."W5" it implements (one it cannot express
  is simply left out);
* ``available() -> tuple[bool, str]`` — ``(True, version)`` or ``(False, reason)``; never
  raises, and imports the engine only inside the function (importing the adapter is free);
* ``one_shot(workload, size) -> tuple[float, list[float]]`` — build the workload from the
  WORKLOADS.md's inputs and return (value, gradient w.r.t. the inputs); this is the timed call;
* optionally ``max_size(workload, size) -> int`` — a smaller size for a slow or recursive
  engine (the table says "n reduced to ...");
* optionally ``compile(workload, size) -> Callable[[np.ndarray], tuple[float, np.ndarray]]``
  — record / jit once; the returned function evaluates value and gradient at new inputs. The
  harness times ``compile`` apart from the per-call replay.

:data:`PEERS` lists the module names; :func:`load` imports one lazily and turns any failure
into a reason string, so a broken or missing peer is a table row, never an error.

JSON structure (``python -m bench --json``; what ``bench/plot.py`` reads)
-------------------------------------------------------------------------
Top level::

    {"command": [...], "machine": {...}, "versions": {"python", "pyad", "numpy", "cffi",
     "<peer NAME>": "1.2.3" | None, ...}, "settings": {...},
     "peers": {"<module>": {"name": NAME, "available": bool, "version": str | None,
                             "reason": str | None, "workloads": [...]}},
     "workloads": {"W1": {...}, ...}, "replay": {...}, "small_functions": {...},
     "elapsed_seconds": float}

``workloads[W]`` keeps the existing keys (title, size, leaves, ops, records, notes,
"engines" = the detailed pyad / reference / float figures) and adds ``"comparison"``: an
ordered dict, one row per engine, display name -> row::

    {"kind": "pyad" | "reference" | "float" | "pyad-arrays" | "peer",
     "module": "micrograd_peer" | None,   # peers only
     "status": "ok" | "not installed (...)" | "fails: RecursionError: ..." | "not implemented",
     "size": int,          # the size this engine ran at (n, points, depth or n_ops)
     "full_size": int,     # the workload's size in this run
     "reduced": str | None,  # why size < full_size ("max_size", "time budget"), else None
     "ops": int | None,    # pyad's record count of the workload at ``size`` (the ns/op unit)
     "repeats": int,
     "one_shot_ms": float | None, "one_shot_min_ms": float | None,
     "ns_per_op": float | None,       # one-shot / ops
     "x_pyad": float | None,          # ns_per_op / pyad's ns_per_op (> 1: slower than pyad)
     "compile_ms": float | None,      # engines with compile (pyad: pyad.compile)
     "replay_us_per_call": float | None, "replay_ns_per_op": float | None,
     "bytes_per_op": float | None,    # pyad: tape.nbytes / records; others None
     "grad_max_rel_diff": float | None,  # vs pyad.reference at ``size``, every run
     "value_rel_diff": float | None,
     "version": str | None}

The "pyad (arrays)" row (kind "pyad-arrays", W1 to W3: bench/arrays.py) also has
``array_records`` and ``nbytes`` (its own recording's), ``replay_min_us_per_call``,
``vs_scalar_pyad`` ({"value_rel_diff", "grad_max_rel_diff", "grads_bitwise_different",
"inputs"}: against pyad's scalar recording), ``replay_equals_one_shot`` and ``note``.

Only rows with status "ok" carry figures; others have the None values. Non-finite floats are
written as strings ("inf", "nan"), as everywhere in the bench JSON.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Callable

#: Adapter modules in table order. jax_peer and casadi_peer are written alongside; a module
#: that does not exist yet is reported like a missing engine.
PEERS: tuple[str, ...] = (
    "seed",
    "micrograd_peer",
    "torch_peer",
    "torch_vectorised",
    "autograd_peer",
    "jax_peer",
    "casadi_peer",
)


def unavailable(exc: BaseException, hint: str) -> tuple[bool, str]:
    """What a peer's ``available()`` says when importing its engine raised ``exc``: not
    installed (how to install it), or installed but broken (what the import said)."""
    if isinstance(exc, ImportError):
        return False, f"not installed ({hint})"
    return False, f"not installed (import failed: {type(exc).__name__}: {exc})"


def load(module: str) -> tuple[ModuleType | None, str]:
    """Import ``bench.peers.<module>`` and ask it whether its engine is there: (the module,
    its version) or (None, "not installed (reason)"). Never raises: a peer's import error is a
    benchmark result, not a crash."""
    try:
        mod = importlib.import_module(f"bench.peers.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.peers.{module}":
            return None, f"not installed (no adapter bench/peers/{module}.py)"
        return None, f"not installed (adapter {module}: {exc})"
    except Exception as exc:  # a broken adapter must not take the bench down
        return None, f"not installed (adapter {module}: {type(exc).__name__}: {exc})"
    try:
        ok, text = mod.available()
    except Exception as exc:
        return None, f"not installed ({type(exc).__name__}: {exc})"
    if not ok:
        return None, text if text.startswith("not installed") else f"not installed ({text})"
    return mod, str(text)


def display_name(module: str) -> str:
    """The adapter's NAME, or the module name when the adapter cannot even be imported."""
    try:
        return str(importlib.import_module(f"bench.peers.{module}").NAME)
    except Exception:
        return module


def scalar_one_shot(
    m: Any,
    workload: str,
    size: int,
    value_of: Callable[[Any], float],
    grad_of: Callable[[Any], float],
) -> tuple[float, list[float]]:
    """The one-shot of a scalar engine with micrograd's API (``loss.backward()``) running the
    shared workload code on namespace ``m``: value and gradient through the two readers."""
    from bench import workloads as wl

    w = wl.WORKLOADS[workload]
    leaves = w.inputs(m, size)
    loss = w.loss(m, leaves, size)
    loss.backward()
    return value_of(loss), [grad_of(x) for x in leaves]
