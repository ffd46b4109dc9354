"""Shared test configuration: hypothesis profiles and a fresh-tape fixture.

Choose a hypothesis profile with the environment variable HYPOTHESIS_PROFILE:

* ``ci`` (the default): about 100 examples per property, no deadline, derandomized so that
  every run of the suite draws the same examples;
* ``dev``: 20 examples, for a quick local loop;
* ``intense``: 5000 examples, for a long hunt;
* ``large``: 100,000 examples, not derandomized (each run draws new ones), for the one
  property that checks everything about a random DAG (values and gradients against
  pyad.reference, repeated and intermediate backward calls, compiled replay against a fresh
  recording). Select it alone: about 15 minutes of CPU (and 0.5 GB, hypothesis keeps a
  record of every example)::

      HYPOTHESIS_PROFILE=large python -m pytest tests/test_dags.py -k scale -s \\
          --hypothesis-show-statistics

  ``-s`` shows a progress line every 10,000 DAGs; the statistics at the end give the number
  of DAGs checked ("N passing").
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
settings.register_profile(
    "large",
    max_examples=100_000,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def tape() -> Iterator[pyad.Tape]:
    """A fresh tape, active (entered as a context manager) for the whole test."""
    with pyad.Tape() as t:
        yield t
