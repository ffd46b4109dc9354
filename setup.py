"""Only what setuptools needs to compile the C tape through cffi; the rest is pyproject.toml."""

import sys
import sysconfig

from setuptools import setup

# cffi builds the extension for CPython's stable ABI (pyad/_pyad_cffi.abi3.so, limited API)
# except on free-threaded and debug interpreters, where it builds a version-specific one. Tag
# the wheel for what it holds: cp39-abi3 (one wheel for CPython 3.9 and later, as
# requires-python says) wherever the extension is abi3, the interpreter's own tag elsewhere.
ABI3 = (
    sys.implementation.name == "cpython"
    and not sysconfig.get_config_var("Py_GIL_DISABLED")
    and not hasattr(sys, "gettotalrefcount")
)

setup(
    cffi_modules=["pyad/_build.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp39"}} if ABI3 else {},
)
