"""A virtual clock for tests: kew's ``Clock`` protocol with time that moves only when told to.

This module owns :class:`FakeClock`. Give it to a manager (``TaskQueueManager(clock=clock)``, or
request the ``fake_clock`` fixture) and ``await clock.advance(300)`` makes a task deferred by five
minutes due at once; nothing sleeps for real. kew's idle workers wait by racing a Redis wake-up
against ``clock.sleep(time to the next due task)``, so waking the sleepers wakes the workers.

Virtual time is kept as whole nanoseconds, so ``advance(0.999)`` then ``advance(0.001)`` lands
exactly on the next second (no float drift), and the default start is a whole second.

``advance`` moves time in steps, one sleeper deadline at a time (earliest first), and after each
step lets the event loop run until it is quiet, so a chain of retries (1 s, then 2 s, then 4 s)
runs at its exact virtual times even inside one large ``advance``. "Quiet" means: no sleeper was
added or woken for a short real-time window, and every watched probe (see :meth:`FakeClock.watch`,
which the testkit's manager fixtures use) reports that no due work is waiting to be picked up.
A step is cheaper when it is trivial: every woken sleeper went straight back to sleep, no sleep
was cancelled and nobody else read the time (a lease-renewal tick with nothing to renew), so
advancing by days costs milliseconds per thousand such ticks.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["FakeClock", "Load", "Probe"]

DEFAULT_QUIET_PERIOD: Final = 0.01
DEFAULT_SETTLE_TIMEOUT: Final = 5.0
_BUSY_QUIET_FACTOR: Final = 5  # with tasks running, wait this many quiet periods
_YIELDS_PER_ROUND: Final = 20
_NS: Final = 1_000_000_000


_FOREVER: Final = 2**63  # deadline of sleep(inf): never reached


def _to_ns(seconds: float) -> int:
    return round(seconds * _NS)


class Load(enum.Enum):
    """What a probe sees (see :meth:`FakeClock.watch`), from quietest to busiest."""

    IDLE = 0  #: nothing due is waiting to be picked up, nothing is running
    RUNNING = 1  #: tasks are running; nothing due is waiting
    DUE = 2  #: due work has not been picked up yet: the loop is not quiet


Probe = Callable[[], Awaitable[Load]]


@dataclass(order=True)
class _Sleeper:
    deadline: int  # nanoseconds since the epoch
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class FakeClock:
    """A virtual clock implementing kew's ``Clock`` protocol (``is_virtual`` is True).

    Example::

        clock = FakeClock()
        task = asyncio.create_task(clock.sleep(10))
        await clock.advance(9.999)   # task still sleeping
        await clock.advance(0.001)   # task done

    Args:
        start: the initial virtual time in seconds since the epoch (float); None (default)
            starts at the real ``time.time()`` rounded down to a whole second.
        quiet_period: real seconds (float) without clock activity that count as "quiet" after
            each step of :meth:`advance`. Default 0.01.
        settle_timeout: real seconds (float) one settle may take at most; then ``advance`` goes
            on anyway (it never hangs). Default 5.0.
    """

    is_virtual = True

    def __init__(
        self,
        start: float | None = None,
        *,
        quiet_period: float = DEFAULT_QUIET_PERIOD,
        settle_timeout: float = DEFAULT_SETTLE_TIMEOUT,
    ) -> None:
        self._now_ns = _to_ns(math.floor(time.time()) if start is None else start)
        self.quiet_period = quiet_period
        self.settle_timeout = settle_timeout
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self._activity = 0
        self._probes: list[Probe] = []
        self._lock: asyncio.Lock | None = None
        # for telling a trivial step (woken sleepers went straight back to sleep) from real work
        self._reads = 0  # now() calls, except those of the task that runs advance()
        self._parks = 0  # sleeps started
        self._cancels = 0  # sleeps cancelled
        self._advancer: asyncio.Task[Any] | None = None
        self._last_load = Load.DUE  # what the probes said last; unknown at first

    def now(self) -> float:
        """Return the virtual time in seconds since the epoch (float)."""
        self._count_read()
        return self._now_ns / _NS

    def monotonic(self) -> float:
        """Return the virtual time (seconds); it never goes backwards."""
        self._count_read()
        return self._now_ns / _NS

    def _count_read(self) -> None:
        if self._advancer is not None:
            try:
                if asyncio.current_task() is self._advancer:
                    return  # the probes' own reads
            except RuntimeError:  # no running loop
                pass
        self._reads += 1

    async def sleep(self, seconds: float) -> None:
        """Wait until virtual time reaches ``now() + seconds``; only :meth:`advance` gets there.

        Args:
            seconds: virtual seconds (float); <= 0 yields to the loop once and returns.

        Raises:
            ValueError: when ``seconds`` is NaN.
        """
        if math.isnan(seconds):
            raise ValueError("cannot sleep NaN seconds")
        self._activity += 1
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        deadline = self._now_ns + _to_ns(seconds) if math.isfinite(seconds) else _FOREVER
        heapq.heappush(self._sleepers, _Sleeper(deadline, next(self._seq), future))
        self._parks += 1
        try:
            await future
        except asyncio.CancelledError:
            self._cancels += 1
            raise
        finally:
            self._activity += 1

    @property
    def sleepers(self) -> int:
        """Number of coroutines currently sleeping on this clock (int)."""
        return sum(1 for s in self._sleepers if not s.future.done())

    def next_deadline(self) -> float | None:
        """Return the earliest virtual time (epoch seconds) a sleeper waits for, or None."""
        deadline = self._next_ns()
        if deadline is None or deadline == _FOREVER:
            return None
        return deadline / _NS

    def watch(self, probe: Probe) -> Callable[[], None]:
        """Make :meth:`advance` also wait until ``probe()`` stops reporting :attr:`Load.DUE`.

        The testkit's manager fixtures watch every manager they create (see
        ``kew_testkit.watch_manager``). A probe that raises counts as :attr:`Load.IDLE`.

        Args:
            probe: an async callable returning a :class:`Load`.

        Returns:
            A function that removes the probe again.
        """
        self._probes.append(probe)

        def unwatch() -> None:
            if probe in self._probes:
                self._probes.remove(probe)

        return unwatch

    async def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds``, waking sleepers in deadline order.

        First the loop settles at the current time (work already in flight, such as a worker
        going back to sleep, finishes before time moves). Then, at each sleeper deadline up to
        the target, time stops at that deadline, the sleepers due are woken and the loop runs
        until quiet (each settle bounded by ``settle_timeout`` real seconds); finally time is set
        to the target and the loop settles once more.

        Args:
            seconds: virtual seconds (float >= 0).

        Raises:
            ValueError: when ``seconds`` is negative, infinite or NaN.
        """
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"can only advance by a finite >= 0 seconds, got {seconds!r}")
        delta = _to_ns(seconds)
        await self._advance(lambda: self._now_ns + delta)

    async def advance_to(self, when: float) -> None:
        """Move virtual time forward to ``when`` (epoch seconds); see :meth:`advance`.

        Args:
            when: the target time in seconds since the epoch; a time in the past changes nothing
                but still lets the loop settle.

        Raises:
            ValueError: when ``when`` is infinite or NaN.
        """
        if not math.isfinite(when):
            raise ValueError(f"can only advance to a finite time, got {when!r}")
        target_ns = _to_ns(when)
        await self._advance(lambda: target_ns)

    async def _advance(self, target_of: Callable[[], int]) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # a second advance starts where the first one ended
            self._advancer = asyncio.current_task()
            try:
                await self.settle()  # work already in flight finishes at the current time
                target = target_of()
                while (deadline := self._next_ns()) is not None and deadline <= target:
                    self._now_ns = max(self._now_ns, deadline)
                    await self._step()
                self._now_ns = max(self._now_ns, target)
                await self.settle()
            finally:
                self._advancer = None

    async def _step(self) -> None:
        """Wake the sleepers due now, then settle (early when the step was trivial)."""
        reads, parks, cancels = self._reads, self._parks, self._cancels
        woken = self._wake_due()

        def trivial() -> bool:
            untouched = (self._reads, self._cancels) == (reads, cancels)
            return untouched and self._parks - parks >= woken

        await self._settle(trivial)

    def _next_ns(self) -> int | None:
        while self._sleepers and self._sleepers[0].future.done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0].deadline if self._sleepers else None

    def _wake_due(self) -> int:
        woken = 0
        while self._sleepers and self._sleepers[0].deadline <= self._now_ns:
            sleeper = heapq.heappop(self._sleepers)
            if not sleeper.future.done():
                sleeper.future.set_result(None)
                self._activity += 1
                woken += 1
        return woken

    async def _load(self) -> Load:
        worst = Load.IDLE
        for probe in list(self._probes):
            try:
                load = await probe()
            except Exception:
                load = Load.IDLE
            worst = max(worst, load, key=lambda x: x.value)
        self._last_load = worst
        return worst

    async def settle(self, timeout: float | None = None) -> None:
        """Let the event loop run until it is quiet (see the module docstring), without moving
        time. Returns after ``timeout`` real seconds at the latest, quiet or not.

        Args:
            timeout: real seconds (float); None (default) uses ``settle_timeout``.
        """
        await self._settle(None, timeout)

    async def _settle(
        self, trivial: Callable[[], bool] | None, timeout: float | None = None
    ) -> None:
        """Settle; return early once ``trivial()`` says the step woke nothing but sleepers that
        went straight back to sleep without reading the time, and every probe is idle."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.settle_timeout if timeout is None else timeout)
        quiet_since: float | None = None
        while loop.time() < deadline:
            mark, started = self._activity, loop.time()
            for _ in range(_YIELDS_PER_ROUND):
                await asyncio.sleep(0)
                if trivial is not None and self._last_load is Load.IDLE and trivial():
                    return  # nothing read the time: the probes cannot have changed their minds
            load = await self._load()
            if trivial is not None and load is Load.IDLE and trivial():
                return
            await asyncio.sleep(self.quiet_period / 2)  # real time: let replies from Redis land
            if mark != self._activity or load is Load.DUE:
                quiet_since = None
                continue
            quiet_since = started if quiet_since is None else quiet_since
            needed = self.quiet_period * (1 if load is Load.IDLE else _BUSY_QUIET_FACTOR)
            if loop.time() - quiet_since >= needed:
                return

    def __repr__(self) -> str:
        return f"<FakeClock now={self.now():.3f} sleepers={self.sleepers}>"
