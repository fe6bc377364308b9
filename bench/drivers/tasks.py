"""The task bodies every library runs (standard library only).

Each driver wraps these in its library's calling convention (arq passes ``ctx`` first, SAQ
keyword arguments, BullMQ a job object...), so the work done inside a task is identical:

- :func:`noop`: returns None at once;
- :func:`pickup`: notes the moment it started (``time.perf_counter``) for the pickup scenario;
- :func:`sleep20`: the crash scenario's task: writes ``S <key>`` when it starts and
  ``F <key>`` when it finishes 20 ms later to this process's record file (one ``O_APPEND``
  write per line, so lines of concurrent tasks never interleave).

kew stores functions by reference (``module:qualname``); these live in an importable module so
its worker processes load them by name, as an application's would.
"""

from __future__ import annotations

import asyncio
import os
import time

__all__ = ["TASKS", "noop", "open_record", "pickup", "pickup_waiter", "sleep20"]

_record_fd: int | None = None
_pickup_waiters: dict[str, asyncio.Future[float]] = {}


def open_record(path: str) -> None:
    """Send this process's ``S``/``F`` lines of :func:`sleep20` to ``path`` (appending)."""
    global _record_fd
    _record_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _record(kind: bytes, key: str) -> None:
    if _record_fd is not None:
        os.write(_record_fd, kind + b" " + key.encode() + b"\n")


def pickup_waiter(key: str) -> asyncio.Future[float]:
    """A future set to the ``perf_counter()`` at which task ``key`` starts (same process)."""
    fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    _pickup_waiters[key] = fut
    return fut


async def noop(key: str) -> None:
    """The no-op task."""
    return None


async def pickup(key: str) -> None:
    """Record when this task started, for the pickup-latency scenario."""
    started = time.perf_counter()
    fut = _pickup_waiters.pop(key, None)
    if fut is not None and not fut.done():
        fut.set_result(started)


async def sleep20(key: str) -> None:
    """The crash scenario's task: 20 ms of (non-blocking) work, start and finish recorded."""
    _record(b"S", key)
    await asyncio.sleep(0.02)
    _record(b"F", key)


TASKS = {"noop": noop, "pickup": pickup, "sleep20": sleep20}
