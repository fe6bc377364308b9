"""Task functions of the conformance suite.

Every function here is module-level, so kew stores it by reference (``tasks:<name>``) and the
suite exercises the path real applications take. Tasks talk to the test that submitted them
through a :class:`Probe`, found by name in :data:`PROBES` (the ``probe`` fixture of
``conftest.py`` creates one per test and removes it afterwards). A probe records what ran and
when, counts attempts, measures how many runs overlap (the instrument behind every concurrency
rule), and holds a gate that tasks can wait on so a test decides when they finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["PROBES", "Probe"]


class Probe:
    """What the tasks of one test report back.

    Attributes:
        name: the key in :data:`PROBES` (passed to tasks as their first argument).
        clock: the test's FakeClock, or None; :meth:`now` reads it so runs are stamped in
            virtual time.
        runs: ``(label, time)`` per run, in the order the runs started.
        attempts: number of runs per key.
        current / peak: runs inside an instrumented section now / at most at once.
        cancelled, finished: keys of runs that saw a CancelledError / whose ``finally`` ran.
    """

    def __init__(self, name: str, clock: Any = None) -> None:
        self.name = name
        self.clock = clock
        self.runs: list[tuple[str, float]] = []
        self.attempts: Counter[str] = Counter()
        self.current = 0
        self.peak = 0
        self.cancelled: list[str] = []
        self.finished: list[str] = []
        self.values: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._gate = asyncio.Event()
        self._thread_gate = threading.Event()

    def now(self) -> float:
        return float(self.clock.now()) if self.clock is not None else time.time()

    def record(self, label: str) -> int:
        """Note one run of ``label``; return its attempt number (1-based)."""
        with self._lock:
            self.runs.append((label, self.now()))
            self.attempts[label] += 1
            return self.attempts[label]

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.runs]

    def enter(self) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def leave(self) -> None:
        with self._lock:
            self.current -= 1

    @contextlib.contextmanager
    def running(self, label: str) -> Iterator[None]:
        """Count the block as a running task; note a cancellation, and that its finally ran."""
        self.enter()
        try:
            yield
        except asyncio.CancelledError:
            self.cancelled.append(label)
            raise
        finally:
            self.leave()
            self.finished.append(label)

    def open_gate(self) -> None:
        """Let every task waiting in :func:`hold` (and :func:`hold_sync`) finish."""
        self._gate.set()
        self._thread_gate.set()

    async def wait_gate(self) -> None:
        await self._gate.wait()

    def wait_gate_sync(self, timeout: float) -> bool:
        return self._thread_gate.wait(timeout)


PROBES: dict[str, Probe] = {}


def _probe(name: str) -> Probe:
    return PROBES[name]


# -- plain tasks --------------------------------------------------------------------------------


async def noop() -> None:
    return None


async def add(a: int, b: int) -> int:
    return a + b


async def identity(value: Any) -> Any:
    return value


async def echo(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def sync_add(a: int, b: int) -> int:
    return a + b


def sync_thread_ident() -> int:
    return threading.get_ident()


async def running_loop_id() -> int:
    return id(asyncio.get_running_loop())


async def digest(data: bytes) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()


async def big_text(size: int) -> str:
    return "x" * size


async def fail_with(message: str) -> None:
    raise RuntimeError(message)


# -- probed tasks -------------------------------------------------------------------------------


async def record(probe: str, label: str, result: Any = None) -> Any:
    """Note the run and return ``result`` (``label`` when None)."""
    _probe(probe).record(label)
    return label if result is None else result


def record_sync(probe: str, label: str) -> str:
    _probe(probe).record(label)
    return label


async def fail(probe: str, label: str) -> None:
    """Fail every attempt with ``RuntimeError("<label> attempt <n>")``."""
    n = _probe(probe).record(label)
    raise RuntimeError(f"{label} attempt {n}")


async def flaky(probe: str, label: str, failures: int, result: Any) -> Any:
    """Fail the first ``failures`` attempts, then return ``result``."""
    n = _probe(probe).record(label)
    if n <= failures:
        raise RuntimeError(f"{label} attempt {n}")
    return result


async def hold(probe: str, label: str, result: Any = None) -> Any:
    """Count as running (see :attr:`Probe.current`) until the probe's gate opens."""
    p = _probe(probe)
    p.record(label)
    with p.running(label):
        await p.wait_gate()
    return label if result is None else result


def hold_sync(probe: str, label: str) -> str:
    """Sync twin of :func:`hold` (runs in a thread; waits at most 30 s for the gate)."""
    p = _probe(probe)
    p.record(label)
    with p.running(label):
        p.wait_gate_sync(30.0)
    return label


async def busy(probe: str, label: str, seconds: float, failing: bool = False) -> str:
    """Count as running for ``seconds`` real seconds, then succeed or fail."""
    p = _probe(probe)
    n = p.record(label)
    with p.running(label):
        await asyncio.sleep(seconds)
    if failing:
        raise RuntimeError(f"{label} attempt {n}")
    return label


async def hang(probe: str, label: str, hang_attempts: int = 10**9, result: Any = None) -> Any:
    """Hang (until cancelled) on the first ``hang_attempts`` attempts, then return ``result``."""
    p = _probe(probe)
    n = p.record(label)
    if n > hang_attempts:
        return result
    with p.running(label):
        await asyncio.sleep(3600)
    return result


def sleep_sync(probe: str, label: str, seconds: float) -> str:
    """A sync task that blocks its thread for ``seconds`` real seconds."""
    p = _probe(probe)
    p.record(label)
    with p.running(label):
        time.sleep(seconds)
    return label


def sync_waits_for_loop(probe: str, label: str) -> bool:
    """Block the thread until the test's event loop opens the gate (deadlocks if run in it)."""
    p = _probe(probe)
    p.record(label)
    return p.wait_gate_sync(10.0)


# -- values that round-trip, and values that cannot be stored ------------------------------------


@dataclass(frozen=True)
class Point:
    """A module-level dataclass (importable, so it pickles)."""

    x: int
    y: float
    tags: tuple[str, ...] = ()


@dataclass
class Order:
    order_id: str
    amount: Decimal
    lines: list[Point] = field(default_factory=list)


class Unpicklable:
    """A value that refuses to be pickled, by plain pickle and by cloudpickle alike."""

    def __reduce__(self) -> Any:
        raise TypeError("Unpicklable objects cannot be pickled")


async def make_unpicklable() -> Unpicklable:
    return Unpicklable()


async def make_lock() -> Any:
    return threading.Lock()
