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
    "tape.c",
    "record.c",
    "nary.c",
    "sweep.c",
    "program.c",
    "replay.c",
    "saved.c",
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


def _cdef() -> str:
    header = (CSRC / "pyad.h").read_text()
    match = re.search(r"/\* pyad-cdef-begin \*/(.*)/\* pyad-cdef-end \*/", header, re.S)
    if match is None:
        raise RuntimeError("csrc/pyad.h lacks the pyad-cdef-begin/end markers")
    return "\n".join(
        [match.group(1), _per_op_cdef(), "const char *pyad_build_version(void);", _NOGIL_CDEF]
    )


# The tape is owned by one thread (other threads get PYAD_THREAD) and a recording call takes
# tens of nanoseconds, so releasing and retaking the GIL around each call would cost more
# than the call. The macros below keep the GIL for every call of this module.
#
# Long replays are the exception: pyad.compiled calls these two wrappers instead, which
# release the GIL around the replay so that other Python threads run meanwhile (replays of
# one program from several threads at once among them: a program is only read, and each
# replay brings its own work buffer). They touch no Python object between the save and the
# restore; the numpy buffers they are given stay alive in the caller's frame.
PRELUDE = """
#include "pyad.h"
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
    PRELUDE % _version(),
    sources=[str((CSRC / name).relative_to(ROOT)) for name in SOURCES],
    include_dirs=[str(CSRC.relative_to(ROOT))],
    extra_compile_args=_compile_args,
    libraries=[] if sys.platform == "win32" else ["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
