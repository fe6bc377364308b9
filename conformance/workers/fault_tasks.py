"""Task functions of the fault tests, importable so kew stores them by reference.

Two kinds of bookkeeping:

- Across processes (``record_run``, ``slow_first_run``): each run RPUSHes its pid into a Redis key
  of the test's namespace, through a client of the process that runs it.
- Within the test process (``tracked``, ``tracked_sync``): each run is counted in a
  :class:`Tracker` of this module, which also measures how many runs of one task overlap.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kew.connection import create_client
from redis.asyncio import Redis

from ._common import log_key, runs_key

# one client per (event loop, URL): a worker process has one loop, a test has one per test
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Redis]] = (
    weakref.WeakKeyDictionary()
)


def _client(redis_url: str) -> Redis:
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(redis_url)
    if client is None:
        client = per_loop[redis_url] = create_client(redis_url)
    return client


async def close_clients() -> None:
    """Close the clients opened in the running loop (call before the loop ends)."""
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()


async def record_run(redis_url: str, namespace: str, task_id: str) -> str:
    """A quick task: logs ``"<task id> <pid>"`` once per run; returns the task id."""
    await _client(redis_url).rpush(log_key(namespace), f"{task_id} {os.getpid()}")
    return task_id


async def slow_first_run(
    redis_url: str, namespace: str, task_id: str, value: int, hold: float
) -> dict[str, int]:
    """Records the pid of each run; the first run then hangs ``hold`` s, later runs return.

    Returns ``{"value": value * 2, "pid": <pid of the run that finished>, "run": <its number>}``.
    """
    run = int(await _client(redis_url).rpush(runs_key(namespace, task_id), os.getpid()))
    if run == 1:
        await asyncio.sleep(hold)
    return {"value": value * 2, "pid": os.getpid(), "run": run}


# -- in-process bookkeeping --------------------------------------------------------------------


@dataclass
class Tracker:
    """What happened to the runs of tasks in this process (for one test)."""

    runs: Counter[str] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)
    cancelled: Counter[str] = field(default_factory=Counter)
    active: Counter[str] = field(default_factory=Counter)
    max_overlap: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, task_id: str) -> int:
        with self.lock:
            self.runs[task_id] += 1
            self.active[task_id] += 1
            self.max_overlap[task_id] = max(self.max_overlap[task_id], self.active[task_id])
            return self.runs[task_id]

    def leave(self, task_id: str, *, cancelled: bool) -> None:
        with self.lock:
            self.active[task_id] -= 1
            (self.cancelled if cancelled else self.finished)[task_id] += 1

    @property
    def total_finished(self) -> int:
        with self.lock:
            return sum(self.finished.values())


TRACKERS: dict[str, Tracker] = {}


def new_tracker(name: str) -> Tracker:
    """Create (or replace) the tracker ``name``; tasks refer to it by that name."""
    TRACKERS[name] = Tracker()
    return TRACKERS[name]


async def tracked(
    tracker: str, task_id: str, hold: float = 0.0, first_hold: float | None = None
) -> dict[str, Any]:
    """Counts its run, holds ``hold`` s (``first_hold`` on the first run when given)."""
    t = TRACKERS[tracker]
    run = t.enter(task_id)
    cancelled = False
    try:
        await asyncio.sleep(first_hold if first_hold is not None and run == 1 else hold)
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        t.leave(task_id, cancelled=cancelled)
    return {"task_id": task_id, "run": run}


def tracked_sync(tracker: str, task_id: str, hold: float = 0.0) -> dict[str, Any]:
    """The sync twin of :func:`tracked` (kew runs it in a thread); blocks ``hold`` s."""
    t = TRACKERS[tracker]
    run = t.enter(task_id)
    try:
        time.sleep(hold)
    finally:
        t.leave(task_id, cancelled=False)
    return {"task_id": task_id, "run": run}
