"""Only what setuptools needs to compile the C tape through cffi; the rest is pyproject.toml."""

from setuptools import setup

setup(cffi_modules=["pyad/_build.py:ffibuilder"])
