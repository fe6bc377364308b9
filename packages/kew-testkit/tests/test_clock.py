"""FakeClock on its own: virtual time, sleepers woken in deadline order, settling, probes."""

from __future__ import annotations

import asyncio
import time

import pytest
from kew.clock import Clock
from kew_testkit import FakeClock, Load

START = 1_700_000_000.0


async def test_implements_kews_clock_protocol() -> None:
    clock = FakeClock(START)
    assert isinstance(clock, Clock)
    assert clock.is_virtual is True
    assert clock.now() == START


async def test_default_start_is_the_current_whole_second() -> None:
    before = time.time()
    clock = FakeClock()
    assert clock.now() == int(clock.now())
    assert before - 1 <= clock.now() <= time.time()


async def test_time_stands_still_until_advanced() -> None:
    clock = FakeClock(START)
    await asyncio.sleep(0.01)
    assert clock.now() == START
    await clock.advance(2.5)
    assert clock.now() == START + 2.5


async def test_sleep_ends_exactly_at_its_deadline_not_a_millisecond_before() -> None:
    clock = FakeClock(START)
    sleeper = asyncio.create_task(clock.sleep(10))
    await clock.settle()
    await clock.advance(9.999)
    assert not sleeper.done()
    await clock.advance(0.001)
    assert sleeper.done()
    assert clock.now() == START + 10


async def test_small_steps_add_up_exactly() -> None:
    clock = FakeClock(START)
    for _ in range(10):
        await clock.advance(0.1)
    assert clock.now() == START + 1.0
    await clock.advance(0.999)
    await clock.advance(0.001)
    assert clock.now() == START + 2.0


async def test_sleepers_wake_in_deadline_order_at_their_own_time() -> None:
    clock = FakeClock(START)
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(nap(n, s)) for n, s in [("c", 3), ("a", 1), ("b", 2)]]
    await clock.settle()
    await clock.advance(5)
    await asyncio.gather(*tasks)
    assert woke == [("a", START + 1), ("b", START + 2), ("c", START + 3)]
    assert clock.now() == START + 5


async def test_one_advance_runs_a_chain_of_sleeps_at_exact_times() -> None:
    clock = FakeClock(START)
    seen: list[float] = []

    async def backoff() -> None:
        for delay in (1, 2, 4):
            await clock.sleep(delay)
            seen.append(clock.now() - START)

    task = asyncio.create_task(backoff())
    await clock.settle()
    await clock.advance(10)
    assert task.done()
    assert seen == [1.0, 3.0, 7.0]


async def test_non_positive_sleep_returns_at_once() -> None:
    clock = FakeClock(START)
    await asyncio.wait_for(clock.sleep(0), timeout=5)
    await asyncio.wait_for(clock.sleep(-3), timeout=5)
    assert clock.now() == START


async def test_infinite_sleep_never_ends_and_does_not_block_advance() -> None:
    clock = FakeClock(START)
    forever = asyncio.create_task(clock.sleep(float("inf")))
    await clock.settle()
    assert clock.next_deadline() is None
    await clock.advance(1e9)
    assert not forever.done()
    forever.cancel()


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
async def test_advance_rejects_bad_amounts(bad: float) -> None:
    with pytest.raises(ValueError):
        await FakeClock(START).advance(bad)


async def test_sleep_rejects_nan() -> None:
    with pytest.raises(ValueError):
        await FakeClock(START).sleep(float("nan"))


async def test_advance_to_the_past_changes_nothing() -> None:
    clock = FakeClock(START)
    await clock.advance_to(START - 100)
    assert clock.now() == START


async def test_cancelled_sleeper_is_forgotten() -> None:
    clock = FakeClock(START)
    task = asyncio.create_task(clock.sleep(5))
    await clock.settle()
    assert clock.sleepers == 1
    assert clock.next_deadline() == START + 5
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert clock.sleepers == 0
    assert clock.next_deadline() is None
    await clock.advance(10)


async def test_woken_work_that_takes_real_io_time_finishes_before_the_next_step() -> None:
    """A sleeper whose follow-up waits on (simulated) I/O before sleeping again still wakes at
    its exact virtual times inside one advance, because the probe says the work is due."""
    clock = FakeClock(START)
    pending = {"due": False}
    seen: list[float] = []

    async def probe() -> Load:
        return Load.DUE if pending["due"] else Load.IDLE

    async def worker() -> None:
        for delay in (1, 2):
            await clock.sleep(delay)
            pending["due"] = True
            await asyncio.sleep(0.02)  # real time, like a Redis round trip
            seen.append(clock.now() - START)
            pending["due"] = False

    clock.watch(probe)
    task = asyncio.create_task(worker())
    await clock.settle()
    await clock.advance(5)
    await asyncio.wait_for(task, timeout=5)
    assert seen == [1.0, 3.0]


async def test_settle_is_bounded_when_a_probe_never_quiets() -> None:
    clock = FakeClock(START, settle_timeout=0.05)

    async def always_due() -> Load:
        return Load.DUE

    clock.watch(always_due)
    await asyncio.wait_for(clock.advance(1), timeout=10)
    assert clock.now() == START + 1


async def test_unwatch_and_failing_probes() -> None:
    clock = FakeClock(START, settle_timeout=5)

    async def broken() -> Load:
        raise RuntimeError("manager gone")

    async def always_due() -> Load:
        return Load.DUE

    clock.watch(broken)  # counts as idle
    unwatch = clock.watch(always_due)
    unwatch()
    unwatch()  # twice is fine
    await asyncio.wait_for(clock.advance(1), timeout=4)


async def test_concurrent_advances_are_serialized() -> None:
    clock = FakeClock(START)
    await asyncio.gather(clock.advance(1), clock.advance(2))
    assert clock.now() == START + 3
    assert "FakeClock" in repr(clock)


async def test_ticks_that_change_nothing_do_not_make_long_advances_slow() -> None:
    clock = FakeClock(START)
    ticks = {"n": 0}

    async def ticker() -> None:  # like a lease-renewal loop with nothing to renew
        while True:
            await clock.sleep(10)
            ticks["n"] += 1

    async def deadline() -> float:
        await clock.sleep(3 * 86_400)
        return clock.now()

    background = asyncio.create_task(ticker())
    target = asyncio.create_task(deadline())
    await clock.settle()
    await asyncio.wait_for(clock.advance(3 * 86_400), timeout=60)
    assert await target == START + 3 * 86_400
    assert ticks["n"] == 3 * 8_640
    background.cancel()
    await asyncio.gather(background, return_exceptions=True)


async def test_sleepers_that_read_the_time_still_wake_exactly() -> None:
    clock = FakeClock(START)
    seen: list[float] = []

    async def reader() -> None:
        while len(seen) < 5:
            await clock.sleep(1.5)
            seen.append(clock.now() - START)

    task = asyncio.create_task(reader())
    await clock.settle()
    await clock.advance(10)
    await asyncio.wait_for(task, timeout=5)
    assert seen == [1.5, 3.0, 4.5, 6.0, 7.5]
