"""Write the seed corpus of fuzz_load.c (csrc/fuzz/corpus/load): saved programs of a few
compiled functions (every op and form, n-ary ops, softmax, matvec, guards, constants), each behind
the harness's first byte. Needs pyad installed: python csrc/fuzz/make_load_seeds.py"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import pyad
from pyad._native import program_save as _program_bytes

OUT = Path(__file__).resolve().parent / "corpus" / "load"
# first byte: message buffer size (low 7 bits % 80) and, when >= 128, the harness re-seals the
# checksum so that mutations reach the structural checks
PLAIN, RESEALED = 40, 128 + 40


def unary(v: list[Any]) -> Any:
    a, b = v[0], v[1]
    ys = [pyad.exp(a), pyad.log(b), pyad.sin(a), pyad.cos(b), pyad.tanh(a), pyad.sqrt(b)]
    ys += [pyad.sigmoid(a), pyad.softplus(b), pyad.relu(a), abs(b), -a]
    return pyad.sum(ys)


def binary(v: list[Any]) -> Any:
    a, b = v[0], v[1]
    return a * b + a / b - a + b**2 + 2.0**a + a**b + 3.0 * a - b / 4.0 + (1.0 - a)


def nary(v: list[Any]) -> Any:
    s = pyad.softmax(v)
    return pyad.dot(v, s) + pyad.logsumexp(v) + pyad.sum(v) + s[1]


def matvec(v: list[Any]) -> Any:
    m = np.array([[1.5, -2.0, 0.25], [0.5, 3.0, -1.0], [2.0, 0.0, 1.0], [-0.5, 1.0, 4.0]])
    y = pyad.matvec(m, [v[0], v[1], v[0] * v[2]])
    return pyad.dot(y, y) + pyad.sum(pyad.matvec(m[:, :2], [v[2], v[1]]))


def guarded(v: list[Any]) -> Any:
    y = v[0] * v[1]
    y = y + (pyad.log(v[0]) if v[0] > 0.5 else -v[0])
    return max(y, v[1]) + (v[2] if v[2] <= 1.0 else 2.0)


def several(v: list[Any]) -> list[Any]:
    return [v[0] * v[1], 7.0, pyad.tanh(v[2])]


def seeds() -> dict[str, bytes]:
    x0 = np.array([0.7, 1.3, 0.4])
    out = {}
    for fn in (unary, binary, nary, matvec, guarded, several):
        blob = _program_bytes(pyad.compile(fn, x0)._programs[0].p)
        out[fn.__name__] = bytes([PLAIN]) + blob
        out[fn.__name__ + "-resealed"] = bytes([RESEALED]) + blob
    return out


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (OUT / name).write_bytes(data)
    print(f"{len(seeds())} seeds in {OUT}")
