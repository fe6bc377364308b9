"""Time for kew: the only module that reads the time or sleeps.

Everything in kew that needs "now" or a delay goes through a :class:`Clock`. The default is
:class:`SystemClock`; kew-testkit's ``FakeClock`` implements the same protocol so that a test can
move time forward and see deferred tasks and retry backoffs fire at once (design.md §7).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "real_sleep"]


@runtime_checkable
class Clock(Protocol):
    """What kew needs from a clock.

    ``now()`` returns wall-clock time in seconds since the Unix epoch (float); it is passed to every
    Lua script as milliseconds, so all processes sharing a Redis must have roughly synchronised
    clocks (NTP). ``sleep(seconds)`` waits that many seconds *of this clock's time*.
    ``is_virtual`` is False for real clocks; a virtual clock's sleeps only end when its time is
    advanced, so kew never uses a Redis-side blocking timeout as a stand-in for it.
    """

    is_virtual: bool

    def now(self) -> float:
        """Return the current time in seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (float, seconds of this clock's time; <= 0 returns at once)."""
        ...


class SystemClock:
    """The real clock: ``time.time()`` and ``asyncio.sleep()``."""

    is_virtual = False

    def now(self) -> float:
        """Return ``time.time()`` (seconds since the epoch)."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` real seconds (``asyncio.sleep``)."""
        await asyncio.sleep(max(0.0, seconds))

    def monotonic(self) -> float:
        """Return a monotonic reading in seconds, for measuring durations."""
        return time.monotonic()


async def real_sleep(seconds: float) -> None:
    """Sleep in real time whatever the clock (connection backoff must not wait for a fake clock)."""
    await asyncio.sleep(max(0.0, seconds))
