"""Rate limit (issue 7): ``QueueConfig(rate_limit=N, rate_period=seconds, rate_burst=B)`` is a token
bucket shared by every process: no task starts above it, whatever the number of processes. In any
stretch of T seconds at most ``B + N * T / rate_period`` tasks start (``B`` defaults to ``N``). A
rate-limited queue wakes when its next token is due, without waiting for anything else.

Start times are counted from each task's record (``TaskInfo.started_time``: the moment its claim
took a token, stamped by the claiming process), except where the managers' clocks differ on
purpose (then the tasks' own start times, read from one real clock, are counted). This is the one
place in the suite where wall-clock windows are measured. Lower bounds are kept loose: a slow
machine may start fewer.
"""

from __future__ import annotations

import time
from typing import Any

import ops_tasks
import tasks
from kew import QueueConfig, QueuePriority, SystemClock
from kew_testkit import assert_task_completed, wait_until

Q = "metered"
P = QueuePriority.MEDIUM


async def _submit(manager: Any, probe: tasks.Probe, n: int) -> None:
    rows = [
        {"task_id": f"t-{i:04}", "task_func": ops_tasks.stamp, "args": (probe.name, f"t-{i:04}")}
        for i in range(n)
    ]
    await manager.submit_tasks(Q, rows)


async def _run_for(
    factory: Any,
    probe: tasks.Probe,
    config: QueueConfig,
    managers: int,
    tasks_: int,
    window: float,
    **settings: Any,
) -> list[float]:
    """Submit ``tasks_`` tasks to ``managers`` managers sharing a rate-limited queue, let them
    run until ``window`` s after the first start, pause the queue, and return the start times
    (epoch seconds, sorted) of every task that ran."""
    fleet = [await factory(**settings) for _ in range(managers)]
    for m in fleet:
        await m.create_queue(config)
    await _submit(fleet[0], probe, tasks_)
    await wait_until(lambda: bool(probe.runs), timeout=10, message="no task started")
    first = probe.runs[0][1]
    # the measuring window itself: let the fleet run for `window` s after the first start
    await wait_until(lambda: time.time() >= first + window + 0.2, timeout=window + 10)
    await fleet[-1].pause_queue(Q)

    await _wait_stopped(fleet)
    starts = []
    for label in probe.labels:
        info = await fleet[1 % managers].get_task_status(label)
        assert_task_completed(info)
        assert info.started_time is not None
        starts.append(info.started_time.timestamp())
    return sorted(starts)


class _SkewedClock(SystemClock):
    """The system clock, ``offset`` seconds off: a host whose clock NTP keeps roughly right."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset


async def _wait_stopped(fleet: list[Any]) -> None:
    """Wait until nothing runs any more in the (paused) queue; the rest wait, paused."""

    async def stopped() -> bool:
        states = [await m.get_queue_status(Q) for m in fleet]
        return all(s["processing"] == 0 and s["current_workers"] == 0 for s in states)

    await wait_until(stopped, timeout=10, message="tasks still running after the pause")


def _most_in_any_window(starts: list[float], seconds: float) -> int:
    """The most start times in any closed interval of ``seconds`` length."""
    most, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] < t - seconds - 1e-9:
            j += 1
        most = max(most, i - j + 1)
    return most


async def test_a_rate_limit_of_50_per_s_over_3_s_with_4_managers_stays_within_rate_and_burst(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    rate, burst, window = 50, 50, 3.0
    config = QueueConfig(Q, max_workers=20, rate_limit=rate, rate_period=1.0)  # burst = rate
    starts = await _run_for(kew_manager_factory, probe, config, 4, 600, window)
    count = len([t for t in starts if t <= starts[0] + window])
    bound = rate * int(window) + burst
    assert count <= bound, f"{count} tasks started in {window} s (bound {bound})"
    assert count > rate  # it does run: the burst and then some
    assert _most_in_any_window(starts, window) <= bound
    assert _most_in_any_window(starts, 1.0) <= rate + burst
    assert len(probe.runs) < 600  # the limit, not the supply of tasks, bounded the count


async def test_rate_period_and_a_small_burst_bound_the_starts_of_two_managers(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    # 10 per 0.5 s = 20/s, at most 5 at once after a quiet spell
    config = QueueConfig(Q, max_workers=10, rate_limit=10, rate_period=0.5, rate_burst=5)
    starts = await _run_for(kew_manager_factory, probe, config, 2, 200, 2.0)
    count = len([t for t in starts if t <= starts[0] + 2.0])
    assert count <= 5 + 20 * 2
    assert count > 10
    assert _most_in_any_window(starts, 0.0) <= 5  # never more than the burst at one instant
    assert _most_in_any_window(starts, 1.0) <= 5 + 20
    assert _most_in_any_window(starts, 2.0) <= 5 + 40


async def test_a_rate_limited_queue_wakes_for_its_next_token_without_any_other_wake_up(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    # idle workers would otherwise sleep for idle_wait (60 s here) before claiming again
    fleet = [await kew_manager_factory(idle_wait=60.0) for _ in range(2)]
    for m in fleet:
        await m.create_queue(QueueConfig(Q, rate_limit=10, rate_period=1.0, rate_burst=1))
    ids = [f"w-{i}" for i in range(8)]
    await fleet[0].submit_tasks(
        Q, [{"task_id": i, "task_func": ops_tasks.stamp, "args": (probe.name, i)} for i in ids]
    )
    for i in ids:  # one token every 0.1 s: all eight run within a second or so
        assert_task_completed(await fleet[1].wait_for_task(i, timeout=10), i)
    assert probe.labels == ids  # one at a time, in order


async def test_the_rate_limit_holds_when_the_managers_clocks_differ_slightly(
    kew_manager_factory: Any, probe: tasks.Probe
) -> None:
    """Processes on different hosts have "roughly synchronised clocks (NTP)" (kew.Clock): here
    two managers whose clocks are 50 ms apart, each claiming one task at a time. Start times
    are the tasks' own (one real clock: every manager of the test runs in this process)."""
    rate, burst, window, skew = 50, 50, 3.0, 0.05
    fleet = [await kew_manager_factory(clock=_SkewedClock(offset)) for offset in (0.0, -skew)]
    for m in fleet:
        await m.create_queue(QueueConfig(Q, max_workers=1, rate_limit=rate, rate_period=1.0))
    await _submit(fleet[0], probe, 600)
    await wait_until(lambda: bool(probe.runs), timeout=10, message="no task started")
    first = probe.runs[0][1]
    await wait_until(lambda: time.time() >= first + window + 0.2, timeout=window + 10)
    await fleet[0].pause_queue(Q)
    starts = sorted(t for _, t in probe.runs)
    count = len([t for t in starts if t <= starts[0] + window])
    # what a token bucket allows over the window widened by the clock difference, plus 50 ms
    # for the delay between a claim and its task's first line
    bound = int(burst + rate * (window + skew + 0.05))
    assert count <= bound, f"{count} tasks started in {window} s (bound {bound})"
    assert count > rate

    await _wait_stopped(fleet)
