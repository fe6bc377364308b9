"""Setup of the conformance suite.

The backend comes from kew-testkit: ``--kew-backend=redis|memory|docker|url|auto`` (or the
``kew_backend`` ini option / ``KEW_BACKEND``), and every test reaches Redis only through the
testkit's fixtures (``kew_redis_url``, ``kew_manager``, ``kew_manager_factory``, ``fake_clock``),
so the same tests run unchanged on every backend. This file adds only test-side instruments:

- ``probe``: a :class:`tasks.Probe` the test's tasks report to (runs, attempts, overlap, a gate);
- the areas x backend report of ``report.py``, printed at the end of every run.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # tasks are stored by reference as ``tasks:<name>``
    sys.path.insert(0, _HERE)

import report  # noqa: E402
import tasks  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    report.register(config)


@pytest.fixture(scope="session", autouse=True)
def _conformance_backend(request: pytest.FixtureRequest, kew_backend: Any) -> None:
    """Tell the report which backend this run uses (the testkit's session backend)."""
    report.note_backend(request.config, kew_backend.name, kew_backend.describe())


@pytest.fixture
def probe(request: pytest.FixtureRequest, kew_manager_factory: Any) -> Iterator[tasks.Probe]:
    """A fresh Probe for this test's tasks; its gate opens at teardown so no task is left hanging.

    It depends on ``kew_manager_factory`` so that it is torn down first: the gate opens before
    the factory shuts the managers down and checks for leaked tasks.
    """
    clock = request.getfixturevalue("fake_clock") if "fake_clock" in request.fixturenames else None
    p = tasks.Probe(f"probe-{uuid.uuid4().hex[:10]}", clock)
    tasks.PROBES[p.name] = p
    yield p
    p.open_gate()
    tasks.PROBES.pop(p.name, None)
