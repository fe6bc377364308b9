"""Task functions of the operations conformance tests (cancel, pause, dead letters, fleet-wide
limits, rate limits, progress).

Every function is module-level, so kew stores it by reference (``ops_tasks:<name>``) like a real
application's tasks. They report to the test through the suite's :class:`tasks.Probe` (found by
name in :data:`tasks.PROBES`; the ``probe`` fixture of ``conftest.py`` makes one per test):

- ``probe.record(label)`` notes each run (label, start time) and counts attempts;
- ``probe.enter()`` / ``probe.leave()`` bracket the body of a run: ``probe.current`` is how many
  runs are inside at once and ``probe.peak`` the most there ever were (in every manager of the
  test, since they share one process);
- ``probe.cancelled`` / ``probe.finished`` list the runs that saw a CancelledError / whose
  ``finally`` ran;
- ``probe.values`` carries anything else a task wants to tell (or be told), e.g. step events.
"""

from __future__ import annotations

import asyncio
from typing import Any

import tasks
from kew import TaskQueueError, current_task

__all__ = [
    "BadOnLoad",
    "always_fail",
    "context_of_run",
    "context_of_sync_run",
    "counted",
    "fail_until",
    "hold",
    "hold_sync",
    "progress_bad_values",
    "progress_steps",
    "progress_sync",
    "progress_sync_in_loop",
    "stamp",
]

# the longest a task waits for a test to let it go: far beyond any test, but never forever
_TASK_WAIT = 30.0


def _p(name: str) -> tasks.Probe:
    return tasks.PROBES[name]


async def stamp(probe: str, label: str) -> str:
    """Note the run (its start time is in ``probe.runs``) and return at once."""
    _p(probe).record(label)
    return label


async def counted(probe: str, label: str, seconds: float) -> str:
    """Stay inside the probe's concurrency counter for ``seconds`` real seconds."""
    p = _p(probe)
    p.record(label)
    p.enter()
    try:
        await asyncio.sleep(seconds)
    finally:
        p.leave()
    return label


async def hold(probe: str, label: str) -> str:
    """Run (counted) until the probe's gate opens; note a cancellation and the ``finally``."""
    p = _p(probe)
    p.record(label)
    with p.running(label):
        await asyncio.wait_for(p.wait_gate(), _TASK_WAIT)
    return label


def hold_sync(probe: str, label: str) -> str:
    """Sync twin of :func:`hold`: blocks its thread until the gate opens (at most 30 s)."""
    p = _p(probe)
    p.record(label)
    with p.running(label):
        p.wait_gate_sync(_TASK_WAIT)
    return label


async def always_fail(probe: str, label: str) -> None:
    """Fail every attempt with ``RuntimeError("<label> attempt <n>")``."""
    n = _p(probe).record(label)
    raise RuntimeError(f"{label} attempt {n}")


async def fail_until(probe: str, label: str, failures: int) -> str:
    """Fail the first ``failures`` runs (``"<label> attempt <n>"``), then return ``label``."""
    n = _p(probe).record(label)
    if n <= failures:
        raise RuntimeError(f"{label} attempt {n}")
    return label


def _explode(text: str) -> None:
    raise ValueError(f"unreadable payload: {text}")


class BadOnLoad:
    """An argument that pickles fine but cannot be loaded again (its payload is unreadable)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __reduce__(self) -> Any:
        return (_explode, (self.text,))


async def takes_anything(probe: str, label: str, value: Any) -> str:
    _p(probe).record(label)
    return label


# -- the running task's own handle -----------------------------------------------------------


async def progress_steps(probe: str, label: str, steps: list[tuple[float, str]]) -> list[bool]:
    """Report each (value, message) of ``steps`` in turn; after each, wait for the test to set
    ``probe.values[label][i]`` (a list of asyncio.Event). Returns what report_progress returned.
    """
    p = _p(probe)
    p.record(label)
    events: list[asyncio.Event] = p.values[label]
    answers: list[bool] = []
    p.enter()
    try:
        for i, (value, message) in enumerate(steps):
            answers.append(await current_task().report_progress(value, message))
            await asyncio.wait_for(events[i].wait(), _TASK_WAIT)
    finally:
        p.leave()
    return answers


async def context_of_run(probe: str, label: str, failures: int = 0) -> tuple[str, str, int]:
    """Return (task_id, queue_name, attempt) of the run; fail the first ``failures`` runs."""
    n = _p(probe).record(label)
    ctx = current_task()
    if n <= failures:
        raise RuntimeError(f"{label} attempt {n}")
    return ctx.task_id, ctx.queue_name, ctx.attempt


def context_of_sync_run(probe: str, label: str) -> tuple[str, str, int]:
    """Sync twin of :func:`context_of_run` (runs in a thread)."""
    _p(probe).record(label)
    ctx = current_task()
    return ctx.task_id, ctx.queue_name, ctx.attempt


def progress_sync(probe: str, label: str, value: float, message: str) -> bool:
    """Sync task: report progress from its thread, then hold until the gate opens (at most 30 s);
    return what report_progress_sync returned."""
    p = _p(probe)
    p.record(label)
    stored = current_task().report_progress_sync(value, message)
    p.enter()
    try:
        p.wait_gate_sync(_TASK_WAIT)
    finally:
        p.leave()
    return stored


async def progress_sync_in_loop() -> str:
    """Call report_progress_sync from the event loop's own thread: return what it raised."""
    try:
        current_task().report_progress_sync(1.0, "")
    except TaskQueueError as exc:
        return type(exc).__name__
    return "nothing"


async def progress_bad_values() -> list[str]:
    """Try report_progress with bad values; return the name of what each raised (or "ok")."""
    outcomes: list[str] = []
    ctx = current_task()
    bad: list[tuple[Any, Any]] = [
        (float("nan"), ""),
        (float("inf"), ""),
        ("half", ""),
        (True, ""),
        (None, ""),
        (0.5, 42),
    ]
    for value, message in bad:
        try:
            await ctx.report_progress(value, message)
            outcomes.append("ok")
        except TaskQueueError as exc:
            kind = "ValueError" if isinstance(exc, ValueError) else "other"
            outcomes.append(f"{type(exc).__name__}/{kind}")
    return outcomes
