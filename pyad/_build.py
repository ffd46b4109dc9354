"""cffi builder for pyad's native module (out-of-line API mode, run by setuptools).

The declarations come from csrc/pyad.h verbatim (the region between the cdef markers), so no
prototype is typed twice; op codes and status codes are read at import from the library's own
tables. The C sources are compiled into the extension: there is no shared library to find.
"""

from __future__ import annotations

import pathlib
import re
import sys

from cffi import FFI

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SOURCES = [
    "alloc.c",
    "status.c",
    "ops.c",
    "registry.c",
    "arena.c",
    "tape.c",
    "collect.c",
    "access.c",
    "stats.c",
    "record.c",
    "nary.c",
    "bulk.c",
    "sweep.c",
    "program.c",
    "replay.c",
    "saved.c",
    "parallel.c",
]


def _version() -> str:
    text = (ROOT / "pyad" / "_version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    if match is None:
        raise RuntimeError("pyad/_version.py has no __version__")
    return match.group(1)


def _op_rows() -> list[tuple[str, str]]:
    """(name, arity) of every row of csrc/ops.def."""
    text = re.sub(r"/\*.*?\*/", "", (CSRC / "ops.def").read_text(), flags=re.S)
    return re.findall(r"PYAD_OP\(\s*\w+\s*,\s*(\w+)\s*,\s*(\w+)\s*,", text)


def _per_op_cdef() -> str:
    """The per-op entry points pyad.h declares with PYAD_DECLARE_<arity> (cffi has no
    preprocessor to expand them)."""
    lines = []
    for name, arity in _op_rows():
        if arity == "1":
            lines.append(f"int64_t pyad_{name}(int64_t a);")
        elif arity == "2":
            lines.append(f"int64_t pyad_{name}(int64_t a, int64_t b);")
            lines.append(f"int64_t pyad_{name}_vc(int64_t a, double b);")
            lines.append(f"int64_t pyad_{name}_cv(double a, int64_t b);")
    return "\n".join(lines)


def _api_cdef() -> str:
    """The declarations of the C library's entry points (pyad.h's cdef region, per-op ones)."""
    header = (CSRC / "pyad.h").read_text()
    match = re.search(r"/\* pyad-cdef-begin \*/(.*)/\* pyad-cdef-end \*/", header, re.S)
    if match is None:
        raise RuntimeError("csrc/pyad.h lacks the pyad-cdef-begin/end markers")
    return "\n".join([match.group(1), _per_op_cdef()])


def _locked_wrappers() -> tuple[str, str]:
    """C source and declarations of pyad_<name>_locked for every entry point that uses a tape:
    the call made under the tape's mutex, with the interpreter released meanwhile (see
    PRELUDE). The tape is the first argument, or for the per-op entry points the tape of the
    first handle."""
    per_op = {
        f"pyad_{name}{suffix}"
        for name, arity in _op_rows()
        if arity in ("1", "2")
        for suffix in (("",) if arity == "1" else ("", "_vc", "_cv"))
    }
    text = re.sub(r"/\*.*?\*/", "", _api_cdef(), flags=re.S)
    source, cdef = [], []
    prototype = r"([A-Za-z_][\w \*]*?)\s*\b(pyad_\w+)\s*\(([^;]*?)\)\s*;"
    for ret, name, params in re.findall(prototype, text):
        args = [p.strip() for p in params.split(",")]
        names = [re.findall(r"\w+", a)[-1] for a in args]
        if name in per_op:
            handle = names[[a.startswith("int64_t") for a in args].index(True)]
            tape = f"pyad__registry_find((uint64_t){handle} >> PYAD_SLOT_BITS)"
        elif re.fullmatch(r"pyad_tape\s*\*\s*\w+", args[0]) and name != "pyad_tape_free":
            tape = names[0]
        else:
            continue
        ret = " ".join(ret.split())
        decl = f"{ret} {name}_locked({', '.join(args)})"
        cdef.append(decl + ";")
        source.append(
            f"static {decl}\n{{\n"
            f"    PyThreadState *state_ = PyEval_SaveThread();\n"
            f"    pyad_tape *tape_ = {tape};\n"
            f"    if (tape_ != NULL)\n        pyad__lock(tape_);\n"
            f"    const {ret} result_ = {name}({', '.join(names)});\n"
            f"    if (tape_ != NULL)\n        pyad__unlock(tape_);\n"
            f"    PyEval_RestoreThread(state_);\n    return result_;\n}}\n"
        )
    return "\n".join(source), "\n".join(cdef)


def _cdef() -> str:
    return "\n".join(
        [_api_cdef(), "const char *pyad_build_version(void);", _NOGIL_CDEF, _locked_wrappers()[1]]
    )


# A recording call takes tens of nanoseconds, so releasing and retaking the GIL around each
# call would cost more than the call; under the GIL each call is then atomic, which is what
# lets several threads use one tape (pyad/tape.py). The macros below keep the GIL for every
# call of this module.
#
# Where the interpreter has no GIL (free-threaded CPython), pyad._native binds the
# pyad_<name>_locked wrappers instead (_locked_wrappers): each takes the tape's mutex around
# the call, so calls on one tape are again one at a time, as the C library requires. They
# detach from the interpreter while they wait and run (PyEval_SaveThread), as a blocking call
# must there; on a GIL build, where tests use them, that releases the GIL, so the calls of
# several threads really run at once and the mutex is what orders them.
#
# Long replays are the exception: pyad.compiled calls these two wrappers instead, which
# release the GIL around the replay so that other Python threads run meanwhile (replays of
# one program from several threads at once among them: a program is only read, and each
# replay brings its own work buffer). They touch no Python object between the save and the
# restore; the numpy buffers they are given stay alive in the caller's frame.
PRELUDE = """
#include "internal.h"
#undef Py_BEGIN_ALLOW_THREADS
#undef Py_END_ALLOW_THREADS
#define Py_BEGIN_ALLOW_THREADS {
#define Py_END_ALLOW_THREADS }
static const char *pyad_build_version(void) { return "%s"; }

static int pyad_program_run_nogil(const pyad_program *p, int64_t k, const double *x,
                                  int64_t nseed, const double *seeds, double *values,
                                  double *grads, int64_t *guards, double *work, int64_t nwork)
{
    PyThreadState *state = PyEval_SaveThread();
    const int status =
        pyad_program_run(p, k, x, nseed, seeds, values, grads, guards, work, nwork);
    PyEval_RestoreThread(state);
    return status;
}

static int pyad_program_hvp_nogil(const pyad_program *p, const double *x, int64_t ndir,
                                  const double *v, double *value, double *grad, double *hv,
                                  int64_t *guards, double *work, int64_t nwork)
{
    PyThreadState *state = PyEval_SaveThread();
    const int status = pyad_program_hvp(p, x, ndir, v, value, grad, hv, guards, work, nwork);
    PyEval_RestoreThread(state);
    return status;
}
"""

_NOGIL_CDEF = """
int pyad_program_run_nogil(const pyad_program *p, int64_t k, const double *x, int64_t nseed,
                           const double *seeds, double *values, double *grads, int64_t *guards,
                           double *work, int64_t nwork);
int pyad_program_hvp_nogil(const pyad_program *p, const double *x, int64_t ndir,
                           const double *v, double *value, double *grad, double *hv,
                           int64_t *guards, double *work, int64_t nwork);
"""

# Floating-point flags, none of which changes a result (so values stay pyad.reference's):
# -ffp-contract=off: a fused multiply-add would round differently from pyad.reference;
# -fno-math-errno: pyad never reads errno, and without it every exp() is an opaque call that
#   cannot be shared between an op's value and its partial;
# -fno-trapping-math: FP exceptions never trap here (Clang's default), which lets the replay's
#   loops over a block of points compute a sum and select it instead of branching.
FP_FLAGS = ["-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
_compile_args = ["-std=c11", "-O3", *FP_FLAGS]
_compile_args += ["-D_POSIX_C_SOURCE=200809L"]
if sys.platform == "win32":  # pragma: no cover - MSVC takes neither flag
    _compile_args = []

ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "pyad._pyad_cffi",
    PRELUDE % _version() + _locked_wrappers()[0],
    sources=[str((CSRC / name).relative_to(ROOT)) for name in SOURCES],
    include_dirs=[str(CSRC.relative_to(ROOT))],
    extra_compile_args=_compile_args,
    libraries=[] if sys.platform == "win32" else ["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
