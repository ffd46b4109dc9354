"""Run pyad's Python tests under valgrind memcheck and fail on memory errors in pyad's C code.

    python tests/valgrind_python.py              # the default selection (about 5-10 minutes)
    python tests/valgrind_python.py -- tests/test_native.py -k handles   # any pytest arguments

Python runs with PYTHONMALLOC=malloc, so that every object is its own malloc block that
memcheck can see, and HYPOTHESIS_PROFILE=dev (20 examples a property: valgrind makes Python
20-50 times slower). Exit status 1 if memcheck reports an error (invalid read or write, use of
an uninitialised value, bad free) or a definitely lost block whose stack passes through pyad's
C library (a frame named ``pyad_...`` or in ``_pyad_cffi``); 2 if pytest itself fails. The
reports of CPython, numpy and cffi themselves (this interpreter gives a few dozen, at startup,
in the eval loop and at exit) are counted, not judged; tests/valgrind-python.supp silences
those that pass through pyad's extension module without being pyad's.
PYAD_VALGRIND_XML=path keeps memcheck's whole XML report there.

A tape that is never freed is not "definitely lost" to memcheck: the C registry of live
tapes (csrc/registry.c) still points at it. tests/test_leaks.py counts tape frees instead.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUPP = ROOT / "tests" / "valgrind-python.supp"

#: the pyad test files that exercise the C library; benchmark and peer tests are left out
FILES = [
    "tests/test_tape.py",
    "tests/test_ops.py",
    "tests/test_native.py",
    "tests/test_compile.py",
    "tests/test_api.py",
    "tests/test_errors.py",
    "tests/test_dags.py",
]
#: tests that only repeat at size what smaller tests check (a million records, thousands of
#: softmax operands, threads racing, long random programs): minutes each under valgrind
SLOW = [
    "many_operands",
    "million",
    "threads",
    "only_inputs_and_output_kept",
    "long_random",
    "long_trace",
    "large_batch",
    "scipy",
    "garbage_collected",
    "training_loop",
]


def is_pyad_frame(frame: ET.Element) -> bool:
    fn = frame.findtext("fn") or ""
    obj = frame.findtext("obj") or ""
    return fn.startswith("pyad_") or "_pyad_cffi" in obj


def describe(error: ET.Element) -> str:
    what = error.findtext("what") or error.findtext("xwhat/text") or ""
    frames = []
    for frame in error.findall("stack/frame")[:12]:
        where = frame.findtext("fn") or frame.findtext("obj") or "?"
        line = frame.findtext("line")
        frames.append(f"    {where}" + (f" ({frame.findtext('file')}:{line})" if line else ""))
    return "\n".join([f"  {error.findtext('kind')}: {what}", *frames])


def main(argv: list[str]) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    pytest_args = (
        argv[argv.index("--") + 1 :]
        if "--" in argv
        else [
            *FILES,
            "-k",
            " and ".join(f"not {name}" for name in SLOW),
        ]
    )
    env = dict(os.environ, PYTHONMALLOC="malloc", HYPOTHESIS_PROFILE="dev")
    with tempfile.TemporaryDirectory() as tmp:
        xml_file = Path(tmp) / "memcheck.xml"
        command = [
            "valgrind",
            "--tool=memcheck",
            "--leak-check=full",
            "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite",
            "--num-callers=30",
            f"--suppressions={SUPP}",
            "--xml=yes",
            f"--xml-file={xml_file}",
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *pytest_args,
        ]
        start = time.monotonic()
        tests = subprocess.run(command, cwd=ROOT, env=env, check=False)
        seconds = time.monotonic() - start
        root = ET.parse(xml_file).getroot()
        if os.environ.get("PYAD_VALGRIND_XML"):  # keep the full report for a closer look
            shutil.copy(xml_file, os.environ["PYAD_VALGRIND_XML"])

    errors = root.findall("error")
    leaks = [e for e in errors if (e.findtext("kind") or "").startswith("Leak_")]
    ours = [e for e in errors if any(is_pyad_frame(f) for f in e.findall("stack/frame"))]
    lost = sum(int(e.findtext("xwhat/leakedbytes") or 0) for e in leaks)
    lost_ours = sum(int(e.findtext("xwhat/leakedbytes") or 0) for e in leaks if e in ours)
    kinds = collections.Counter(e.findtext("kind") for e in errors if e not in leaks)
    print(f"== valgrind memcheck of pytest {' '.join(pytest_args)}")
    print(f"pytest exit status {tests.returncode}, {seconds:.0f} s under valgrind")
    print(f"definitely lost: {lost} bytes in {len(leaks)} records, {lost_ours} bytes via pyad")
    print(f"memory errors: {sum(kinds.values())} {dict(kinds)}, {len(ours)} via pyad")
    if ours:
        print(f"FAIL: {len(ours)} memcheck reports pass through pyad's C code:")
        for e in ours:
            print(describe(e))
        return 1
    if tests.returncode != 0:
        print("FAIL: the tests failed under valgrind")
        return 2
    print("OK: no memory error and nothing definitely lost in pyad's code (the other reports")
    print("are the interpreter's and its libraries'; PYAD_VALGRIND_XML=file keeps them all)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
