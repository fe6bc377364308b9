"""Deferral (design.md §4): ``_defer_by`` seconds (number or timedelta) or ``_defer_until`` a
datetime (aware: exact; naive: local time, as ``datetime.timestamp()`` reads it; in the past: run
now). Both given: ValueError.

Exactness is checked on the fake clock: a task due at T has not run at T - 1 ms and has run at T.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import tasks
from kew import QueueConfig, QueuePriority, TaskNotFoundError, TaskQueueError, TaskStatus
from kew_testkit import assert_task_completed

Q = "later"
P = QueuePriority.MEDIUM


async def _queue(manager: Any) -> None:
    await manager.create_queue(QueueConfig(Q, max_workers=2))


async def _due_exactly(
    manager: Any, clock: Any, probe: tasks.Probe, task_id: str, seconds: float
) -> None:
    """The task has not run 1 ms before ``seconds`` from now, and runs at exactly that time.

    At 1 ms before, a ready task is submitted so that a worker claims (and promotes whatever is
    due) at that very moment: a task promoted early would run then.
    """
    start = clock.now()
    await clock.advance(seconds - 0.001)
    nudge = f"nudge-{task_id}"
    await manager.submit_task(nudge, Q, "rec", tasks.record, P, probe.name, nudge)
    assert_task_completed(await manager.wait_for_task(nudge, timeout=10))
    await clock.advance(0)
    info = await manager.get_task_status(task_id)
    assert info.status is TaskStatus.QUEUED, info
    assert probe.labels == [nudge]
    await clock.advance(0.001)
    assert_task_completed(await manager.wait_for_task(task_id, timeout=10))
    assert probe.runs == [(nudge, start + seconds - 0.001), (task_id, start + seconds)]


@pytest.mark.timeout(15)  # advancing a fake clock by days must not take real minutes
@pytest.mark.parametrize("delay", [300, 2.5, 86_400 * 3], ids=["int", "float", "three-days"])
async def test_defer_by_a_number_of_seconds_runs_at_the_due_time_not_one_ms_before(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any, delay: float
) -> None:
    await _queue(kew_manager)
    await kew_manager.submit_task("t", Q, "rec", tasks.record, P, probe.name, "t", _defer_by=delay)
    await _due_exactly(kew_manager, fake_clock, probe, "t", delay)


async def test_defer_by_a_timedelta_runs_at_the_due_time_not_one_ms_before(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await _queue(kew_manager)
    await kew_manager.submit_task(
        "t", Q, "rec", tasks.record, P, probe.name, "t", _defer_by=timedelta(minutes=5)
    )
    await _due_exactly(kew_manager, fake_clock, probe, "t", 300)


@pytest.mark.parametrize(
    "tz",
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))],
    ids=["utc", "plus-0530", "minus-0800"],
)
async def test_defer_until_an_aware_datetime_is_exact_in_any_timezone(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any, tz: timezone
) -> None:
    await _queue(kew_manager)
    at = datetime.fromtimestamp(fake_clock.now() + 90, tz=tz)
    await kew_manager.submit_task("t", Q, "rec", tasks.record, P, probe.name, "t", _defer_until=at)
    await _due_exactly(kew_manager, fake_clock, probe, "t", 90)


@pytest.fixture
def local_time_zone_ahead_of_utc() -> Iterator[None]:
    """Run the test with local time 5 h 45 min ahead of UTC, so naive != UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "KEW-05:45"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


async def test_defer_until_a_naive_datetime_reads_it_as_local_time(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any, local_time_zone_ahead_of_utc: None
) -> None:
    await _queue(kew_manager)
    at = datetime.fromtimestamp(fake_clock.now() + 120)  # naive, local wall-clock time
    assert at.tzinfo is None
    assert at.replace(tzinfo=UTC).timestamp() != at.timestamp()  # local is not UTC
    await kew_manager.submit_task("t", Q, "rec", tasks.record, P, probe.name, "t", _defer_until=at)
    await _due_exactly(kew_manager, fake_clock, probe, "t", 120)


@pytest.mark.parametrize(
    "defer",
    [
        {"_defer_until": datetime.now(UTC) - timedelta(hours=1)},
        {"_defer_until": datetime.now() - timedelta(days=400)},
        {"_defer_by": 0},
        {"_defer_by": timedelta(0)},
    ],
    ids=["aware-past", "naive-past", "by-zero", "by-zero-timedelta"],
)
async def test_a_due_time_in_the_past_or_now_runs_at_once(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any, defer: dict[str, Any]
) -> None:
    await _queue(kew_manager)
    await kew_manager.submit_task("t", Q, "rec", tasks.record, P, probe.name, "t", **defer)
    # the fake clock does not move: only a task that is ready now can run
    assert_task_completed(await kew_manager.wait_for_task("t", timeout=10))
    assert probe.runs == [("t", fake_clock.now())]


async def test_a_deferred_task_waits_in_status_queued_with_its_due_time(
    kew_manager: Any, probe: tasks.Probe, fake_clock: Any
) -> None:
    await _queue(kew_manager)
    due = fake_clock.now() + 300
    submitted = await kew_manager.submit_task(
        "t", Q, "rec", tasks.record, P, probe.name, "t", _defer_by=300
    )
    assert submitted.status is TaskStatus.QUEUED
    await fake_clock.advance(1)
    info = await kew_manager.get_task_status("t")
    assert info.status is TaskStatus.QUEUED
    assert info.due_time == datetime.fromtimestamp(due)
    assert info.started_time is None
    status = await kew_manager.get_queue_status(Q)
    assert status["queued_tasks"] == 1
    assert status["current_workers"] == 0


async def test_a_short_real_deferral_runs_after_its_due_time(
    kew_manager: Any, probe: tasks.Probe
) -> None:
    await _queue(kew_manager)
    submitted = await kew_manager.submit_task(
        "t", Q, "rec", tasks.record, P, probe.name, "t", _defer_by=0.05
    )
    assert submitted.due_time is not None
    info = await kew_manager.wait_for_task("t", timeout=10)
    assert_task_completed(info)
    assert info.started_time is not None
    assert info.started_time >= submitted.due_time - timedelta(milliseconds=1)


@pytest.mark.parametrize("defer_by", [10, timedelta(seconds=10)], ids=["number", "timedelta"])
async def test_giving_both_defer_arguments_raises_value_error_and_writes_nothing(
    kew_manager: Any, probe: tasks.Probe, defer_by: Any
) -> None:
    await _queue(kew_manager)
    before = await kew_manager.get_queue_status(Q)
    with pytest.raises(ValueError) as caught:
        await kew_manager.submit_task(
            "t",
            Q,
            "rec",
            tasks.record,
            P,
            probe.name,
            "t",
            _defer_by=defer_by,
            _defer_until=datetime.now(UTC) + timedelta(seconds=10),
        )
    assert isinstance(caught.value, TaskQueueError)
    with pytest.raises(TaskNotFoundError):
        await kew_manager.get_task_status("t")
    assert await kew_manager.get_queue_status(Q) == before
