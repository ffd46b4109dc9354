"""Shared test configuration: hypothesis profiles and a fresh-tape fixture.

Choose a hypothesis profile with the environment variable HYPOTHESIS_PROFILE:

* ``ci`` (the default): about 100 examples per property, no deadline, derandomized so that
  every run of the suite draws the same examples;
* ``dev``: 20 examples, for a quick local loop;
* ``intense``: 5000 examples, for a long hunt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

import pyad

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=20,
    deadline=None,
    print_blob=True,
)
settings.register_profile(
    "intense",
    max_examples=5000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def tape() -> Iterator[pyad.Tape]:
    """A fresh tape, active (entered as a context manager) for the whole test."""
    with pyad.Tape() as t:
        yield t
