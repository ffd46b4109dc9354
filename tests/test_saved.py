"""Saved compiled functions: Function.save / load, to_bytes / from_bytes and pickling.

The oracle is the original Function: a loaded or unpickled copy gives the very same bits for
values, gradients, Jacobians, Hessian-vector products and Hessians, for single points and
batches, in this process and in worker processes. A loaded copy has no Python function, so
an input that flips a guard raises GuardError; an unpickled one whose fn pickles traces again.
Damaged bytes of every kind raise FormatError (a ValueError) and never crash, including
damage behind a recomputed checksum, which reaches the structural checks.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import pickle
import struct
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from test_compile import (
    MLP_INPUTS,
    OPERATOR_CASES,
    _op_function,
    _points,
    assert_identical,
    branchy,
    cubic_or_square,
    dag_cases,
    mlp,
    polar,
    rosenbrock,
    run_program,
    seed,
    smooth3,
    w1,
)

import pyad
from pyad import saved
from pyad.errors import FormatError, GuardError, PyadError
from pyad.var import Var

# -- helpers -----------------------------------------------------------------------------------


def assert_same_function(F: pyad.Function, G: pyad.Function, xs: np.ndarray) -> None:
    """G gives F's bits everywhere on the points xs (k, n), one by one and as a batch."""
    assert (G.n_inputs, G.n_outputs, G.scalar, G.strict) == (
        F.n_inputs,
        F.n_outputs,
        F.scalar,
        F.strict,
    )
    assert G.info == F.info
    assert_identical(G(xs), F(xs), "batch values")
    assert_identical(G.jacobian(xs), F.jacobian(xs), "batch jacobian")
    for x in xs:
        assert_identical(G(x), F(x), f"value at {x}")
        assert_identical(G.jacobian(x), F.jacobian(x), f"jacobian at {x}")
    if F.scalar:
        v1, g1 = F.value_and_grad(xs)
        v2, g2 = G.value_and_grad(xs)
        assert_identical(v2, v1, "batch value_and_grad values")
        assert_identical(g2, g1, "batch value_and_grad grads")
        dirs = np.cos(np.arange(xs.size, dtype=np.float64)).reshape(xs.shape)
        assert_identical(G.hvp(xs, dirs), F.hvp(xs, dirs), "batch hvp")
        assert_identical(G.hessian(xs[0]), F.hessian(xs[0]), "hessian")


def points(n: int, k: int = 5, low: float = 0.2, high: float = 1.5, seed_: int = 0) -> np.ndarray:
    return np.random.default_rng(seed_ + n).uniform(low, high, size=(k, n))


def reseal(data: bytes) -> bytes:
    """The container with its CRC-32 recomputed (to reach the checks behind it)."""
    return data[:12] + struct.pack("<I", zlib.crc32(data[16:])) + data[16:]


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def split(data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """The JSON header and the C program blobs of a container (which must be valid)."""
    (size,) = struct.unpack_from("<I", data, 16)
    meta = json.loads(data[20 : 20 + size])
    at = 20 + size
    (count,) = struct.unpack_from("<I", data, at)
    at += 4
    blobs = []
    for _ in range(count):
        (n,) = struct.unpack_from("<Q", data, at)
        blobs.append(data[at + 8 : at + 8 + n])
        at += 8 + n
    assert at == len(data)
    return meta, blobs


def join(meta: dict[str, Any], blobs: list[bytes], seal_blobs: bool = False) -> bytes:
    """A container of the given header and blobs (resealing each blob's FNV-1a if asked)."""
    if seal_blobs:
        blobs = [b[:-8] + struct.pack("<Q", fnv1a64(b[:-8])) for b in blobs]
    header = json.dumps(meta).encode()
    body = struct.pack("<I", len(header)) + header + struct.pack("<I", len(blobs))
    body += b"".join(struct.pack("<Q", len(b)) + b for b in blobs)
    return saved.MAGIC + struct.pack("<II", saved.VERSION, zlib.crc32(body)) + body


def load_or_refuse(data: bytes) -> pyad.Function | None:
    """from_bytes, which may only raise FormatError; a Function it accepts must evaluate."""
    try:
        G = pyad.Function.from_bytes(data)
    except FormatError as exc:
        assert str(exc)
        return None
    x = np.full((2, G.n_inputs), 0.5)
    try:
        G(x)
        G.jacobian(x[0])
    except GuardError:
        pass
    return G


# -- round trips -------------------------------------------------------------------------------

FUNCTIONS = [
    (seed, [0.7, 1.3]),
    (rosenbrock, [0.5, 0.9, 1.1, 0.3]),
    (polar, [1.2, 0.4]),
    (smooth3, [0.8, 1.1, 0.6]),
    (w1, list(np.linspace(0.6, 1.4, 12))),
    (mlp, list(np.linspace(-0.9, 0.9, MLP_INPUTS))),
]


@pytest.mark.parametrize(("fn", "x0"), FUNCTIONS, ids=[f.__name__ for f, _ in FUNCTIONS])
def test_file_bytes_and_pickle_round_trips(fn: Any, x0: list[float], tmp_path: Path) -> None:
    F = pyad.compile(fn, x0)
    xs = np.vstack([x0, points(len(x0), low=0.3, high=1.4)])
    F.save(tmp_path / "f.pyad")
    G = pyad.Function.load(tmp_path / "f.pyad")
    assert G.fn is None and G.retraces == 0
    assert_same_function(F, G, xs)
    assert G.to_bytes() == F.to_bytes() == (tmp_path / "f.pyad").read_bytes()
    H = pyad.Function.from_bytes(F.to_bytes())
    assert_same_function(F, H, xs)
    P = pickle.loads(pickle.dumps(F))
    assert P.fn is fn  # a module-level function pickles by reference
    assert_same_function(F, P, xs)
    assert repr(G) == repr(F)


def test_load_takes_str_paths(tmp_path: Path) -> None:
    F = pyad.compile(seed, [0.7, 1.3])
    path = str(tmp_path / "seed.pyad")
    F.save(path)
    assert pyad.Function.load(path)([0.5, 2.0]) == F([0.5, 2.0])


@pytest.mark.parametrize("name", sorted(pyad.functions.__all__))
def test_every_function_round_trips(name: str) -> None:
    fn = _op_function(name)
    pts = np.array(_points(name))
    F = pyad.compile(fn, pts[0])
    assert_same_function(F, pyad.Function.from_bytes(F.to_bytes()), pts)


@pytest.mark.parametrize("name", list(OPERATOR_CASES))
def test_every_operator_round_trips(name: str) -> None:
    F = pyad.compile(OPERATOR_CASES[name], [0.3, 0.6])
    pts = np.array([[0.3, 0.6], [1.7, 0.4], [0.9, 2.5]])
    assert_same_function(F, pyad.Function.from_bytes(F.to_bytes()), pts)


def test_vector_functions_constants_and_inputs_as_outputs() -> None:
    def fn(v: list[Var]) -> list[Any]:
        return [v[1], 2.5, pyad.softmax([v[0], v[1], 0.5])[1], v[0] * 100.0 + 100.0]

    F = pyad.compile(fn, [0.2, 0.9])
    G = pyad.Function.from_bytes(F.to_bytes())
    assert_same_function(F, G, points(2))


def test_a_large_batch_of_a_long_trace() -> None:
    F = pyad.compile(w1, np.linspace(0.6, 1.4, 400))
    xs = points(400, k=300, low=0.5, high=1.5)
    G = pyad.Function.from_bytes(F.to_bytes())
    assert_identical(G.value_and_grad(xs)[1], F.value_and_grad(xs)[1], "grads")


def test_the_c_form_is_compact() -> None:
    """About 9 bytes per binary instruction (op byte and two u32 slots), 5 per unary."""
    F = pyad.compile(w1, np.linspace(0.6, 1.4, 1000))
    _, (blob,) = split(F.to_bytes())
    assert len(blob) < 10 * F.info["instructions"] + 8 * F.info["constants"] + 100


# -- guards ------------------------------------------------------------------------------------


def test_a_loaded_function_reports_a_flipped_guard() -> None:
    F = pyad.compile(branchy, [2.0])
    G = pyad.Function.from_bytes(F.to_bytes())
    assert G([3.0]) == F([3.0])
    with pytest.raises(GuardError, match=r"loaded without its Python function") as info:
        G([-1.0])
    assert "`>`" in str(info.value) and "test_compile.py" in str(info.value)
    assert G.retraces == 0
    with pytest.raises(GuardError):
        G.grad(np.array([[1.0], [-1.0]]))
    with pytest.raises(GuardError):
        G.hvp([-1.0], [1.0])


def test_every_stored_trace_is_kept() -> None:
    """Traces made before saving serve both sides of the guard after loading."""
    F = pyad.compile(cubic_or_square, [1.0, 2.0])
    F([-1.0, 2.0])
    assert F.retraces == 1
    G = pyad.Function.from_bytes(F.to_bytes())
    xs = np.array([[1.5, 0.5], [-0.5, 3.0], [2.0, -1.0], [-2.0, -2.0]])
    assert_identical(G.value_and_grad(xs)[1], F.value_and_grad(xs)[1], "grads on both sides")
    assert_identical(G.hessian([-0.5, 3.0]), F.hessian([-0.5, 3.0]), "hessian")
    assert G.retraces == 0


def test_strict_is_kept() -> None:
    F = pyad.compile(branchy, [2.0], strict=True)
    G = pyad.Function.from_bytes(F.to_bytes())
    assert G.strict
    with pytest.raises(GuardError, match="strict=True"):
        G([-1.0])


def test_an_unpickled_function_with_a_picklable_fn_traces_again() -> None:
    F = pyad.compile(branchy, [2.0])
    P = pickle.loads(pickle.dumps(F))
    assert P.fn is branchy
    assert P([-1.5]) == F([-1.5]) == 4.5
    assert P.retraces == 1


def test_an_unpickled_lambda_function_behaves_as_loaded() -> None:
    F = pyad.compile(lambda v: v[0] if v[0] > 0 else -v[0], [2.0])
    P = pickle.loads(pickle.dumps(F))
    assert P.fn is None
    assert P([5.0]) == 5.0
    with pytest.raises(GuardError, match="loaded without"):
        P([-1.0])


# -- other processes -------------------------------------------------------------------------


def _evaluate(F: pyad.Function, xs: np.ndarray) -> tuple[Any, ...]:
    values, grads = F.value_and_grad(xs)
    return values, grads, F.hessian(xs[0]), F(xs[1]), F.retraces


@pytest.mark.parametrize("start", ["forkserver", "spawn"])
def test_a_process_pool_gives_the_same_bits(start: str) -> None:
    """Spawned workers share no memory with this process: everything comes in the pickle."""
    F = pyad.compile(cubic_or_square, [1.0, 2.0])
    G = pyad.compile(mlp, np.linspace(-0.9, 0.9, MLP_INPUTS))
    jobs = [
        (F, np.array([[1.5, 0.5], [0.3, 3.0]])),
        (F, np.array([[-0.5, 3.0], [2.0, -1.0]])),  # flips the guard: the worker retraces
        (G, points(MLP_INPUTS, k=64, low=-1.0, high=1.0)),
    ]
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context(start)) as pool:
        results = list(pool.map(_evaluate, *zip(*jobs)))
    for (func, xs), got in zip(jobs, results):
        want = _evaluate(func, xs)  # the original, in this process
        for g, w in zip(got[:4], want[:4]):
            assert_identical(g, w, "worker result")
        assert got[4] == want[4]
    assert results[1][4] == 1


# -- damaged bytes -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> bytes:
    F = pyad.compile(cubic_or_square, [1.0, 2.0])
    F([-1.0, 2.0])  # two traces
    return F.to_bytes()


def test_every_truncation_is_refused(small: bytes) -> None:
    for n in range(len(small)):
        with pytest.raises(FormatError):
            pyad.Function.from_bytes(small[:n])
        load_or_refuse(reseal(small[:n]) if n >= 16 else small[:n])


def test_every_byte_flip_is_refused(small: bytes) -> None:
    accepted = 0
    for at in range(len(small)):
        for mask in (0x01, 0xFF):
            bad = bytearray(small)
            bad[at] ^= mask
            with pytest.raises(FormatError):
                pyad.Function.from_bytes(bytes(bad))
            if at >= 16:
                accepted += load_or_refuse(reseal(bytes(bad))) is not None
    assert accepted < len(small)  # only flips inside the guards' descriptions pass


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b"PYADFUNX" + b[8:], "not a saved pyad Function"),
        (lambda b: b[:8] + struct.pack("<I", 2) + b[12:], "container version 2"),
        (lambda b: b + b"\0", "CRC-32 mismatch"),
        (lambda b: reseal(b + b"\0"), "1 bytes after the last trace"),
        (lambda b: b[:-1], "CRC-32 mismatch"),
        (lambda b: reseal(b[:-1]), "truncated"),
        (lambda b: b[:10], "truncated"),
        (lambda b: b"", "truncated"),
    ],
)
def test_damaged_frames(small: bytes, change: Any, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        pyad.Function.from_bytes(change(small))


def _meta_change(key: str, value: Any) -> Any:
    def change(meta: dict[str, Any]) -> None:
        meta[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_meta_change("n_inputs", 3), "header says 3"),
        (_meta_change("n_inputs", -1), "must be a count"),
        (_meta_change("n_inputs", True), "must be a count"),
        (_meta_change("n_outputs", 2), "scalar function has one output"),
        (_meta_change("scalar", 1), "must be true or false"),
        (_meta_change("strict", None), "must be true or false"),
        (_meta_change("name", 5), "must be a string"),
        (_meta_change("traces", []), "1 to 17 traces"),
        (_meta_change("traces", [{"guards": []}] * 18), "1 to 17 traces"),
        (_meta_change("extra", 0), "must have the keys"),
        (lambda m: m.pop("pyad"), "must have the keys"),
        (lambda m: m["traces"].pop(), "2 programs for the 1 traces"),
        (lambda m: m["traces"][0]["guards"].pop(), "1 guards; the header says 2, 1 and 0"),
        (lambda m: m["traces"][0].update(x=1), "with the key 'guards'"),
        (lambda m: m["traces"][0]["guards"][0].update(cmp="=="), "trace 0, guard 0"),
        (lambda m: m["traces"][1]["guards"][0].update(held="yes"), "trace 1, guard 0"),
        (lambda m: m["traces"][0].update(guards={}), "must be a list"),
    ],
)
def test_inconsistent_headers(small: bytes, change: Any, message: str) -> None:
    meta, blobs = split(small)
    change(meta)
    with pytest.raises(FormatError, match=message):
        pyad.Function.from_bytes(join(meta, blobs))


def test_headers_that_are_not_json() -> None:
    for header in (b"{", b"\xff\xfe", b"[" * 100000, b"null", b"[]", b'"x"'):
        body = struct.pack("<I", len(header)) + header + struct.pack("<I", 0)
        data = saved.MAGIC + struct.pack("<II", 1, zlib.crc32(body)) + body
        with pytest.raises(FormatError):
            pyad.Function.from_bytes(data)
    body = struct.pack("<I", 1 << 30)
    with pytest.raises(FormatError, match="implausible"):
        pyad.Function.from_bytes(saved.MAGIC + struct.pack("<II", 1, zlib.crc32(body)) + body)


def test_c_programs_are_checked_behind_both_checksums(small: bytes) -> None:
    meta, blobs = split(small)
    with pytest.raises(FormatError, match="trace 1: checksum mismatch"):
        pyad.Function.from_bytes(join(meta, [blobs[0], blobs[1][:-1] + b"\0"]))
    # the first instruction's operand slot (after the 48-byte header, the op table and the
    # op byte) made to point at the instruction itself
    (nin,) = struct.unpack_from("<I", blobs[0], 12)
    (table,) = struct.unpack_from("<I", blobs[0], 40)
    at = 48 + table + 1
    bad = blobs[0][:at] + struct.pack("<I", nin) + blobs[0][at + 4 :]
    with pytest.raises(FormatError, match=f"trace 0: instruction 0 .* slot {nin}"):
        pyad.Function.from_bytes(join(meta, [bad, blobs[1]], seal_blobs=True))
    # any byte of a program changed behind both checksums: refused or a working program
    for at in range(len(blobs[0]) - 8):
        for value in (0x00, 0x3F, 0xFF):
            b = bytearray(blobs[0])
            b[at] = value
            load_or_refuse(join(meta, [bytes(b), blobs[1]], seal_blobs=True))


def test_format_error_is_a_value_error() -> None:
    assert issubclass(FormatError, ValueError) and issubclass(FormatError, PyadError)
    with pytest.raises(ValueError):
        pyad.Function.from_bytes(b"not a function")


def test_nothing_is_unpickled_from_a_file(tmp_path: Path) -> None:
    """A pickle stream is not a saved Function: load never hands bytes to pickle."""
    path = tmp_path / "evil.pyad"
    path.write_bytes(pickle.dumps(math.pi))
    with pytest.raises(FormatError):
        pyad.Function.load(path)


# -- random DAGs -------------------------------------------------------------------------------


@given(dag_cases())
def test_random_dags_round_trip_bit_for_bit(case: tuple[Any, ...]) -> None:
    program, x0, x1, x2 = case
    log: list[bool] = []

    def fn(v: list[Var]) -> Any:
        return run_program(program, v, log)

    F = pyad.compile(fn, x0)
    data = F.to_bytes()
    G = saved.from_bytes(data, fn)  # with fn: it traces again where F does
    assert G.to_bytes() == data
    xs = np.array([x0, x1, x2], dtype=np.float64)
    assert_identical(G.value_and_grad(xs)[1], F.value_and_grad(xs)[1], "grads")
    assert_identical(G(xs), F(xs), "values")
    assert G.retraces == F.retraces
    L = pyad.Function.from_bytes(data)  # without: the first trace's points only
    assert_identical(L(np.array([x0])), F(np.array([x0])), "loaded value at x0")
