"""Function.map: a batch split across worker processes (or a Dask cluster) gives bit for bit
the single-process call's results, guards and retraces included."""

from __future__ import annotations

import glob
import multiprocessing
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest

import pyad
from pyad import errors, parallel
from pyad.parallel import METHODS

N = 6


def smooth(v: list[pyad.Var]) -> pyad.Var:
    """Every kind of op the replay has: unary, binary, constants, n-ary."""
    s = pyad.sum([pyad.sin(a) * b + pyad.exp(-a * a) for a, b in zip(v, v[1:])])
    return s + pyad.logsumexp(v) + pyad.dot(v, v) / 7.0 + pyad.softmax(v)[2]


def kinked(v: list[pyad.Var]) -> pyad.Var:
    """Python control flow on values: every sign pattern of v[0], v[1] is a trace of its own."""
    y = v[2] * v[3]
    y = y + (pyad.log(v[0]) if v[0] > 0 else v[0] * 3.0)
    return y + (v[1] ** 2 if v[1] >= 0.5 else -v[1])


def several(v: list[pyad.Var]) -> list[pyad.Var]:
    return [v[0] * v[1], pyad.tanh(v[2]) + v[3], pyad.sum(v)]


@pytest.fixture(scope="module", params=["forkserver", "spawn"])
def pool(request: pytest.FixtureRequest) -> Iterator[Executor]:
    ctx = multiprocessing.get_context(request.param)
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as executor:
        yield executor


def points(k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2.0, 2.0, size=(k, N))


def assert_same(got: object, want: object) -> None:
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
        return
    assert isinstance(got, np.ndarray) and isinstance(want, np.ndarray)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("method", ["__call__", "value_and_grad", "grad"])
def test_map_equals_one_process(pool: Executor, method: str) -> None:
    f = pyad.compile(smooth, np.ones(N))
    x = points(101)
    assert_same(f.map(x, pool, method=method), getattr(f, method)(x))


def test_map_vector_function(pool: Executor) -> None:
    f = pyad.compile(several, np.ones(N))
    x = points(37, seed=1)
    assert_same(f.map(x, pool, method="__call__"), f(x))
    assert_same(f.map(x, pool, method="jacobian"), f.jacobian(x))
    with pytest.raises(ValueError, match="value_and_grad needs fn to return one Var"):
        f.map(x, pool)


@pytest.mark.parametrize("chunks", [1, 2, 3, 7, 50, 1000])
def test_map_any_chunking(pool: Executor, chunks: int) -> None:
    f = pyad.compile(smooth, np.ones(N))
    x = points(50, seed=chunks)
    assert_same(f.map(x, pool, chunks=chunks), f.value_and_grad(x))


def test_map_guards_traced_again_in_the_caller(pool: Executor) -> None:
    """Workers answer the points their kept traces accept; the rest are traced here. The fn is
    a lambda (it does not pickle), so no worker could trace it."""
    f = pyad.compile(lambda v: kinked(v), np.full(N, 1.0))
    reference = pyad.compile(lambda v: kinked(v), np.full(N, 1.0))
    x = points(64, seed=3)
    got = f.map(x, pool)
    assert_same(got, reference.value_and_grad(x))
    assert f.retraces == 3  # the three other sign patterns of v[0] and v[1] - 0.5
    # Now that f keeps every pattern's trace, workers answer every point themselves.
    assert_same(f.map(x, pool), got)
    assert f.retraces == 3


def test_map_strict_guard_error(pool: Executor) -> None:
    f = pyad.compile(kinked, np.full(N, 1.0), strict=True)
    with pytest.raises(errors.GuardError, match="strict=True"):
        f.map(points(20, seed=4), pool)


def test_map_loaded_function_without_fn(pool: Executor) -> None:
    g = pyad.Function.from_bytes(pyad.compile(kinked, np.full(N, 1.0)).to_bytes())
    x = np.abs(points(30, seed=5)) + 1.0  # every point on the traced side of both guards
    assert_same(g.map(x, pool), g.value_and_grad(x))
    with pytest.raises(errors.GuardError, match="loaded without its Python function"):
        g.map(-x, pool)


def test_map_default_executor_is_a_kept_process_pool() -> None:
    f = pyad.compile(smooth, np.ones(N))
    x = points(9, seed=6)
    try:
        assert_same(f.map(x), f.value_and_grad(x))
        pool = parallel.default_executor()
        assert isinstance(pool, ProcessPoolExecutor)
        assert_same(f.map(x, method="__call__"), f(x))
        assert parallel.default_executor() is pool  # kept between calls
    finally:
        parallel.shutdown()
    assert parallel._default_pool is None
    assert_same(f.map(x), f.value_and_grad(x))  # a new pool after shutdown
    parallel.shutdown()


def test_map_thread_pool() -> None:
    f = pyad.compile(kinked, np.full(N, 1.0))
    x = points(40, seed=7)
    with ThreadPoolExecutor(max_workers=3) as threads:
        got = f.map(x, threads, chunks=5)
    assert_same(got, pyad.compile(kinked, np.full(N, 1.0)).value_and_grad(x))


def test_map_counts_the_workers_points_against_retraces() -> None:
    """RetraceWarning weighs retraces against every point evaluated, the workers' included:
    25 retraces among 125 points is no warning, though they are all the caller evaluated."""

    def counting(v: list[pyad.Var]) -> pyad.Var:
        t = v[0] * 0.0
        while t < v[0]:  # every unit interval of v[0] is a trace of its own
            t = t + 1.0
        return t * v[0]

    f = pyad.compile(counting, [0.5])
    x = np.concatenate([np.full(100, 0.25), np.arange(25.0) + 1.5]).reshape(-1, 1)
    with ThreadPoolExecutor(max_workers=2) as threads, warnings.catch_warnings():
        warnings.simplefilter("error")
        got = f.map(x, threads, method="__call__")
    assert f.retraces == 25
    np.testing.assert_array_equal(got, np.ceil(x[:, 0]) * x[:, 0])


def test_map_empty_batch(pool: Executor) -> None:
    f = pyad.compile(smooth, np.ones(N))
    x = np.empty((0, N))
    assert_same(f.map(x, pool), f.value_and_grad(x))


def test_map_refuses_bad_arguments(pool: Executor) -> None:
    f = pyad.compile(smooth, np.ones(N))
    with pytest.raises(ValueError, match="method must be one of"):
        f.map(points(3), pool, method="hessian")
    with pytest.raises(ValueError, match=r"map takes a batch of points, shape \(k, 6\)"):
        f.map(np.ones(N), pool)
    with pytest.raises(ValueError, match=r"shape \(6,\) or \(k, 6\)"):
        f.map(np.ones((3, N + 1)), pool)
    with pytest.raises(ValueError, match="chunks must be a positive int"):
        f.map(points(3), pool, chunks=0)
    with pytest.raises(TypeError, match="executor must have a submit method"):
        f.map(points(3), object())
    assert set(METHODS) == {"__call__", "value_and_grad", "grad", "jacobian"}


def test_map_worker_errors_reach_the_caller(pool: Executor) -> None:
    """A failure in a worker (here the executor is shut down) is raised, not swallowed."""
    f = pyad.compile(smooth, np.ones(N))
    closed = ProcessPoolExecutor(max_workers=1)
    closed.shutdown()
    with pytest.raises(RuntimeError):
        f.map(points(4), closed)


def test_map_on_a_dask_cluster() -> None:
    """A Dask LocalCluster of two worker processes on loopback, started and stopped here."""
    import distributed  # in the dev extra: this test runs wherever the suite does

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        f = pyad.compile(lambda v: kinked(v), np.full(N, 1.0))
        reference = pyad.compile(lambda v: kinked(v), np.full(N, 1.0))
        x = points(80, seed=8)
        assert_same(f.map(x, client), reference.value_and_grad(x))
        assert_same(f.map(x, client, method="__call__"), reference(x))


_SCRIPT = """
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
import numpy as np
import pyad

print("top level")
F = pyad.compile(lambda v: v[0] * v[1], [1.0, 2.0])
pool = {pool}
{guard}print("map", F.map(np.ones((4, 2)), pool)[0].tolist())
"""
_SPAWN_POOL = 'ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))'


def _run_script(tmp_path: Path, pool: str, guard: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(_SCRIPT.format(pool=pool, guard=guard))
    root = str(Path(__file__).resolve().parent.parent)  # this checkout's pyad
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )


def _markers() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "pyad-map-unguarded-*")))


@pytest.mark.parametrize("pool", ["None", _SPAWN_POOL], ids=["default pool", "spawn pool"])
def test_map_at_a_scripts_top_level_says_to_add_the_main_guard(tmp_path: Path, pool: str) -> None:
    """Workers import the main script again; one that meets the call to map there stops, and
    the caller raises one short RuntimeError naming the fix, instead of a BrokenProcessPool
    after a traceback from every worker."""
    before = _markers()
    run = _run_script(tmp_path, pool, guard="")
    assert run.returncode == 1
    # Each spawned worker made a pool of its own at the script's top level before it stopped;
    # multiprocessing's resource tracker reports that pool's semaphores when it ends, at a
    # moment that races with the caller's traceback. That report is the script's, not map's.
    lines = [line for line in run.stderr.strip().splitlines() if "resource_tracker:" not in line]
    assert lines[-1].startswith("RuntimeError: map's worker processes import the main script")
    assert 'put the code that calls map under `if __name__ == "__main__":`' in lines[-1]
    assert len(lines) <= 12 and "BrokenProcessPool" not in run.stderr, run.stderr
    assert _markers() <= before  # the workers' marker is taken
    # with the guard, the same script maps
    run = _run_script(tmp_path, pool, guard='if __name__ == "__main__":\n    ')
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert "map [1.0, 1.0, 1.0, 1.0]" in run.stdout.splitlines()


def test_map_a_worker_that_dies_otherwise_is_a_broken_pool() -> None:
    """Only workers that met map while starting make the guard message: another death is
    reported as the pool reports it."""
    f = pyad.compile(smooth, np.ones(N))
    ctx = multiprocessing.get_context("forkserver")
    dying = ProcessPoolExecutor(1, mp_context=ctx, initializer=os._exit, initargs=(3,))
    with dying, pytest.raises(BrokenProcessPool):
        f.map(points(4), dying)
