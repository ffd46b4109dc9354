"""The native module is the one this package was built with, and its tables are fully
mapped on the Python side (statuses to exceptions, ops to functions)."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

import pyad
from pyad import _native, errors
from pyad._native import EXCEPTIONS, OPS, STATUS, ffi, lib

NOT_FAILURES = {"OK", "SEGMENT"}


def test_build_version_matches_package() -> None:
    assert ffi.string(lib.pyad_build_version()).decode() == pyad.__version__
    assert ffi.string(lib.pyad_version()).decode() == pyad.__version__


def test_every_failure_status_maps_to_exactly_one_exception() -> None:
    assert set(EXCEPTIONS) == set(STATUS) - NOT_FAILURES
    assert STATUS["OK"] == 0
    assert sorted(STATUS.values()) == list(range(len(STATUS)))
    for exc in EXCEPTIONS.values():
        assert issubclass(exc, errors.PyadError)


def test_exceptions_are_also_the_builtins_math_raises() -> None:
    assert issubclass(errors.DomainError, builtins.ValueError)
    assert issubclass(errors.RangeError, builtins.OverflowError)
    assert issubclass(errors.ZeroDivision, builtins.ZeroDivisionError)
    assert issubclass(errors.TapeMemoryError, builtins.MemoryError)
    assert issubclass(errors.ForeignVarError, builtins.ValueError)
    assert issubclass(errors.StaleVarError, builtins.RuntimeError)


def test_error_messages_come_from_the_tape() -> None:
    with pyad.Tape():
        x = pyad.Var(-2.0)
        try:
            pyad.log(x)
        except errors.DomainError as exc:
            assert "log(-2)" in str(exc)
        else:  # pragma: no cover
            raise AssertionError("log(-2) did not raise")


def test_every_op_of_the_table_has_a_python_binding() -> None:
    operators = {"neg", "abs", "add", "sub", "mul", "div"}
    nary = {"sum", "dot", "logsumexp", "softmax", "primitive", "matvec"}
    for name, (code, arity) in OPS.items():
        assert _native.OP_NAMES[code] == name
        if name == "leaf":
            assert arity == 0
        elif name in nary:
            assert arity == -1
            assert callable(getattr(pyad, name))
        elif name in operators:
            assert arity in (1, 2)
        else:
            assert callable(getattr(pyad, name)), name
        if arity == 1:
            assert hasattr(lib, f"pyad_{name}")
        if arity == 2:
            for suffix in ("", "_vc", "_cv"):
                assert hasattr(lib, f"pyad_{name}{suffix}")


def test_status_tables_agree_with_the_c_messages() -> None:
    for name, code in STATUS.items():
        assert ffi.string(lib.pyad_status_name(code)).decode() == name
        assert ffi.string(lib.pyad_strstatus(code))
    assert lib.pyad_status_name(len(STATUS)) == ffi.NULL


def test_array_entry_points_are_bound_and_raise_through_check() -> None:
    # pyad.array's way in (csrc/bulk.c): one call per array, records as one push each gives
    tape = pyad.Tape()
    p = tape._p
    values = np.array([1.0, 2.0, -1.0, 3.0])
    leaves = np.zeros(4, np.int64)
    out = np.zeros(4, np.int64)
    where = ffi.new("int64_t *")
    h = ffi.from_buffer("int64_t[]", leaves)
    assert lib.pyad_push_leaves(p, 4, ffi.from_buffer("double[]", values), h) == 0
    status = lib.pyad_push_map(
        p,
        OPS["log"][0],
        4,
        h,
        ffi.NULL,
        ffi.NULL,
        ffi.NULL,
        ffi.from_buffer("int64_t[]", out),
        where,
    )
    assert where[0] == 2 and _native.tape_len(p) == 4
    with pytest.raises(errors.DomainError, match=r"log\(-1\) at element 2"):
        _native.check(status, p)
    got = np.zeros(4)
    _native.get_values(p, _native.handle_array(leaves.tolist()), got)
    assert got.tolist() == values.tolist()
    sums = ffi.new("int64_t[2]")
    assert lib.pyad_push_reduce(p, OPS["sum"][0], 2, 2, h, ffi.NULL, sums) == 0
    assert lib.pyad_push_dots(p, 1, 2, h, ffi.NULL, h + 2, ffi.NULL, sums) == 0
    assert _native.tape_len(p) == 7
